// Package routing owns the route tree: which receivers, and which of their
// integrations, an alert goes to, and whether a mute time interval (quiet
// hours) holds a notification back. It is modelled on Alertmanager's
// dispatch/route.go and written in Alertmanager's configuration syntax
// (matchers, continue, receiver, routes, time_intervals,
// mute_time_intervals), so routes users already wrote read the same here.
//
// It is pure logic: no I/O, and the time is always passed in.
//
// Quiet hours are named time intervals with a time zone, evaluated by
// Alertmanager's own timeinterval package (weekdays, DST), not an hour test
// on the UTC clock (`hour < 8 or hour > 22` leaves 22:00-22:59 loud), and a
// muted notification can be deferred to the end of the interval instead of
// lost.
package routing

import (
	"maps"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/alertmanager/timeinterval"
)

// Result is where one alert goes at one instant.
type Result struct {
	Labels template.KV
	At     time.Time
	// Routes are the matched routes, in the order Alertmanager would match
	// them (depth first, left to right, continuing past a route with
	// continue: true).
	Routes []MatchedRoute
	// Targets holds one entry per integration of each matched route's
	// receiver; an integration selected by two routes appears once.
	Targets []Routed
	// Flapping is the flapping override in effect on the first matched
	// route: the one to use for the alert as a whole (flap detection,
	// remediation); each target carries its own route's too. Read only.
	Flapping FlappingOverride
}

// MatchedRoute is one route an alert matched.
type MatchedRoute struct {
	Path     string // e.g. route.routes[0]
	Receiver string // in effect on the route (possibly inherited)
	Matchers string // the route's own matchers, e.g. {severity="critical"}
	Continue bool
}

// Target is where a notification goes: one integration of one receiver.
// It is what the outbox keeps of a destination, so it stays small.
type Target struct {
	Receiver    string `json:"receiver"`
	Integration string `json:"integration"` // its type: slack, email, pagerduty, webhook or log
	Name        string `json:"name"`        // unique within the receiver, default "<type>[<index>]"
	// Settings are the integration's settings as configured; each target
	// has its own copy.
	Settings map[string]string `json:"settings,omitempty"`
}

// Routed is a Target as one alert reaches it at one instant: the route that
// selected it and whether, and how, it is muted.
type Routed struct {
	Target
	Index     int    // in the receiver's integrations list
	RoutePath string // the route that selected it
	// MuteTimeIntervals are the intervals in effect on this target: the
	// route's, then the integration's own.
	MuteTimeIntervals []string
	// Bypassed: the alert matches bypass_mute_matchers, so it is never
	// muted on this target.
	Bypassed bool
	Muted    bool
	MutedBy  string     // the first interval, in MuteTimeIntervals order, that mutes it
	Action   MuteAction // what to do while muted: drop or defer
	// Until is when a muted target stops being muted (Tree.NextUnmute):
	// when a deferred notification is due. Zero when not muted, or when the
	// mute does not end within the search horizon.
	Until time.Time
	// Flapping is in effect on RoutePath. Its pointers are shared with the
	// tree: read them, do not write through them.
	Flapping FlappingOverride
	// Hold: hold_for_remediation is in effect on this target (the
	// integration's, else its route's). Whether anything is held depends
	// on remediation: a firing alert that an enabled rule with verify acts
	// on is held from the target until the action's verdict.
	Hold bool
}

// Key names the target uniquely within a configuration: receiver/name. It
// stays the same across routes, so it suits idempotency keys.
func (t Target) Key() string { return t.Receiver + "/" + t.Name }

// Match routes an alert with the given labels at the instant now. Like
// Alertmanager, a route matches when all its matchers do; its children are
// tried in order and the first that matches ends the search unless it has
// continue: true; a matching route none of whose children match is itself a
// match. The root matches every alert.
func (t *Tree) Match(lbls template.KV, now time.Time) Result {
	res := Result{Labels: lbls, At: now}
	nodes := t.root.match(lbls)
	seen := map[string]int{}
	for _, n := range nodes {
		res.Routes = append(res.Routes, MatchedRoute{Path: n.path, Receiver: n.receiver, Matchers: n.text, Continue: n.cont})
		r := t.receivers[n.receiver]
		for _, in := range r.integrations {
			tg := t.target(n, r, in, lbls, now)
			if i, dup := seen[tg.Key()]; dup {
				// Two routes chose the same integration: it is notified
				// once, muted only if every route that chose it mutes it.
				if rank(tg) < rank(res.Targets[i]) {
					res.Targets[i] = tg
				}
				continue
			}
			seen[tg.Key()] = len(res.Targets)
			res.Targets = append(res.Targets, tg)
		}
	}
	res.Flapping = nodes[0].flapping
	return res
}

// rank orders duplicate targets: sending beats deferring beats dropping.
func rank(t Routed) int {
	switch {
	case !t.Muted:
		return 0
	case t.Action == Defer:
		return 1
	}
	return 2
}

func (n *node) match(lbls template.KV) []*node {
	if !matches(n.matchers, lbls) {
		return nil
	}
	var all []*node
	for _, c := range n.routes {
		m := c.match(lbls)
		all = append(all, m...)
		if m != nil && !c.cont {
			break
		}
	}
	if len(all) == 0 {
		all = append(all, n)
	}
	return all
}

