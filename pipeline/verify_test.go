package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/remediation"
	"github.com/alertmedic/alertmedic/store"
	"github.com/alertmedic/alertmedic/store/memory"
)

// orchestrator stands in for the orchestrator on loopback: it keeps a
// replica count, answers GET /services/{name} with it, takes POST /scale,
// and notes every request as "METHOD path[ replicas]".
type orchestrator struct {
	*httptest.Server
	mu       sync.Mutex
	replicas int
	seen     []string
}

func newOrchestrator(t *testing.T, replicas int) *orchestrator {
	o := &orchestrator{replicas: replicas}
	o.Server = httptest.NewServer(o)
	t.Cleanup(o.Close)
	return o
}

func (o *orchestrator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/services/"):
		o.seen = append(o.seen, "GET "+r.URL.Path)
		fmt.Fprintf(w, `{"replicas": %d}`, o.replicas)
	case r.Method == http.MethodPost && r.URL.Path == "/scale":
		var b struct{ Replicas int }
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &b)
		o.replicas = b.Replicas
		o.seen = append(o.seen, fmt.Sprintf("POST /scale %d", b.Replicas))
		_, _ = io.WriteString(w, `{}`)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (o *orchestrator) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.seen
	o.seen = nil
	return s
}

// sharedStore is what both the pipeline and the engine need of a backend.
type sharedStore interface {
	Store
	remediation.Store
}

// replica is one alertmedic process: an engine and a pipeline on a store,
// driven by the test's clock.
type replica struct {
	*rig
	eng *remediation.Engine
}

const verifyWithin = 10 * time.Minute

// newReplica starts a replica whose one rule scales the extraction API to 5
// and verifies it, rolling back when ineffective.
func newReplica(t *testing.T, st sharedStore, clk *clock, orch *orchestrator, reg prometheus.Registerer, name string) *replica {
	t.Helper()
	return newReplicaWith(t, st, clk, orch, reg, name, example(t), nil, nil)
}

// newReplicaWith is newReplica routing by rules, delivering through nf
// as well as to the recorder (nf nil: the recorder only).
func newReplicaWith(t *testing.T, st sharedStore, clk *clock, orch *orchestrator, reg prometheus.Registerer, name string, rules *Rules, nf notifiers.Notifier, mod func(*remediation.Rule)) *replica {
	t.Helper()
	c := remediation.DefaultConfig()
	c.OrchestratorURL = orch.URL
	c.Rules = []remediation.Rule{{
		Name: "scale-extraction", Matchers: []string{`alertname="ExtractionServiceOverloaded"`}, Action: remediation.ActionScale,
		Params: map[string]string{"service": "company-extraction-api", "replicas": "5"}, Min: 1, Max: 10,
		Verify: &remediation.VerifyConfig{Within: model.Duration(verifyWithin)}, RollbackOn: remediation.RollbackOnIneffective,
	}}
	if mod != nil {
		mod(&c.Rules[0])
	}
	if errs := c.Load(""); len(errs) > 0 {
		t.Fatal(errs)
	}
	eng, err := remediation.New(remediation.Options{Config: c, Store: st, Logger: zerolog.Nop(), Registerer: reg, Now: clk.Now, ReplicaID: name})
	if err != nil {
		t.Fatal(err)
	}
	rules.RemediationReceiver = "ops"
	rec := &recorder{}
	var out notifiers.Notifier = rec
	if nf != nil {
		out = tee{rec, nf, "pagerduty"}
	}
	p := New(Options{Store: st, Logger: zerolog.Nop(), Workers: 1, Consumer: name, Notifier: out, Rules: rules, Now: clk.Now, Remediator: eng})
	return &replica{rig: &rig{p: p, st: st, clk: clk, rec: rec}, eng: eng}
}

// remedies runs the due remediation tasks, verify the due verifications;
// both then deliver what they announced.
func (g *replica) remedies(t *testing.T) {
	t.Helper()
	if err := g.p.runRemedies(context.Background(), allShards(g.st.Shards()), true); err != nil {
		t.Fatal(err)
	}
	g.flush(t)
}

func (g *replica) verify(t *testing.T) {
	t.Helper()
	if err := g.p.runVerifies(context.Background(), allShards(g.st.Shards())); err != nil {
		t.Fatal(err)
	}
	g.flush(t)
}

