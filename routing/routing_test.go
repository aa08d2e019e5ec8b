package routing_test

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"gopkg.in/yaml.v3"

	"github.com/alertmedic/alertmedic/flapping"
	"github.com/alertmedic/alertmedic/routing"
)

// parse decodes YAML strictly, as the config loader does.
func parse(t *testing.T, in string) routing.Config {
	t.Helper()
	var c routing.Config
	d := yaml.NewDecoder(strings.NewReader(in))
	d.KnownFields(true)
	if err := d.Decode(&c); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return c
}

func compile(t *testing.T, c routing.Config) *routing.Tree {
	t.Helper()
	tree, errs := routing.Compile(c)
	if len(errs) > 0 {
		t.Fatalf("compile: %v", errs)
	}
	return tree
}

func seedConfig(t *testing.T) routing.Config {
	t.Helper()
	b, err := os.ReadFile("testdata/seed.yml")
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, string(b))
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func kv(pairs ...string) template.KV {
	m := template.KV{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return m
}

// summary renders every field of a target that routing decides, so that one
// string comparison checks them all.
func summary(tg routing.Routed) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s#%d %s", tg.Key(), tg.Index, tg.Integration)
	keys := make([]string, 0, len(tg.Settings))
	for k := range tg.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, tg.Settings[k])
	}
	fmt.Fprintf(&b, " @%s", tg.RoutePath)
	if tg.Bypassed {
		b.WriteString(" bypassed")
	}
	if tg.Muted {
		fmt.Fprintf(&b, " muted=%s/%s until %s", tg.MutedBy, tg.Action, tg.Until.UTC().Format(time.RFC3339))
	}
	return b.String()
}

func summaries(ts []routing.Routed) []string {
	out := []string{}
	for _, tg := range ts {
		out = append(out, summary(tg))
	}
	return out
}

func paths(r routing.Result) []string {
	out := []string{}
	for _, m := range r.Routes {
		out = append(out, m.Path+"->"+m.Receiver)
	}
	return out
}

func diff(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// The shipped routing (testdata/seed.yml): critical to Slack #alerts-critical,
// PagerDuty and email, warning to #alerts-warning, the rest to
// #alerts-info, team=business to #business-metrics instead.
func TestSeed(t *testing.T) {
	tree := compile(t, seedConfig(t))
	const (
		// Only critical alerts reach oncall, and they bypass quiet hours.
		pager    = "oncall/pagerduty[0]#0 pagerduty @route.routes[0] bypassed"
		email    = "oncall/email[1]#1 email to=oncall@company.com @route.routes[0] bypassed"
		critical = "critical-alerts/slack[0]#0 slack channel=#alerts-critical @route.routes[2]"
		warning  = "warning-alerts/slack[0]#0 slack channel=#alerts-warning @route.routes[3]"
		info     = "default/slack[0]#0 slack channel=#alerts-info @route"
		business = "business-alerts/slack[0]#0 slack channel=#business-metrics @route.routes[1]"
	)
	noon := "2026-03-04T12:00:00Z"
	night := "2026-03-04T23:30:00Z"
	tests := []struct {
		name   string
		labels template.KV
		at     string
		routes []string
		want   []string
	}{
		{"critical", kv("alertname", "HighErrorRate", "severity", "critical"), noon,
			[]string{"route.routes[0]->oncall", "route.routes[2]->critical-alerts"},
			[]string{pager, email, critical}},
		{"critical in quiet hours is not muted", kv("severity", "critical"), night,
			[]string{"route.routes[0]->oncall", "route.routes[2]->critical-alerts"},
			[]string{pager, email, critical}},
		{"warning", kv("alertname", "HighMemoryUsage", "severity", "warning"), noon,
			[]string{"route.routes[3]->warning-alerts"}, []string{warning}},
		{"warning in quiet hours", kv("severity", "warning"), night,
			[]string{"route.routes[3]->warning-alerts"}, []string{warning}},
		{"info", kv("severity", "info"), noon, []string{"route->default"}, []string{info}},
		{"no severity label", kv("alertname", "X"), noon, []string{"route->default"}, []string{info}},
		{"severity is case sensitive, as in Alertmanager", kv("severity", "Critical"), noon, []string{"route->default"}, []string{info}},
		{"business critical keeps pager and email", kv("severity", "critical", "team", "business"), noon,
			[]string{"route.routes[0]->oncall", "route.routes[1]->business-alerts"},
			[]string{pager, email, business}},
		{"business critical in quiet hours", kv("severity", "critical", "team", "business"), night,
			[]string{"route.routes[0]->oncall", "route.routes[1]->business-alerts"},
			[]string{pager, email, business}},
		{"business warning", kv("alertname", "NoExtractionsRecent", "severity", "warning", "team", "business"), noon,
			[]string{"route.routes[1]->business-alerts"}, []string{business}},
		{"business without severity", kv("team", "business"), noon,
			[]string{"route.routes[1]->business-alerts"}, []string{business}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tree.Match(tc.labels, at(t, tc.at))
			diff(t, "routes", paths(r), tc.routes)
			diff(t, "targets", summaries(r.Targets), tc.want)
		})
	}
}

