package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
)

// Options are the settings the suite gives a backend under test. The suite
// sets every field, so backends need not agree on what zero means.
type Options struct {
	Capacity       int
	ClaimIdle      time.Duration
	MaxDeadLetters int
	// Shards is how many shards to spread the keys over, for a backend
	// that can (one that has one shard ignores it; the tests ask Shards()).
	Shards int
}

// Opener returns a new handle onto the same underlying state on every call:
// two handles behave like two replicas sharing one store. The suite closes
// every handle it opens.
type Opener func() Store

// Run runs the conformance suite. open must create fresh, empty state for the
// subtest it is given and register its own cleanup with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T, o Options) Opener) {
	tests := []struct {
		name string
		run  func(t *testing.T, open func(t *testing.T, o Options) Opener)
	}{
		{"EnqueueDequeueRoundTrip", testRoundTrip},
		{"DedupSameMessage", testDedupSameMessage},
		{"DedupPartialMessage", testDedupPartialMessage},
		{"DedupWindowExpires", testDedupWindowExpires},
		{"DedupByObservation", testDedupByObservation},
		{"ConcurrentEnqueueAcrossHandles", testConcurrentEnqueue},
		{"Capacity", testCapacity},
		{"ReclaimAfterClaimIdle", testReclaim},
		{"OwnPendingFirst", testOwnPendingFirst},
		{"DequeueBlocksWhenEmpty", testDequeueBlocks},
		{"DequeueCancelled", testDequeueCancelled},
		{"DequeueWakesOnEnqueue", testDequeueWakes},
		{"UpdateState", testUpdateState},
		{"UpdateStateConcurrent", testUpdateStateConcurrent},
		{"UpdateStateTTL", testUpdateStateTTL},
		{"Index", testIndex},
		{"CommitWrites", testCommitWrites},
		{"CommitConflict", testCommitConflict},
		{"CommitAcksOnce", testCommitAcksOnce},
		{"CommitConcurrent", testCommitConcurrent},
		{"CommitAll", testCommitAll},
		{"LeasedPutClaimSettle", testLeasedPutClaimSettle},
		{"LeasedGroupsAndBounds", testLeasedGroupsAndBounds},
		{"LeasedLeaseLapses", testLeasedLeaseLapses},
		{"LeasedRetryAndDead", testLeasedRetryAndDead},
		{"LeasedDeadLetterPages", testLeasedDeadLetterPages},
		{"LeasedDeadLettersAcrossShards", testLeasedDeadLettersAcrossShards},
		{"LeasedRateLimit", testLeasedRateLimit},
		{"LeasedRateLimitShared", testLeasedRateLimitShared},
		{"LeasedCollect", testLeasedCollect},
		{"LeasedWaitingKeepsPayload", testLeasedWaitingKeepsPayload},
		{"LeasedMoveDue", testLeasedMoveDue},
		{"LeasedMoveDrop", testLeasedMoveDrop},
		{"LeasedMovePayload", testLeasedMovePayload},
		{"SettleNotes", testSettleNotes},
		{"Keys", testKeys},
		{"Revive", testRevive},
		{"DuplicatesNoted", testDuplicatesNoted},
		{"LeasedMoveLeavesClaimed", testLeasedMoveLeavesClaimed},
		{"LeasedMoveRefusedTxn", testLeasedMoveRefusedTxn},
		{"LeasedMoveCollecting", testLeasedMoveCollecting},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open) })
	}
}

// defaults keep every mechanism out of the way of tests about another one:
// nothing is reclaimed, trimmed or refused unless a test asks for it.
func defaults() Options {
	return Options{
		Capacity:       1000,
		ClaimIdle:      time.Minute,
		MaxDeadLetters: 1000,
		Shards:         1,
	}
}

