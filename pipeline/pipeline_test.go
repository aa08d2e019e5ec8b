package pipeline

import (
	"bytes"
	"context"
	"errors"
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

func TestWorkersRecordAndAcknowledge(t *testing.T) {
	st := memory.New(memory.Options{})
	logs := &syncBuf{}
	reg := prometheus.NewRegistry()
	p := New(Options{Store: st, Logger: zerolog.New(logs), Registerer: reg, Workers: 3, Consumer: "r1", Block: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	p.Start(ctx)
	for i := 0; i < 20; i++ {
		status := alert.StatusFiring
		if i%4 == 0 {
			status = alert.StatusResolved
		}
		if _, err := st.Enqueue(ctx, entry("e"+string(rune('A'+i)), 2, status), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "40 alerts processed", func() bool { n, _ := st.Processed(ctx); return n == 40 })
	eventually(t, "queue empty", func() bool { d, _ := st.Depth(ctx); return d == 0 })
	cancel()
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(logs.String(), `"message":"alert processed"`); got != 40 {
		t.Errorf("%d alerts logged, want 40", got)
	}
	if got := testutil.ToFloat64(p.m.processed.WithLabelValues(alert.StatusResolved)); got != 10 {
		t.Errorf("resolved counted %v, want 10", got)
	}
	e := entry("eA", 2, alert.StatusResolved)
	h, _ := st.History(ctx, e.Message.Alerts[0].Fingerprint)
	if len(h) != 1 || h[0].Status != alert.StatusResolved || !h[0].ReceivedAt.Equal(e.ReceivedAt) {
		t.Errorf("history %+v", h)
	}
	if !strings.Contains(logs.String(), `"entry_id":"eA"`) {
		t.Error("log lines do not carry the entry id")
	}
}

// flakyStore fails Record a given number of times, as a Redis outage does.
type flakyStore struct {
	*memory.Store
	failures atomic.Int32
	calls    atomic.Int32
}

func (f *flakyStore) Record(ctx context.Context, e *alert.Entry) (bool, error) {
	f.calls.Add(1)
	if f.failures.Add(-1) >= 0 {
		return false, alert.Unavailable("record", errors.New("connection refused"))
	}
	return f.Store.Record(ctx, e)
}

func TestFailedEntryStaysQueuedAndIsRetried(t *testing.T) {
	f := &flakyStore{Store: memory.New(memory.Options{})}
	f.failures.Store(3)
	p := New(Options{Store: f, Logger: zerolog.Nop(), Workers: 1, Consumer: "r1", Block: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := f.Enqueue(ctx, entry("e1", 1, alert.StatusFiring), time.Minute); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.Start(ctx)
	eventually(t, "processed after the outage", func() bool { n, _ := f.Processed(ctx); return n == 1 })
	// The ack follows the record: the entry leaves the queue just after.
	eventually(t, "queue empty after success", func() bool { d, _ := f.Depth(ctx); return d == 0 })
	if c := f.calls.Load(); c != 4 {
		t.Errorf("record called %d times, want 4 (3 failures, then success)", c)
	}
	// 100ms + 200ms + 400ms of backoff: the failures were not retried in a
	// busy loop.
	if el := time.Since(start); el < 600*time.Millisecond {
		t.Errorf("retried within %v: no backoff", el)
	}
	if got := testutil.ToFloat64(p.m.storeErrors.WithLabelValues("record")); got != 3 {
		t.Errorf("store errors counted %v, want 3", got)
	}
}

func TestRedeliveredEntryIsNotProcessedTwice(t *testing.T) {
	st := memory.New(memory.Options{})
	logs := &syncBuf{}
	p := New(Options{Store: st, Logger: zerolog.New(logs), Workers: 1, Consumer: "r1"})
	ctx := context.Background()
	e := entry("e1", 3, alert.StatusFiring)
	// Recorded by a replica that died before acknowledging.
	if _, err := st.Record(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enqueue(ctx, e, time.Minute); err != nil {
		t.Fatal(err)
	}
	n, err := p.Drain(ctx)
	if err != nil || n != 1 {
		t.Fatalf("drain: %d %v", n, err)
	}
	if c, _ := st.Processed(ctx); c != 3 {
		t.Errorf("processed %d, want 3 (once)", c)
	}
	if strings.Contains(logs.String(), `"alert processed"`) || !strings.Contains(logs.String(), "already processed") {
		t.Errorf("redelivery handled wrongly:\n%s", logs)
	}
	if got := testutil.ToFloat64(p.m.redelivered); got != 1 {
		t.Errorf("redelivered = %v", got)
	}
}