// The shipped quiet-hours rule (email and PagerDuty dropped for non-critical
// alerts from 23:00 to 07:59 UTC), exercised by sending warnings to oncall.
func TestSeedQuietHours(t *testing.T) {
	c := seedConfig(t)
	c.Route.Routes = append([]*routing.Route{{Matchers: []string{`severity="warning"`}, Receiver: "oncall"}}, c.Route.Routes...)
	tree := compile(t, c)
	const (
		pager = "oncall/pagerduty[0]#0 pagerduty @route.routes[0]"
		email = "oncall/email[1]#1 email to=oncall@company.com @route.routes[0]"
	)
	tests := []struct {
		name string
		at   string
		want []string
	}{
		{"22:30 is not quiet", "2026-03-04T22:30:00Z", []string{pager, email}},
		{"22:59:59 is not quiet", "2026-03-04T22:59:59Z", []string{pager, email}},
		{"23:00 is quiet", "2026-03-04T23:00:00Z", []string{
			pager + " muted=quiet-hours/drop until 2026-03-05T08:00:00Z",
			email + " muted=quiet-hours/drop until 2026-03-05T08:00:00Z"}},
		{"midnight is quiet", "2026-03-05T00:00:00Z", []string{
			pager + " muted=quiet-hours/drop until 2026-03-05T08:00:00Z",
			email + " muted=quiet-hours/drop until 2026-03-05T08:00:00Z"}},
		{"07:59 is quiet", "2026-03-05T07:59:00Z", []string{
			pager + " muted=quiet-hours/drop until 2026-03-05T08:00:00Z",
			email + " muted=quiet-hours/drop until 2026-03-05T08:00:00Z"}},
		{"08:00 is not quiet", "2026-03-05T08:00:00Z", []string{pager, email}},
		{"quiet hours are UTC whatever the zone of now", "2026-03-04T19:30:00-05:00", []string{
			pager + " muted=quiet-hours/drop until 2026-03-05T08:00:00Z",
			email + " muted=quiet-hours/drop until 2026-03-05T08:00:00Z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tree.Match(kv("severity", "warning"), at(t, tc.at))
			diff(t, "targets", summaries(r.Targets), tc.want)
		})
	}
}

const treeYAML = `
time_intervals:
  - name: nights                     # no location: UTC
    time_intervals:
      - times: [{start_time: "22:00", end_time: "24:00"}]
  - name: weekends
    time_intervals:
      - weekdays: [saturday:sunday]
route:
  receiver: default
  mute_time_intervals: [weekends]
  mute_action: defer
  flapping: {method: count, threshold: 5, window: 30m}
  routes:
    - matchers: ['env=~"prod|staging"', 'team!="qa"']
      receiver: prod
      flapping: {threshold: 3, suppress_notifications: false}
      routes:
        - matchers: ['severity="critical"']
          receiver: pager
          mute_time_intervals: []      # pages on weekends too
          continue: true
        - matchers: ['service=~"db-.*"']
          receiver: dba
          mute_time_intervals: [nights]
          mute_action: drop
        - matchers: ['severity="warning"']   # receiver inherited
    - matchers: ['team="qa"']
      receiver: qa
      continue: true
    - matchers: ['team="qa"']
      receiver: dev
      continue: true
    - matchers: ['team=~"qa|dev"']
      receiver: dev
      bypass_mute_matchers: ['urgent="yes"']
      flapping: {remediate_while_flapping: true, by: [alertname]}
receivers:
  - name: default
    integrations: [{type: log}]
  - name: prod
    integrations: [{type: slack, settings: {channel: "#prod"}}]
  - name: pager
    integrations:
      - {type: pagerduty}
      - {type: slack, name: page-channel, settings: {channel: "#pages"}}
  - name: dba
    integrations: [{type: email, settings: {to: dba@example.com}}]
  - name: qa
    integrations: [{type: webhook, settings: {url: "https://qa.example.com/hook?token=s3cret"}}]
  - name: dev
    integrations: [{type: slack, settings: {channel: "#dev"}, mute_time_intervals: [nights]}]
  - name: nobody
`

