package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/notifiers/pagerduty"
	"github.com/alertmedic/alertmedic/store"
	"github.com/alertmedic/alertmedic/store/memory"
)

// tee delivers to the recorder, then to the integration the test runs
// for real (PagerDuty, Slack: to its stand-in).
type tee struct {
	rec         *recorder
	nf          notifiers.Notifier
	integration string
}

func (t tee) Notify(ctx context.Context, n *notifiers.Notification) (bool, error) {
	_, _ = t.rec.Notify(ctx, n)
	if n.Target.Integration == t.integration {
		return t.nf.Notify(ctx, n)
	}
	return false, nil
}

// pdEvent is what the PagerDuty stand-in keeps of an Events API v2 event.
type pdEvent struct {
	Action      string
	DedupKey    string
	Remediation string // payload.custom_details.remediation
}

// pdStandIn speaks the Events API v2 enqueue endpoint on loopback.
type pdStandIn struct {
	*httptest.Server
	mu     sync.Mutex
	events []pdEvent
}

func newPDStandIn(t *testing.T) *pdStandIn {
	s := &pdStandIn{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue" {
			http.NotFound(w, r)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		var ev struct {
			EventAction string `json:"event_action"`
			DedupKey    string `json:"dedup_key"`
			Payload     struct {
				CustomDetails map[string]any `json:"custom_details"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rem, _ := ev.Payload.CustomDetails["remediation"].(string)
		s.mu.Lock()
		s.events = append(s.events, pdEvent{Action: ev.EventAction, DedupKey: ev.DedupKey, Remediation: rem})
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"success","message":"Event processed","dedup_key":"`+ev.DedupKey+`"}`)
	}))
	t.Cleanup(s.Close)
	return s
}

// none fails the test when PagerDuty got anything since the last take:
// paged when it should not have been.
func (s *pdStandIn) none(t *testing.T, what string) {
	t.Helper()
	if ev := s.take(); len(ev) != 0 {
		t.Fatalf("%s: PagerDuty got %+v", what, ev)
	}
}

func (s *pdStandIn) take() []pdEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.events
	s.events = nil
	return e
}

// heldRules is the shipped configuration with hold_for_remediation on the
// pager: the overloaded alert (critical) pages PagerDuty only if the scale
// did not help; its Slack channel and email hear at once.
func heldRules(t *testing.T) *Rules {
	t.Helper()
	yml := strings.Replace(string(config.Example), "      - type: pagerduty\n", "      - type: pagerduty\n        hold_for_remediation: true\n", 1)
	if yml == string(config.Example) {
		t.Fatal("the example has no pagerduty integration to hold")
	}
	return rulesFrom(t, yml)
}

// held is a replica on st that pages through pd, fired the overloaded
// alert at t0 and ran (or tried) the scale from 2 replicas.
func held(t *testing.T, st sharedStore, clk *clock, orch *orchestrator, pd *pdStandIn, name string) *replica {
	t.Helper()
	nf := pagerduty.New(pagerduty.Config{RoutingKey: "routing-key-secret", URL: pd.URL + "/v2/enqueue"}, nil)
	return newReplicaWith(t, st, clk, orch, prometheus.NewRegistry(), name, heldRules(t), nf, nil)
}

