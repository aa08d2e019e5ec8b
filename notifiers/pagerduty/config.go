package pagerduty

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/secret"
)

// Defaults, applied by Load (and by New, for a Config that was never
// loaded). They live here and nowhere else.
const (
	// DefaultURL is the Events API v2 endpoint, as in Alertmanager.
	DefaultURL = "https://events.pagerduty.com/v2/enqueue"
	// DefaultClient names the sender in PagerDuty's UI.
	DefaultClient = "alertmedic"
	// DefaultSummary is the usual Alertmanager description
	// ('{{ range .Alerts }}{{ .Annotations.summary }}{{ end }}') for the one
	// alert each event carries, falling back to the alert's name when it
	// has no summary, because PagerDuty refuses an event without one.
	DefaultSummary = `{{ range .Alerts }}{{ with .Annotations.summary }}{{ . }}{{ else }}{{ .Labels.alertname }}{{ end }}{{ end }}`
	// DefaultTimeout bounds each request to the Events API.
	DefaultTimeout = model.Duration(10 * time.Second)
	// fallbackSeverity is what an alert whose severity label the mapping
	// does not know is sent as; "error" is Alertmanager's default too.
	fallbackSeverity = "error"
	// enqueuePath is what go-pagerduty appends to the endpoint it is given.
	enqueuePath = "/v2/enqueue"
)

// Severities are the values the Events API accepts for payload.severity.
var Severities = []string{"critical", "error", "warning", "info"}

// DefaultSeverity maps the alert's severity label to PagerDuty's severity;
// any other value (or none) is sent as "error".
func DefaultSeverity() map[string]string {
	return map[string]string{"critical": "critical", "warning": "warning", "info": "info"}
}

// Config is the integrations.pagerduty block: one PagerDuty service (its
// routing key) that every pagerduty target sends to. The routing key is
// here, not in a target's settings, because settings are printed (routes
// test, explain) and are not secret.
type Config struct {
	RoutingKey     secret.Secret `yaml:"routing_key"`
	RoutingKeyFile string        `yaml:"routing_key_file"`
	// URL is the Events API v2 enqueue endpoint. It must end in /v2/enqueue:
	// go-pagerduty appends that path to the host it is given.
	URL string `yaml:"url"`
	// Client and ClientURL say in PagerDuty's UI who sent the event and
	// link back to it. ClientURL empty: the Alertmanager external URL the
	// notification came with (as Alertmanager sends), else the alert's
	// generator URL.
	Client    string `yaml:"client"`
	ClientURL string `yaml:"client_url"`
	// AlertPageURL, when set, adds a link to alertmedic's own page of the
	// alert to every event: this URL with the alert's fingerprint
	// appended (e.g. https://alertmedic.company.com/alerts/). No template:
	// a plain prefix.
	AlertPageURL string `yaml:"alert_page_url"`
	// Severity maps the alert's severity label to PagerDuty's severity
	// (critical, error, warning or info). A map given here replaces the
	// default whole, so that a mapping can also be taken away; a value it
	// does not know is sent as "error".
	Severity map[string]string `yaml:"severity"`
	// Summary is a template rendered for each alert on its own (.Alerts
	// holds that one alert); it is cut to 1,024 characters.
	Summary string `yaml:"summary"`
	// Timeout bounds each request to the Events API.
	Timeout model.Duration `yaml:"timeout"`
}

// Configured reports whether PagerDuty can be called: there is a routing
// key. Until then pagerduty targets have nowhere to page.
func (c Config) Configured() bool { return c.RoutingKey != "" }

// Load reads routing_key_file (relative to dir, the configuration file's
// folder), sets the defaults and checks every value. Each error names its
// key, relative to the block; none quotes the routing key.
func (c *Config) Load(dir string) []error {
	var errs []error
	// Set before defaults: whether the block says anything at all.
	touched := c.URL != "" || c.Client != "" || c.ClientURL != "" || c.AlertPageURL != "" || c.Severity != nil || c.Summary != "" || c.Timeout != 0
	if err := secret.Fill("routing_key", &c.RoutingKey, c.RoutingKeyFile, dir); err != nil {
		errs = append(errs, err)
	} else if c.RoutingKey == "" && touched {
		errs = append(errs, errors.New("routing_key: required (or routing_key_file) when the pagerduty block is set"))
	}
	c.setDefaults()

	if err := checkURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	if c.ClientURL != "" {
		if u, err := url.Parse(c.ClientURL); err != nil || !u.IsAbs() {
			errs = append(errs, errors.New("client_url: must be an absolute URL"))
		}
	}
	if c.AlertPageURL != "" {
		if u, err := url.Parse(c.AlertPageURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("alert_page_url: must be an http or https URL (the alert's fingerprint is appended)"))
		}
	}
	keys := make([]string, 0, len(c.Severity))
	for k := range c.Severity {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(Severities, c.Severity[k]) {
			errs = append(errs, fmt.Errorf("severity.%s: %q is not one of %s", k, c.Severity[k], strings.Join(Severities, ", ")))
		}
	}
	if err := notifiers.Parse(c.Summary); err != nil {
		errs = append(errs, fmt.Errorf("summary: %w", err))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errs
}

// setDefaults fills what was left out. A zero timeout counts as left out:
// a request without a bound could hold a worker forever.
func (c *Config) setDefaults() {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Client == "" {
		c.Client = DefaultClient
	}
	if c.Severity == nil {
		c.Severity = DefaultSeverity()
	}
	if c.Summary == "" {
		c.Summary = DefaultSummary
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// checkURL accepts what go-pagerduty can be pointed at: it is given the URL
// less /v2/enqueue and appends that path itself, so a URL with another path,
// a query or a fragment could not be honoured. The URL is not quoted: a
// proxy's may carry credentials.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an http or https URL")
	}
	if u.RawQuery != "" || u.Fragment != "" || !strings.HasSuffix(u.Path, enqueuePath) {
		return errors.New("must end in " + enqueuePath + " with no query or fragment (the Events API v2 endpoint)")
	}
	return nil
}

// Target settings a pagerduty target may carry.
const (
	// SettingSeverity forces PagerDuty's severity for every alert sent to
	// the target, whatever their severity label says.
	SettingSeverity = "severity"
)

// ValidateSettings checks a pagerduty target's settings, for the
// configuration loader to call on each pagerduty integration so that a bad
// setting is refused at load rather than at the first page. Keys are named
// relative to settings.
func ValidateSettings(settings map[string]string) []error {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		switch v := settings[k]; k {
		case notifiers.SettingSummary:
			if err := notifiers.CheckTemplate(v); err != nil {
				errs = append(errs, fmt.Errorf("summary: %w", err))
			}
		case SettingSeverity:
			if !slices.Contains(Severities, v) {
				errs = append(errs, fmt.Errorf("severity: %q is not one of %s", v, strings.Join(Severities, ", ")))
			}
		case "routing_key", "routing_key_file", "service_key", "service_key_file":
			// The value is not quoted: it is the secret that does not
			// belong here.
			errs = append(errs, fmt.Errorf("%s: the routing key is a secret and settings are not; set it in integrations.pagerduty", k))
		default:
			errs = append(errs, fmt.Errorf("%s: unknown setting (pagerduty knows %s, summary)", k, SettingSeverity))
		}
	}
	return errs
}
