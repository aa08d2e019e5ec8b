package email

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/secret"
)

// TLS policies (the tls key).
const (
	// TLSMandatory refuses to send unless the relay offers STARTTLS.
	TLSMandatory = "mandatory"
	// TLSOpportunistic uses STARTTLS when the relay offers it and sends in
	// clear otherwise; the password is never sent in clear either way.
	TLSOpportunistic = "opportunistic"
	// TLSNone never starts TLS, for a relay on localhost or a test server.
	TLSNone = "none"
)

// Defaults, applied by Load (and by New, for a Config that was never
// loaded). They live here and nowhere else.
const (
	DefaultTLS = TLSOpportunistic
	// DefaultTimeout bounds one whole SMTP conversation. A relay can be
	// slow to greet (tarpitting, reverse DNS), so it is longer than the
	// HTTP integrations' 10s.
	DefaultTimeout = model.Duration(30 * time.Second)

	// DefaultSubject names the notification: RESOLVED when every alert
	// resolved, else the common severity upper-cased (INFO for a lone alert
	// without one, as Slack's title reads a missing severity; FIRING when the
	// alerts disagree), then the alert name, the count when there are
	// several, and the common summary.
	DefaultSubject = `{{ if eq .Status "resolved" }}RESOLVED{{ else if .CommonLabels.severity }}{{ toUpper .CommonLabels.severity }}{{ else if eq (len .Alerts) 1 }}INFO{{ else }}FIRING{{ end }}: ` +
		`{{ with .CommonLabels.alertname }}{{ . }}{{ else }}{{ len .Alerts }} alerts{{ end }}` +
		`{{ if gt (len .Alerts) 1 }} ({{ len .Alerts.Firing }} firing, {{ len .Alerts.Resolved }} resolved){{ end }}` +
		`{{ with .CommonAnnotations.summary }} - {{ . }}{{ end }}`

	// DefaultText lists Alert, Description and Runbook for each alert,
	// leaving out the lines an alert has nothing for and
	// adding what an on-call reader looks for next: status, labels, start
	// time and the link to the source. A notice or digest opens with its
	// .Intro and a notice lists its .Facts.
	DefaultText = `{{ with .Intro }}{{ . }}

{{ end }}{{ with .Facts }}{{ range $k, $v := . }}{{ $k }}: {{ $v }}
{{ end }}
{{ end }}{{ range .Alerts }}Alert: {{ or .Annotations.summary .Labels.alertname }}
{{ with .Annotations.description }}Description: {{ . }}
{{ end }}{{ with .Annotations.runbook_url }}Runbook: {{ . }}
{{ end }}Status: {{ .Status }}
Labels:{{ range .Labels.SortedPairs }} {{ .Name }}={{ .Value }}{{ end }}
{{ if not .StartsAt.IsZero }}Started: {{ .StartsAt.UTC.Format "2006-01-02 15:04:05 UTC" }}
{{ end }}{{ if eq .Status "resolved" }}{{ if not .EndsAt.IsZero }}Ended: {{ .EndsAt.UTC.Format "2006-01-02 15:04:05 UTC" }}
{{ end }}{{ end }}{{ with .GeneratorURL }}Source: {{ . }}
{{ end }}
{{ end }}{{ with .ExternalURL }}Alertmanager: {{ . }}
{{ end }}`

	// DefaultHTML says the same as DefaultText for mail clients that show
	// HTML, one block per alert in Slack's colours (red
	// critical, amber warning, green resolved). Inline styles only: most
	// mail clients drop <style> elements.
	DefaultHTML = `<!DOCTYPE html>
<html>
<head><meta charset="UTF-8"></head>
<body style="font-family: Helvetica, Arial, sans-serif; font-size: 14px; color: #222222;">
{{ with .Intro }}<p>{{ . }}</p>
{{ end }}{{ with .Facts }}<table style="margin: 0 0 16px 0;">
{{ range $k, $v := . }}<tr><td style="padding-right: 8px; color: #666666;">{{ $k }}</td><td>{{ $v }}</td></tr>
{{ end }}</table>
{{ end }}{{ range .Alerts }}<div style="border-left: 4px solid {{ if eq .Status "resolved" }}#2eb886{{ else if eq .Labels.severity "critical" }}#d00000{{ else if eq .Labels.severity "warning" }}#daa038{{ else }}#439fe0{{ end }}; padding: 4px 12px; margin: 0 0 16px 0;">
<p style="margin: 4px 0;"><strong>Alert:</strong> {{ or .Annotations.summary .Labels.alertname }}</p>
{{ with .Annotations.description }}<p style="margin: 4px 0;"><strong>Description:</strong> {{ . }}</p>
{{ end }}{{ with .Annotations.runbook_url }}<p style="margin: 4px 0;"><strong>Runbook:</strong> <a href="{{ . }}">{{ . }}</a></p>
{{ end }}<p style="margin: 4px 0;"><strong>Status:</strong> {{ .Status }}</p>
<p style="margin: 4px 0; color: #666666;">{{ range .Labels.SortedPairs }}{{ .Name }}={{ .Value }} {{ end }}</p>
{{ if not .StartsAt.IsZero }}<p style="margin: 4px 0;"><strong>Started:</strong> {{ .StartsAt.UTC.Format "2006-01-02 15:04:05 UTC" }}</p>
{{ end }}{{ if eq .Status "resolved" }}{{ if not .EndsAt.IsZero }}<p style="margin: 4px 0;"><strong>Ended:</strong> {{ .EndsAt.UTC.Format "2006-01-02 15:04:05 UTC" }}</p>
{{ end }}{{ end }}{{ with .GeneratorURL }}<p style="margin: 4px 0;"><a href="{{ . }}">Source</a></p>
{{ end }}</div>
{{ end }}{{ with .ExternalURL }}<p style="color: #666666;">Sent by alertmedic for <a href="{{ . }}">{{ . }}</a></p>
{{ end }}</body>
</html>
`
)

