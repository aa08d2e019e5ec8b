package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/store"
	"github.com/alertmedic/alertmedic/store/memory"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func entry(id string, n int, status string) *alert.Entry {
	m := &alert.Message{Version: "4", GroupKey: "{}:{}", Data: &template.Data{Receiver: "r", Status: status}}
	start := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		labels := template.KV{"alertname": "HighErrorRate", "instance": id + "-" + string(rune('a'+i))}
		a := template.Alert{Status: status, Labels: labels, StartsAt: start, Fingerprint: alert.Fingerprint(labels)}
		if status == alert.StatusResolved {
			a.EndsAt = start.Add(time.Minute)
		}
		m.Alerts = append(m.Alerts, a)
	}
	return &alert.Entry{ID: id, ReceivedAt: start.Add(2 * time.Minute), Message: m}
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// records reads the records of e's alerts.
func records(t *testing.T, st Store, e *alert.Entry) []*alertRecord {
	t.Helper()
	var keys []string
	for _, a := range e.Message.Alerts {
		keys = append(keys, alertKey(a.Fingerprint))
	}
	vs, err := st.Get(context.Background(), 0, keys...)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*alertRecord, len(vs))
	for i, v := range vs {
		if v != nil {
			out[i] = decodeRecord(e.Message.Alerts[i].Fingerprint, v)
		}
	}
	return out
}

// processedOnce says whether every alert of es has a record of exactly one
// observation.
func processedOnce(t *testing.T, st Store, es ...*alert.Entry) bool {
	t.Helper()
	for _, e := range es {
		for _, r := range records(t, st, e) {
			if r == nil || r.N != 1 {
				return false
			}
		}
	}
	return true
}

