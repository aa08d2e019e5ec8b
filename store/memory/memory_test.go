package memory_test

import (
	"context"
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