// Config is the integrations.email block: the one mail relay every email
// target sends through. Recipients are each target's settings.to.
type Config struct {
	// Smarthost is the relay as host:port (e.g. smtp.company.com:587).
	Smarthost string `yaml:"smarthost"`
	// From is the sender, an address or "Name <address>".
	From string `yaml:"from"`
	// TLS is mandatory, opportunistic (the default) or none.
	TLS string `yaml:"tls"`

	// AuthUsername turns on SMTP AUTH. The mechanism is the strongest the
	// relay offers; PLAIN and LOGIN only inside TLS.
	AuthUsername     string        `yaml:"auth_username"`
	AuthPassword     secret.Secret `yaml:"auth_password"`
	AuthPasswordFile string        `yaml:"auth_password_file"`

	// InsecureSkipVerify accepts any certificate the relay presents: for
	// tests and self-signed relays only; prefer ca_file.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// CAFile (PEM, relative to the configuration file) replaces the system
	// roots for verifying the relay.
	CAFile string `yaml:"ca_file"`

	// Subject, Text and HTML are Alertmanager templates rendered once per
	// mail against the notification's data ({{ .Status }},
	// {{ range .Alerts }}, {{ .CommonLabels.severity }}, ...) plus .Kind,
	// .Intro (a notice's text, a digest's one-line summary; empty for
	// alerts) and .Facts (a notice's figures). Notices and digests get
	// their own subjects; Subject is for alerts.
	Subject string `yaml:"subject"`
	Text    string `yaml:"text"`
	HTML    string `yaml:"html"`

	// Timeout bounds one SMTP conversation, connect to QUIT.
	Timeout model.Duration `yaml:"timeout"`
	// MaxAlerts bounds the alerts one mail lists; a notification with
	// more goes out as several mails. Default 100.
	MaxAlerts int `yaml:"max_alerts"`
}

// Configured reports whether mail can be sent: a relay and a sender. Until
// then email targets stay on the log integration.
func (c Config) Configured() bool { return c.Smarthost != "" && c.From != "" }