// An effective scale never pages: the firing is held from PagerDuty (the
// channel and the mail have it at once), the resolve waits with it, the
// verdict drops both, and ops hears one "auto-remediated" line.
func TestHoldEffectiveScaleNeverPages(t *testing.T) {
	clk := &clock{t: t0}
	orch, pd := newOrchestrator(t, 2), newPDStandIn(t)
	g := held(t, memory.New(memory.Options{}), clk, orch, pd, "r1")
	labels := overloadedAlert()
	g.feed(t, mk(alert.StatusFiring, t0, labels...))
	g.remedies(t)
	if k := kinds(g.rec.take()); k["alerts critical-alerts/slack[0]"] != 1 || k["alerts oncall/email[1]"] != 1 || k["alerts oncall/pagerduty[0]"] != 0 {
		t.Fatalf("at the firing: %v, want Slack and email, no page", k)
	}
	wantSeen(t, orch.take(), "GET /services/company-extraction-api", "POST /scale 5")

	clk.Add(3 * time.Minute)
	g.feed(t, mk(alert.StatusResolved, t0, labels...))
	g.remedies(t)
	if k := kinds(g.rec.take()); k["alerts critical-alerts/slack[0]"] != 1 || k["alerts oncall/pagerduty[0]"] != 0 {
		t.Fatalf("at the resolve: %v, want Slack's resolve, nothing to PagerDuty", k)
	}
	clk.Add(verifyWithin - 3*time.Minute)
	g.verify(t)
	ns := g.notices()
	if len(ns) != 1 || !strings.HasPrefix(ns[0], "auto-remediated: ExtractionServiceOverloaded resolved at 2026-11-26T12:00:10Z, within 10m of the action (scaled company-extraction-api from 2 to 5 replicas)") ||
		!strings.HasSuffix(ns[0], "; the held page to oncall/pagerduty[0] was not sent") {
		t.Errorf("notices %q", ns)
	}
	// Past the longest hold, nothing went to PagerDuty, and nothing waits.
	clk.Add(time.Hour)
	g.flush(t)
	pd.none(t, "after the verdict")
	if n := outboxLen(t, g.st); n != 0 {
		t.Errorf("%d outbox items left", n)
	}
	wantSeen(t, orch.take())
}

// An ineffective scale pages once, at the verdict, with the action and its
// rollback in custom_details; it is scaled back to the count before.
func TestHoldIneffectiveScalePagesOnceWithWhatWasTried(t *testing.T) {
	clk := &clock{t: t0}
	orch, pd := newOrchestrator(t, 2), newPDStandIn(t)
	g := held(t, memory.New(memory.Options{}), clk, orch, pd, "r1")
	labels := overloadedAlert()
	g.feed(t, mk(alert.StatusFiring, t0, labels...))
	g.remedies(t)
	// Alertmanager repeats the alert: it is not held, or paged, again.
	clk.Add(5 * time.Minute)
	g.feed(t, mk(alert.StatusFiring, t0, labels...))
	g.remedies(t)
	pd.none(t, "paged while held")
	g.notices()
	clk.Add(verifyWithin - 5*time.Minute)
	g.verify(t)
	wantSeen(t, orch.take(), "GET /services/company-extraction-api", "POST /scale 5", "POST /scale 2")
	ev := pd.take()
	if len(ev) != 1 || ev[0].Action != "trigger" {
		t.Fatalf("PagerDuty got %+v, want one trigger", ev)
	}
	want := "rule scale-extraction at 2026-11-26T12:00:00Z: scaled company-extraction-api from 2 to 5 replicas; the alert was still firing at the end of the 10m window; rollback ran: scaled company-extraction-api back to 2 replicas"
	if ev[0].Remediation != want {
		t.Errorf("custom_details.remediation %q\nwant %q", ev[0].Remediation, want)
	}
	if ns := g.notices(); len(ns) != 1 || !strings.HasPrefix(ns[0], "ineffective: ") {
		t.Errorf("notices %q", ns)
	}
	clk.Add(time.Hour)
	g.verify(t)
	pd.none(t, "paged again")
}

