package remediation

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gopkg.in/yaml.v3"
)

// The breaker's tests are in runSuite (engine_test.go), so they run on every
// backend: the map store, alertmedic's memory store, Redis.

const breakerReason = "3 actions in 10m: the fleet-wide limit remediation.max_actions"

// breakerConfig is two rules (scale, cache warm) under a breaker of 3
// actions per 10m.
func breakerConfig(r *rig) Config {
	warm := Rule{Name: "warm-cache", Matchers: []string{`alertname="LowCacheHitRate"`}, Action: ActionCacheWarm, Budget: 4}
	c := r.config(scaleRule(), warm)
	c.MaxActions = &MaxActions{Count: 3, Per: modelMinutes(10)}
	return c
}

// overloadedOn and lowCache are alerts with their own fingerprints, so no
// cooldown stops them: only the breaker.
func overloadedOn(instance string) template.Alert {
	return firing(t0, "alertname", "ExtractionServiceOverloaded", "instance", instance)
}

func lowCache(instance string) template.Alert {
	return firing(t0, "alertname", "LowCacheHitRate", "instance", instance)
}

func calls(reqs []seen) int {
	return posts(reqs, "/scale") + posts(reqs, "/internal/cache/warm")
}

// Three actions across two rules and two replicas run; the fourth is not
// run, is audited with reason breaker, and pauses remediation on every
// replica, announced once.
func testBreakerTrips(t *testing.T, open opener) {
	r := newRig(t, open)
	c := breakerConfig(r)
	a, b := r.engine(c, "a"), r.engine(c, "b")
	wantResult(t, only(t, a.Handle(t.Context(), overloadedOn("api-1"), false)), ResultRan, "")
	r.clk.Add(time.Minute)
	wantResult(t, only(t, b.Handle(t.Context(), lowCache("c-1"), false)), ResultRan, "")
	r.clk.Add(time.Minute)
	wantResult(t, only(t, a.Handle(t.Context(), overloadedOn("api-2"), false)), ResultRan, "")
	if n := calls(r.takeReqs()); n != 3 {
		t.Fatalf("%d calls before the limit, want 3", n)
	}
	if v := testutil.ToFloat64(a.breaker.used); v != 3 {
		t.Errorf("slots used %v, want 3", v)
	}
	r.takeNotices()

	r.clk.Add(time.Minute)
	rec := only(t, b.Handle(t.Context(), lowCache("c-2"), false))
	wantResult(t, rec, ResultSkipped, ReasonBreaker)
	if want := "the fleet ran 3 actions in the last 10m, the limit remediation.max_actions: remediation is paused until resumed (POST /api/v1/remediation/resume)"; rec.Detail != want {
		t.Errorf("detail\n got %q\nwant %q", rec.Detail, want)
	}
	if n := calls(r.takeReqs()); n != 0 {
		t.Fatalf("the fourth action made %d calls", n)
	}
	// The budget run the stopped action spent is given back.
	if raw, _ := b.store.State(t.Context(), keyBudget+"warm-cache"); countRuns(t, raw) != 1 {
		t.Errorf("warm-cache budget holds %s, want the one run", raw)
	}

	// The other replica sees the pause, by the breaker, with its reason.
	ps, err := a.PauseState(t.Context())
	if err != nil || !ps.Paused || ps.By != BreakerBy || ps.Reason != breakerReason || !ps.Since.Equal(r.clk.Now()) {
		t.Fatalf("pause state on a: %+v %v", ps, err)
	}
	r.clk.Add(time.Minute)
	rec = only(t, a.Handle(t.Context(), overloadedOn("api-3"), false))
	wantResult(t, rec, ResultSkipped, ReasonPaused)
	if !strings.Contains(rec.Detail, "paused by breaker") || !strings.HasSuffix(rec.Detail, breakerReason) {
		t.Errorf("paused detail %q", rec.Detail)
	}

	ns := r.takeNotices()
	if len(ns) != 1 {
		t.Fatalf("notices %+v, want the breaker's one", ns)
	}
	n := ns[0]
	if want := "remediation paused by breaker: " + breakerReason + ". warm-cache did not run for LowCacheHitRate; remediation stays paused until resumed (POST /api/v1/remediation/resume)"; n.Text != want {
		t.Errorf("notice\n got %q\nwant %q", n.Text, want)
	}
	if n.Facts["action"] != "pause" || n.Facts["by"] != BreakerBy || n.Facts["reason"] != ReasonBreaker || n.Facts["rule"] != "warm-cache" || n.Facts["limit"] != "3 per 10m" || n.Facts["replica"] != "b" {
		t.Errorf("notice facts %v", n.Facts)
	}
	if v := testutil.ToFloat64(a.breaker.trips); v != 1 {
		t.Errorf("trips %v, want 1", v)
	}
	audit, err := a.Audit(t.Context(), 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rec := range audit {
		got = append(got, rec.Action+":"+rec.Result+":"+rec.Reason)
	}
	if strings.Join(got, " ") != "scale:skipped:paused cache_warm:skipped:breaker pause:ran:" {
		t.Errorf("audit, newest first: %q", got)
	}
}

func countRuns(t *testing.T, raw []byte) int {
	t.Helper()
	if raw == nil {
		return 0
	}
	var runs []int64
	if err := json.Unmarshal(raw, &runs); err != nil {
		t.Fatal(err)
	}
	return len(runs)
}

// stalePause is a replica that read the pause switch just before another
// paused: it passes the paused guard and meets the breaker.
type stalePause struct{ Store }

func (s stalePause) State(ctx context.Context, key string) ([]byte, error) {
	if key == keyPause {
		return nil, nil
	}
	return s.Store.State(ctx, key)
}

// A trip while already paused stops the action and says nothing more:
// the pause and its notice stay the first trip's.
func testBreakerSecondTripSilent(t *testing.T, open opener) {
	r := newRig(t, open)
	c := breakerConfig(r)
	a, late := r.engine(c, "a"), r.engine(c, "late")
	late.store = stalePause{late.store}
	for _, al := range []template.Alert{overloadedOn("api-1"), lowCache("c-1"), overloadedOn("api-2")} {
		r.clk.Add(time.Second)
		wantResult(t, only(t, a.Handle(t.Context(), al, false)), ResultRan, "")
	}
	r.takeNotices()
	r.clk.Add(time.Second)
	wantResult(t, only(t, a.Handle(t.Context(), lowCache("c-2"), false)), ResultSkipped, ReasonBreaker)
	tripped := r.clk.Now()
	r.clk.Add(time.Second)
	wantResult(t, only(t, late.Handle(t.Context(), lowCache("c-3"), false)), ResultSkipped, ReasonBreaker)
	if ns := r.takeNotices(); len(ns) != 1 || ns[0].Facts["replica"] != "a" {
		t.Errorf("notices %+v, want a's one", ns)
	}
	if v := testutil.ToFloat64(a.breaker.trips); v != 1 {
		t.Errorf("trips %v, want 1", v)
	}
	if ps, _ := a.PauseState(t.Context()); !ps.Since.Equal(tripped) || ps.By != BreakerBy {
		t.Errorf("pause state %+v, want the first trip's", ps)
	}
	if n := calls(r.takeReqs()); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
}

// The pause outlives the window: only a resume ends it, and the resume
// starts the count afresh.
func testBreakerStaysPaused(t *testing.T, open opener) {
	r := newRig(t, open)
	c := breakerConfig(r)
	a, b := r.engine(c, "a"), r.engine(c, "b")
	for _, al := range []template.Alert{overloadedOn("api-1"), lowCache("c-1"), overloadedOn("api-2")} {
		r.clk.Add(time.Second)
		wantResult(t, only(t, a.Handle(t.Context(), al, false)), ResultRan, "")
	}
	r.takeNotices()
	wantResult(t, only(t, b.Handle(t.Context(), lowCache("c-2"), false)), ResultSkipped, ReasonBreaker)
	r.clk.Add(11 * time.Minute)
	if v := testutil.ToFloat64(a.breaker.used); v != 0 {
		t.Errorf("slots used past the window %v, want 0", v)
	}
	// Past the window the count would allow it, the pause does not.
	wantResult(t, only(t, a.Handle(t.Context(), overloadedOn("api-3"), false)), ResultSkipped, ReasonPaused)
	wantResult(t, only(t, b.Handle(t.Context(), lowCache("c-3"), false)), ResultSkipped, ReasonPaused)
	if n := calls(r.takeReqs()); n != 3 {
		t.Fatalf("%d calls, want 3", n)
	}
	if err := b.Resume(t.Context(), "bob"); err != nil {
		t.Fatal(err)
	}
	r.clk.Add(time.Second)
	wantResult(t, only(t, a.Handle(t.Context(), overloadedOn("api-3"), false)), ResultRan, "")
	wantResult(t, only(t, b.Handle(t.Context(), lowCache("c-3"), false)), ResultRan, "")
	var texts []string
	for _, n := range r.takeNotices() {
		texts = append(texts, strings.SplitN(n.Text, ":", 2)[0])
	}
	if strings.Join(texts, "|") != "remediation paused by breaker|remediation resumed by bob|"+
		"scaled company-extraction-api to 5 replicas because ExtractionServiceOverloaded fired|"+
		"warmed the cache for 5 companies (Apple, Microsoft, Google, Amazon, Tesla) because LowCacheHitRate fired" {
		t.Errorf("notices %q", texts)
	}

	// A resume within the window starts the count afresh: three more run.
	r.clk.Add(time.Second)
	wantResult(t, only(t, a.Handle(t.Context(), overloadedOn("api-4"), false)), ResultRan, "")
	r.clk.Add(time.Second)
	wantResult(t, only(t, a.Handle(t.Context(), overloadedOn("api-5"), false)), ResultSkipped, ReasonBreaker)
	if ps, _ := b.PauseState(t.Context()); !ps.Paused || ps.By != BreakerBy {
		t.Errorf("second trip: %+v", ps)
	}
}

// Dry runs, global or a rule's, take no slot and are never stopped; a
// real action after them has the whole count.
func testBreakerDryRun(t *testing.T, open opener) {
	r := newRig(t, open)
	dry := scaleRule()
	dry.DryRun = true
	c := r.config(dry, Rule{Name: "warm-cache", Matchers: []string{`alertname="LowCacheHitRate"`}, Action: ActionCacheWarm})
	c.MaxActions = &MaxActions{Count: 1, Per: modelMinutes(10)}
	e := r.engine(c, "a")
	for _, inst := range []string{"api-1", "api-2", "api-3"} {
		r.clk.Add(time.Second)
		wantResult(t, only(t, e.Handle(t.Context(), overloadedOn(inst), false)), ResultDryRun, ReasonDryRun)
	}
	if raw, _ := e.store.State(t.Context(), keyFleet); countRuns(t, raw) != 0 {
		t.Errorf("dry runs took slots: %s", raw)
	}
	wantResult(t, only(t, e.Handle(t.Context(), lowCache("c-1"), false)), ResultRan, "")
	wantResult(t, only(t, e.Handle(t.Context(), lowCache("c-2"), false)), ResultSkipped, ReasonBreaker)

	// Global dry run: nothing counted either.
	r2 := newRig(t, open)
	c2 := r2.config(scaleRule())
	c2.DryRun = true
	c2.MaxActions = &MaxActions{Count: 1, Per: modelMinutes(10)}
	e2 := r2.engine(c2, "a")
	for _, inst := range []string{"api-1", "api-2"} {
		wantResult(t, only(t, e2.Handle(t.Context(), overloadedOn(inst), false)), ResultDryRun, ReasonDryRun)
	}
	if p, _ := e2.Paused(t.Context()); p {
		t.Error("dry runs tripped the breaker")
	}
}

// Without max_actions nothing is counted.
func testBreakerAbsent(t *testing.T, open opener) {
	r := newRig(t, open)
	e := r.engine(r.config(scaleRule()), "a")
	for _, inst := range []string{"api-1", "api-2", "api-3", "api-4"} {
		wantResult(t, only(t, e.Handle(t.Context(), overloadedOn(inst), false)), ResultRan, "")
	}
	if raw, _ := e.store.State(t.Context(), keyFleet); raw != nil {
		t.Errorf("counted without a breaker: %s", raw)
	}
	if v := testutil.ToFloat64(e.breaker.used); v != 0 {
		t.Errorf("slots used %v", v)
	}
}

// A store failure on the breaker's key stops the action as failed (store)
// and gives back the budget run.
func TestBreakerStoreFailure(t *testing.T) {
	s := newMapStore()
	r := newRig(t, func(*testing.T) func() Store { return func() Store { return fleetFailing{s} } })
	rule := scaleRule()
	rule.Budget = 2
	c := r.config(rule)
	c.MaxActions = &MaxActions{Count: 3, Per: modelMinutes(10)}
	e := r.engine(c, "a")
	rec := only(t, e.Handle(t.Context(), overloadedOn("api-1"), false))
	wantResult(t, rec, ResultFailed, ReasonStore)
	if !strings.Contains(rec.Detail, "take remediation breaker slot") {
		t.Errorf("detail %q", rec.Detail)
	}
	if n := calls(r.takeReqs()); n != 0 {
		t.Errorf("%d calls", n)
	}
	if raw, _ := s.State(t.Context(), keyBudget+rule.Name); countRuns(t, raw) != 0 {
		t.Errorf("budget kept the run: %s", raw)
	}
}

type fleetFailing struct{ *mapStore }

func (s fleetFailing) UpdateState(ctx context.Context, key string, ttl time.Duration, fn func([]byte) ([]byte, error)) ([]byte, error) {
	if key == keyFleet {
		return nil, errStoreDown
	}
	return s.mapStore.UpdateState(ctx, key, ttl, fn)
}

var errStoreDown = storeDown("store down")

type storeDown string

func (e storeDown) Error() string { return string(e) }

// max_actions is checked at load, each error at its key.
func TestMaxActionsConfig(t *testing.T) {
	c := decode(t, "max_actions: {count: 10, per: 10m}\n")
	if errs := c.Load(""); len(errs) > 0 {
		t.Fatal(errs)
	}
	if c.MaxActions == nil || c.MaxActions.Count != 10 || c.MaxActions.Per != modelMinutes(10) {
		t.Errorf("decoded %+v", c.MaxActions)
	}
	if c := decode(t, "rules: []\n"); c.MaxActions != nil {
		t.Errorf("absent: %+v", c.MaxActions)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"max_actions: {count: 0, per: 10m}", "max_actions.count: must be 1 or more, got 0"},
		{"max_actions: {per: 10m}", "max_actions.count: must be 1 or more, got 0"},
		{"max_actions: {count: 3}", "max_actions.per: must be a positive duration of at most 1d, got 0s"},
		{"max_actions: {count: 3, per: 25h}", "max_actions.per: must be a positive duration of at most 1d, got 1d1h"},
	} {
		c := decode(t, tc.yaml+"\n")
		errs := c.Load("")
		if len(errs) != 1 || errs[0].Error() != tc.want {
			t.Errorf("%s: got %v, want %s", tc.yaml, errs, tc.want)
		}
	}
	var bad Config
	dec := yaml.NewDecoder(strings.NewReader("max_actions: {count: 3, per: 1m, window: 2m}\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&bad); err == nil || !strings.Contains(err.Error(), "window") {
		t.Errorf("unknown key: %v", err)
	}
}
