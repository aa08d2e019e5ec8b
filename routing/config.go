package routing

import (
	"cmp"
	"fmt"

	"github.com/alertmedic/alertmedic/flapping"
)

// Config is the routing part of alertmedic's configuration file: three
// top-level keys, time_intervals, route and receivers, spelled as in
// Alertmanager's alertmanager.yml.
//
// Every field is plain data (strings, lists, maps), so that a strict loader
// that walks the structs by their yaml tags reports unknown keys anywhere in
// it; Compile parses what needs parsing (matchers, time intervals) and checks
// every reference, naming each problem by its key path.
type Config struct {
	TimeIntervals []TimeInterval `yaml:"time_intervals"`
	Route         *Route         `yaml:"route"`
	Receivers     []Receiver     `yaml:"receivers"`
}

// TimeInterval is a named set of time intervals, as Alertmanager's
// time_intervals entries are.
type TimeInterval struct {
	Name          string     `yaml:"name"`
	TimeIntervals []TimeSpec `yaml:"time_intervals"`
}

// TimeSpec is one entry of a time interval in Alertmanager's syntax: all of
// the listed fields must hold for an instant to be inside it; a field left
// out holds at any time. Its values are kept as written and parsed by Compile
// with Alertmanager's own parser (package timeinterval), so the syntax, the
// error messages and the meaning (time zones, DST) are Alertmanager's. They
// are not declared as timeinterval.TimeInterval because that type's fields
// carry no yaml tags of their own (its parts have yaml.v2-style unmarshalers),
// which a tag-walking strict loader would call unknown keys, and because a
// parse error in one of them would stop yaml decoding at the first problem.
type TimeSpec struct {
	Times       []TimeRange `yaml:"times"`
	Weekdays    []string    `yaml:"weekdays"`      // e.g. monday:friday, saturday
	DaysOfMonth []string    `yaml:"days_of_month"` // e.g. 1:5, -3:-1
	Months      []string    `yaml:"months"`        // e.g. january:march, 12
	Years       []string    `yaml:"years"`         // e.g. 2026:2027
	Location    string      `yaml:"location"`      // IANA name, e.g. Europe/Berlin; default UTC
}

// TimeRange is a range of the day, start inclusive, end exclusive, "HH:MM"
// with "24:00" allowed as an end.
type TimeRange struct {
	StartTime string `yaml:"start_time"`
	EndTime   string `yaml:"end_time"`
}

// MuteAction says what becomes of a notification that falls inside a mute
// time interval.
type MuteAction string

// Mute actions.
const (
	// Drop discards the notification, as Alertmanager's mute_time_intervals
	// do (a resolve is kept: see the pipeline).
	Drop MuteAction = "drop"
	// Defer holds the notification until the interval ends
	// (Tree.NextUnmute), when the caller sends it, e.g. as a digest.
	Defer MuteAction = "defer"
)

// Route is a node of the routing tree, as in Alertmanager's route. Receiver,
// MuteTimeIntervals, MuteAction, BypassMuteMatchers, Flapping and
// HoldForRemediation are inherited
// from the parent route where they are left out. A list given as [] is set
// (to nothing) and is not inherited.
type Route struct {
	Receiver string `yaml:"receiver"`
	// Matchers are all to match (AND), in Alertmanager's matcher syntax,
	// e.g. severity="critical", team=~"biz.*", env!="dev".
	Matchers []string `yaml:"matchers"`
	// Continue: after this route matches, its later siblings are tried too.
	Continue bool `yaml:"continue"`
	// MuteTimeIntervals name time intervals during which the notifications of
	// this route are muted. Unlike Alertmanager's, they are inherited, and the
	// root may have them (quiet hours for everything).
	MuteTimeIntervals []string   `yaml:"mute_time_intervals"`
	MuteAction        MuteAction `yaml:"mute_action"` // drop (default) or defer
	// BypassMuteMatchers: an alert matching all of them is never muted.
	BypassMuteMatchers []string          `yaml:"bypass_mute_matchers"`
	Flapping           *FlappingOverride `yaml:"flapping"`
	// HoldForRemediation holds a firing alert's notifications on this
	// route's targets while a remediation rule that verifies acts on it:
	// they go out only if the action did not help (see Routed.Hold).
	HoldForRemediation *bool    `yaml:"hold_for_remediation"`
	Routes             []*Route `yaml:"routes"`
}

