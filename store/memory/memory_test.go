package memory_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"

	"github.com/alertmedic/alertmedic/store/memory"
	"github.com/alertmedic/alertmedic/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) storetest.Opener {
		// One process, one store: every "replica" handle is the same value.
		s := memory.New(memory.Options{
			Capacity:         o.Capacity,
			ClaimIdle:        o.ClaimIdle,
			HistoryRetention: o.HistoryRetention,
			HistoryMax:       o.HistoryMax,
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

// Memory stays bounded: expired keys and histories go as time passes, and
// the caps hold under any rate.
func TestBounded(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := memory.New(memory.Options{Capacity: 1 << 20, MaxDedupKeys: 500, MaxFingerprints: 300, HistoryRetention: time.Hour, Now: clock})
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		e := entryOf(strconv.Itoa(i), 50)
		if _, err := s.Enqueue(ctx, e, 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st["dedup_keys"] > 500+50 || st["fingerprints"] > 300+50 {
		t.Errorf("caps not held: %v", st)
	}
	now = now.Add(2 * time.Hour)
	e := entryOf("late", 1)
	s.Enqueue(ctx, e, 10*time.Minute)
	s.Record(ctx, e)
	if st := s.Stats(); st["dedup_keys"] != 1 || st["fingerprints"] != 1 {
		t.Errorf("after the windows passed: %v, want only the new alert", st)
	}
}

// After a burst's retention ran out the live heap comes back down: the
// expired alerts are let go, and so are the map tables they grew (a Go map
// keeps its table after deletes unless it is rebuilt).
func TestMemoryComesBack(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := memory.New(memory.Options{Capacity: 1 << 20, HistoryRetention: time.Minute, DoneTTL: time.Minute, Now: clock})
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
	for {
		got, err := s.Dequeue(ctx, "c", 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		for _, e := range got {
			if _, err := s.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
			for _, a := range e.Message.Alerts {
				if _, err := s.UpdateState(ctx, "flap:"+a.Fingerprint, time.Minute, func([]byte) ([]byte, error) { return []byte("x"), nil }); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Ack(ctx, e.Receipt); err != nil {
				t.Fatal(err)
			}
		}
	}
	peak := live()
	if st := s.Stats(); st["fingerprints"] != 100000 || st["dedup_keys"] != 100000 {
		t.Fatalf("not all alerts held: %v", st)
	}
	now = now.Add(2 * time.Minute)
	e := entryOf("late", 1)
	if _, err := s.Enqueue(ctx, e, time.Minute); err != nil {
		t.Fatal(err)
	}
	after := live()
	runtime.KeepAlive(s)
	added, left := float64(peak)-float64(base), float64(after)-float64(base)
	t.Logf("live heap: base %.1f MiB, peak %.1f MiB, after retention %.1f MiB", float64(base)/(1<<20), float64(peak)/(1<<20), float64(after)/(1<<20))
	if added < 10<<20 {
		t.Fatalf("100,000 alerts added only %.1f MiB: the measurement is off", added/(1<<20))
	}
	if left > 0.1*added {
		t.Errorf("after the retention %.0f %% of what the alerts added is still live", 100*left/added)
	}
}