func TestWorkersRecordAndAcknowledge(t *testing.T) {
	st := memory.New(memory.Options{})
	logs := &syncBuf{}
	reg := prometheus.NewRegistry()
	p := New(Options{Store: st, Logger: zerolog.New(logs), Registerer: reg, Workers: 3, Consumer: "r1", Block: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	p.Start(ctx)
	var es []*alert.Entry
	for i := 0; i < 20; i++ {
		status := alert.StatusFiring
		if i%4 == 0 {
			status = alert.StatusResolved
		}
		e := entry("e"+string(rune('A'+i)), 2, status)
		es = append(es, e)
		if _, err := st.Enqueue(ctx, e, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "queue empty", func() bool { d, _ := st.Depth(ctx); return d == 0 })
	cancel()
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !processedOnce(t, st, es...) {
		t.Error("not every alert has a record of one observation")
	}
	if got := strings.Count(logs.String(), `"message":"alert processed"`); got != 40 {
		t.Errorf("%d alerts logged, want 40", got)
	}
	if got := testutil.ToFloat64(p.m.processed.WithLabelValues(alert.StatusResolved)); got != 10 {
		t.Errorf("resolved counted %v, want 10", got)
	}
	e := entry("eA", 2, alert.StatusResolved)
	r := records(t, st, e)[0]
	if r.Status != alert.StatusResolved || r.SeenAt != e.ReceivedAt.UnixMilli() || r.EndsAt != e.Message.Alerts[0].EndsAt.UnixMilli() {
		t.Errorf("record %+v", r)
	}
	if !strings.Contains(logs.String(), `"entry_id":"eA"`) {
		t.Error("log lines do not carry the entry id")
	}
}

// flakyStore fails Commit a given number of times, as a Redis outage does.
type flakyStore struct {
	*memory.Store
	failures atomic.Int32
	calls    atomic.Int32
}

func (f *flakyStore) Commit(ctx context.Context, shard int, txn store.Txn) error {
	f.calls.Add(1)
	if f.failures.Add(-1) >= 0 {
		return alert.Unavailable("commit", errors.New("connection refused"))
	}
	return f.Store.Commit(ctx, shard, txn)
}

func TestFailedEntryStaysQueuedAndIsRetried(t *testing.T) {
	f := &flakyStore{Store: memory.New(memory.Options{})}
	f.failures.Store(3)
	p := New(Options{Store: f, Logger: zerolog.Nop(), Workers: 1, Consumer: "r1", Block: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := entry("e1", 1, alert.StatusFiring)
	if _, err := f.Enqueue(ctx, e, time.Minute); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.Start(ctx)
	// The commit carries the acknowledgement: processed and out of the
	// queue in one step.
	eventually(t, "queue empty after success", func() bool { d, _ := f.Depth(ctx); return d == 0 })
	if !processedOnce(t, f, e) {
		t.Error("not processed once")
	}
	if c := f.calls.Load(); c != 4 {
		t.Errorf("commit called %d times, want 4 (3 failures, then success)", c)
	}
	// 100ms + 200ms + 400ms of backoff: the failures were not retried in a
	// busy loop.
	if el := time.Since(start); el < 600*time.Millisecond {
		t.Errorf("retried within %v: no backoff", el)
	}
	if got := testutil.ToFloat64(p.m.storeErrors.WithLabelValues("commit")); got != 3 {
		t.Errorf("store errors counted %v, want 3", got)
	}
}

// An entry taken over by a second consumer after claim_idle, while the
// first still works on it: whichever commits second writes nothing.
func TestEntryTakenOverIsProcessedOnce(t *testing.T) {
	st := memory.New(memory.Options{ClaimIdle: time.Millisecond})
	logs := &syncBuf{}
	p := New(Options{Store: st, Logger: zerolog.New(logs), Workers: 1, Consumer: "r1", Rules: example(t)})
	ctx := context.Background()
	e := entry("e1", 3, alert.StatusFiring)
	if _, err := st.Enqueue(ctx, e, time.Minute); err != nil {
		t.Fatal(err)
	}
	first, _ := st.Dequeue(ctx, 0, "slow", 1, 0)
	time.Sleep(5 * time.Millisecond)
	second, _ := st.Dequeue(ctx, 0, "fast", 1, 0)
	if len(first) != 1 || len(second) != 1 {
		t.Fatalf("dequeued %d and %d", len(first), len(second))
	}
	if !p.process(ctx, second[0]) || !p.process(ctx, first[0]) {
		t.Fatal("process failed")
	}
	if !processedOnce(t, st, e) {
		t.Errorf("records %+v: want one observation each", records(t, st, e))
	}
	if n, _ := st.QueueLen(ctx, 0, store.QueueOutbox); n != 1 {
		t.Errorf("outbox holds %d items, want the one notification", n)
	}
	if got := strings.Count(logs.String(), `"alert processed"`); got != 3 || !strings.Contains(logs.String(), "finished by another consumer") {
		t.Errorf("take-over handled wrongly:\n%s", logs)
	}
	if got := testutil.ToFloat64(p.m.redelivered); got != 1 {
		t.Errorf("redelivered = %v", got)
	}
}

// gate holds every Slack send until released, and delivers the others.
type gate struct {
	recorder
	release  chan struct{}
	inFlight atomic.Int32
	maxSlack atomic.Int32
}

func (g *gate) Notify(ctx context.Context, n *notifiers.Notification) (bool, error) {
	if n.Target.Integration == "slack" {
		c := g.inFlight.Add(1)
		defer g.inFlight.Add(-1)
		for {
			m := g.maxSlack.Load()
			if c <= m || g.maxSlack.CompareAndSwap(m, c) {
				break
			}
		}
		select {
		case <-g.release:
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
	return g.recorder.Notify(ctx, n)
}

// A target that hangs delays no other target, and holds one send at a time
// rather than a send slot per claim.
func TestSlowTargetDelaysNoOther(t *testing.T) {
	st := memory.New(memory.Options{})
	g := &gate{release: make(chan struct{})}
	r := rulesFrom(t, `
route:
  receiver: both
receivers:
  - name: both
    integrations:
      - type: slack
        settings: {channel: "#x"}
      - type: pagerduty
delivery:
  rate_limits:
    slack: {per_second: 0}
`)
	p := New(Options{Store: st, Logger: zerolog.Nop(), Workers: 2, Consumer: "r1", Block: 20 * time.Millisecond, Notifier: g, Rules: r})
	ctx, cancel := context.WithCancel(context.Background())
	p.Start(ctx)
	defer func() {
		close(g.release)
		cancel()
		p.Wait(context.Background())
	}()
	for i := 0; i < 60; i++ {
		if _, err := st.Enqueue(ctx, entry(fmt.Sprintf("s%d", i), 1, alert.StatusFiring), time.Minute); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	eventually(t, "every PagerDuty notification while Slack hangs", func() bool {
		n := 0
		g.mu.Lock()
		for _, x := range g.sent {
			if x.Target.Integration == "pagerduty" {
				n += len(x.Alerts)
			}
		}
		g.mu.Unlock()
		return n == 60
	})
	if m := g.maxSlack.Load(); m != 1 {
		t.Errorf("%d Slack sends at once, want one at a time", m)
	}
}

// A batch holding two observations of one alert is decided in order from
// one read: the second sees the first's record, and both are delivered.
func TestBatchDecidesInOrder(t *testing.T) {
	st := memory.New(memory.Options{})
	rec := &recorder{}
	p := New(Options{Store: st, Logger: zerolog.Nop(), Workers: 1, Consumer: "r1", Notifier: rec, Rules: example(t)})
	ctx := context.Background()
	fire := entry("b1", 1, alert.StatusFiring)
	res := entry("b2", 1, alert.StatusResolved)
	fire.Message.Alerts[0].Labels["severity"] = "warning"
	res.Message.Alerts[0].Labels = fire.Message.Alerts[0].Labels
	for _, e := range []*alert.Entry{fire, res} {
		e.Message.Alerts[0].Fingerprint = alert.Fingerprint(e.Message.Alerts[0].Labels)
		if _, err := st.Enqueue(ctx, e, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	es, _ := st.Dequeue(ctx, 0, "c", 8, 0)
	if len(es) != 2 || !p.processBatch(ctx, es) {
		t.Fatalf("batch of %d not processed", len(es))
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r := records(t, st, fire)[0]; r == nil || r.N != 2 || r.Status != alert.StatusResolved {
		t.Errorf("record %+v: want two observations, the resolve last", r)
	}
	var statuses []string
	for _, n := range rec.take() {
		for _, a := range n.Alerts {
			statuses = append(statuses, a.Status)
		}
	}
	// Merged into one message, the latest observation kept.
	if strings.Join(statuses, ",") != "resolved" {
		t.Errorf("delivered %v, want the resolve (the firing merged into it)", statuses)
	}
	if got := testutil.ToFloat64(p.m.conflicts); got != 0 {
		t.Errorf("%v conflicts: the batch's second entry must expect the first's write", got)
	}
}
