package routing

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/alertmanager/timeinterval"
	"gopkg.in/yaml.v3"
)

// Error is one problem in a routing configuration, at a key path such as
// route.routes[1].receiver.
type Error struct {
	Path string
	Msg  string
}

func (e Error) Error() string { return e.Path + ": " + e.Msg }

// Tree is a compiled routing configuration: matchers parsed, references
// resolved, settings inherited. It is immutable and safe for concurrent use.
type Tree struct {
	root      *node
	receivers map[string]*receiver
	intervals map[string][]timeinterval.TimeInterval
}

type node struct {
	path     string
	matchers labels.Matchers
	// text is matchers as Alertmanager prints them, made once: printing
	// escapes every value anew, and Match names each route it matched.
	text string
	cont bool
	// effective (inherited) settings
	receiver string
	mute     []string
	action   MuteAction
	bypass   labels.Matchers // nil: nothing bypasses
	flapping FlappingOverride
	hold     bool
	routes   []*node
}

type receiver struct {
	name         string
	path         string
	integrations []integration
}

type integration struct {
	typ      string
	name     string
	index    int
	settings map[string]string
	mute     []string
	action   MuteAction // "" takes the route's
	bypass   labels.Matchers
	hold     *bool // nil takes the route's
}

type compiler struct {
	errs      []error
	receivers map[string]*receiver
	intervals map[string][]timeinterval.TimeInterval
}