// matches reports whether every matcher matches; a label that is absent has
// the empty value, as in Alertmanager.
func matches(ms labels.Matchers, lbls template.KV) bool {
	for _, m := range ms {
		if !m.Matches(lbls[m.Name]) {
			return false
		}
	}
	return true
}

// bypasses reports whether a bypass list applies: an empty list never does.
func bypasses(ms labels.Matchers, lbls template.KV) bool {
	return len(ms) > 0 && matches(ms, lbls)
}

func (t *Tree) target(n *node, r *receiver, in integration, lbls template.KV, now time.Time) Routed {
	tg := Routed{
		Target:    Target{Receiver: r.name, Integration: in.typ, Name: in.name, Settings: maps.Clone(in.settings)},
		Index:     in.index,
		RoutePath: n.path,
		Action:    in.action,
		Flapping:  n.flapping,
		Hold:      n.hold,
	}
	if in.hold != nil {
		tg.Hold = *in.hold
	}
	if tg.Action == "" {
		tg.Action = n.action
	}
	for _, lists := range [][]string{n.mute, in.mute} {
		for _, name := range lists {
			if !contains(tg.MuteTimeIntervals, name) {
				tg.MuteTimeIntervals = append(tg.MuteTimeIntervals, name)
			}
		}
	}
	if len(tg.MuteTimeIntervals) == 0 {
		return tg
	}
	if bypasses(n.bypass, lbls) || bypasses(in.bypass, lbls) {
		tg.Bypassed = true
		return tg
	}
	for _, name := range tg.MuteTimeIntervals {
		if inAny(t.intervals[name], now) {
			tg.Muted, tg.MutedBy = true, name
			tg.Until = t.NextUnmute(tg, now)
			break
		}
	}
	return tg
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// inAny reports whether now is inside any of the intervals. An interval with
// no location is in UTC, as in Alertmanager (ContainsTime would otherwise
// use now's own location).
func inAny(tis []timeinterval.TimeInterval, now time.Time) bool {
	now = now.UTC()
	for _, ti := range tis {
		if ti.ContainsTime(now) {
			return true
		}
	}
	return false
}

// UnmuteHorizon bounds how far NextUnmute looks ahead.
const UnmuteHorizon = 366 * 24 * time.Hour

// NextUnmute returns the first instant at or after now at which none of the
// target's mute time intervals holds: when a deferred notification is due.
// It returns now when the target is not inside any of them, and the zero time
// when the mute lasts beyond UnmuteHorizon. Interval names unknown to this
// tree (a target kept across a reload) do not mute. Bypass matchers are not
// considered: ask about muted targets.
//
// Rather than test every minute, it jumps from one instant where an interval
// could change to the next: a local time-of-day boundary of one of its
// ranges, a local midnight, or a time zone offset change (DST), in each
// interval's own location. Between two such instants nothing an interval
// tests (local minute of day, day, weekday, month, year) can change, so the
// answer is exact, DST included.
func (t *Tree) NextUnmute(target Routed, now time.Time) time.Time {
	var specs []timeinterval.TimeInterval
	for _, name := range target.MuteTimeIntervals {
		specs = append(specs, t.intervals[name]...)
	}
	if !inAny(specs, now) {
		return now
	}
	limit := now.Add(UnmuteHorizon)
	cur := now.Truncate(time.Minute)
	for cur.Before(limit) {
		cur = nextBoundary(specs, cur)
		if !inAny(specs, cur) {
			return cur
		}
	}
	return time.Time{}
}

// nextBoundary returns the first instant after cur at which any of specs
// could change whether it contains the time.
func nextBoundary(specs []timeinterval.TimeInterval, cur time.Time) time.Time {
	var next time.Time
	for _, s := range specs {
		loc := time.UTC
		if s.Location != nil && s.Location.Location != nil {
			loc = s.Location.Location
		}
		lt := cur.In(loc)
		m := lt.Hour()*60 + lt.Minute()
		b := 24 * 60
		for _, r := range s.Times {
			for _, x := range []int{r.StartMinute, r.EndMinute} {
				if x > m && x < b {
					b = x
				}
			}
		}
		// Wall-clock minutes are real minutes until the zone's offset
		// changes; that change is a boundary of its own.
		cand := cur.Add(time.Duration(b-m)*time.Minute - time.Duration(lt.Second())*time.Second - time.Duration(lt.Nanosecond()))
		if _, end := lt.ZoneBounds(); !end.IsZero() && end.After(cur) && end.Before(cand) {
			cand = end
		}
		if next.IsZero() || cand.Before(next) {
			next = cand
		}
	}
	return next
}

// ReceiverTargets returns one unmuted target per integration of the named
// receiver, for alertmedic's own notices (flapping), which go to a receiver
// directly rather than through the route tree. Unknown names yield none.
func (t *Tree) ReceiverTargets(name string) []Target {
	r := t.receivers[name]
	if r == nil {
		return nil
	}
	out := make([]Target, 0, len(r.integrations))
	for _, in := range r.integrations {
		out = append(out, Target{Receiver: r.name, Integration: in.typ, Name: in.name, Settings: maps.Clone(in.settings)})
	}
	return out
}
