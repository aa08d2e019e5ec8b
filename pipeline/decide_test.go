package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/outbound"
	"github.com/alertmedic/alertmedic/routing"
	"github.com/alertmedic/alertmedic/store"
	"github.com/alertmedic/alertmedic/store/memory"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// recorder stands in for the integrations: it keeps what it was given.
type recorder struct {
	mu   sync.Mutex
	sent []notifiers.Notification
}

func (r *recorder) Notify(_ context.Context, n *notifiers.Notification) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, *n)
	return false, nil
}

func (r *recorder) take() []notifiers.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sent
	r.sent = nil
	return s
}

func kinds(ns []notifiers.Notification) map[string]int {
	m := map[string]int{}
	for _, n := range ns {
		m[n.Kind+" "+n.Target.Key()]++
	}
	return m
}

func rulesFrom(t *testing.T, yml string) *Rules {
	t.Helper()
	c, err := config.Parse([]byte(yml), "")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	tree, errs := routing.Compile(c.Routing())
	if len(errs) > 0 {
		t.Fatalf("routes: %v", errs)
	}
	return &Rules{Tree: tree, Flapping: c.Flapping, FlappingReceiver: c.Notices.FlappingReceiver}
}

// example is the shipped configuration, as make run uses it.
func example(t *testing.T) *Rules { return rulesFrom(t, string(config.Example)) }

type rig struct {
	p   *Pipeline
	st  Store
	clk *clock
	rec *recorder
}

var entrySeq atomic.Int64

func newRig(t *testing.T, st Store, r *Rules, clk *clock) *rig {
	rec := &recorder{}
	p := New(Options{Store: st, Logger: zerolog.Nop(), Workers: 1, Consumer: "r1", Notifier: rec, Rules: r, Now: clk.Now})
	return &rig{p: p, st: st, clk: clk, rec: rec}
}

// feed processes one message as a worker would, at the clock's time.
func (g *rig) feed(t *testing.T, as ...template.Alert) {
	t.Helper()
	// Entry ids are unique across rigs, as the receiver's random ids are.
	g.feedID(t, fmt.Sprintf("e%d", entrySeq.Add(1)), as...)
}

