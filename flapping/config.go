package flapping

import (
	"fmt"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/alert"
)

// Methods of flap detection.
const (
	// MethodCount: flapping when more than Threshold state changes happened
	// within Window; it ends only when the alert has been stable for
	// StableFor.
	MethodCount = "count"
	// MethodWeighted: Nagios's percent state change over the last 21
	// observations, with High and Low as the start and stop thresholds.
	MethodWeighted = "weighted"
)

// Defaults. DefaultThreshold and DefaultWindow are the usual "more than 5 in
// 30 minutes", applied to state changes. DefaultHigh is where
// the weighted method agrees with them on a fresh alert: five changes in a
// row make 29.9%, six make 35.5%. (Nagios ships 20 and 5, tuned for checks
// taken every minute, which dilute a percentage much faster than
// Alertmanager's occasional resends.)
const (
	DefaultMethod    = MethodCount
	DefaultThreshold = 5
	DefaultWindow    = model.Duration(30 * time.Minute)
	DefaultHigh      = 30.0
	DefaultLow       = 20.0
	DefaultStableFor = model.Duration(15 * time.Minute)

	// MaxThreshold bounds Threshold so that the kept change times (at most
	// MaxChanges) always suffice to decide.
	MaxThreshold = MaxChanges - 1
)

// Config is flap detection's part of the configuration file. Decode YAML
// into it from DefaultConfig (UnmarshalYAML does so itself), or fill a
// Config built in code with SetDefaults; then Validate.
type Config struct {
	// Method is count or weighted.
	Method string `yaml:"method" json:"method"`
	// Threshold (count): flapping when more than this many state changes
	// happened within Window.
	Threshold int `yaml:"threshold" json:"threshold"`
	// Window (count) is how far back state changes are counted; it also
	// bounds the change times kept for either method's notices.
	Window model.Duration `yaml:"window" json:"window"`
	// By groups alerts whose changes add up: the label names whose values
	// form the key. Empty: each alert (fingerprint) on its own; by:
	// [alertname] makes all instances of a name flap together.
	By []string `yaml:"by,omitempty" json:"by,omitempty"`
	// High (weighted): flapping starts when the percent state change is at
	// least High.
	High float64 `yaml:"high" json:"high"`
	// Low (weighted): flapping stops when the percent state change is at
	// most Low; between Low and High nothing changes (hysteresis).
	Low float64 `yaml:"low" json:"low"`
	// StableFor (both methods): a flapping alert that has not changed state
	// for this long has stopped flapping.
	StableFor model.Duration `yaml:"stable_for" json:"stable_for"`
}

// DefaultConfig is the shipped configuration: the count method with the
// default numbers, per alert.
func DefaultConfig() Config {
	return Config{
		Method:    DefaultMethod,
		Threshold: DefaultThreshold,
		Window:    DefaultWindow,
		High:      DefaultHigh,
		Low:       DefaultLow,
		StableFor: DefaultStableFor,
	}
}

// SetDefaults fills the fields left at their zero value. Low is filled only
// together with High (both zero), since low: 0 is a valid setting; a zero
// Threshold, Window or StableFor is never valid, so it means "unset".
func (c *Config) SetDefaults() {
	d := DefaultConfig()
	if c.Method == "" {
		c.Method = d.Method
	}
	if c.Threshold == 0 {
		c.Threshold = d.Threshold
	}
	if c.Window == 0 {
		c.Window = d.Window
	}
	if c.High == 0 && c.Low == 0 {
		c.High, c.Low = d.High, d.Low
	}
	if c.StableFor == 0 {
		c.StableFor = d.StableFor
	}
}

// UnmarshalYAML decodes over the defaults, so that a key left out keeps its
// default and an explicit zero (low: 0, threshold: 0) stays as written, to
// be accepted or refused by Validate. It uses the yaml.v2-style interface,
// which yaml.v3 also honours, to keep this package free of a YAML library;
// type errors inside pass through unchanged.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	return unmarshal((*plain)(c))
}

