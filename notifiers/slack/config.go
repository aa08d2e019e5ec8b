package slack

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
	"github.com/slack-go/slack"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/secret"
)

// Defaults. The title and text make an attachment such as "CRITICAL:
// HighErrorRate" over the summary annotation. They are rendered once per
// alert (see Config.Title), and a missing severity reads as "info".
const (
	DefaultTitle          = `{{ if eq .Status "resolved" }}RESOLVED{{ else }}{{ or .CommonLabels.severity "info" | toUpper }}{{ end }}: {{ .CommonLabels.alertname }}`
	DefaultText           = `{{ or .CommonAnnotations.summary "No summary available" }}`
	DefaultFooter         = "Company Extraction API Monitoring"
	DefaultMaxAttachments = 20
	DefaultTimeout        = 10 * time.Second
	DefaultAPIBaseURL     = slack.APIURL
)

// maxAttachments is Slack's limit per message, less the one that says how
// many alerts were left out.
const maxAttachments = 99

// Config is the integrations.slack block. It holds either an incoming
// webhook URL (api_url) or a bot token (token) for chat.postMessage; both
// are secrets and may come from files.
type Config struct {
	// AlertPageURL, when set (from web.external_url), links each alert of
	// a message to its timeline: AlertPageURL + fingerprint.
	AlertPageURL string `yaml:"-"`

	APIURL     secret.Secret `yaml:"api_url"`
	APIURLFile string        `yaml:"api_url_file"`
	Token      secret.Secret `yaml:"token"`
	TokenFile  string        `yaml:"token_file"`
	// APIBaseURL is where the Web API lives when a token is used; tests
	// point it at a local server.
	APIBaseURL string `yaml:"api_base_url"`

	Username  string `yaml:"username"`
	IconEmoji string `yaml:"icon_emoji"`
	// Title and Text are Alertmanager templates rendered once per alert,
	// against the notification narrowed to that alert: each alert has its
	// own attachment, so .Status, .CommonLabels and .CommonAnnotations are
	// that alert's, and templates written for Alertmanager
	// ({{ range .Alerts }}) still work.
	Title  string `yaml:"title"`
	Text   string `yaml:"text"`
	Footer string `yaml:"footer"`
	// MaxAttachments caps the alerts shown in one message; one more
	// attachment counts the rest, so a storm stays one readable message.
	MaxAttachments int `yaml:"max_attachments"`
	// Timeout bounds each request to Slack.
	Timeout model.Duration `yaml:"timeout"`

	// SigningSecret is the Slack app's signing secret. With a token it puts
	// Acknowledge and Silence buttons on alert messages, and Slack's clicks
	// on them are verified with it (Notifier.Interactions).
	SigningSecret     secret.Secret `yaml:"signing_secret"`
	SigningSecretFile string        `yaml:"signing_secret_file"`
	// SilenceDurations are what the Silence button offers: one button for
	// one duration, a menu for several. Default [1h].
	SilenceDurations []model.Duration `yaml:"silence_durations"`
}

// Per-target settings of the Web API (app) mode; an incoming webhook
// ignores them.
const (
	// SettingUpdateMessage: "false" posts every notification of a group as
	// a new message; by default the group's first message is updated.
	SettingUpdateMessage = "update_message"
	// SettingThreadReplies: "true" also replies in the message's thread
	// when it is updated, so that the change notifies people.
	SettingThreadReplies = "thread_replies"
)

// DefaultSilenceDuration is what the Silence button offers by default.
const DefaultSilenceDuration = model.Duration(time.Hour)

// maxSilenceDurations keeps the Silence menu short enough to read.
const maxSilenceDurations = 10

// ValidateSettings checks a slack target's own settings, for the
// configuration loader to call on each slack integration. Keys are named
// relative to settings; channel, title and text are checked by the loader.
func ValidateSettings(settings map[string]string) []error {
	var errs []error
	for _, k := range []string{SettingUpdateMessage, SettingThreadReplies} {
		if v, ok := settings[k]; ok && v != "true" && v != "false" {
			errs = append(errs, fmt.Errorf("%s: must be \"true\" or \"false\", got %q", k, v))
		}
	}
	return errs
}