// handle opens one handle and closes it when the test ends, before the
// backend's own cleanup (registered earlier by open) runs.
func handle(t *testing.T, op Opener) Store {
	t.Helper()
	s := op()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// t0 has nanoseconds and a non-UTC zone on purpose: a backend that rounds or
// loses the zone's instant must fail.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.FixedZone("IST", 5*3600+1800))

func mkAlert(status string, startsAt, endsAt time.Time, labels ...string) template.Alert {
	kv := template.KV{}
	for i := 0; i+1 < len(labels); i += 2 {
		kv[labels[i]] = labels[i+1]
	}
	return template.Alert{
		Status:       status,
		Labels:       kv,
		Annotations:  template.KV{"summary": "summary of " + kv["alertname"]},
		StartsAt:     startsAt,
		EndsAt:       endsAt,
		GeneratorURL: "http://prometheus:9090/graph?g0.expr=up",
		Fingerprint:  alert.Fingerprint(kv),
	}
}

func firing(name string, labels ...string) template.Alert {
	return mkAlert(alert.StatusFiring, t0, time.Time{}, append([]string{"alertname", name}, labels...)...)
}

func mkMessage(alerts ...template.Alert) *alert.Message {
	status := alert.StatusResolved
	for _, a := range alerts {
		if a.Status == alert.StatusFiring {
			status = alert.StatusFiring
		}
	}
	return &alert.Message{
		Version:  "4",
		GroupKey: `{}:{alertname="HighErrorRate"}`,
		Data: &template.Data{
			Receiver:          "alertmedic",
			Status:            status,
			Alerts:            alerts,
			GroupLabels:       template.KV{"alertname": "HighErrorRate"},
			CommonLabels:      template.KV{"alertname": "HighErrorRate"},
			CommonAnnotations: template.KV{},
			ExternalURL:       "http://alertmanager:9093",
		},
	}
}

func mkEntry(id string, m *alert.Message) *alert.Entry {
	return &alert.Entry{ID: id, ReceivedAt: t0.Add(time.Minute), RequestID: "req-" + id, Message: m}
}

func cloneAlerts(as template.Alerts) template.Alerts {
	out := make(template.Alerts, len(as))
	for i, a := range as {
		a.Labels = maps.Clone(a.Labels)
		a.Annotations = maps.Clone(a.Annotations)
		out[i] = a
	}
	return out
}

func cloneEntry(e *alert.Entry) *alert.Entry {
	c := *e
	m := *e.Message
	d := *m.Data
	d.Alerts = cloneAlerts(d.Alerts)
	d.GroupLabels = maps.Clone(d.GroupLabels)
	d.CommonLabels = maps.Clone(d.CommonLabels)
	d.CommonAnnotations = maps.Clone(d.CommonAnnotations)
	d.RouteLabels = maps.Clone(d.RouteLabels)
	m.Data = &d
	c.Message = &m
	return &c
}

func checkAlerts(t *testing.T, what string, got, want template.Alerts) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d alerts, want %d", what, len(got), len(want))
		return
	}
	for i := range want {
		g, w := got[i], want[i]
		p := fmt.Sprintf("%s: alerts[%d]", what, i)
		if g.Status != w.Status {
			t.Errorf("%s.Status = %q, want %q", p, g.Status, w.Status)
		}
		if !maps.Equal(g.Labels, w.Labels) {
			t.Errorf("%s.Labels = %q, want %q", p, g.Labels, w.Labels)
		}
		if !maps.Equal(g.Annotations, w.Annotations) {
			t.Errorf("%s.Annotations = %q, want %q", p, g.Annotations, w.Annotations)
		}
		if !g.StartsAt.Equal(w.StartsAt) {
			t.Errorf("%s.StartsAt = %v, want %v", p, g.StartsAt, w.StartsAt)
		}
		if !g.EndsAt.Equal(w.EndsAt) {
			t.Errorf("%s.EndsAt = %v, want %v", p, g.EndsAt, w.EndsAt)
		}
		if g.GeneratorURL != w.GeneratorURL {
			t.Errorf("%s.GeneratorURL = %q, want %q", p, g.GeneratorURL, w.GeneratorURL)
		}
		if g.Fingerprint != w.Fingerprint {
			t.Errorf("%s.Fingerprint = %q, want %q", p, g.Fingerprint, w.Fingerprint)
		}
	}
}

