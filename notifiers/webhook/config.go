package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"time"

	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/secret"
)

// DefaultTimeout bounds each POST, as Alertmanager's HTTP integrations do
// in practice. It lives here and nowhere else.
const DefaultTimeout = model.Duration(10 * time.Second)

// Config is the integrations.webhook block: the one endpoint every webhook
// target posts to. The URL and the token are secrets (a URL often carries
// its token in the path or query), so they are here and not in a target's
// settings, which are printed.
type Config struct {
	URL             secret.Secret `yaml:"url"`
	URLFile         string        `yaml:"url_file"`
	BearerToken     secret.Secret `yaml:"bearer_token"`
	BearerTokenFile string        `yaml:"bearer_token_file"`
	// Timeout bounds each POST.
	Timeout model.Duration `yaml:"timeout"`
	// MaxAlerts caps the alerts in one message (0: all), as Alertmanager's
	// max_alerts does. A notification with more is sent as several
	// messages; truncatedAlerts counts only alerts a digest past its cap
	// did not keep.
	MaxAlerts int `yaml:"max_alerts"`
}

// Configured reports whether there is an endpoint. Until then webhook
// targets stay on the log integration.
func (c Config) Configured() bool { return c.URL != "" }

// Load reads url_file and bearer_token_file (relative to dir, the
// configuration file's folder), sets the defaults and checks every value.
// Each error names its key relative to the block; none quotes the URL or
// the token.
func (c *Config) Load(dir string) []error {
	var errs []error
	// Taken before defaults: whether the block says anything at all.
	touched := *c != Config{}
	urlOK := true
	if err := secret.Fill("url", &c.URL, c.URLFile, dir); err != nil {
		errs = append(errs, err)
		urlOK = false
	}
	if err := secret.Fill("bearer_token", &c.BearerToken, c.BearerTokenFile, dir); err != nil {
		errs = append(errs, err)
	}
	c.setDefaults()
	if !touched {
		return errs
	}
	switch {
	case !urlOK:
	case c.URL == "":
		errs = append(errs, errors.New("url: required (or url_file) when the webhook block is set"))
	case !httpURL(string(c.URL)):
		// The value is a secret: say what is wrong, not what it is.
		errs = append(errs, errors.New("url: must be an http or https URL"))
	}
	if c.MaxAlerts < 0 {
		errs = append(errs, fmt.Errorf("max_alerts: must be 0 (all) or more, got %d", c.MaxAlerts))
	}
	return errs
}

// setDefaults fills what was left out. A zero timeout counts as left out:
// a request without a bound could hold a worker forever.
func (c *Config) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// ValidateSettings checks a webhook target's settings, for the
// configuration loader to call on each webhook integration. A webhook
// target takes none: the receiver's name in the message tells the endpoint
// which target it is. Keys are named relative to settings.
func ValidateSettings(settings map[string]string) []error {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		switch k {
		case "url", "url_file", "bearer_token", "bearer_token_file":
			// The value is not quoted: it may be the secret that does not
			// belong here.
			errs = append(errs, fmt.Errorf("%s: a secret, and settings are not; set it in integrations.webhook", k))
		default:
			errs = append(errs, fmt.Errorf("%s: unknown setting (webhook takes none)", k))
		}
	}
	return errs
}
