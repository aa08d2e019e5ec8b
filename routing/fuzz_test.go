package routing

import (
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
)

// FuzzCompile feeds matchers and time intervals as users write them: Compile
// either builds a tree that routes without panicking or reports errors.
func FuzzCompile(f *testing.F) {
	f.Add(`severity="critical"`, "23:00", "24:00", "monday:friday", "Europe/Berlin")
	f.Add(`team=~"bus.*",env!="dev"`, "00:00", "08:00", "", "UTC")
	f.Add(`{a="b"}`, "25:00", "x", "funday", "Mars/Olympus")
	f.Fuzz(func(t *testing.T, matcher, start, end, weekdays, loc string) {
		spec := TimeSpec{Times: []TimeRange{{StartTime: start, EndTime: end}}, Location: loc}
		if weekdays != "" {
			spec.Weekdays = []string{weekdays}
		}
		c := Config{
			TimeIntervals: []TimeInterval{{Name: "quiet", TimeIntervals: []TimeSpec{spec}}},
			Route:         &Route{Receiver: "r", Routes: []*Route{{Matchers: []string{matcher}, Receiver: "r", MuteTimeIntervals: []string{"quiet"}}}},
			Receivers:     []Receiver{{Name: "r", Integrations: []Integration{{Type: Slack}}}},
		}
		tree, errs := Compile(c)
		if len(errs) > 0 {
			if tree != nil {
				t.Fatal("errors and a tree")
			}
			return
		}
		now := time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC)
		res := tree.Match(template.KV{"alertname": "A", "severity": "critical"}, now)
		for _, tg := range res.Targets {
			if tg.Muted {
				tree.NextUnmute(tg, now)
			}
		}
	})
}