func (c *compiler) bad(path, format string, args ...any) {
	c.errs = append(c.errs, Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Compile checks c and builds its routing tree. It reports every problem
// found, each naming its key path, in the order time_intervals, route,
// receivers; the tree is nil when there is any.
func Compile(c Config) (*Tree, []error) {
	cc := &compiler{
		receivers: map[string]*receiver{},
		intervals: map[string][]timeinterval.TimeInterval{},
	}
	cc.timeIntervals(c.TimeIntervals)

	// Receivers are compiled before the route refers to them, but their
	// problems are listed after the route's, in the file's order.
	recvErrs := cc.collect(func() { cc.receiverList(c.Receivers) })
	var root *node
	routeErrs := cc.collect(func() {
		if c.Route == nil {
			cc.bad("route", "is required")
			return
		}
		root = cc.route(c.Route, "route", nil)
	})
	cc.errs = append(append(cc.errs, routeErrs...), recvErrs...)
	if len(cc.errs) > 0 {
		return nil, cc.errs
	}
	t := &Tree{root: root, receivers: cc.receivers, intervals: cc.intervals}
	if errs := t.checkDefers(time.Now()); len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

// checkDefers refuses a defer whose mute can hold for longer than
// UnmuteHorizon (an interval covering every minute of every day, or years
// of them): its deferred notifications would have no instant to go out at.
// It probes from now and from the first instant of every year range the
// intervals name, which is where a mute that does not hold now can start
// to hold for years.
func (t *Tree) checkDefers(now time.Time) []error {
	var errs []error
	verdict := map[string]string{} // mute set → "" or the reason
	reported := map[string]bool{}
	var walk func(n *node)
	walk = func(n *node) {
		if r := t.receivers[n.receiver]; r != nil {
			for _, in := range r.integrations {
				action, path := in.action, fmt.Sprintf("%s.integrations[%d].mute_action", r.path, in.index)
				if action == "" {
					action, path = n.action, n.path+".mute_action (inherited by "+r.path+fmt.Sprintf(".integrations[%d])", in.index)
				}
				if action != Defer {
					continue
				}
				target := Routed{MuteTimeIntervals: slices.Concat(n.mute, in.mute)}
				if len(target.MuteTimeIntervals) == 0 {
					continue
				}
				set := strings.Join(target.MuteTimeIntervals, ",")
				why, done := verdict[set]
				if !done {
					why = t.endless(target, now)
					verdict[set] = why
				}
				if why != "" && !reported[path] {
					reported[path] = true
					errs = append(errs, Error{Path: path, Msg: why})
				}
			}
		}
		for _, c := range n.routes {
			walk(c)
		}
	}
	walk(t.root)
	return errs
}

// endless says why target's mute can outlast UnmuteHorizon, or "".
func (t *Tree) endless(target Routed, now time.Time) string {
	probes := []time.Time{now}
	for _, name := range target.MuteTimeIntervals {
		for _, ti := range t.intervals[name] {
			loc := time.UTC
			if ti.Location != nil && ti.Location.Location != nil {
				loc = ti.Location.Location
			}
			for _, y := range ti.Years {
				if start := time.Date(y.Begin, 1, 1, 0, 0, 0, 0, loc); start.After(now) {
					probes = append(probes, start)
				}
			}
		}
	}
	for i, p := range probes {
		if t.NextUnmute(target, p).IsZero() {
			from := ""
			if i > 0 {
				from = " from " + p.UTC().Format(time.RFC3339)
			}
			return fmt.Sprintf("defer needs the mute to end, but time intervals %s hold without a break for more than %d days%s, so a deferred notification would never go out; use mute_action: drop, or intervals that end",
				quoteAll(target.MuteTimeIntervals), int(UnmuteHorizon/(24*time.Hour)), from)
		}
	}
	return ""
}

// collect runs f and returns the errors it reported instead of keeping them.
func (c *compiler) collect(f func()) []error {
	saved := c.errs
	c.errs = nil
	f()
	got := c.errs
	c.errs = saved
	return got
}

// named checks the name of entry i of a list: required, and unique in it
// (first remembers where each name was first seen). It returns the entry's
// path.
func (c *compiler) named(first map[string]int, list string, i int, name, what string) string {
	path := fmt.Sprintf("%s[%d]", list, i)
	switch j, dup := first[name]; {
	case name == "":
		c.bad(path+".name", "is required")
	case dup:
		c.bad(path+".name", "duplicate %s %q (first at %s[%d])", what, name, list, j)
	default:
		first[name] = i
	}
	return path
}

func (c *compiler) timeIntervals(tis []TimeInterval) {
	first := map[string]int{}
	for i, ti := range tis {
		path := c.named(first, "time_intervals", i, ti.Name, "time interval")
		if len(ti.TimeIntervals) == 0 {
			c.bad(path+".time_intervals", "must list at least one interval")
		}
		var parsed []timeinterval.TimeInterval
		for j, spec := range ti.TimeIntervals {
			parsed = append(parsed, c.timeSpec(spec, fmt.Sprintf("%s.time_intervals[%d]", path, j)))
		}
		if _, known := c.intervals[ti.Name]; ti.Name != "" && !known {
			// An interval with a bad part is still known by name, so that the
			// routes using it are not reported too.
			c.intervals[ti.Name] = parsed
		}
	}
}

// timeSpec parses one entry with Alertmanager's own unmarshalers.
func (c *compiler) timeSpec(s TimeSpec, path string) timeinterval.TimeInterval {
	var ti timeinterval.TimeInterval
	// An empty list means "any", as a list left out does; Alertmanager
	// would match nothing with an empty times list.
	for i, tr := range s.Times {
		var r timeinterval.TimeRange
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
			str("start_time"), str(tr.StartTime), str("end_time"), str(tr.EndTime),
		}}
		if err := n.Decode(&r); err != nil {
			c.bad(fmt.Sprintf("%s.times[%d]", path, i), "bad time range %s-%s: %v", tr.StartTime, tr.EndTime, err)
			continue
		}
		ti.Times = append(ti.Times, r)
	}
	ti.Weekdays = ranges[timeinterval.WeekdayRange](c, s.Weekdays, path+".weekdays", "weekday range")
	ti.DaysOfMonth = ranges[timeinterval.DayOfMonthRange](c, s.DaysOfMonth, path+".days_of_month", "day of month range")
	ti.Months = ranges[timeinterval.MonthRange](c, s.Months, path+".months", "month range")
	ti.Years = ranges[timeinterval.YearRange](c, s.Years, path+".years", "year range")
	if s.Location != "" {
		var l timeinterval.Location
		if c.scalar(s.Location, &l, path+".location", "location") {
			ti.Location = &l
		}
	}
	return ti
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// ranges decodes each of vs as one range of type T (Alertmanager's own
// parsers), reporting a bad one at list[i]; the good ones are kept.
func ranges[T any](c *compiler, vs []string, list, what string) []T {
	var out []T
	for i, v := range vs {
		var r T
		if c.scalar(v, &r, fmt.Sprintf("%s[%d]", list, i), what) {
			out = append(out, r)
		}
	}
	return out
}

func (c *compiler) scalar(v string, into any, path, what string) bool {
	if err := str(v).Decode(into); err != nil {
		c.bad(path, "bad %s %q: %v", what, v, err)
		return false
	}
	return true
}

func (c *compiler) receiverList(rs []Receiver) {
	first := map[string]int{}
	for i, r := range rs {
		path := c.named(first, "receivers", i, r.Name, "receiver")
		rc := &receiver{name: r.Name, path: path}
		names := map[string]int{}
		for k, in := range r.Integrations {
			ip := fmt.Sprintf("%s.integrations[%d]", path, k)
			switch {
			case in.Type == "":
				c.bad(ip+".type", "is required (one of %s)", strings.Join(IntegrationTypes, ", "))
			case !slices.Contains(IntegrationTypes, in.Type):
				c.bad(ip+".type", "unknown integration type %q (one of %s)", in.Type, strings.Join(IntegrationTypes, ", "))
			}
			name := in.Name
			if name == "" {
				name = fmt.Sprintf("%s[%d]", in.Type, k)
			}
			if j, dup := names[name]; dup {
				c.bad(ip+".name", "duplicate integration name %q in receiver (first at integrations[%d])", name, j)
			} else {
				names[name] = k
			}
			rc.integrations = append(rc.integrations, integration{
				typ:      in.Type,
				name:     name,
				index:    k,
				settings: maps.Clone(in.Settings),
				mute:     c.intervalRefs(in.MuteTimeIntervals, ip+".mute_time_intervals"),
				action:   c.action(in.MuteAction, ip+".mute_action"),
				bypass:   c.matchers(in.BypassMuteMatchers, ip+".bypass_mute_matchers"),
				hold:     in.HoldForRemediation,
			})
		}
		if _, known := c.receivers[r.Name]; r.Name != "" && !known {
			c.receivers[r.Name] = rc
		}
	}
}

func (c *compiler) intervalRefs(names []string, path string) []string {
	for i, n := range names {
		if _, ok := c.intervals[n]; !ok {
			c.bad(fmt.Sprintf("%s[%d]", path, i), "unknown time interval %q", n)
		}
	}
	return names
}

func (c *compiler) action(a MuteAction, path string) MuteAction {
	if a != "" && a != Drop && a != Defer {
		c.bad(path, "must be %q or %q, got %q", Drop, Defer, a)
	}
	return a
}

// matchers parses a list of matcher strings; the result is non-nil when the
// list is (even empty), so that [] can be told from a list left out.
func (c *compiler) matchers(ss []string, path string) labels.Matchers {
	if ss == nil {
		return nil
	}
	ms := labels.Matchers{}
	for i, s := range ss {
		p := fmt.Sprintf("%s[%d]", path, i)
		if strings.TrimSpace(s) == "" {
			c.bad(p, "empty matcher")
			continue
		}
		m, err := labels.ParseMatchers(s)
		if err != nil {
			c.bad(p, "bad matcher %q: %v", s, err)
			continue
		}
		ms = append(ms, m...)
	}
	return ms
}

func (c *compiler) route(r *Route, path string, parent *node) *node {
	n := &node{path: path, cont: r.Continue}
	if parent == nil {
		if r.Receiver == "" {
			c.bad(path+".receiver", "the root route must have a receiver")
		}
		if len(r.Matchers) > 0 {
			c.bad(path+".matchers", "the root route must not have matchers: it matches every alert")
		}
		if r.Continue {
			c.bad(path+".continue", "the root route cannot continue: it has no siblings")
		}
		parent = &node{action: Drop}
	}
	n.matchers = c.matchers(r.Matchers, path+".matchers")
	n.text = n.matchers.String()

	n.receiver = parent.receiver
	if r.Receiver != "" {
		n.receiver = r.Receiver
		if _, ok := c.receivers[r.Receiver]; !ok {
			c.bad(path+".receiver", "unknown receiver %q", r.Receiver)
		}
	}
	n.mute = parent.mute
	if r.MuteTimeIntervals != nil {
		n.mute = c.intervalRefs(r.MuteTimeIntervals, path+".mute_time_intervals")
	}
	n.action = parent.action
	if r.MuteAction != "" {
		n.action = c.action(r.MuteAction, path+".mute_action")
	}
	n.bypass = parent.bypass
	if r.BypassMuteMatchers != nil {
		n.bypass = c.matchers(r.BypassMuteMatchers, path+".bypass_mute_matchers")
	}
	// The flapping settings' values are checked by the flapping package,
	// which knows their defaults and limits (see Config.FlappingOverrides).
	n.flapping = r.Flapping.merge(parent.flapping)
	n.hold = parent.hold
	if r.HoldForRemediation != nil {
		n.hold = *r.HoldForRemediation
	}
	for i, cr := range r.Routes {
		cp := fmt.Sprintf("%s.routes[%d]", path, i)
		if cr == nil {
			c.bad(cp, "empty route")
			continue
		}
		n.routes = append(n.routes, c.route(cr, cp, n))
	}
	return n
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