// Load reads auth_password_file (and resolves ca_file) relative to dir, the
// configuration file's folder, sets the defaults and checks every value.
// Each error names its key relative to the block; none quotes the password.
func (c *Config) Load(dir string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	// Taken before defaults: whether the block says anything at all. An
	// absent block is no error; a half-written one is.
	touched := *c != Config{}
	if err := secret.Fill("auth_password", &c.AuthPassword, c.AuthPasswordFile, dir); err != nil {
		errs = append(errs, err)
	}
	if c.CAFile != "" && !filepath.IsAbs(c.CAFile) && dir != "" {
		c.CAFile = filepath.Join(dir, c.CAFile)
	}
	c.setDefaults()
	if !touched {
		return errs
	}

	switch host, port, err := net.SplitHostPort(c.Smarthost); {
	case c.Smarthost == "":
		bad("smarthost: required when the email block is set (host:port of the mail relay, e.g. smtp.company.com:587)")
	case err != nil || host == "":
		bad("smarthost: %q is not host:port (e.g. smtp.company.com:587)", c.Smarthost)
	default:
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			bad("smarthost: %q has no valid port (1-65535)", c.Smarthost)
		}
	}
	if c.MaxAlerts < 0 {
		bad("max_alerts: must be 1 or more, got %d", c.MaxAlerts)
	}
	if c.From == "" {
		bad("from: required when the email block is set (the sender, e.g. alerts@company.com)")
	} else if _, err := mail.ParseAddress(c.From); err != nil {
		bad("from: %q is not an email address", c.From)
	}
	if _, err := tlsPolicy(c.TLS); err != nil {
		bad("tls: %w", err)
	}
	switch {
	case c.AuthPassword != "" && c.AuthUsername == "":
		bad("auth_password: set without auth_username")
	case c.AuthUsername != "" && c.AuthPassword == "" && c.AuthPasswordFile == "":
		bad("auth_username: set without auth_password (or auth_password_file)")
	}
	if c.CAFile != "" {
		if _, err := loadCA(c.CAFile); err != nil {
			bad("ca_file: %w", err)
		}
	}
	// Rendered against a sample so that a typo fails the load, not the
	// first mail at night.
	sample := &notifiers.Notification{Kind: notifiers.KindAlerts, Alerts: template.Alerts{{
		Status: alert.StatusFiring, Labels: template.KV{"alertname": "Sample", "severity": "critical"},
		Annotations: template.KV{"summary": "sample"}, StartsAt: time.Unix(0, 0),
	}}}
	for _, t := range []struct {
		key, text string
		html      bool
	}{{"subject", c.Subject, false}, {"text", c.Text, false}, {"html", c.HTML, true}} {
		if _, err := render(t.text, sample, t.html); err != nil {
			bad("%s: %w", t.key, err)
		}
	}
	return errs
}

// setDefaults fills what was left out. A zero timeout counts as left out:

// DefaultMaxAlerts is how many alerts one mail lists unless max_alerts says.
const DefaultMaxAlerts = 100

// a conversation without a bound could hold a worker forever.
func (c *Config) setDefaults() {
	if c.TLS == "" {
		c.TLS = DefaultTLS
	}
	if c.MaxAlerts == 0 {
		c.MaxAlerts = DefaultMaxAlerts
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.Text == "" {
		c.Text = DefaultText
	}
	if c.HTML == "" {
		c.HTML = DefaultHTML
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
}

func loadCA(file string) (*x509.CertPool, error) {
	b, err := secret.ReadRegular(file, secret.MaxFileSize)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// Target settings an email target may carry.
const (
	// SettingTo lists the recipients, separated by commas; each an address
	// or "Name <address>" (e.g. oncall@company.com).
	SettingTo = "to"
)

// ValidateSettings checks an email target's settings, for the
// configuration loader to call on each email integration so that a target
// without recipients is refused at load rather than at the first alert.
// Keys are named relative to settings.
func ValidateSettings(settings map[string]string) []error {
	var errs []error
	if _, err := recipients(settings[SettingTo]); err != nil {
		errs = append(errs, err)
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case SettingTo:
		case notifiers.SettingSubject, notifiers.SettingText, notifiers.SettingHTML:
			if err := notifiers.CheckTemplate(settings[k]); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
		case "auth_password", "auth_password_file", "password":
			// The value is not quoted: it is the secret that does not
			// belong here.
			errs = append(errs, fmt.Errorf("%s: the password is a secret and settings are not; set auth_password in integrations.email", k))
		default:
			errs = append(errs, fmt.Errorf("%s: unknown setting (email knows %s, subject, text, html)", k, SettingTo))
		}
	}
	return errs
}

// recipients parses settings.to.
func recipients(to string) ([]*mail.Address, error) {
	if strings.TrimSpace(to) == "" {
		return nil, errors.New("to: required (the recipients, e.g. oncall@company.com)")
	}
	addrs, err := mail.ParseAddressList(to)
	if err != nil {
		return nil, fmt.Errorf("to: %q is not a comma-separated list of email addresses", to)
	}
	return addrs, nil
}