// Alertmanager-style: a tree in YAML and a table of label sets.
func TestMatch(t *testing.T) {
	tree := compile(t, parse(t, treeYAML))
	const (
		wed     = "2026-03-04T12:00:00Z"
		wedLate = "2026-03-04T23:00:00Z"
		friLate = "2026-03-06T23:00:00Z"
		sat     = "2026-03-07T12:00:00Z"
	)
	const (
		def     = "default/log[0]#0 log @route"
		prod    = "prod/slack[0]#0 slack channel=#prod @route.routes[0]"
		pd      = "pager/pagerduty[0]#0 pagerduty @route.routes[0].routes[0]"
		pc      = "pager/page-channel#1 slack channel=#pages @route.routes[0].routes[0]"
		dba     = "dba/email[0]#0 email to=dba@example.com @route.routes[0].routes[1]"
		qa      = "qa/webhook[0]#0 webhook url=https://qa.example.com/hook?token=s3cret @route.routes[1]"
		dev2    = "dev/slack[0]#0 slack channel=#dev @route.routes[2]"
		dev3    = "dev/slack[0]#0 slack channel=#dev @route.routes[3]"
		monday  = "2026-03-09T00:00:00Z"
		weekend = " muted=weekends/defer until " + monday
	)
	tests := []struct {
		name   string
		labels template.KV
		at     string
		routes []string
		want   []string
	}{
		{"no labels: the root", nil, wed, []string{"route->default"}, []string{def}},
		{"regex matches", kv("env", "staging"), wed, []string{"route.routes[0]->prod"}, []string{prod}},
		{"regex is anchored", kv("env", "production"), wed, []string{"route->default"}, []string{def}},
		{"negation excludes", kv("env", "prod", "team", "qa"), wed,
			[]string{"route.routes[1]->qa", "route.routes[2]->dev", "route.routes[3]->dev"}, []string{qa, dev2}},
		{"a matching child replaces its parent", kv("env", "prod", "severity", "critical"), wed,
			[]string{"route.routes[0].routes[0]->pager"}, []string{pd, pc}},
		{"continue goes on to the next sibling", kv("env", "prod", "severity", "critical", "service", "db-main"), wed,
			[]string{"route.routes[0].routes[0]->pager", "route.routes[0].routes[1]->dba"}, []string{pd, pc, dba}},
		{"first match without continue stops", kv("env", "prod", "service", "db-main", "severity", "warning"), wed,
			[]string{"route.routes[0].routes[1]->dba"}, []string{dba}},
		{"receiver is inherited", kv("env", "prod", "severity", "warning"), wed,
			[]string{"route.routes[0].routes[2]->prod"}, []string{"prod/slack[0]#0 slack channel=#prod @route.routes[0].routes[2]"}},
		{"mute intervals and action are inherited", kv("env", "prod"), sat,
			[]string{"route.routes[0]->prod"}, []string{prod + weekend}},
		{"root mutes too", kv("x", "y"), sat, []string{"route->default"}, []string{def + weekend}},
		{"mute_time_intervals: [] is not inherited", kv("env", "prod", "severity", "critical"), sat,
			[]string{"route.routes[0].routes[0]->pager"}, []string{pd, pc}},
		{"own intervals replace inherited ones", kv("env", "prod", "service", "db-1"), sat,
			[]string{"route.routes[0].routes[1]->dba"}, []string{dba}},
		{"own action", kv("env", "prod", "service", "db-1"), wedLate,
			[]string{"route.routes[0].routes[1]->dba"}, []string{dba + " muted=nights/drop until 2026-03-05T00:00:00Z"}},
		{"an interval with no location is in UTC, whatever now's zone", kv("env", "prod", "service", "db-1"), "2026-03-04T18:00:00-05:00",
			[]string{"route.routes[0].routes[1]->dba"}, []string{dba + " muted=nights/drop until 2026-03-05T00:00:00Z"}},
		{"a receiver chosen twice is notified once", kv("team", "qa"), wed,
			[]string{"route.routes[1]->qa", "route.routes[2]->dev", "route.routes[3]->dev"}, []string{qa, dev2}},
		{"integration intervals add to the route's; the action is the route's", kv("team", "dev"), wedLate,
			[]string{"route.routes[3]->dev"}, []string{dev3 + " muted=nights/defer until 2026-03-05T00:00:00Z"}},
		{"deferred until every interval has ended", kv("team", "dev"), friLate,
			[]string{"route.routes[3]->dev"}, []string{dev3 + " muted=nights/defer until " + monday}},
		{"bypass matchers", kv("team", "dev", "urgent", "yes"), friLate,
			[]string{"route.routes[3]->dev"}, []string{dev3 + " bypassed"}},
		{"a duplicate that is not muted wins", kv("team", "qa", "urgent", "yes"), sat,
			[]string{"route.routes[1]->qa", "route.routes[2]->dev", "route.routes[3]->dev"},
			[]string{qa + weekend, dev3 + " bypassed"}},
		{"a duplicate muted the same way keeps the first", kv("team", "qa"), sat,
			[]string{"route.routes[1]->qa", "route.routes[2]->dev", "route.routes[3]->dev"},
			[]string{qa + weekend, dev2 + weekend}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tree.Match(tc.labels, at(t, tc.at))
			diff(t, "routes", paths(r), tc.routes)
			diff(t, "targets", summaries(r.Targets), tc.want)
		})
	}
}

