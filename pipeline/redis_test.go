package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/store/redis/redistest"
)

// twoReplicas opens two stores on one Redis prefix: two daemons' views.
func twoReplicas(t *testing.T) (Store, Store) {
	t.Helper()
	prefix := redistest.Prefix(t, "pipeline")
	return redistest.Open(t, prefix), redistest.Open(t, prefix)
}

// Flapping is judged on state shared by the replicas: changes that reach
// either count together, and the start is announced once.
func TestFlappingSharedAcrossReplicasRedis(t *testing.T) {
	sa, sb := twoReplicas(t)
	clk := &clock{t: t0}
	rules := example(t)
	a, b := newRig(t, sa, rules, clk), newRig(t, sb, rules, clk)
	status, start := alert.StatusFiring, t0
	for change := 0; change <= 7; change++ {
		g := a
		if change%2 == 1 {
			g = b
		}
		g.feed(t, mk(status, start, "alertname", "ExternalAPIFailure", "severity", "warning", "api", "crawl4ai"))
		clk.Add(20 * time.Second)
		if status == alert.StatusFiring {
			status = alert.StatusResolved
		} else {
			status, start = alert.StatusFiring, clk.Now()
		}
	}
	all := append(a.rec.take(), b.rec.take()...)
	k := kinds(all)
	if k["flapping_started ops/slack[0]"] != 1 || k["alerts warning-alerts/slack[0]"] != 6 || len(all) != 7 {
		t.Fatalf("notifications %v: want 6 deliveries, then one start notice and the 7th held", k)
	}
	// Both replicas check at the same instant after stable_for: one stop.
	clk.Add(16 * time.Minute)
	checkBoth(t, a, b)
	all = append(a.rec.take(), b.rec.take()...)
	k = kinds(all)
	if k["flapping_stopped ops/slack[0]"] != 1 || k["alerts warning-alerts/slack[0]"] != 1 || len(all) != 2 {
		t.Errorf("after stable_for: %v, want one stop notice and the held resolve", k)
	}
}

func checkBoth(t *testing.T, a, b *rig) {
	t.Helper()
	var wg sync.WaitGroup
	for _, g := range []*rig{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.p.Check(context.Background()); err != nil {
				t.Errorf("check: %v", err)
			}
		}()
	}
	wg.Wait()
}

// A deferred digest filled by both replicas is sent once, however many
// replicas check when the mute ends.
func TestDeferredDigestOnceAcrossReplicasRedis(t *testing.T) {
	sa, sb := twoReplicas(t)
	night := time.Date(2026, 11, 26, 23, 30, 0, 0, time.UTC)
	clk := &clock{t: night}
	rules := rulesFrom(t, deferYAML)
	a, b := newRig(t, sa, rules, clk), newRig(t, sb, rules, clk)
	for i := 0; i < 10; i++ {
		g := a
		if i%2 == 1 {
			g = b
		}
		g.feed(t, mk(alert.StatusFiring, night, "alertname", "DiskFull", "severity", "warning", "instance", string(rune('a'+i))))
	}
	if got := append(a.rec.take(), b.rec.take()...); len(got) != 0 {
		t.Fatalf("sent during quiet hours: %v", kinds(got))
	}
	clk.Set(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	for i := 0; i < 5; i++ {
		checkBoth(t, a, b)
	}
	all := append(a.rec.take(), b.rec.take()...)
	if len(all) != 1 || all[0].Kind != notifiers.KindDigest || len(all[0].Alerts) != 10 {
		t.Fatalf("digests sent: %d (%v) with %d alerts; want exactly one with all 10 alerts", len(all), kinds(all), len(all[0].Alerts))
	}
}