func checkEntry(t *testing.T, got, want *alert.Entry) {
	t.Helper()
	if got.ID != want.ID {
		t.Errorf("ID = %q, want %q", got.ID, want.ID)
	}
	if !got.ReceivedAt.Equal(want.ReceivedAt) {
		t.Errorf("ReceivedAt = %v, want %v", got.ReceivedAt, want.ReceivedAt)
	}
	if got.RequestID != want.RequestID {
		t.Errorf("RequestID = %q, want %q", got.RequestID, want.RequestID)
	}
	if got.Message == nil || got.Message.Data == nil {
		t.Errorf("Message or Message.Data is nil")
		return
	}
	g, w := got.Message, want.Message
	if g.Version != w.Version || g.GroupKey != w.GroupKey || g.TruncatedAlerts != w.TruncatedAlerts {
		t.Errorf("Version, GroupKey, TruncatedAlerts = %q, %q, %d; want %q, %q, %d",
			g.Version, g.GroupKey, g.TruncatedAlerts, w.Version, w.GroupKey, w.TruncatedAlerts)
	}
	if g.Receiver != w.Receiver || g.Status != w.Status || g.ExternalURL != w.ExternalURL {
		t.Errorf("Receiver, Status, ExternalURL = %q, %q, %q; want %q, %q, %q",
			g.Receiver, g.Status, g.ExternalURL, w.Receiver, w.Status, w.ExternalURL)
	}
	if g.NotificationReason != w.NotificationReason {
		t.Errorf("NotificationReason = %q, want %q", g.NotificationReason, w.NotificationReason)
	}
	for _, kv := range []struct {
		name      string
		got, want template.KV
	}{
		{"GroupLabels", g.GroupLabels, w.GroupLabels},
		{"CommonLabels", g.CommonLabels, w.CommonLabels},
		{"CommonAnnotations", g.CommonAnnotations, w.CommonAnnotations},
		{"RouteLabels", g.RouteLabels, w.RouteLabels},
	} {
		if !maps.Equal(kv.got, kv.want) {
			t.Errorf("%s = %q, want %q", kv.name, kv.got, kv.want)
		}
	}
	checkAlerts(t, "entry "+want.ID, g.Alerts, w.Alerts)
}

func enqueue(t *testing.T, s Store, e *alert.Entry, dedupTTL time.Duration, want alert.EnqueueResult) {
	t.Helper()
	res, err := s.Enqueue(t.Context(), e, dedupTTL)
	if err != nil {
		t.Fatalf("enqueue %s: %v", e.ID, err)
	}
	if res != want {
		t.Errorf("enqueue %s = %+v, want %+v", e.ID, res, want)
	}
}

func dequeue(t *testing.T, s Store, consumer string, max int, block time.Duration) []*alert.Entry {
	t.Helper()
	got, err := s.Dequeue(t.Context(), 0, consumer, max, block)
	if err != nil {
		t.Fatalf("dequeue for %s: %v", consumer, err)
	}
	for _, e := range got {
		if e.Receipt == "" {
			t.Errorf("dequeued entry %s has no Receipt", e.ID)
		}
	}
	return got
}

// dequeueOne expects exactly the entry with id.
func dequeueOne(t *testing.T, s Store, consumer, id string, block time.Duration) *alert.Entry {
	t.Helper()
	got := dequeue(t, s, consumer, 10, block)
	if len(got) != 1 || got[0].ID != id {
		t.Fatalf("dequeue for %s = %v, want only entry %s", consumer, ids(got), id)
	}
	return got[0]
}

func dequeueNone(t *testing.T, s Store, consumer string) {
	t.Helper()
	if got := dequeue(t, s, consumer, 10, 0); len(got) != 0 {
		t.Fatalf("dequeue for %s = %v, want nothing", consumer, ids(got))
	}
}