func flap(f routing.FlappingOverride) string {
	var parts []string
	if f.Method != nil {
		parts = append(parts, "method="+*f.Method)
	}
	if f.Threshold != nil {
		parts = append(parts, fmt.Sprintf("threshold=%d", *f.Threshold))
	}
	if f.Window != nil {
		parts = append(parts, "window="+f.Window.String())
	}
	if f.By != nil {
		parts = append(parts, "by="+strings.Join(*f.By, ","))
	}
	parts = append(parts, fmt.Sprintf("suppress=%t remediate=%t", f.SuppressNotifications(), f.RemediateWhileFlapping()))
	return strings.Join(parts, " ")
}

func TestFlappingInheritance(t *testing.T) {
	tree := compile(t, parse(t, treeYAML))
	now := at(t, "2026-03-04T12:00:00Z")
	tests := []struct {
		name   string
		labels template.KV
		want   string
	}{
		{"root", nil, "method=count threshold=5 window=30m suppress=true remediate=false"},
		{"override merges with the parent", kv("env", "prod"), "method=count threshold=3 window=30m suppress=false remediate=false"},
		{"grandchild inherits", kv("env", "prod", "severity", "critical"), "method=count threshold=3 window=30m suppress=false remediate=false"},
		{"sibling subtree", kv("team", "dev"), "method=count threshold=5 window=30m by=alertname suppress=true remediate=true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tree.Match(tc.labels, now)
			if got := flap(r.Flapping); got != tc.want {
				t.Errorf("result: got %q, want %q", got, tc.want)
			}
			for _, tg := range r.Targets {
				if got := flap(tg.Flapping); got != tc.want {
					t.Errorf("target %s: got %q, want %q", tg.Key(), got, tc.want)
				}
			}
		})
	}
}

func TestFlappingOverrides(t *testing.T) {
	c := parse(t, treeYAML)
	c.Route.Routes[0].Routes[1].Flapping = &routing.FlappingOverride{Override: flapping.Override{By: &[]string{}}}
	var got []string
	for _, o := range c.FlappingOverrides() {
		got = append(got, o.Path+": "+flap(o.Flapping))
	}
	diff(t, "overrides", got, []string{
		"route: method=count threshold=5 window=30m suppress=true remediate=false",
		"route.routes[0]: method=count threshold=3 window=30m suppress=false remediate=false",
		"route.routes[0].routes[1]: method=count threshold=3 window=30m by= suppress=false remediate=false",
		"route.routes[3]: method=count threshold=5 window=30m by=alertname suppress=true remediate=true",
	})
}

const berlinYAML = `
time_intervals:
  - name: berlin-nights
    time_intervals:
      - times: [{start_time: "22:00", end_time: "24:00"}, {start_time: "00:00", end_time: "06:00"}]
        location: Europe/Berlin
  - name: berlin-early             # ends inside the spring-forward gap
    time_intervals:
      - times: [{start_time: "00:00", end_time: "02:30"}]
        location: Europe/Berlin
  - name: berlin-two               # happens twice when clocks fall back
    time_intervals:
      - times: [{start_time: "02:00", end_time: "02:30"}]
        location: Europe/Berlin
route:
  receiver: ops
  mute_action: defer
  routes:
    - matchers: ['interval="nights"']
      mute_time_intervals: [berlin-nights]
    - matchers: ['interval="early"']
      mute_time_intervals: [berlin-early]
    - matchers: ['interval="two"']
      mute_time_intervals: [berlin-two]
receivers:
  - name: ops
    integrations: [{type: email, settings: {to: ops@example.com}}]
`