// FlappingOverride overrides the flap detection settings for the alerts of a
// route: the flapping package's Override (a field left out, nil, is
// inherited from the parent route, and at the root means the global
// flapping settings; by: [] overrides an inherited by), plus what to do
// while the alert flaps. Routing only merges these: their meaning, and
// checking their values, belong to the flapping package.
type FlappingOverride struct {
	flapping.Override `yaml:",inline"`
	// Suppress holds the alert's notifications while it flaps. Default true.
	Suppress *bool `yaml:"suppress_notifications,omitempty" json:"suppress_notifications,omitempty"`
	// Remediate runs remediation while the alert flaps. Default false.
	Remediate *bool `yaml:"remediate_while_flapping,omitempty" json:"remediate_while_flapping,omitempty"`
}

// SuppressNotifications reports whether notifications are held while the
// alert flaps (default true).
func (f FlappingOverride) SuppressNotifications() bool { return f.Suppress == nil || *f.Suppress }

// RemediateWhileFlapping reports whether remediation runs while the alert
// flaps (default false).
func (f FlappingOverride) RemediateWhileFlapping() bool { return f.Remediate != nil && *f.Remediate }

// RouteFlapping is the flapping settings in effect on a route that sets some.
type RouteFlapping struct {
	Path     string // e.g. route.routes[0]; its flapping block is Path+".flapping"
	Flapping FlappingOverride
}

// FlappingOverrides lists every route that has a flapping block, depth first,
// with the settings in effect there: its own over its ancestors'. Check each
// (merged over the global flapping settings) where it is written, so that a
// bad value is reported once, at its own path. It works on a configuration
// that does not compile, so that every problem can be listed at once.
func (c Config) FlappingOverrides() []RouteFlapping {
	var out []RouteFlapping
	var walk func(r *Route, path string, parent FlappingOverride)
	walk = func(r *Route, path string, parent FlappingOverride) {
		eff := r.Flapping.merge(parent)
		if r.Flapping != nil {
			out = append(out, RouteFlapping{Path: path, Flapping: eff})
		}
		for i, cr := range r.Routes {
			if cr != nil {
				walk(cr, fmt.Sprintf("%s.routes[%d]", path, i), eff)
			}
		}
	}
	if c.Route != nil {
		walk(c.Route, "route", FlappingOverride{})
	}
	return out
}

// merge returns f with every field left out taken from parent.
func (f *FlappingOverride) merge(parent FlappingOverride) FlappingOverride {
	if f == nil {
		return parent
	}
	m := *f
	// Pointers: nil is "not set here", which cmp.Or skips.
	m.Method = cmp.Or(m.Method, parent.Method)
	m.Threshold = cmp.Or(m.Threshold, parent.Threshold)
	m.Window = cmp.Or(m.Window, parent.Window)
	m.High = cmp.Or(m.High, parent.High)
	m.Low = cmp.Or(m.Low, parent.Low)
	m.StableFor = cmp.Or(m.StableFor, parent.StableFor)
	m.Suppress = cmp.Or(m.Suppress, parent.Suppress)
	m.Remediate = cmp.Or(m.Remediate, parent.Remediate)
	if m.By == nil { // by: [] (empty, not nil) overrides
		m.By = parent.By
	}
	return m
}

// Receiver is a named set of integrations, as in Alertmanager; a receiver
// with none is allowed and notifies nobody.
type Receiver struct {
	Name         string        `yaml:"name"`
	Integrations []Integration `yaml:"integrations"`
}

// Integration types.
const (
	Slack     = "slack"
	Email     = "email"
	PagerDuty = "pagerduty"
	Webhook   = "webhook"
	Log       = "log"
)

// IntegrationTypes lists the valid Integration.Type values.
var IntegrationTypes = []string{Slack, Email, PagerDuty, Webhook, Log}

// Integration is one way of notifying a receiver: what routing needs to know
// of it. Settings are opaque to routing; keep secrets out of them (Explain
// prints them, redacting only keys that look secret).
type Integration struct {
	Type     string            `yaml:"type"`
	Name     string            `yaml:"name"` // default "<type>[<index>]"
	Settings map[string]string `yaml:"settings"`
	// MuteTimeIntervals apply in addition to the route's.
	MuteTimeIntervals []string `yaml:"mute_time_intervals"`
	// MuteAction overrides the route's for this integration.
	MuteAction MuteAction `yaml:"mute_action"`
	// BypassMuteMatchers: an alert matching all of them is never muted on
	// this integration, whatever muted it (the route's intervals or its own).
	BypassMuteMatchers []string `yaml:"bypass_mute_matchers"`
	// HoldForRemediation overrides the route's for this integration
	// (hold the pager, not the Slack channel).
	HoldForRemediation *bool `yaml:"hold_for_remediation"`
}