// A guard that stops the action (remediation paused) pages at once, saying
// why nothing was done.
func TestHoldGuardStoppedPagesAtOnce(t *testing.T) {
	clk := &clock{t: t0}
	orch, pd := newOrchestrator(t, 2), newPDStandIn(t)
	g := held(t, memory.New(memory.Options{}), clk, orch, pd, "r1")
	if _, err := g.eng.Pause(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	g.feed(t, mk(alert.StatusFiring, t0, overloadedAlert()...))
	pd.none(t, "paged before remediation decided")
	g.remedies(t)
	wantSeen(t, orch.take())
	ev := pd.take()
	if len(ev) != 1 || ev[0].Action != "trigger" ||
		!strings.HasPrefix(ev[0].Remediation, "rule scale-extraction did not act (paused): remediation was paused by alice at 2026-11-26T12:00:00Z") {
		t.Fatalf("PagerDuty got %+v", ev)
	}
	clk.Add(time.Hour)
	g.flush(t)
	pd.none(t, "paged again")
}

// With nobody left to judge it (the remediation never ran), the page goes
// out when its hold ends, the window plus a minute after it came, and not
// before.
func TestHoldEndsWithoutVerdict(t *testing.T) {
	clk := &clock{t: t0}
	orch, pd := newOrchestrator(t, 2), newPDStandIn(t)
	g := held(t, memory.New(memory.Options{}), clk, orch, pd, "r1")
	g.feed(t, mk(alert.StatusFiring, t0, overloadedAlert()...))
	clk.Add(verifyWithin + HoldGrace - time.Second)
	g.flush(t)
	pd.none(t, "paged before the hold ended")
	clk.Add(time.Second)
	g.flush(t)
	ev := pd.take()
	if len(ev) != 1 || !strings.Contains(ev[0].Remediation, "no verdict was reached by 2026-11-26T12:11:00Z, so this page went out") {
		t.Fatalf("PagerDuty got %+v", ev)
	}
}

func outboxLen(t *testing.T, st Store) int {
	t.Helper()
	n := 0
	for shard := 0; shard < st.Shards(); shard++ {
		k, err := st.(interface {
			QueueLen(context.Context, int, string) (int, error)
		}).QueueLen(context.Background(), shard, store.QueueOutbox)
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	return n
}

// On Redis, across replicas: the one that held the page and scaled is
// gone; the other judges the scale ineffective and sends the page, once,
// with what was tried.
func TestHoldAcrossReplicasRedis(t *testing.T) {
	sa, sb := twoReplicas(t)
	clk := &clock{t: t0}
	orch, pd := newOrchestrator(t, 3), newPDStandIn(t)
	a := held(t, sa.(sharedStore), clk, orch, pd, "r1")
	a.feed(t, mk(alert.StatusFiring, t0, overloadedAlert()...))
	a.remedies(t)
	wantSeen(t, orch.take(), "GET /services/company-extraction-api", "POST /scale 5")

	b := held(t, sb.(sharedStore), clk, orch, pd, "r2") // a is gone
	clk.Add(verifyWithin)
	b.flush(t)
	pd.none(t, "paged before the verdict")
	b.verify(t)
	ev := pd.take()
	if len(ev) != 1 || !strings.HasPrefix(ev[0].Remediation, "rule scale-extraction at 2026-11-26T12:00:00Z: scaled company-extraction-api from 3 to 5 replicas; the alert was still firing") {
		t.Fatalf("PagerDuty got %+v", ev)
	}
	clk.Add(time.Hour)
	a.flush(t)
	b.flush(t)
	pd.none(t, "paged again")
}

// failRemedySettle fails the first settle of a remediation task, as a
// replica that dies between running the action and settling its task: the
// task is handed out again when its lease ends.
type failRemedySettle struct {
	*memory.Store
	mu     sync.Mutex
	failed bool
}

func (f *failRemedySettle) Settle(ctx context.Context, shard int, queue string, st store.Settlement) (store.Settled, error) {
	f.mu.Lock()
	first := queue == store.QueueRemedy && !f.failed
	f.failed = f.failed || first
	f.mu.Unlock()
	if first {
		return store.Settled{}, errors.New("connection reset")
	}
	return f.Store.Settle(ctx, shard, queue, st)
}

// A remediation task handed out again after its action ran meets the
// cooldown its own run started: the held page still waits for the
// verdict, and an effective scale never pages.
func TestHoldSurvivesTaskHandedOutAgain(t *testing.T) {
	clk := &clock{t: t0}
	orch, pd := newOrchestrator(t, 2), newPDStandIn(t)
	st := &failRemedySettle{Store: memory.New(memory.Options{})}
	g := held(t, st, clk, orch, pd, "r1")
	labels := overloadedAlert()
	g.feed(t, mk(alert.StatusFiring, t0, labels...))
	g.remedies(t)
	wantSeen(t, orch.take(), "GET /services/company-extraction-api", "POST /scale 5")
	if !st.failed {
		t.Fatal("the task's settle did not fail")
	}
	// Its lease runs out: handed out again, it meets the cooldown.
	clk.Add(g.eng.MaxRunTime() + 6*time.Second)
	g.remedies(t)
	wantSeen(t, orch.take())
	pd.none(t, "paged when the task came again")
	g.notices()
	clk.Add(time.Minute)
	g.feed(t, mk(alert.StatusResolved, t0, labels...))
	clk.t = t0.Add(verifyWithin)
	g.verify(t)
	if ns := g.notices(); len(ns) != 1 || !strings.HasPrefix(ns[0], "auto-remediated: ") {
		t.Errorf("notices %q", ns)
	}
	clk.Add(time.Hour)
	g.flush(t)
	pd.none(t, "after the verdict")
}