// Europe/Berlin changes to summer time on 2026-03-29 at 01:00 UTC (02:00 CET
// becomes 03:00 CEST) and back on 2026-10-25 at 01:00 UTC (03:00 CEST becomes
// 02:00 CET). Instants marked * would be answered wrongly by a fixed offset.
func TestTimeZoneDST(t *testing.T) {
	tree := compile(t, parse(t, berlinYAML))
	tests := []struct {
		name     string
		interval string
		at       string
		until    string // "" = not muted
	}{
		{"spring: 21:59 CET", "nights", "2026-03-28T20:59:00Z", ""},
		{"spring: 22:00 CET", "nights", "2026-03-28T21:00:00Z", "2026-03-29T04:00:00Z"},
		{"spring: 01:59 CET, before the change", "nights", "2026-03-29T00:59:00Z", "2026-03-29T04:00:00Z"},
		{"spring: 03:00 CEST, the change", "nights", "2026-03-29T01:00:00Z", "2026-03-29T04:00:00Z"},
		{"spring: 05:59 CEST", "nights", "2026-03-29T03:59:00Z", "2026-03-29T04:00:00Z"},
		{"spring: 06:00 CEST *", "nights", "2026-03-29T04:00:00Z", ""},
		{"spring: 06:30 CEST *", "nights", "2026-03-29T04:30:00Z", ""},
		{"spring: 21:59 CEST", "nights", "2026-03-29T19:59:00Z", ""},
		{"spring: 22:00 CEST *", "nights", "2026-03-29T20:00:00Z", "2026-03-30T04:00:00Z"},
		{"fall: 21:59 CEST", "nights", "2026-10-24T19:59:00Z", ""},
		{"fall: 22:00 CEST, across the change", "nights", "2026-10-24T20:00:00Z", "2026-10-25T05:00:00Z"},
		{"fall: first 02:30 CEST", "nights", "2026-10-25T00:30:00Z", "2026-10-25T05:00:00Z"},
		{"fall: second 02:30 CET", "nights", "2026-10-25T01:30:00Z", "2026-10-25T05:00:00Z"},
		{"fall: 05:30 CET *", "nights", "2026-10-25T04:30:00Z", "2026-10-25T05:00:00Z"},
		{"fall: 06:00 CET", "nights", "2026-10-25T05:00:00Z", ""},
		{"fall: 21:59 CET", "nights", "2026-10-25T20:59:00Z", ""},
		{"fall: 22:00 CET *", "nights", "2026-10-25T21:00:00Z", "2026-10-26T05:00:00Z"},
		{"gap: ends when 02:00 CET becomes 03:00 CEST", "early", "2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z"},
		{"overlap: first 02:10 CEST", "two", "2026-10-25T00:10:00Z", "2026-10-25T00:30:00Z"},
		{"overlap: between the two", "two", "2026-10-25T00:45:00Z", ""},
		{"overlap: second 02:10 CET", "two", "2026-10-25T01:10:30Z", "2026-10-25T01:30:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := at(t, tc.at)
			r := tree.Match(kv("interval", tc.interval), now)
			if len(r.Targets) != 1 {
				t.Fatalf("got %d targets, want 1", len(r.Targets))
			}
			tg := r.Targets[0]
			if tg.Muted != (tc.until != "") {
				t.Fatalf("muted = %t, want %t", tg.Muted, tc.until != "")
			}
			next := tree.NextUnmute(tg, now)
			if tc.until == "" {
				if !next.Equal(now) {
					t.Errorf("NextUnmute of an unmuted target = %s, want now", next)
				}
				return
			}
			want := at(t, tc.until)
			if !tg.Until.Equal(want) || !next.Equal(want) {
				t.Errorf("until = %s, NextUnmute = %s, want %s", tg.Until.UTC(), next.UTC(), want)
			}
		})
	}
}