// Override is a route's change to the flapping settings it inherits: the
// same keys as Config, each nil when inherited. by: [] (empty, not absent)
// overrides the parent's by with "each alert on its own".
type Override struct {
	Method    *string         `yaml:"method,omitempty" json:"method,omitempty"`
	Threshold *int            `yaml:"threshold,omitempty" json:"threshold,omitempty"`
	Window    *model.Duration `yaml:"window,omitempty" json:"window,omitempty"`
	By        *[]string       `yaml:"by,omitempty" json:"by,omitempty"`
	High      *float64        `yaml:"high,omitempty" json:"high,omitempty"`
	Low       *float64        `yaml:"low,omitempty" json:"low,omitempty"`
	StableFor *model.Duration `yaml:"stable_for,omitempty" json:"stable_for,omitempty"`
}

// Merge returns parent with o's set fields in place of its own. A nil o is
// parent unchanged. The result shares no slice with either argument.
// Validate the result: an override can make a valid parent invalid (a low
// above the parent's high).
func Merge(parent Config, o *Override) Config {
	c := parent
	c.By = cloneStrings(parent.By)
	if o == nil {
		return c
	}
	if o.Method != nil {
		c.Method = *o.Method
	}
	if o.Threshold != nil {
		c.Threshold = *o.Threshold
	}
	if o.Window != nil {
		c.Window = *o.Window
	}
	if o.By != nil {
		c.By = cloneStrings(*o.By)
	}
	if o.High != nil {
		c.High = *o.High
	}
	if o.Low != nil {
		c.Low = *o.Low
	}
	if o.StableFor != nil {
		c.StableFor = *o.StableFor
	}
	return c
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

// FieldError is one problem with a Config, at a key relative to the
// flapping block (e.g. "low", "by[1]"), so that the config loader can put
// its own path in front.
type FieldError struct {
	Key string
	Msg string
}

func (e FieldError) Error() string { return e.Key + ": " + e.Msg }

// Validate reports every problem with c; each error is a FieldError. The
// checks are written so that NaN fails them.
func (c Config) Validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	switch c.Method {
	case MethodCount, MethodWeighted:
	default:
		bad("method", "must be %s or %s, got %q", MethodCount, MethodWeighted, c.Method)
	}
	if c.Threshold < 1 {
		bad("threshold", "must be at least 1, got %d", c.Threshold)
	} else if c.Threshold > MaxThreshold {
		bad("threshold", "must be at most %d, got %d", MaxThreshold, c.Threshold)
	}
	if c.Window <= 0 {
		bad("window", "must be a positive duration, got %s", c.Window)
	}
	seen := map[string]bool{}
	for i, name := range c.By {
		switch {
		case name == "":
			bad(fmt.Sprintf("by[%d]", i), "must be a label name, got an empty string")
		case seen[name]:
			bad(fmt.Sprintf("by[%d]", i), "%q is listed twice", name)
		}
		seen[name] = true
	}
	if !(c.High <= 100) {
		bad("high", "must be at most 100, got %g", c.High)
	}
	if !(c.Low >= 0) {
		bad("low", "must be at least 0, got %g", c.Low)
	} else if !(c.Low < c.High) {
		bad("low", "must be below high (%g), got %g", c.High, c.Low)
	}
	if c.StableFor <= 0 {
		bad("stable_for", "must be a positive duration, got %s", c.StableFor)
	}
	return errs
}

// Key names the flap state an alert's observations go to: its fingerprint
// when By is empty (each alert flaps on its own: one noisy instance no
// longer marks every instance of its alertname), otherwise "by:" and the
// fingerprint of the By labels' values. A By label the alert lacks counts
// as empty, as in Alertmanager's group_by, and stays in the hashed set, so
// that by: [alertname] and by: [alertname, team] never share a key.
// fingerprint may be empty; it is then computed from labels.
func Key(cfg Config, fingerprint string, labels template.KV) string {
	if len(cfg.By) == 0 {
		if fingerprint == "" {
			fingerprint = alert.Fingerprint(labels)
		}
		return fingerprint
	}
	sub := make(template.KV, len(cfg.By))
	for _, name := range cfg.By {
		sub[name] = labels[name]
	}
	return "by:" + alert.Fingerprint(sub)
}