// flush delivers what is due, as the dispatcher does in a daemon.
func (g *rig) flush(t *testing.T) {
	t.Helper()
	if err := g.p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// feedID is feed with the entry's (the request's) id given.
func (g *rig) feedID(t *testing.T, id string, as ...template.Alert) {
	t.Helper()
	e := &alert.Entry{ID: id, ReceivedAt: g.clk.Now(),
		Message: &alert.Message{Version: "4", GroupKey: "{}:{}", Data: &template.Data{Receiver: "alertmedic", Status: as[0].Status, Alerts: as, ExternalURL: "http://alertmanager:9093"}}}
	ctx := context.Background()
	// Through the queue, as from the webhook; a 1ms dedup window keeps the
	// same observation fed again (a resend) from being dropped here.
	// The window is in real time: a resend fed within a millisecond of
	// the first waits it out.
	for attempt := 0; ; attempt++ {
		r, err := g.st.(interface {
			Enqueue(context.Context, *alert.Entry, time.Duration) (alert.EnqueueResult, error)
		}).Enqueue(ctx, e, time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if r.Queued || attempt == 3 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	es, err := g.st.Dequeue(ctx, 0, "test", 1, 0)
	if err != nil || len(es) != 1 {
		t.Fatalf("dequeue: %v %v", es, err)
	}
	if !g.p.process(ctx, es[0]) {
		t.Fatal("process failed")
	}
	// The dispatcher sends asynchronously in a daemon; here, at once.
	if err := g.p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func mk(status string, starts time.Time, kv ...string) template.Alert {
	l := template.KV{}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	a := template.Alert{Status: status, Labels: l, Annotations: template.KV{"summary": "s"}, StartsAt: starts, Fingerprint: alert.Fingerprint(l)}
	if status == alert.StatusResolved {
		a.EndsAt = starts.Add(10 * time.Second)
	}
	return a
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// A steady alert that Alertmanager re-sends every 5 minutes for an hour is
// never flapping (a rule counting notifications calls it flapping within 30
// minutes).
func TestSteadyAlertNeverFlaps(t *testing.T) {
	clk := &clock{t: t0}
	g := newRig(t, memory.New(memory.Options{Now: clk.Now}), example(t), clk)
	a := mk(alert.StatusFiring, t0, "alertname", "HighErrorRate", "severity", "critical", "instance", "api-1")
	for i := 0; i <= 12; i++ {
		g.feed(t, a)
		clk.Add(5 * time.Minute)
		if err := g.p.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got := kinds(g.rec.take())
	// 13 resends: never a flapping notice, never held back, and each target
	// told once (the same observation is delivered to a target at most
	// once).
	want := map[string]int{"alerts critical-alerts/slack[0]": 1, "alerts oncall/pagerduty[0]": 1, "alerts oncall/email[1]": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("notifications %v, want %v", got, want)
	}
}

// Every 20 seconds a state change: flapping at the sixth (count method,
// defaults), one start notice, the alert's own notifications held, and once
// it stays still for stable_for one stop notice and its current state.
func TestFlappingStartsAtSixthChangeAndStops(t *testing.T) {
	clk := &clock{t: t0}
	g := newRig(t, memory.New(memory.Options{Now: clk.Now}), example(t), clk)
	labels := []string{"alertname", "ExternalAPIFailure", "severity", "warning", "api", "bright_data"}
	start := t0
	status := alert.StatusFiring
	for change := 0; change <= 7; change++ { // the first observation, then 7 changes; the last a resolve
		g.feed(t, mk(status, start, labels...))
		got := g.rec.take()
		k := kinds(got)
		switch {
		case change < 6:
			if k["alerts warning-alerts/slack[0]"] != 1 || len(got) != 1 {
				t.Fatalf("change %d: %v, want the alert delivered", change, k)
			}
		case change == 6:
			if k["flapping_started ops/slack[0]"] != 1 || len(got) != 1 {
				t.Fatalf("change 6: %v, want exactly one start notice and the alert held", k)
			}
			if !strings.Contains(got[0].Text, "6 state changes within 30m") || got[0].Target.Settings["channel"] != "#ops-alerts" {
				t.Errorf("start notice: %q to %v", got[0].Text, got[0].Target.Settings)
			}
		default:
			if len(got) != 0 {
				t.Fatalf("change %d while flapping: %v, want nothing", change, k)
			}
		}
		clk.Add(20 * time.Second)
		if status == alert.StatusFiring {
			status = alert.StatusResolved
		} else {
			status, start = alert.StatusFiring, clk.Now()
		}
	}
	last := clk.Now().Add(-20 * time.Second) // the 7th change: a resolve
	ctx := context.Background()
	clk.Set(last.Add(15*time.Minute - time.Second))
	if err := g.p.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got := g.rec.take(); len(got) != 0 {
		t.Fatalf("before stable_for: %v", kinds(got))
	}
	clk.Set(last.Add(15 * time.Minute))
	if err := g.p.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.p.Check(ctx); err != nil { // the outbox is delivered by the check too
		t.Fatal(err)
	}
	got := g.rec.take()
	k := kinds(got)
	if k["flapping_stopped ops/slack[0]"] != 1 || k["alerts warning-alerts/slack[0]"] != 1 || len(got) != 2 {
		t.Fatalf("after stable_for: %v, want one stop notice and the current state", k)
	}
	for _, n := range got {
		if n.Kind == notifiers.KindAlerts && n.Alerts[0].Status != alert.StatusResolved {
			t.Errorf("the resolve that came during the flap was not delivered: %v", n.Alerts[0].Status)
		}
	}
	for i := 0; i < 3; i++ {
		clk.Add(time.Minute)
		g.p.Check(ctx)
	}
	if got := g.rec.take(); len(got) != 0 {
		t.Errorf("stop announced again: %v", kinds(got))
	}
}

// Two instances of one alertname flap independently by default.
func TestInstancesFlapIndependently(t *testing.T) {
	clk := &clock{t: t0}
	g := newRig(t, memory.New(memory.Options{Now: clk.Now}), example(t), clk)
	status, start := alert.StatusFiring, t0
	for change := 0; change <= 6; change++ {
		g.feed(t, mk(status, start, "alertname", "X", "severity", "warning", "instance", "a"))
		// b fires once and stays: never flapping, always delivered.
		g.feed(t, mk(alert.StatusFiring, t0, "alertname", "X", "severity", "warning", "instance", "b"))
		clk.Add(20 * time.Second)
		if status == alert.StatusFiring {
			status = alert.StatusResolved
		} else {
			status, start = alert.StatusFiring, clk.Now()
		}
	}
	var started, bDelivered int
	for _, n := range g.rec.take() {
		if n.Kind == notifiers.KindFlappingStarted {
			started++
		}
		if n.Kind == notifiers.KindAlerts && n.Alerts[0].Labels["instance"] == "b" {
			bDelivered++
		}
	}
	// b's one observation is delivered once, and b is never held back.
	if started != 1 || bDelivered != 1 {
		t.Errorf("start notices %d (want 1, for a only), b delivered %d times (want 1)", started, bDelivered)
	}
}

const deferYAML = `
time_intervals:
  - name: night
    time_intervals:
      - times: [{start_time: "23:00", end_time: "24:00"}, {start_time: "00:00", end_time: "08:00"}]
route:
  receiver: team
receivers:
  - name: team
    integrations:
      - type: email
        settings: {to: team@example.com}
        mute_time_intervals: [night]
        mute_action: defer
        bypass_mute_matchers: ['severity="critical"']
      - type: slack
        settings: {channel: "#team"}
        mute_time_intervals: [night]
        mute_action: drop
`

// defer holds notifications of a muted target and sends them as one digest
// when the interval ends, with an alert that resolved meanwhile shown as
// resolved; drop loses nothing but the message; critical bypasses.
func TestDeferredDigest(t *testing.T) {
	night := time.Date(2026, 11, 26, 23, 30, 0, 0, time.UTC)
	clk := &clock{t: night}
	g := newRig(t, memory.New(memory.Options{Now: clk.Now}), rulesFrom(t, deferYAML), clk)
	a := mk(alert.StatusFiring, night, "alertname", "DiskFull", "severity", "warning", "instance", "db-1")
	b := mk(alert.StatusFiring, night, "alertname", "DiskFull", "severity", "warning", "instance", "db-2")
	g.feed(t, a, b)
	clk.Add(time.Hour)
	g.feed(t, mk(alert.StatusResolved, night, "alertname", "DiskFull", "severity", "warning", "instance", "db-1"))
	g.feed(t, mk(alert.StatusFiring, night, "alertname", "Down", "severity", "critical"))
	got := kinds(g.rec.take())
	if fmt.Sprint(got) != fmt.Sprint(map[string]int{"alerts team/email[0]": 1}) {
		t.Fatalf("during the night: %v, want only the critical alert's email", got)
	}
	ctx := context.Background()
	clk.Set(time.Date(2026, 11, 27, 7, 59, 0, 0, time.UTC))
	g.p.Check(ctx)
	if got := g.rec.take(); len(got) != 0 {
		t.Fatalf("digest sent before 08:00: %v", kinds(got))
	}
	clk.Set(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	g.p.Check(ctx)
	// The email digest holds both alerts; slack (drop) gets only db-1's
	// resolve (see TestDropNeverLosesAResolve).
	all := g.rec.take()
	var sent []notifiers.Notification
	for _, n := range all {
		if n.Target.Key() == "team/email[0]" {
			sent = append(sent, n)
		}
	}
	if len(all) != 2 || len(sent) != 1 || sent[0].Kind != notifiers.KindDigest || len(sent[0].Alerts) != 2 {
		t.Fatalf("at 08:00: %+v", all)
	}
	st := map[string]string{}
	for _, x := range sent[0].Alerts {
		st[x.Labels["instance"]] = x.Status
	}
	if st["db-1"] != alert.StatusResolved || st["db-2"] != alert.StatusFiring {
		t.Errorf("digest statuses %v: db-1 resolved meanwhile and must show so", st)
	}
	clk.Add(time.Minute)
	g.p.Check(ctx)
	if got := g.rec.take(); len(got) != 0 {
		t.Errorf("digest sent twice: %v", kinds(got))
	}
}

// With drop, firing notifications during quiet hours are lost on purpose,
// but a resolve is not: a page sent before the quiet hours must be closed.
func TestDropNeverLosesAResolve(t *testing.T) {
	evening := time.Date(2026, 11, 26, 22, 30, 0, 0, time.UTC)
	clk := &clock{t: evening}
	g := newRig(t, memory.New(memory.Options{Now: clk.Now}), rulesFrom(t, deferYAML), clk)
	a := mk(alert.StatusFiring, evening, "alertname", "DiskFull", "severity", "warning", "instance", "db-1")
	g.feed(t, a)
	if got := kinds(g.rec.take()); got["alerts team/slack[1]"] != 1 {
		t.Fatalf("before quiet hours: %v", got)
	}
	clk.Set(time.Date(2026, 11, 26, 23, 30, 0, 0, time.UTC))
	g.feed(t, mk(alert.StatusFiring, clk.Now(), "alertname", "DiskFull", "severity", "warning", "instance", "db-2"))
	r := mk(alert.StatusResolved, evening, "alertname", "DiskFull", "severity", "warning", "instance", "db-1")
	g.feed(t, r)
	if got := g.rec.take(); len(got) != 0 {
		t.Fatalf("during quiet hours: %v", kinds(got))
	}
	clk.Set(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	g.p.Check(context.Background())
	var slackDigest *notifiers.Notification
	for _, n := range g.rec.take() {
		if n.Target.Key() == "team/slack[1]" {
			slackDigest = &n
		}
	}
	if slackDigest == nil || slackDigest.Kind != notifiers.KindDigest || len(slackDigest.Alerts) != 1 ||
		slackDigest.Alerts[0].Status != alert.StatusResolved || slackDigest.Alerts[0].Labels["instance"] != "db-1" {
		t.Fatalf("slack (drop) at 08:00: %+v, want a digest with only db-1's resolve", slackDigest)
	}
}

// failing answers with scripted errors, then succeeds.
type failing struct {
	recorder
	mu    sync.Mutex
	errs  []error
	retry []bool
	calls int
}

func (f *failing) Notify(ctx context.Context, n *notifiers.Notification) (bool, error) {
	f.mu.Lock()
	i := f.calls
	f.calls++
	f.mu.Unlock()
	if i < len(f.errs) {
		return f.retry[i], f.errs[i]
	}
	return f.recorder.Notify(ctx, n)
}

func TestDeliveryRetriesAndDeadLetters(t *testing.T) {
	clk := &clock{t: t0}
	st := memory.New(memory.Options{Now: clk.Now})
	f := &failing{errs: []error{fmt.Errorf("unexpected status code 500"), &outbound.RetryAfterError{After: 2 * time.Second, Err: fmt.Errorf("unexpected status code 429")}}, retry: []bool{true, true}}
	p := New(Options{Store: st, Logger: zerolog.Nop(), Workers: 1, Consumer: "r1", Notifier: f, Rules: example(t), Now: clk.Now})
	g := &rig{p: p, st: st, clk: clk, rec: &f.recorder}
	ctx := context.Background()
	g.feed(t, mk(alert.StatusFiring, t0, "alertname", "A", "severity", "warning"))
	if f.calls != 1 || len(g.rec.take()) != 0 {
		t.Fatalf("first attempt: %d calls", f.calls)
	}
	// Not retried before its backoff; the 429's Retry-After (2s) is
	// honoured on the next one.
	p.Flush(ctx)
	if f.calls != 1 {
		t.Fatalf("retried before the backoff: %d calls", f.calls)
	}
	clk.Add(time.Second)
	p.Flush(ctx)
	if f.calls != 2 {
		t.Fatalf("second attempt: %d calls", f.calls)
	}
	clk.Add(1900 * time.Millisecond)
	p.Flush(ctx)
	if f.calls != 2 {
		t.Fatalf("retried before Retry-After: %d calls", f.calls)
	}
	clk.Add(200 * time.Millisecond)
	p.Flush(ctx)
	if got := g.rec.take(); len(got) != 1 || f.calls != 3 {
		t.Fatalf("after a 500 and a 429: %d delivered in %d calls, want 1 in 3", len(got), f.calls)
	}
	// 400: kept as a dead letter at once, listed with its reason.
	f.mu.Lock()
	f.errs, f.retry, f.calls = []error{fmt.Errorf("unexpected status code 400: invalid_payload")}, []bool{false}, 0
	f.mu.Unlock()
	g.feed(t, mk(alert.StatusFiring, t0, "alertname", "B", "severity", "warning"))
	clk.Add(time.Minute)
	p.Flush(ctx)
	if f.calls != 1 || len(g.rec.take()) != 0 {
		t.Fatalf("400 was retried: %d calls", f.calls)
	}
	page, err := p.FailedDeliveries(ctx, "", 10, true)
	dls := page.Deliveries
	var n notifiers.Notification
	if len(dls) == 1 {
		_ = json.Unmarshal(dls[0].Notification, &n)
	}
	if err != nil || len(dls) != 1 || page.Total != 1 || page.NextCursor != "" || dls[0].Target != "warning-alerts/slack[0]" || !strings.Contains(dls[0].Error, "unexpected status code 400: invalid_payload") || len(n.Alerts) != 1 || n.Alerts[0].Labels["alertname"] != "B" || len(dls[0].Fingerprints) != 1 {
		t.Fatalf("dead letters %+v %v", dls, err)
	}
}

// Two replicas flushing the same outbox deliver each notification once.
func TestDeliveryOnceAcrossReplicas(t *testing.T) {
	clk := &clock{t: t0}
	st := memory.New(memory.Options{Now: clk.Now})
	rec := &recorder{}
	mkp := func() *Pipeline {
		return New(Options{Store: st, Logger: zerolog.Nop(), Workers: 1, Consumer: "r", Notifier: rec, Rules: example(t), Now: clk.Now})
	}
	a, b := mkp(), mkp()
	n := notifiers.Notification{Key: "entry:x:warning-alerts/slack[0]", Kind: notifiers.KindAlerts, Target: routing.Target{Receiver: "warning-alerts", Name: "slack[0]", Integration: "slack"},
		Alerts: template.Alerts{mk(alert.StatusFiring, t0, "alertname", "A")}}
	ctx := context.Background()
	body, _ := json.Marshal(n)
	it := store.Item{ID: n.Key, Group: n.Target.Key(), Class: "slack", Alerts: 1, Due: clk.Now(), Payload: body}
	for i := 0; i < 2; i++ { // written twice: still one item
		if err := st.Commit(ctx, 0, store.Txn{Put: []store.Put{{Queue: store.QueueOutbox, Item: it}}}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, p := range []*Pipeline{a, b, a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.Flush(ctx) }()
	}
	wg.Wait()
	clk.Add(time.Hour)
	a.Flush(ctx)
	b.Flush(ctx)
	if got := len(rec.take()); got != 1 {
		t.Errorf("delivered %d times, want once", got)
	}
}

// An alert storm for one rate-limited target: no more than the limit's
// messages, every alert in one of them.
func TestStormCoalesces(t *testing.T) {
	clk := &clock{t: t0}
	st := memory.New(memory.Options{Now: clk.Now, Capacity: 5000})
	rec := &recorder{}
	p := New(Options{Store: st, Logger: zerolog.Nop(), Workers: 1, Consumer: "r", Notifier: rec, Rules: example(t), Now: clk.Now,
		RateLimits: map[string]store.RateLimit{"slack": {PerSecond: 1, Burst: 1}}})
	g := &rig{p: p, st: st, clk: clk, rec: rec}
	// 1,000 alerts over 10 seconds, 100 per second, each its own message.
	for s := 0; s < 10; s++ {
		for i := 0; i < 100; i++ {
			g.feed(t, mk(alert.StatusFiring, t0, "alertname", "Storm", "severity", "warning", "instance", fmt.Sprintf("i%d-%d", s, i)))
			clk.Add(10 * time.Millisecond)
		}
	}
	clk.Add(2 * time.Second)
	p.Flush(context.Background())
	sent := rec.take()
	seen := map[string]int{}
	for _, n := range sent {
		for _, a := range n.Alerts {
			seen[a.Labels["instance"]]++
		}
	}
	if len(sent) > 12 || len(seen) != 1000 {
		t.Errorf("%d messages carrying %d distinct alerts; want about one a second (≤12) carrying all 1000", len(sent), len(seen))
	}
	for inst, c := range seen {
		if c != 1 {
			t.Errorf("alert %s in %d messages", inst, c)
		}
	}
}

// The same observation carried by two entries (Alertmanager resending after
// the dedup window) reaches a target once; its resolve is new.
func TestObservationDeliveredOncePerTarget(t *testing.T) {
	clk := &clock{t: t0}
	g := newRig(t, memory.New(memory.Options{Now: clk.Now}), example(t), clk)
	a := mk(alert.StatusFiring, t0, "alertname", "Disk", "severity", "warning")
	g.feed(t, a)
	clk.Add(30 * time.Minute)
	g.feed(t, a)
	r := mk(alert.StatusResolved, t0, "alertname", "Disk", "severity", "warning")
	clk.Add(time.Minute)
	g.feed(t, r)
	got := g.rec.take()
	if len(got) != 2 || got[0].Alerts[0].Status != alert.StatusFiring || got[1].Alerts[0].Status != alert.StatusResolved {
		t.Errorf("%d notifications %v, want the firing once and the resolve", len(got), kinds(got))
	}
}

// A notification still failing (retryably) at the delivery deadline becomes
// a dead letter instead of being retried for ever.
func TestDeliveryDeadline(t *testing.T) {
	clk := &clock{t: t0}
	st := memory.New(memory.Options{Now: clk.Now})
	errs := make([]error, 100)
	retry := make([]bool, 100)
	for i := range errs {
		errs[i], retry[i] = fmt.Errorf("unexpected status code 503"), true
	}
	f := &failing{errs: errs, retry: retry}
	p := New(Options{Store: st, Logger: zerolog.Nop(), Workers: 1, Consumer: "r1", Notifier: f, Rules: example(t), Now: clk.Now,
		Retrier: Retrier{MinBackoff: time.Second, MaxBackoff: time.Second, Deadline: 10 * time.Second}})
	g := &rig{p: p, st: st, clk: clk, rec: &f.recorder}
	ctx := context.Background()
	g.feed(t, mk(alert.StatusFiring, t0, "alertname", "A", "severity", "warning"))
	for i := 0; i < 30; i++ {
		clk.Add(time.Second)
		p.Flush(ctx)
	}
	page, err := p.FailedDeliveries(ctx, "", 10, false)
	dls := page.Deliveries
	if err != nil || len(dls) != 1 || !strings.Contains(dls[0].Error, "gave up at the delivery deadline") || dls[0].Notification != nil {
		t.Fatalf("dead letters %+v %v", dls, err)
	}
	if f.calls < 5 || f.calls > 12 {
		t.Errorf("%d attempts within a 10 s deadline at 1 s backoff", f.calls)
	}
	calls := f.calls
	clk.Add(time.Minute)
	p.Flush(ctx)
	if f.calls != calls {
		t.Error("retried after the dead letter")
	}
}

// A digest past its cap counts what it does not keep ("and N more"), and
// keeps every resolve whatever the cap.
func TestDigestCapCountsAndKeepsResolves(t *testing.T) {
	night := time.Date(2026, 11, 26, 23, 30, 0, 0, time.UTC)
	clk := &clock{t: night}
	r := rulesFrom(t, deferYAML)
	r.DigestMax = 3
	g := newRig(t, memory.New(memory.Options{Now: clk.Now}), r, clk)
	var as []template.Alert
	for i := 0; i < 5; i++ {
		as = append(as, mk(alert.StatusFiring, night, "alertname", "DiskFull", "severity", "warning", "instance", fmt.Sprintf("db-%d", i)))
	}
	g.feed(t, as...)
	clk.Add(time.Minute)
	// db-4 spilled past the cap while firing; its resolve is kept.
	g.feed(t, mk(alert.StatusResolved, night, "alertname", "DiskFull", "severity", "warning", "instance", "db-4"))
	clk.Set(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	g.p.Check(context.Background())
	var digest *notifiers.Notification
	for _, n := range g.rec.take() {
		if n.Target.Key() == "team/email[0]" {
			digest = &n
		}
	}
	if digest == nil || digest.Kind != notifiers.KindDigest {
		t.Fatalf("no email digest at 08:00")
	}
	st := map[string]string{}
	for _, a := range digest.Alerts {
		st[a.Labels["instance"]] = a.Status
	}
	// Three kept firing, db-3 counted, db-4's resolve kept.
	if len(digest.Alerts) != 4 || digest.More != 1 || st["db-4"] != alert.StatusResolved {
		t.Errorf("digest %v with %d more; want 3 firing, db-4 resolved and 1 more", st, digest.More)
	}
}

// Thirty dead-lettered notifications of 1,000 alerts each were one 36.7 MB
// answer. Now they come a page at a time, as summaries (count and
// fingerprints), each page a small answer, every dead letter once.
func TestDeadLettersPaginate(t *testing.T) {
	clk := &clock{t: t0}
	st := memory.New(memory.Options{Now: clk.Now})
	f := &failing{}
	for i := 0; i < 30; i++ {
		f.errs = append(f.errs, fmt.Errorf("unexpected status code 400: invalid_payload"))
		f.retry = append(f.retry, false)
	}
	p := New(Options{Store: st, Logger: zerolog.Nop(), Workers: 1, Consumer: "r1", Notifier: f, Rules: example(t), Now: clk.Now})
	g := &rig{p: p, st: st, clk: clk, rec: &f.recorder}
	for m := 0; m < 30; m++ {
		as := make([]template.Alert, 1000)
		for i := range as {
			as[i] = mk(alert.StatusFiring, t0, "alertname", "Big", "severity", "warning", "i", fmt.Sprintf("%d-%d", m, i))
		}
		g.feed(t, as...)
		clk.Add(time.Millisecond)
	}
	ctx := context.Background()
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		page, err := p.FailedDeliveries(ctx, cursor, 20, false)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		b, _ := json.Marshal(page)
		if len(b) > 1<<20 {
			t.Errorf("page %d is %d bytes", pages, len(b))
		}
		if page.Total != 30 {
			t.Errorf("total %d, want 30", page.Total)
		}
		for _, d := range page.Deliveries {
			if seen[d.Key] || d.Alerts != 1000 || len(d.Fingerprints) != 1000 || d.Notification != nil {
				t.Fatalf("dead letter %s: seen %v, %d alerts, %d fingerprints", d.Key, seen[d.Key], d.Alerts, len(d.Fingerprints))
			}
			seen[d.Key] = true
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != 30 || pages != 2 {
		t.Fatalf("%d dead letters in %d pages, want 30 in 2", len(seen), pages)
	}
	if _, err := p.FailedDeliveries(ctx, "bm90IGEgY3Vyc29y", 20, false); !errors.Is(err, store.ErrBadCursor) {
		t.Fatalf("a cursor it did not give: %v", err)
	}
}

// A defer whose mute does not end within the search horizon cannot load
// (routing refuses it), but one that passed the check at load time can meet
// such a stretch later: years ahead of the wall clock here. Its firing
// alerts are dropped and counted; its resolves go at once, never dropped.
func TestEndlessDeferNeverDropsAResolve(t *testing.T) {
	yml := `
time_intervals:
  - name: until-2027
    time_intervals: [{years: ["2000:2026"]}]
route:
  receiver: team
receivers:
  - name: team
    integrations:
      - type: email
        settings: {to: team@example.com}
        mute_time_intervals: [until-2027]
        mute_action: defer
`
	then := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	clk := &clock{t: then}
	g := newRig(t, memory.New(memory.Options{Now: clk.Now}), rulesFrom(t, yml), clk)
	g.feed(t, mk(alert.StatusFiring, then, "alertname", "DiskFull"))
	if got := g.rec.take(); len(got) != 0 {
		t.Fatalf("firing, muted for years: %v, want nothing now", kinds(got))
	}
	clk.Add(time.Minute)
	g.feed(t, mk(alert.StatusResolved, then, "alertname", "DiskFull"))
	got := g.rec.take()
	if len(got) != 1 || got[0].Kind != notifiers.KindAlerts || got[0].Alerts[0].Status != alert.StatusResolved {
		t.Fatalf("the resolve: %+v, want it sent at once", got)
	}
}