// NextUnmute jumps between boundaries; stepping minute by minute must agree.
func TestNextUnmuteAgreesWithMinuteSteps(t *testing.T) {
	c := parse(t, `
time_intervals:
  - name: berlin
    time_intervals:
      - times: [{start_time: "22:00", end_time: "24:00"}, {start_time: "00:00", end_time: "06:00"}]
        location: Europe/Berlin
  - name: newyork-weekdays
    time_intervals:
      - times: [{start_time: "01:30", end_time: "02:45"}]
        weekdays: [monday:friday]
        location: America/New_York
  - name: lordhowe                # a 30 minute DST shift
    time_intervals:
      - times: [{start_time: "01:00", end_time: "03:00"}]
        location: Australia/Lord_Howe
  - name: month-ends
    time_intervals:
      - days_of_month: ["-2:-1"]
        times: [{start_time: "12:00", end_time: "13:00"}]
  - name: weekend
    time_intervals:
      - weekdays: [saturday, sunday]
        location: Pacific/Auckland
route:
  receiver: r
receivers:
  - name: r
`)
	tree := compile(t, c)
	brute := func(names []string, now time.Time) time.Time {
		tg := routing.Routed{MuteTimeIntervals: names}
		muted := func(x time.Time) bool { return !tree.NextUnmute(tg, x).Equal(x) }
		if !muted(now) {
			return now
		}
		for x := now.Truncate(time.Minute).Add(time.Minute); x.Before(now.Add(8 * 24 * time.Hour)); x = x.Add(time.Minute) {
			if !muted(x) {
				return x
			}
		}
		return time.Time{}
	}
	sets := [][]string{{"berlin"}, {"newyork-weekdays"}, {"lordhowe"}, {"month-ends"}, {"weekend"}, {"berlin", "newyork-weekdays", "lordhowe"}, {"weekend", "berlin"}}
	// Instants around 2026's DST changes in these zones, and month ends.
	days := []string{"2026-03-08", "2026-03-29", "2026-04-05", "2026-04-30", "2026-09-27", "2026-10-04", "2026-10-25", "2026-11-01", "2026-12-31"}
	checked := 0
	for _, d := range days {
		start := at(t, d+"T00:00:00Z").Add(-24 * time.Hour)
		for x := start; x.Before(start.Add(48 * time.Hour)); x = x.Add(47*time.Minute + 7*time.Second) {
			for _, names := range sets {
				tg := routing.Routed{MuteTimeIntervals: names}
				got, want := tree.NextUnmute(tg, x), brute(names, x)
				if !got.Equal(want) {
					t.Fatalf("%v at %s: NextUnmute = %s, minute steps = %s", names, x, got, want)
				}
				if !want.Equal(x) {
					checked++
				}
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d muted instants checked", checked)
	}
}

func TestNextUnmuteHorizon(t *testing.T) {
	tree := compile(t, parse(t, `
time_intervals:
  - name: two-years
    time_intervals: [{years: ["2026:2027"]}]
route: {receiver: r}
receivers: [{name: r}]
`))
	now := at(t, "2026-03-04T12:00:00Z")
	if got := tree.NextUnmute(routing.Routed{MuteTimeIntervals: []string{"two-years"}}, now); !got.IsZero() {
		t.Errorf("NextUnmute = %s, want zero (beyond the horizon)", got)
	}
	late := at(t, "2027-12-31T23:59:30Z")
	if got, want := tree.NextUnmute(routing.Routed{MuteTimeIntervals: []string{"two-years"}}, late), at(t, "2028-01-01T00:00:00Z"); !got.Equal(want) {
		t.Errorf("NextUnmute = %s, want %s", got, want)
	}
	if got := tree.NextUnmute(routing.Routed{MuteTimeIntervals: []string{"gone"}}, now); !got.Equal(now) {
		t.Errorf("an unknown interval mutes: NextUnmute = %s", got)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"everything at once", `
time_intervals:
  - name: nights
    time_intervals:
      - times: [{start_time: "22:00", end_time: "21:00"}, {start_time: "25:00", end_time: "26:00"}]
        weekdays: [mon]
        location: Europe/Berln
  - name: nights
    time_intervals: [{months: ["13"], days_of_month: ["0"], years: ["2027:2026"]}]
  - time_intervals: []
route:
  matchers: ['severity="critical"']
  continue: true
  mute_action: hold
  routes:
    - matchers: ['severity=~"(["']
      receiver: critical
    - receiver: pager
      mute_time_intervals: [nights, weekends]
      bypass_mute_matchers: ['', 'sev-erity="x"']
      flapping: {method: avg}          # checked by the flapping package
receivers:
  - name: critical
    integrations:
      - type: slack
      - type: sms
      - type: email
        name: slack[0]
        mute_time_intervals: [nights, days]
        mute_action: later
      - {}
  - name: critical
  - integrations: []
`, []string{
			`time_intervals[0].time_intervals[0].times[0]: bad time range 22:00-21:00: start time cannot be equal or greater than end time`,
			`time_intervals[0].time_intervals[0].times[1]: bad time range 25:00-26:00: couldn't parse timestamp 25:00, invalid format`,
			`time_intervals[0].time_intervals[0].weekdays[0]: bad weekday range "mon": mon is not a valid weekday`,
			`time_intervals[0].time_intervals[0].location: bad location "Europe/Berln": unknown time zone Europe/Berln`,
			`time_intervals[1].name: duplicate time interval "nights" (first at time_intervals[0])`,
			`time_intervals[1].time_intervals[0].days_of_month[0]: bad day of month range "0": 0 is not a valid day of the month: out of range`,
			`time_intervals[1].time_intervals[0].months[0]: bad month range "13": 13 is not a valid month: out of range`,
			`time_intervals[1].time_intervals[0].years[0]: bad year range "2027:2026": end year 2026 is before start year 2027`,
			`time_intervals[2].name: is required`,
			`time_intervals[2].time_intervals: must list at least one interval`,
			`route.receiver: the root route must have a receiver`,
			`route.matchers: the root route must not have matchers: it matches every alert`,
			`route.continue: the root route cannot continue: it has no siblings`,
			`route.mute_action: must be "drop" or "defer", got "hold"`,
			`route.routes[0].matchers[0]: bad matcher "severity=~\"([\"": error parsing regexp: missing closing ]: ` + "`[)$`",
			`route.routes[1].receiver: unknown receiver "pager"`,
			`route.routes[1].mute_time_intervals[1]: unknown time interval "weekends"`,
			`route.routes[1].bypass_mute_matchers[0]: empty matcher`,
			`route.routes[1].bypass_mute_matchers[1]: bad matcher "sev-erity=\"x\"": bad matcher format: sev-erity="x"`,
			`receivers[0].integrations[1].type: unknown integration type "sms" (one of slack, email, pagerduty, webhook, log)`,
			`receivers[0].integrations[2].name: duplicate integration name "slack[0]" in receiver (first at integrations[0])`,
			`receivers[0].integrations[2].mute_time_intervals[1]: unknown time interval "days"`,
			`receivers[0].integrations[2].mute_action: must be "drop" or "defer", got "later"`,
			`receivers[0].integrations[3].type: is required (one of slack, email, pagerduty, webhook, log)`,
			`receivers[1].name: duplicate receiver "critical" (first at receivers[0])`,
			`receivers[2].name: is required`,
		}},
		{"a defer that never ends", `
time_intervals:
  - name: always
    time_intervals: [{times: [{start_time: "00:00", end_time: "24:00"}]}]
  - name: nights
    time_intervals: [{times: [{start_time: "22:00", end_time: "24:00"}]}]
  - name: twenty-thirties
    time_intervals: [{years: ["2030:2031"]}]
route:
  receiver: a
  mute_time_intervals: [always]
  mute_action: defer
  routes:
    - receiver: b
      mute_time_intervals: [nights]
    - receiver: c
      mute_time_intervals: [twenty-thirties]
      mute_action: drop
receivers:
  - name: a
    integrations: [{type: slack}]
  - name: b
    integrations: [{type: log}, {type: email, mute_time_intervals: [always]}]
  - name: c
    integrations: [{type: log, mute_action: defer}, {type: email}]
`, []string{
			`route.mute_action (inherited by receivers[0].integrations[0]): defer needs the mute to end, but time intervals "always" hold without a break for more than 366 days, so a deferred notification would never go out; use mute_action: drop, or intervals that end`,
			`route.routes[0].mute_action (inherited by receivers[1].integrations[1]): defer needs the mute to end, but time intervals "nights", "always" hold without a break for more than 366 days, so a deferred notification would never go out; use mute_action: drop, or intervals that end`,
			`receivers[2].integrations[0].mute_action: defer needs the mute to end, but time intervals "twenty-thirties" hold without a break for more than 366 days from 2030-01-01T00:00:00Z, so a deferred notification would never go out; use mute_action: drop, or intervals that end`,
		}},
		{"no route", `receivers: [{name: a}]`, []string{`route: is required`}},
		{"empty", ``, []string{`route: is required`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c routing.Config
			if strings.TrimSpace(tc.yaml) != "" {
				c = parse(t, tc.yaml)
			}
			tree, errs := routing.Compile(c)
			if tree != nil {
				t.Error("got a tree despite errors")
			}
			got := []string{}
			for _, e := range errs {
				got = append(got, e.Error())
			}
			diff(t, "errors", got, tc.want)
		})
	}
}

func TestExplain(t *testing.T) {
	tree := compile(t, parse(t, treeYAML))
	tests := []struct {
		name   string
		labels template.KV
		at     string
		want   string
	}{
		{"deferred, with a secret redacted", kv("team", "qa", "alertname", "Down"), "2026-03-06T23:00:00Z", `alert {alertname="Down", team="qa"} at 2026-03-06T23:00:00Z
matched route.routes[1] {team="qa"} (continue) -> receiver "qa"
  qa/webhook[0] (webhook url=<secret>): notify
matched route.routes[2] {team="qa"} (continue) -> receiver "dev"
  dev/slack[0] (slack channel=#dev): muted by time interval "nights", deferred until 2026-03-09T00:00:00Z
matched route.routes[3] {team=~"qa|dev"} -> receiver "dev"
  no targets of its own (the receiver has no integrations, or an earlier route selected them)
`},
		{"dropped and bypassed", kv("env", "prod", "severity", "critical", "service", "db-main"), "2026-03-07T22:15:00Z", `alert {env="prod", service="db-main", severity="critical"} at 2026-03-07T22:15:00Z
matched route.routes[0].routes[0] {severity="critical"} (continue) -> receiver "pager"
  pager/pagerduty[0] (pagerduty): notify
  pager/page-channel (slack channel=#pages): notify
matched route.routes[0].routes[1] {service=~"db-.*"} -> receiver "dba"
  dba/email[0] (email to=dba@example.com): muted by time interval "nights", dropped (muted until 2026-03-08T00:00:00Z)
`},
		{"bypassed", kv("team", "dev", "urgent", "yes"), "2026-03-07T22:15:00Z", `alert {team="dev", urgent="yes"} at 2026-03-07T22:15:00Z
matched route.routes[3] {team=~"qa|dev"} -> receiver "dev"
  dev/slack[0] (slack channel=#dev): notify (bypass_mute_matchers match: never muted by weekends, nights)
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := routing.Explain(tree.Match(tc.labels, at(t, tc.at)))
			if got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}

	nobody := compile(t, parse(t, "route: {receiver: nobody}\nreceivers: [{name: nobody}]\n"))
	got := routing.Explain(nobody.Match(nil, at(t, "2026-03-04T12:00:00Z")))
	want := `alert {} at 2026-03-04T12:00:00Z
matched route {} -> receiver "nobody"
  no targets of its own (the receiver has no integrations, or an earlier route selected them)
nobody is notified
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// The types are plain YAML: the strict decoder rejects unknown keys at any
// depth, and a bad duration is a yaml type error naming its line, so that a
// loader goes on and reports every problem.
func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key in an integration", "receivers: [{name: a, integrations: [{type: log, channel: x}]}]",
			"yaml: unmarshal errors:\n  line 1: field channel not found in type routing.Integration"},
		{"unknown key in a time range", "time_intervals: [{name: a, time_intervals: [{times: [{start: '01:00'}]}]}]",
			"yaml: unmarshal errors:\n  line 1: field start not found in type routing.TimeRange"},
		{"unknown key in flapping", "route: {flapping: {treshold: 3}}",
			"yaml: unmarshal errors:\n  line 1: field treshold not found in type routing.FlappingOverride"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c routing.Config
			d := yaml.NewDecoder(bytes.NewReader([]byte(tc.yaml)))
			d.KnownFields(true)
			err := d.Decode(&c)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
}

// A loader that walks the structs by their yaml tags to report unknown keys
// needs every field reachable from Config to carry one, or to unmarshal
// itself with yaml.v3.
func TestEveryFieldHasAYAMLTag(t *testing.T) {
	unmarshaler := reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	seen := map[reflect.Type]bool{}
	var visit func(reflect.Type, string)
	visit = func(ty reflect.Type, path string) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] || reflect.PointerTo(ty).Implements(unmarshaler) {
			return
		}
		seen[ty] = true
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if opts == "inline" {
				visit(f.Type, path)
				continue
			}
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no yaml name", path, f.Name)
			}
			visit(f.Type, path+"."+name)
		}
	}
	visit(reflect.TypeOf(routing.Config{}), "Config")
	if len(seen) < 7 {
		t.Errorf("visited only %d struct types", len(seen))
	}
}