func ids(es []*alert.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func checkDepth(t *testing.T, s Store, want int64) {
	t.Helper()
	got, err := s.Depth(t.Context())
	if err != nil {
		t.Fatalf("depth: %v", err)
	}
	if got != want {
		t.Errorf("depth = %d, want %d", got, want)
	}
}

func ack(t *testing.T, s Store, e *alert.Entry) {
	t.Helper()
	if err := s.Ack(t.Context(), 0, e.Receipt); err != nil {
		t.Fatalf("ack %s: %v", e.ID, err)
	}
}

func testRoundTrip(t *testing.T, open func(t *testing.T, o Options) Opener) {
	s := handle(t, open(t, defaults()))

	a1 := mkAlert(alert.StatusFiring, t0, time.Time{},
		"alertname", "HighErrorRate", "service", "größe-🚨", "instance", "api-1:8080")
	a1.Annotations = template.KV{
		"summary":     "Fehlerquote über 5 % — 警告 ☎",
		"description": "line one\nline two\r\n\ttabbed \"quoted\" \\ backslash\n",
	}
	a2 := mkAlert(alert.StatusResolved, t0.Add(-time.Hour), t0.Add(-time.Minute),
		"alertname", "HighErrorRate", "service", "checkout")
	m := mkMessage(a1, a2)
	m.TruncatedAlerts = 2
	m.NotificationReason = "alerts_changed"
	m.RouteLabels = template.KV{"team": "ops", "receiver": "alertmedic"}
	m.CommonAnnotations = template.KV{"runbook": "https://wiki/ä\nsecond line"}
	e := &alert.Entry{
		ID:         "entry-roundtrip",
		ReceivedAt: t0.Add(90 * time.Second),
		RequestID:  "req-42",
		Message:    m,
	}
	want := cloneEntry(e)

	enqueue(t, s, e, time.Minute, alert.EnqueueResult{Queued: true, Accepted: 2})
	checkDepth(t, s, 1)

	got := dequeueOne(t, s, "worker-1", e.ID, time.Second)
	checkEntry(t, got, want)
	checkDepth(t, s, 1) // taken is not acknowledged

	ack(t, s, got)
	checkDepth(t, s, 0)
	ack(t, s, got)
	checkDepth(t, s, 0)
	dequeueNone(t, s, "worker-1")
}

func testDedupSameMessage(t *testing.T, open func(t *testing.T, o Options) Opener) {
	s := handle(t, open(t, defaults()))
	m := mkMessage(firing("A"), firing("B"))

	enqueue(t, s, mkEntry("e1", m), time.Minute, alert.EnqueueResult{Queued: true, Accepted: 2})
	enqueue(t, s, mkEntry("e2", m), time.Minute, alert.EnqueueResult{Duplicates: 2})
	checkDepth(t, s, 1)
}

func testDedupPartialMessage(t *testing.T, open func(t *testing.T, o Options) Opener) {
	s := handle(t, open(t, defaults()))
	a, b, c := firing("A"), firing("B"), firing("C")

	enqueue(t, s, mkEntry("e1", mkMessage(a, b)), time.Minute, alert.EnqueueResult{Queued: true, Accepted: 2})
	e2 := mkEntry("e2", mkMessage(b, c, a))
	before := cloneEntry(e2)
	enqueue(t, s, e2, time.Minute, alert.EnqueueResult{Queued: true, Accepted: 1, Duplicates: 2})
	checkEntry(t, e2, before) // the caller's entry is untouched

	var got []*alert.Entry
	for deadline := time.Now().Add(2 * time.Second); len(got) < 2 && time.Now().Before(deadline); {
		got = append(got, dequeue(t, s, "w", 10, 200*time.Millisecond)...)
	}
	if len(got) != 2 || got[0].ID != "e1" || got[1].ID != "e2" {
		t.Fatalf("dequeued %v, want [e1 e2]", ids(got))
	}
	want := cloneEntry(before)
	want.Message.Alerts = template.Alerts{c}
	checkEntry(t, got[1], want)
}

func testDedupWindowExpires(t *testing.T, open func(t *testing.T, o Options) Opener) {
	s := handle(t, open(t, defaults()))
	const ttl = 300 * time.Millisecond
	m := mkMessage(firing("A"))

	start := time.Now()
	enqueue(t, s, mkEntry("e1", m), ttl, alert.EnqueueResult{Queued: true, Accepted: 1})
	if time.Since(start) < ttl {
		enqueue(t, s, mkEntry("e2", m), ttl, alert.EnqueueResult{Duplicates: 1})
	}
	time.Sleep(time.Until(start.Add(ttl + 150*time.Millisecond)))
	enqueue(t, s, mkEntry("e3", m), ttl, alert.EnqueueResult{Queued: true, Accepted: 1})
	checkDepth(t, s, 2)
}

func testDedupByObservation(t *testing.T, open func(t *testing.T, o Options) Opener) {
	s := handle(t, open(t, defaults()))
	labels := []string{"alertname", "A", "instance", "i1"}
	fire := func(endsAt time.Time) template.Alert {
		return mkAlert(alert.StatusFiring, t0, endsAt, labels...)
	}
	resolve := func(endsAt time.Time) template.Alert {
		return mkAlert(alert.StatusResolved, t0, endsAt, labels...)
	}
	dup := alert.EnqueueResult{Duplicates: 1}
	queued := alert.EnqueueResult{Queued: true, Accepted: 1}

	enqueue(t, s, mkEntry("fire-1", mkMessage(fire(t0.Add(4*time.Minute)))), time.Minute, queued)
	// Alertmanager moves endsAt forward on every resend of a firing alert.
	enqueue(t, s, mkEntry("fire-2", mkMessage(fire(t0.Add(8*time.Minute)))), time.Minute, dup)
	// Resolving is a new observation although startsAt is the same.
	enqueue(t, s, mkEntry("resolve-1", mkMessage(resolve(t0.Add(10*time.Minute)))), time.Minute, queued)
	enqueue(t, s, mkEntry("resolve-2", mkMessage(resolve(t0.Add(10*time.Minute)))), time.Minute, dup)
	// A new episode of the same alert is new.
	next := mkAlert(alert.StatusFiring, t0.Add(time.Hour), time.Time{}, labels...)
	enqueue(t, s, mkEntry("fire-3", mkMessage(next)), time.Minute, queued)
	checkDepth(t, s, 3)
}

func testConcurrentEnqueue(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, defaults())
	replicas := []Store{handle(t, op), handle(t, op)}
	const rounds = 50

	for round := range rounds {
		// Both replicas share the message: the race detector then also
		// catches an Enqueue that writes to the caller's message.
		m := mkMessage(firing("Concurrent", "round", strconv.Itoa(round)), firing("Other", "round", strconv.Itoa(round)))
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			results [2]alert.EnqueueResult
			errs    [2]error
		)
		for i, s := range replicas {
			wg.Go(func() {
				e := mkEntry(fmt.Sprintf("round-%d-replica-%d", round, i), m)
				<-start
				results[i], errs[i] = s.Enqueue(t.Context(), e, time.Minute)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: replica %d: enqueue: %v", round, i, err)
			}
		}
		if results[0].Queued == results[1].Queued {
			t.Fatalf("round %d: results %+v: want exactly one queued", round, results)
		}
		for _, r := range results {
			want := alert.EnqueueResult{Queued: true, Accepted: 2}
			if !r.Queued {
				want = alert.EnqueueResult{Duplicates: 2}
			}
			if r != want {
				t.Errorf("round %d: result %+v, want %+v", round, r, want)
			}
		}
	}
	checkDepth(t, replicas[0], rounds)
}

