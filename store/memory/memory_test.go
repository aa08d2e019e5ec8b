package memory_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/store"
	"github.com/alertmedic/alertmedic/store/memory"
	"github.com/alertmedic/alertmedic/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) storetest.Opener {
		// One process, one store: every "replica" handle is the same value.
		s := memory.New(memory.Options{
			Capacity:       o.Capacity,
			ClaimIdle:      o.ClaimIdle,
			MaxDeadLetters: o.MaxDeadLetters,
		})
		return func() storetest.Store { return s }
	})
}

func entryOf(id string, n int) *alert.Entry {
	m := &alert.Message{Version: "4", Data: &template.Data{}}
	for i := 0; i < n; i++ {
		l := template.KV{"alertname": "A", "i": id + "-" + strconv.Itoa(i)}
		m.Alerts = append(m.Alerts, template.Alert{Status: alert.StatusFiring, Labels: l, StartsAt: time.Unix(0, 0), Fingerprint: alert.Fingerprint(l)})
	}
	return &alert.Entry{ID: id, ReceivedAt: time.Unix(0, 0), Message: m}
}

// process takes every queued entry and commits what a worker would: the
// entry's acknowledgement and one record per alert.
func process(t *testing.T, s *memory.Store, ttl time.Duration, pin bool) {
	t.Helper()
	ctx := context.Background()
	for {
		got, err := s.Dequeue(ctx, 0, "c", 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			return
		}
		for _, e := range got {
			txn := store.Txn{Ack: e.Receipt}
			for _, a := range e.Message.Alerts {
				txn.Set = append(txn.Set, store.Value{Key: "alert:" + a.Fingerprint, Value: []byte(`{"status":"firing"}`), TTL: ttl, Pin: pin})
			}
			if err := s.Commit(ctx, 0, txn); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Memory stays bounded: expired keys go as time passes, and the caps hold
// under any rate, the oldest going first and counted.
func TestBounded(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s := memory.New(memory.Options{Capacity: 1 << 20, MaxDedupKeys: 500, MaxValues: 300, Now: func() time.Time { return now }})
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if _, err := s.Enqueue(ctx, entryOf(strconv.Itoa(i), 50), 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		process(t, s, time.Hour, false)
	}
	st := s.Stats()
	if st.Sizes["dedup_keys"] > 500+50 || st.Sizes["values"] > 300+50 {
		t.Errorf("caps not held: %v", st.Sizes)
	}
	if st.Evictions["dedup_keys"] < 400 || st.Evictions["values"] < 600 {
		t.Errorf("evictions not counted: %v", st.Evictions)
	}
	now = now.Add(2 * time.Hour)
	s.Enqueue(ctx, entryOf("late", 1), 10*time.Minute)
	process(t, s, time.Hour, false)
	if st := s.Stats(); st.Sizes["dedup_keys"] != 1 || st.Sizes["values"] != 1 {
		t.Errorf("after the windows passed: %v, want only the new alert", st.Sizes)
	}
}

// What is still needed is never evicted: pinned values and unsent items
// stop new work instead (the webhook answers 503), and counted.
func TestNeededStateRefusesNewWork(t *testing.T) {
	s := memory.New(memory.Options{MaxValues: 100, MaxItems: 3})
	ctx := context.Background()
	s.Enqueue(ctx, entryOf("pinned", 100), time.Minute)
	process(t, s, time.Hour, true)
	if _, err := s.Enqueue(ctx, entryOf("more", 1), time.Minute); !errors.Is(err, store.ErrFull) || !errors.Is(err, alert.ErrQueueFull) {
		t.Errorf("enqueue with every value pinned: %v, want store.ErrFull", err)
	}
	if st := s.Stats(); st.Sizes["values"] != 100 || st.Refusals["values"] != 1 {
		t.Errorf("pinned values evicted or refusal not counted: %v %v", st.Sizes, st.Refusals)
	}

	s = memory.New(memory.Options{MaxItems: 3})
	put := func(id string) error {
		return s.Commit(ctx, 0, store.Txn{Put: []store.Put{{Queue: store.QueueOutbox, Item: store.Item{ID: id, Due: time.Now()}}}})
	}
	for i := 0; i < 3; i++ {
		if err := put(strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := put("4"); !errors.Is(err, store.ErrFull) {
		t.Errorf("a fourth item: %v, want store.ErrFull", err)
	}
	if _, err := s.Enqueue(ctx, entryOf("x", 1), time.Minute); !errors.Is(err, store.ErrFull) {
		t.Errorf("enqueue with the outbox full: %v, want store.ErrFull", err)
	}
	if n, _ := s.QueueLen(ctx, 0, store.QueueOutbox); n != 3 {
		t.Errorf("outbox holds %d, want the 3 unsent items", n)
	}
}

// After a burst's retention ran out the live heap comes back down: the
// expired alerts are let go, and so are the map tables they grew (a Go map
// keeps its table after deletes unless it is rebuilt).
func TestMemoryComesBack(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s := memory.New(memory.Options{Capacity: 1 << 20, Now: func() time.Time { return now }})
	ctx := context.Background()
	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := live()
	for i := 0; i < 2000; i++ { // 100,000 distinct alerts
		if _, err := s.Enqueue(ctx, entryOf(strconv.Itoa(i), 50), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	process(t, s, time.Minute, false)
	peak := live()
	if st := s.Stats(); st.Sizes["values"] != 100000 || st.Sizes["dedup_keys"] != 100000 {
		t.Fatalf("not all alerts held: %v", st.Sizes)
	}
	now = now.Add(2 * time.Minute)
	if _, err := s.Enqueue(ctx, entryOf("late", 1), time.Minute); err != nil {
		t.Fatal(err)
	}
	after := live()
	runtime.KeepAlive(s)
	added, left := float64(peak)-float64(base), float64(after)-float64(base)
	t.Logf("live heap: base %.1f MiB, peak %.1f MiB, after retention %.1f MiB", float64(base)/(1<<20), float64(peak)/(1<<20), float64(after)/(1<<20))
	if added < 5<<20 {
		t.Fatalf("100,000 alerts added only %.1f MiB: the measurement is off", added/(1<<20))
	}
	if left > 0.1*added {
		t.Errorf("after the retention %.0f %% of what the alerts added is still live", 100*left/added)
	}
}