func TestDecodeKeepsEmptyLists(t *testing.T) {
	c := parse(t, "route:\n  receiver: a\n  routes:\n    - mute_time_intervals: []\n      bypass_mute_matchers: []\n    - {}\n")
	set, unset := c.Route.Routes[0], c.Route.Routes[1]
	if set.MuteTimeIntervals == nil || set.BypassMuteMatchers == nil {
		t.Error("[] decoded as left out: it would be inherited")
	}
	if unset.MuteTimeIntervals != nil || unset.BypassMuteMatchers != nil {
		t.Error("left out decoded as []: it would not be inherited")
	}
}

// Targets are the caller's to keep and change; matching is safe from many
// goroutines (run with -race).
func TestConcurrentMatch(t *testing.T) {
	tree := compile(t, seedConfig(t))
	now := at(t, "2026-03-04T23:30:00Z")
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 200 {
				r := tree.Match(kv("severity", "critical", "team", "business"), now)
				for _, tg := range r.Targets {
					if tg.Settings != nil {
						tg.Settings["changed"] = "yes"
					}
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	r := tree.Match(kv("severity", "warning"), now)
	if _, changed := r.Targets[0].Settings["changed"]; changed {
		t.Error("a caller's change to Settings reached the tree")
	}
}

// hold_for_remediation is inherited down the tree, a child may turn it off,
// and an integration's own setting wins over its route's.
func TestHoldForRemediation(t *testing.T) {
	tree := compile(t, parse(t, `
route:
  receiver: chat
  hold_for_remediation: true
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
    - matchers: ['severity="info"']
      receiver: chat
      hold_for_remediation: false
receivers:
  - name: chat
    integrations: [{type: slack, settings: {channel: "#c"}}]
  - name: pager
    integrations:
      - {type: pagerduty}
      - {type: slack, settings: {channel: "#p"}, hold_for_remediation: false}
`))
	holds := func(labels template.KV) string {
		var out []string
		for _, tg := range tree.Match(labels, at(t, "2026-03-04T12:00:00Z")).Targets {
			out = append(out, fmt.Sprintf("%s=%v", tg.Key(), tg.Hold))
		}
		return strings.Join(out, " ")
	}
	for labels, want := range map[string]string{
		"critical": "pager/pagerduty[0]=true pager/slack[1]=false",
		"info":     "chat/slack[0]=false",
		"warning":  "chat/slack[0]=true",
	} {
		if got := holds(kv("severity", labels)); got != want {
			t.Errorf("%s: %s, want %s", labels, got, want)
		}
	}
	got := routing.Explain(tree.Match(kv("severity", "critical"), at(t, "2026-03-04T12:00:00Z")))
	if !strings.Contains(got, "  pager/pagerduty[0] (pagerduty): notify, hold_for_remediation\n  pager/slack[1] (slack channel=#p): notify\n") {
		t.Errorf("explain:\n%s", got)
	}
}