func testCapacity(t *testing.T, open func(t *testing.T, o Options) Opener) {
	o := defaults()
	o.Capacity = 3
	s := handle(t, open(t, o))
	queued := alert.EnqueueResult{Queued: true, Accepted: 1}

	for i := range o.Capacity {
		enqueue(t, s, mkEntry("e"+strconv.Itoa(i), mkMessage(firing("A"+strconv.Itoa(i)))), time.Minute, queued)
	}
	over := mkMessage(firing("Over"))
	res, err := s.Enqueue(t.Context(), mkEntry("over-1", over), time.Minute)
	if !errors.Is(err, alert.ErrQueueFull) {
		t.Fatalf("enqueue beyond capacity: err = %v, want alert.ErrQueueFull", err)
	}
	if res.Queued {
		t.Errorf("enqueue beyond capacity: result %+v says queued", res)
	}
	checkDepth(t, s, int64(o.Capacity))

	// Nothing needs storing for a message of duplicates, so a full queue is no
	// reason to make Alertmanager retry it.
	enqueue(t, s, mkEntry("dup", mkMessage(firing("A0"))), time.Minute, alert.EnqueueResult{Duplicates: 1})

	ack(t, s, dequeue(t, s, "w", 1, time.Second)[0])
	checkDepth(t, s, int64(o.Capacity-1))
	// The refused enqueue remembered nothing, so its retry is accepted.
	enqueue(t, s, mkEntry("over-2", over), time.Minute, queued)
	checkDepth(t, s, int64(o.Capacity))
}

func testReclaim(t *testing.T, open func(t *testing.T, o Options) Opener) {
	o := defaults()
	o.ClaimIdle = 500 * time.Millisecond
	op := open(t, o)
	a, b := handle(t, op), handle(t, op)

	enqueue(t, a, mkEntry("e1", mkMessage(firing("A"))), time.Minute, alert.EnqueueResult{Queued: true, Accepted: 1})
	takenByA := dequeueOne(t, a, "a", "e1", time.Second)
	taken := time.Now()

	got := dequeue(t, b, "b", 10, 0)
	if time.Since(taken) < o.ClaimIdle && len(got) != 0 {
		t.Fatalf("b took %v before the claim idle time passed", ids(got))
	}

	time.Sleep(time.Until(taken.Add(o.ClaimIdle + 100*time.Millisecond)))
	takenByB := dequeueOne(t, b, "b", "e1", 0)
	reclaimed := time.Now()
	checkEntry(t, takenByB, cloneEntry(mkEntry("e1", mkMessage(firing("A")))))

	got = dequeue(t, a, "a", 10, 0)
	if time.Since(reclaimed) < o.ClaimIdle && len(got) != 0 {
		t.Fatalf("a still got %v after b claimed it", ids(got))
	}

	ack(t, b, takenByB)
	checkDepth(t, a, 0)
	ack(t, a, takenByA) // a late ack of the first delivery is harmless
	checkDepth(t, a, 0)
}