// Configured says whether credentials are given, inline or as files, so
// the caller can keep the log integration in place until they are.
func (c Config) Configured() bool {
	return c.APIURL != "" || c.APIURLFile != "" || c.Token != "" || c.TokenFile != ""
}

// ChannelRequired says whether every target needs settings.channel: the
// Web API has no default channel, while a webhook posts to its own.
func (c Config) ChannelRequired() bool { return c.Token != "" || c.TokenFile != "" }

// Load reads the *_file secrets (relative to dir), applies defaults and
// checks the block. Each error names its key and never quotes a secret.
func (c *Config) Load(dir string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	secretsOK := true
	for _, s := range []struct {
		key  string
		val  *secret.Secret
		file string
	}{{"api_url", &c.APIURL, c.APIURLFile}, {"token", &c.Token, c.TokenFile}, {"signing_secret", &c.SigningSecret, c.SigningSecretFile}} {
		if err := secret.Fill(s.key, s.val, s.file, dir); err != nil {
			errs = append(errs, err)
			secretsOK = false
		}
	}
	if secretsOK {
		switch {
		case c.APIURL != "" && c.Token != "":
			bad("api_url: set api_url or token, not both")
		case c.APIURL == "" && c.Token == "":
			bad("api_url: set api_url or token")
		case c.APIURL != "":
			// The value is a secret: say what is wrong, not what it is.
			if !httpURL(string(c.APIURL)) {
				bad("api_url: must be an http or https URL")
			}
			if c.APIBaseURL != "" {
				bad("api_base_url: applies to token only; api_url is the whole webhook URL")
			}
			if c.SigningSecret != "" {
				bad("signing_secret: applies to token only; buttons need the Web API to update their message")
			}
		}
	}
	if c.APIBaseURL != "" && !httpURL(c.APIBaseURL) {
		bad("api_base_url: must be an http or https URL, got %q", c.APIBaseURL)
	}
	if c.MaxAttachments < 0 || c.MaxAttachments > maxAttachments {
		bad("max_attachments: must be between 1 and %d, got %d", maxAttachments, c.MaxAttachments)
	}
	if len(c.SilenceDurations) > maxSilenceDurations {
		bad("silence_durations: at most %d, got %d", maxSilenceDurations, len(c.SilenceDurations))
	}
	for i, d := range c.SilenceDurations {
		switch {
		case d <= 0:
			bad("silence_durations[%d]: must be positive, got %s", i, d)
		case slices.Contains(c.SilenceDurations[:i], d):
			bad("silence_durations[%d]: %s is listed twice", i, d)
		}
	}

	c.defaults()
	// Render against a sample alert so that a typo fails the load, not the
	// first page at night.
	sample := &notifiers.Notification{Kind: notifiers.KindAlerts, Alerts: template.Alerts{{Status: alert.StatusFiring}}}
	for _, t := range []struct{ key, text string }{{"title", c.Title}, {"text", c.Text}} {
		if _, err := notifiers.Render(t.text, sample); err != nil {
			bad("%s: %w", t.key, err)
		}
	}
	return errs
}

// defaults fills what was left out. New applies it too, so a Config built in
// code without Load still behaves.
func (c *Config) defaults() {
	if c.Title == "" {
		c.Title = DefaultTitle
	}
	if c.Text == "" {
		c.Text = DefaultText
	}
	if c.Footer == "" {
		c.Footer = DefaultFooter
	}
	if c.MaxAttachments == 0 {
		c.MaxAttachments = DefaultMaxAttachments
	}
	if c.Timeout <= 0 {
		c.Timeout = model.Duration(DefaultTimeout)
	}
	if (c.SigningSecret != "" || c.SigningSecretFile != "") && len(c.SilenceDurations) == 0 {
		c.SilenceDurations = []model.Duration{DefaultSilenceDuration}
	}
	if c.Token != "" || c.TokenFile != "" {
		if c.APIBaseURL == "" {
			c.APIBaseURL = DefaultAPIBaseURL
		}
		// slack-go appends the method name to the base URL as is.
		if !strings.HasSuffix(c.APIBaseURL, "/") {
			c.APIBaseURL += "/"
		}
	}
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