// notices are the remediation notices delivered to ops since the last
// call.
func (g *replica) notices() []string {
	var out []string
	for _, n := range g.rec.take() {
		if n.Kind == notifiers.KindRemediation && n.Target.Key() == "ops/slack[0]" {
			out = append(out, n.Text)
		}
	}
	return out
}

// outcomes reads alertmedic_remediation_outcomes_total by outcome, for the
// rule.
func outcomes(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "alertmedic_remediation_outcomes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			if ls["rule"] == "scale-extraction" {
				out[ls["outcome"]] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func verifyQueueLen(t *testing.T, st Store) int {
	t.Helper()
	n, err := st.(interface {
		QueueLen(context.Context, int, string) (int, error)
	}).QueueLen(context.Background(), 0, store.QueueVerify)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func overloadedAlert() []string {
	return []string{"alertname", "ExtractionServiceOverloaded", "severity", "critical", "instance", "api-1:8000"}
}

func wantSeen(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("the orchestrator saw [%s], want [%s]", strings.Join(got, ", "), strings.Join(want, ", "))
	}
}

// scaled is a replica on a memory store that has fired the overloaded
// alert at t0 and run the rule's scale from before replicas.
func scaled(t *testing.T, before int) (*replica, *clock, *orchestrator, *prometheus.Registry) {
	t.Helper()
	clk := &clock{t: t0}
	orch := newOrchestrator(t, before)
	reg := prometheus.NewRegistry()
	g := newReplica(t, memory.New(memory.Options{}), clk, orch, reg, "r1")
	g.feed(t, mk(alert.StatusFiring, t0, overloadedAlert()...))
	g.remedies(t)
	return g, clk, orch, reg
}

// An effective scale: the alert resolves within the window; the verdict at
// its end is effective, announced and counted, and nothing is undone.
func TestVerifyEffectiveScale(t *testing.T) {
	g, clk, orch, reg := scaled(t, 2)
	if o := outcomes(t, reg); len(o) != 2 || o["effective"] != 0 || o["ineffective"] != 0 {
		t.Errorf("outcomes before the verdict: %v, want both at 0", o)
	}
	labels := overloadedAlert()
	wantSeen(t, orch.take(), "GET /services/company-extraction-api", "POST /scale 5")
	if ns := g.notices(); len(ns) != 1 || ns[0] != "scaled company-extraction-api from 2 to 5 replicas because ExtractionServiceOverloaded fired" {
		t.Errorf("notices %q", ns)
	}
	if n := verifyQueueLen(t, g.st); n != 1 {
		t.Fatalf("%d verifications waiting, want 1", n)
	}

	clk.Add(3 * time.Minute)
	g.feed(t, mk(alert.StatusResolved, t0, labels...))
	g.remedies(t)
	g.rec.take()
	clk.Add(verifyWithin - 3*time.Minute - time.Second)
	g.verify(t) // not due yet
	if n := verifyQueueLen(t, g.st); n != 1 || len(g.notices()) != 0 {
		t.Fatalf("judged before the window ended")
	}
	clk.Add(time.Second)
	g.verify(t)
	wantSeen(t, orch.take())
	ns := g.notices()
	if len(ns) != 1 || !strings.HasPrefix(ns[0], "effective: ExtractionServiceOverloaded resolved at 2026-11-26T12:00:10Z, within 10m of the action (scaled company-extraction-api from 2 to 5 replicas)") {
		t.Errorf("notices %q", ns)
	}
	if o := outcomes(t, reg); o["effective"] != 1 || o["ineffective"] != 0 {
		t.Errorf("outcomes %v", o)
	}
	if n := verifyQueueLen(t, g.st); n != 0 {
		t.Errorf("%d verifications left", n)
	}
	audit, err := g.eng.Audit(context.Background(), 1)
	if err != nil || len(audit) != 1 || audit[0].Result != remediation.OutcomeEffective || audit[0].Reason != remediation.ReasonVerify ||
		audit[0].PreviousReplicas == nil || *audit[0].PreviousReplicas != 2 {
		t.Errorf("audit %+v %v", audit, err)
	}
}

// An ineffective scale with rollback_on: still firing at the end of the
// window, it is scaled back to the count before. The stand-in sees GET,
// POST 5, POST 2; ops hears the verdict and the rollback.
func TestVerifyIneffectiveScaleRollsBack(t *testing.T) {
	g, clk, orch, reg := scaled(t, 2)
	labels := overloadedAlert()
	// Alertmanager repeats the firing alert; the cooldown stops a second
	// scale, and the verification stays one.
	clk.Add(5 * time.Minute)
	g.feed(t, mk(alert.StatusFiring, t0, labels...))
	g.remedies(t)
	g.notices()
	clk.Add(5 * time.Minute)
	g.verify(t)
	wantSeen(t, orch.take(), "GET /services/company-extraction-api", "POST /scale 5", "POST /scale 2")
	ns := g.notices()
	if len(ns) != 1 ||
		ns[0] != "ineffective: ExtractionServiceOverloaded was still firing at the end of the 10m window (scaled company-extraction-api from 2 to 5 replicas)\n"+
			"rolled back scale-extraction: scaled company-extraction-api back to 2 replicas, because ExtractionServiceOverloaded was still firing at the end of the 10m window" {
		t.Errorf("notices %q", ns)
	}
	if o := outcomes(t, reg); o["effective"] != 0 || o["ineffective"] != 1 {
		t.Errorf("outcomes %v", o)
	}
	// Judged once: nothing left to judge, nothing sent again.
	clk.Add(time.Hour)
	g.verify(t)
	wantSeen(t, orch.take())
	if n := verifyQueueLen(t, g.st); n != 0 {
		t.Errorf("%d verifications left", n)
	}
}

// Firing again within the window (resolved, then a new episode) is
// ineffective.
func TestVerifyFiringAgainIsIneffective(t *testing.T) {
	g, clk, orch, _ := scaled(t, 2)
	labels := overloadedAlert()
	clk.Add(2 * time.Minute)
	g.feed(t, mk(alert.StatusResolved, t0, labels...))
	clk.Add(2 * time.Minute)
	g.feed(t, mk(alert.StatusFiring, clk.Now(), labels...))
	g.remedies(t) // the new episode is within the cooldown: not scaled again
	g.notices()
	clk.Add(6 * time.Minute)
	g.verify(t)
	wantSeen(t, orch.take(), "GET /services/company-extraction-api", "POST /scale 5", "POST /scale 2")
	if ns := g.notices(); len(ns) != 1 || !strings.Contains(ns[0], "was firing again (since 2026-11-26T12:04:00Z)") {
		t.Errorf("notices %q", ns)
	}
}

// A verification survives a restart: the replica that scaled is gone, and
// a new one on the same store finishes the wait.
func TestVerifySurvivesRestart(t *testing.T) {
	st := memory.New(memory.Options{})
	testSurvivesRestart(t, st, st)
}

func testSurvivesRestart(t *testing.T, sa, sb sharedStore) {
	clk := &clock{t: t0}
	orch := newOrchestrator(t, 3)
	reg := prometheus.NewRegistry()
	a := newReplica(t, sa, clk, orch, reg, "r1")
	labels := overloadedAlert()
	a.feed(t, mk(alert.StatusFiring, t0, labels...))
	a.remedies(t)
	wantSeen(t, orch.take(), "GET /services/company-extraction-api", "POST /scale 5")

	b := newReplica(t, sb, clk, orch, prometheus.NewRegistry(), "r2") // a is gone
	clk.Add(verifyWithin)
	b.verify(t)
	wantSeen(t, orch.take(), "POST /scale 3")
	if ns := b.notices(); len(ns) != 1 || !strings.HasPrefix(ns[0], "ineffective: ") || !strings.Contains(ns[0], "\nrolled back scale-extraction: scaled company-extraction-api back to 3 replicas") {
		t.Errorf("notices %q", ns)
	}
	if o := outcomes(t, reg); o["ineffective"] != 0 {
		t.Errorf("the replica that is gone counted a verdict: %v", o)
	}
	a.verify(t) // were it back, it has nothing left to do
	wantSeen(t, orch.take())
}

// The same on Redis, the second replica on a connection of its own.
func TestVerifySurvivesRestartRedis(t *testing.T) {
	sa, sb := twoReplicas(t)
	testSurvivesRestart(t, sa.(sharedStore), sb.(sharedStore))
}