func testOwnPendingFirst(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, defaults())
	s := handle(t, op)
	queued := alert.EnqueueResult{Queued: true, Accepted: 1}

	enqueue(t, s, mkEntry("e1", mkMessage(firing("A"))), time.Minute, queued)
	dequeueOne(t, s, "a", "e1", time.Second)
	enqueue(t, s, mkEntry("e2", mkMessage(firing("B"))), time.Minute, queued)

	// Consumer "a" restarts: a new handle with the same consumer name gets its
	// unacknowledged entry back at once, before new work and without waiting
	// for the claim idle time.
	restarted := handle(t, op)
	start := time.Now()
	got, err := restarted.Dequeue(t.Context(), 0, "a", 1, 5*time.Second)
	if err != nil {
		t.Fatalf("dequeue after restart: %v", err)
	}
	if len(got) != 1 || got[0].ID != "e1" {
		t.Fatalf("dequeue after restart = %v, want [e1]", ids(got))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("dequeue after restart took %v, want no wait", d)
	}
	ack(t, restarted, got[0])
	dequeueOne(t, restarted, "a", "e2", time.Second)
}

func testDequeueBlocks(t *testing.T, open func(t *testing.T, o Options) Opener) {
	s := handle(t, open(t, defaults()))
	const block = 300 * time.Millisecond

	start := time.Now()
	if got := dequeue(t, s, "w", 10, block); len(got) != 0 {
		t.Fatalf("dequeue on an empty queue = %v", ids(got))
	}
	if d := time.Since(start); d < block-50*time.Millisecond || d > block+2*time.Second {
		t.Errorf("dequeue with block %v on an empty queue returned after %v", block, d)
	}

	start = time.Now()
	dequeueNone(t, s, "w")
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("dequeue with block 0 on an empty queue returned after %v, want at once", d)
	}
}

func testDequeueCancelled(t *testing.T, open func(t *testing.T, o Options) Opener) {
	s := handle(t, open(t, defaults()))

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	got, err := s.Dequeue(ctx, 0, "w", 10, 3*time.Second)
	if err != nil || len(got) != 0 {
		t.Fatalf("cancelled dequeue = %v, %v; want nothing and no error", ids(got), err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("cancelled dequeue returned after %v, want soon after the cancel at 100ms", d)
	}

	got, err = s.Dequeue(ctx, 0, "w", 10, time.Second)
	if err != nil || len(got) != 0 {
		t.Fatalf("dequeue with a cancelled context = %v, %v; want nothing and no error", ids(got), err)
	}

	// Nothing enqueued after the cancelled wait is lost to it: the same
	// consumer gets it next.
	enqueue(t, s, mkEntry("e1", mkMessage(firing("A"))), time.Minute, alert.EnqueueResult{Queued: true, Accepted: 1})
	dequeueOne(t, s, "w", "e1", time.Second)
}

func testDequeueWakes(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, defaults())
	consumer, producer := handle(t, op), handle(t, op)

	type result struct {
		got []*alert.Entry
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := consumer.Dequeue(t.Context(), 0, "w", 10, 5*time.Second)
		done <- result{got, err}
	}()
	time.Sleep(200 * time.Millisecond)
	enqueued := time.Now()
	enqueue(t, producer, mkEntry("e1", mkMessage(firing("A"))), time.Minute, alert.EnqueueResult{Queued: true, Accepted: 1})

	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("blocked dequeue: %v", r.err)
		}
		if len(r.got) != 1 || r.got[0].ID != "e1" {
			t.Fatalf("blocked dequeue = %v, want [e1]", ids(r.got))
		}
		if d := time.Since(enqueued); d > 2*time.Second {
			t.Errorf("blocked dequeue returned %v after the enqueue, want at once", d)
		}
	case <-time.After(7 * time.Second):
		t.Fatal("blocked dequeue did not return")
	}
}

func testPing(t *testing.T, open func(t *testing.T, o Options) Opener) {
	s := handle(t, open(t, defaults()))
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("ping: %v", err)
	}
}
