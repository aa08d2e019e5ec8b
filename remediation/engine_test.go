package remediation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/store/memory"
)

// runSuite runs every engine test on the backend open gives. The map store
// and alertmedic's memory store run here; redis_test.go runs it on Redis.
func runSuite(t *testing.T, open opener) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, opener)
	}{
		{"ActionRequests", testActionRequests},
		{"MissingAPILabel", testMissingAPILabel},
		{"CooldownActsOnce", testCooldownActsOnce},
		{"Budget", testBudget},
		{"TwoReplicasLock", testTwoReplicasLock},
		{"TwoReplicasRace", testTwoReplicasRace},
		{"LockOwnership", testLockOwnership},
		{"Retries", testRetries},
		{"DryRun", testDryRun},
		{"PauseResume", testPauseResume},
		{"Disabled", testDisabled},
		{"Flapping", testFlapping},
		{"Stale", testStale},
		{"AuditAndMetrics", testAuditAndMetrics},
		{"Apply", testApply},
		{"NoTokenLeak", testNoTokenLeak},
		// breaker_test.go
		{"BreakerTrips", testBreakerTrips},
		{"BreakerSecondTripSilent", testBreakerSecondTripSilent},
		{"BreakerStaysPausedUntilResumed", testBreakerStaysPaused},
		{"BreakerDryRunTakesNoSlot", testBreakerDryRun},
		{"BreakerAbsent", testBreakerAbsent},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open) })
	}
}

func TestEngineMapStore(t *testing.T) {
	runSuite(t, func(t *testing.T) func() Store {
		s := newMapStore()
		return func() Store { return s }
	})
}

func TestEngineMemoryStore(t *testing.T) {
	runSuite(t, func(t *testing.T) func() Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return func() Store { return s }
	})
}

// want is one request an endpoint must receive.
type want struct {
	srv, method, path, body string
	auth                    bool
	header                  map[string]string
}

func checkReqs(t *testing.T, got []seen, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("got %d requests, want %d: %+v", len(got), len(wants), got)
	}
	for i, w := range wants {
		g := got[i]
		if g.Srv != w.srv || g.Method != w.method || g.Path != w.path || g.Body != w.body {
			t.Errorf("request %d: %s %s %s %q, want %s %s %s %q", i, g.Srv, g.Method, g.Path, g.Body, w.srv, w.method, w.path, w.body)
		}
		auth := g.Header.Get("Authorization")
		if w.auth && auth != "Bearer "+token {
			t.Errorf("request %d: Authorization %q, want the bearer token", i, auth)
		}
		if !w.auth && auth != "" {
			t.Errorf("request %d: sent Authorization to %s, which must not get the token", i, g.Srv)
		}
		if w.body != "" && g.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %d: Content-Type %q", i, g.Header.Get("Content-Type"))
		}
		if g.Method != http.MethodGet && g.Header.Get("Idempotency-Key") == "" {
			t.Errorf("request %d: no Idempotency-Key", i)
		}
		for k, v := range w.header {
			if g.Header.Get(k) != v {
				t.Errorf("request %d: header %s = %q, want %q", i, k, g.Header.Get(k), v)
			}
		}
	}
}

// Each action sends exactly what the extraction API and its orchestrator
// expect, on fire and on resolve, and says so in a notice.
func testActionRequests(t *testing.T, open opener) {
	const svc = "company-extraction-api"
	cases := []struct {
		name          string
		rule          func(r *rig) Rule
		alert         []string
		setup         func(r *rig)
		fire, resolve []want
		fireNotice    string
		resolveNotice string // "" with no resolve requests: no record at all
	}{
		{
			name: "scale fixed",
			rule: func(*rig) Rule {
				r := scaleRule()
				r.OnResolve = &ActionConfig{Action: ActionScale, Params: map[string]string{"service": svc, "replicas": "2"}}
				return r
			},
			alert:         []string{"alertname", "ExtractionServiceOverloaded"},
			fire:          []want{{srv: "orch", method: "POST", path: "/scale", body: `{"service":"company-extraction-api","replicas":5}`, auth: true}},
			fireNotice:    "scaled company-extraction-api to 5 replicas because ExtractionServiceOverloaded fired",
			resolve:       []want{{srv: "orch", method: "POST", path: "/scale", body: `{"service":"company-extraction-api","replicas":2}`, auth: true}},
			resolveNotice: "scaled company-extraction-api to 2 replicas because ExtractionServiceOverloaded resolved",
		},
		{
			name: "scale by step within bounds",
			rule: func(*rig) Rule {
				r := scaleRule()
				r.Params = map[string]string{"service": svc, "step": "2"}
				r.Max = 6
				r.OnResolve = &ActionConfig{Action: ActionScale, Params: map[string]string{"service": svc, "step": "-1"}}
				return r
			},
			alert: []string{"alertname", "ExtractionServiceOverloaded"},
			setup: func(r *rig) {
				r.orch.setAnswer(func(req *http.Request, _ []byte) (int, string) {
					if req.Method == http.MethodGet {
						return 200, `{"replicas": 5}`
					}
					return 200, `{}`
				})
			},
			fire: []want{
				{srv: "orch", method: "GET", path: "/services/company-extraction-api", auth: true},
				{srv: "orch", method: "POST", path: "/scale", body: `{"service":"company-extraction-api","replicas":6}`, auth: true},
			},
			fireNotice: "scaled company-extraction-api from 5 to 6 replicas because ExtractionServiceOverloaded fired",
			resolve: []want{
				{srv: "orch", method: "GET", path: "/services/company-extraction-api", auth: true},
				{srv: "orch", method: "POST", path: "/scale", body: `{"service":"company-extraction-api","replicas":4}`, auth: true},
			},
			resolveNotice: "scaled company-extraction-api from 5 to 4 replicas because ExtractionServiceOverloaded resolved",
		},
		{
			name: "cache warm with the default companies",
			rule: func(*rig) Rule {
				return Rule{Name: "warm-cache", Matchers: []string{`alertname="LowCacheHitRate"`}, Action: ActionCacheWarm}
			},
			alert:      []string{"alertname", "LowCacheHitRate"},
			fire:       []want{{srv: "api", method: "POST", path: "/internal/cache/warm", body: `{"companies":["Apple","Microsoft","Google","Amazon","Tesla"]}`, auth: true}},
			fireNotice: "warmed the cache for 5 companies (Apple, Microsoft, Google, Amazon, Tesla) because LowCacheHitRate fired",
		},
		{
			name: "circuit break and close",
			rule: func(*rig) Rule {
				return Rule{Name: "break-circuit", Matchers: []string{`alertname="ExternalAPIFailure"`}, Action: ActionCircuitBreak,
					Params: map[string]string{"ttl": "10m"}, OnResolve: &ActionConfig{Action: ActionCircuitClose}}
			},
			alert:         []string{"alertname", "ExternalAPIFailure", "api", "bright_data"},
			fire:          []want{{srv: "api", method: "POST", path: "/internal/circuit-breaker/bright_data", body: `{"ttl_seconds":600}`, auth: true}},
			fireNotice:    "circuit breaker for bright_data opened for 10m because ExternalAPIFailure fired",
			resolve:       []want{{srv: "api", method: "DELETE", path: "/internal/circuit-breaker/bright_data", auth: true}},
			resolveNotice: "circuit breaker for bright_data closed because ExternalAPIFailure resolved",
		},
		{
			name: "http templated, without the token",
			rule: func(r *rig) Rule {
				return Rule{Name: "custom", Action: ActionHTTP,
					Params: map[string]string{
						"method": "POST",
						"url":    r.hook.URL + "/hooks/{{ .Labels.alertname }}",
						"body":   `{"instance":{{ json .Labels.instance }},"summary":{{ .Annotations.summary | json }}}`,
					},
					Headers: map[string]string{"X-Alert-Severity": "{{ .Labels.severity }}"},
					OnResolve: &ActionConfig{Action: ActionHTTP, Params: map[string]string{
						"method": "delete", "url": r.hook.URL + "/hooks/{{ .Labels.alertname }}/{{ .Labels.instance | urlquery }}",
					}},
				}
			},
			alert: []string{"alertname", "ExtractionServiceOverloaded", "instance", "api-1:8000", "severity", "critical"},
			fire: []want{{srv: "hook", method: "POST", path: "/hooks/ExtractionServiceOverloaded", body: `{"instance":"api-1:8000","summary":"load is high"}`,
				header: map[string]string{"X-Alert-Severity": "critical"}}},
			// urlquery, once the way to escape, is replaced by the path's
			// escaping (which leaves ':' as it is).
			resolve: []want{{srv: "hook", method: "DELETE", path: "/hooks/ExtractionServiceOverloaded/api-1:8000"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, open)
			if tc.setup != nil {
				tc.setup(r)
			}
			e := r.engine(r.config(tc.rule(r)), "replica-a")
			a := firing(t0.Add(-time.Minute), tc.alert...)
			rec := only(t, e.Handle(t.Context(), a, false))
			wantResult(t, rec, ResultRan, "")
			checkReqs(t, r.takeReqs(), tc.fire)
			if rec.Attempts != 1 || rec.StatusCode != 200 || rec.Request == nil || rec.Status != "firing" {
				t.Errorf("record: %+v", rec)
			}
			ns := r.takeNotices()
			if tc.fireNotice != "" && (len(ns) != 1 || ns[0].Text != tc.fireNotice) {
				t.Errorf("notices %+v, want %q", ns, tc.fireNotice)
			}

			r.clk.Add(time.Minute)
			recs := e.Handle(t.Context(), resolvedAt(a, r.clk.Now()), false)
			if tc.resolve == nil {
				if len(recs) != 0 {
					t.Errorf("resolve without on_resolve made records: %+v", recs)
				}
				checkReqs(t, r.takeReqs(), nil)
				return
			}
			rec = only(t, recs)
			wantResult(t, rec, ResultRan, "")
			if rec.Status != "resolved" {
				t.Errorf("status %q", rec.Status)
			}
			checkReqs(t, r.takeReqs(), tc.resolve)
			ns = r.takeNotices()
			if tc.resolveNotice != "" && (len(ns) != 1 || ns[0].Text != tc.resolveNotice) {
				t.Errorf("notices %+v, want %q", ns, tc.resolveNotice)
			}
		})
	}
}

// The circuit breaker needs the alert's api label; without it the action is
// skipped with a reason, and nothing is spent.
func testMissingAPILabel(t *testing.T, open opener) {
	r := newRig(t, open)
	e := r.engine(r.config(Rule{Name: "break-circuit", Matchers: []string{`alertname="ExternalAPIFailure"`}, Action: ActionCircuitBreak}), "a")
	rec := only(t, e.Handle(t.Context(), firing(t0, "alertname", "ExternalAPIFailure"), false))
	wantResult(t, rec, ResultSkipped, ReasonMissingLabel)
	if !strings.Contains(rec.Detail, "api label") {
		t.Errorf("detail %q", rec.Detail)
	}
	checkReqs(t, r.takeReqs(), nil)
}

// The same firing alert, re-sent ten times within a minute, scales once;
// after the cooldown it scales again (not on every repeat).
func testCooldownActsOnce(t *testing.T, open opener) {
	r := newRig(t, open)
	e := r.engine(r.config(scaleRule()), "a")
	a := overloaded(t0.Add(-time.Minute))
	for i := range 10 {
		rec := only(t, e.Handle(t.Context(), a, false))
		if i == 0 {
			wantResult(t, rec, ResultRan, "")
		} else {
			wantResult(t, rec, ResultSkipped, ReasonCooldown)
			if !rec.Again {
				t.Errorf("resend %d: the cooldown is not said to be this episode's own run", i)
			}
		}
		r.clk.Add(6 * time.Second)
	}
	if n := posts(r.takeReqs(), "/scale"); n != 1 {
		t.Fatalf("scaled %d times within a minute, want 1", n)
	}
	// A new episode (it fired again after the run) is stopped by the
	// cooldown of an earlier one's run.
	if rec := only(t, e.Handle(t.Context(), overloaded(r.clk.Now()), false)); rec.Reason != ReasonCooldown || rec.Again {
		t.Errorf("a new episode: %s %s, again %v", rec.Result, rec.Reason, rec.Again)
	}
	// The cooldown (15m by default) counts from the run: 14m later still
	// cooling, 15m later acting.
	r.clk.Add(14*time.Minute - time.Minute)
	wantResult(t, only(t, e.Handle(t.Context(), a, false)), ResultSkipped, ReasonCooldown)
	r.clk.Add(time.Minute)
	wantResult(t, only(t, e.Handle(t.Context(), a, false)), ResultRan, "")
	if n := posts(r.takeReqs(), "/scale"); n != 1 {
		t.Fatalf("after the cooldown: %d scale calls, want 1", n)
	}
	// A different alert (another fingerprint) has its own cooldown.
	other := firing(t0, "alertname", "ExtractionServiceOverloaded", "instance", "api-2:8000")
	wantResult(t, only(t, e.Handle(t.Context(), other, false)), ResultRan, "")
}

// The budget caps a rule's runs in any rolling hour, across alerts; a
// skipped run is audited with reason budget.
func testBudget(t *testing.T, open opener) {
	r := newRig(t, open)
	rule := scaleRule()
	rule.Budget = 2
	rule.Cooldown = modelMinutes(1)
	e := r.engine(r.config(rule), "a")
	a := overloaded(t0)
	wantResult(t, only(t, e.Handle(t.Context(), a, false)), ResultRan, "")
	r.clk.Add(2 * time.Minute)
	wantResult(t, only(t, e.Handle(t.Context(), a, false)), ResultRan, "")
	r.clk.Add(2 * time.Minute)
	wantResult(t, only(t, e.Handle(t.Context(), a, false)), ResultSkipped, ReasonBudget)
	// Across alerts too: the budget is the rule's.
	b := firing(t0.Add(time.Hour), "alertname", "ExtractionServiceOverloaded", "instance", "api-9:8000")
	wantResult(t, only(t, e.Handle(t.Context(), b, false)), ResultSkipped, ReasonBudget)
	recs, err := e.Audit(t.Context(), 1)
	if err != nil || len(recs) != 1 || recs[0].Reason != ReasonBudget || recs[0].Result != ResultSkipped {
		t.Fatalf("audit: %+v %v", recs, err)
	}
	if n := posts(r.takeReqs(), "/scale"); n != 2 {
		t.Fatalf("%d scale calls, want 2", n)
	}
	// Rolling: an hour after the first run, one run is free again.
	r.clk.Set(t0.Add(time.Hour + time.Second))
	wantResult(t, only(t, e.Handle(t.Context(), overloaded(t0.Add(time.Hour)), false)), ResultRan, "")
	wantResult(t, only(t, e.Handle(t.Context(), b, false)), ResultSkipped, ReasonBudget)
}

// Two replicas handle the same alert at the same instant, 50 times: exactly
// one acts each round, and the lock is what stops the other. Each round's
// alert has its own fingerprint, so the cooldown of an earlier round cannot
// hide a lock bug; the winner's call is held open until the loser has
// answered, so the loser always meets the lock (not the cooldown, which
// starts when the run ends).
func testTwoReplicasLock(t *testing.T, open opener) {
	r := newRig(t, open)
	c := r.config(scaleRule())
	a, b := r.engine(c, "replica-a"), r.engine(c, "replica-b")
	var mu sync.Mutex
	var gate chan struct{}
	r.orch.setAnswer(func(*http.Request, []byte) (int, string) {
		mu.Lock()
		g := gate
		mu.Unlock()
		select {
		case <-g:
		case <-time.After(3 * time.Second): // a lock bug: both got here
		}
		return 200, "{}"
	})
	winners := map[string]int{}
	for round := range 50 {
		mu.Lock()
		gate = make(chan struct{})
		mu.Unlock()
		al := firing(t0, "alertname", "ExtractionServiceOverloaded", "round", fmt.Sprint(round))
		out := make(chan Record, 2)
		start := make(chan struct{})
		for _, e := range []*rigEngine{a, b} {
			go func() {
				<-start
				out <- only(t, e.Handle(context.Background(), al, false))
			}()
		}
		close(start)
		first := <-out
		mu.Lock()
		close(gate)
		mu.Unlock()
		second := <-out
		wantResult(t, first, ResultSkipped, ReasonLock)
		wantResult(t, second, ResultRan, "")
		if first.Replica == second.Replica {
			t.Errorf("round %d: both records from %s", round, first.Replica)
		}
		winners[second.Replica]++
		if n := posts(r.takeReqs(), "/scale"); n != 1 {
			t.Fatalf("round %d: %d scale calls, want exactly 1", round, n)
		}
		r.clk.Add(time.Second)
	}
	t.Logf("winners: %v", winners)
}

// Without holding the winner's call open, the two replicas race freely:
// still exactly one call per round, and the other is stopped by the lock or,
// if the winner already finished, by the cooldown.
func testTwoReplicasRace(t *testing.T, open opener) {
	r := newRig(t, open)
	c := r.config(scaleRule())
	a, b := r.engine(c, "replica-a"), r.engine(c, "replica-b")
	for round := range 50 {
		al := firing(t0, "alertname", "ExtractionServiceOverloaded", "race", fmt.Sprint(round))
		var wg sync.WaitGroup
		recs := make([]Record, 2)
		for i, e := range []*rigEngine{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				recs[i] = only(t, e.Handle(context.Background(), al, false))
			}()
		}
		wg.Wait()
		ran := 0
		for _, rec := range recs {
			switch {
			case rec.Result == ResultRan:
				ran++
			case rec.Result == ResultSkipped && (rec.Reason == ReasonLock || rec.Reason == ReasonCooldown):
			default:
				t.Errorf("round %d: unexpected record %+v", round, rec)
			}
		}
		if n := posts(r.takeReqs(), "/scale"); ran != 1 || n != 1 {
			t.Fatalf("round %d: %d ran, %d calls; want 1 and 1", round, ran, n)
		}
	}
}

// The lock is released only by its owner, and a dead owner's lock expires.
func testLockOwnership(t *testing.T, open opener) {
	r := newRig(t, open)
	c := r.config(scaleRule())
	e := r.engine(c, "a")
	cc := e.cur.Load()
	al := overloaded(t0)
	g := guard{e: e.Engine, rule: cc.rules[0], fp: al.Fingerprint, status: "firing", now: t0, lockTTL: runBound(c, 1) + lockMargin}
	// A replica that took the lock and died.
	if d, _, err := g.acquire(t.Context(), "dead-replica-token"); err != nil || d != "" {
		t.Fatalf("acquire: %q %v", d, err)
	}
	rec := only(t, e.Handle(t.Context(), al, false))
	wantResult(t, rec, ResultSkipped, ReasonLock)
	// Someone else's release leaves it in place.
	g.release(t.Context(), "not-the-owner", false)
	wantResult(t, only(t, e.Handle(t.Context(), al, false)), ResultSkipped, ReasonLock)
	// Expired: taken over.
	r.clk.Add(g.lockTTL + time.Second)
	wantResult(t, only(t, e.Handle(t.Context(), al, false)), ResultRan, "")
	// The dead owner's late release does not clear the cooldown the new
	// owner started.
	g.release(t.Context(), "dead-replica-token", false)
	wantResult(t, only(t, e.Handle(t.Context(), al, false)), ResultSkipped, ReasonCooldown)
}

// 5xx and 429 answers and network errors are retried with backoff; then
// the run is recorded as failed and announced. Another 4xx is final.
func testRetries(t *testing.T, open opener) {
	t.Run("503 every time", func(t *testing.T) {
		r := newRig(t, open)
		r.orch.setAnswer(func(*http.Request, []byte) (int, string) { return 503, `{"error":"overloaded"}` })
		e := r.engine(r.config(scaleRule()), "a")
		rec := only(t, e.Handle(t.Context(), overloaded(t0), false))
		wantResult(t, rec, ResultFailed, ReasonCall)
		if rec.Attempts != 3 || rec.StatusCode != 503 {
			t.Errorf("attempts %d status %d, want 3 and 503", rec.Attempts, rec.StatusCode)
		}
		const text = "scale of company-extraction-api failed after 3 attempts: unexpected status code 503"
		if rec.Detail != text {
			t.Errorf("detail %q", rec.Detail)
		}
		if n := posts(r.takeReqs(), "/scale"); n != 3 {
			t.Errorf("%d attempts reached the orchestrator, want 3", n)
		}
		ns := r.takeNotices()
		if len(ns) != 1 || ns[0].Text != text || ns[0].Facts["result"] != ResultFailed || ns[0].Facts["attempts"] != "3" {
			t.Errorf("notices %+v", ns)
		}
		r.mu.Lock()
		sleeps := r.sleeps
		r.mu.Unlock()
		if len(sleeps) != 2 || sleeps[0] <= 0 || sleeps[0] > maxBackoff || sleeps[1] > maxBackoff {
			t.Errorf("backoffs %v, want 2 short ones", sleeps)
		}
		// It ran (and failed): the cooldown holds, so a resend does not
		// hammer a struggling orchestrator.
		wantResult(t, only(t, e.Handle(t.Context(), overloaded(t0), false)), ResultSkipped, ReasonCooldown)
	})
	t.Run("503 then 200", func(t *testing.T) {
		r := newRig(t, open)
		var mu sync.Mutex
		n := 0
		r.orch.setAnswer(func(*http.Request, []byte) (int, string) {
			mu.Lock()
			defer mu.Unlock()
			if n++; n == 1 {
				return 502, ""
			}
			return 200, "{}"
		})
		e := r.engine(r.config(scaleRule()), "a")
		rec := only(t, e.Handle(t.Context(), overloaded(t0), false))
		wantResult(t, rec, ResultRan, "")
		reqs := r.takeReqs()
		if rec.Attempts != 2 || len(reqs) != 2 || reqs[0].Header.Get("Idempotency-Key") != reqs[1].Header.Get("Idempotency-Key") {
			t.Errorf("attempts %d, requests %d: a retry must carry the same idempotency key", rec.Attempts, len(reqs))
		}
	})
	// 429 is retried as 5xx is (outbound.CheckStatus); a Retry-After is
	// waited for, but no longer than maxBackoff, which bounds the run.
	for _, tc := range []struct {
		retryAfter string
		wantSleep  time.Duration
	}{{"1", time.Second}, {"30", maxBackoff}} {
		t.Run("429 with Retry-After "+tc.retryAfter, func(t *testing.T) {
			r := newRig(t, open)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", tc.retryAfter)
				w.WriteHeader(http.StatusTooManyRequests)
			}))
			t.Cleanup(srv.Close)
			c := r.config(scaleRule())
			c.OrchestratorURL = srv.URL
			rec := only(t, r.engine(c, "a").Handle(t.Context(), overloaded(t0), false))
			wantResult(t, rec, ResultFailed, ReasonCall)
			if rec.Attempts != 3 || rec.Detail != "scale of company-extraction-api failed after 3 attempts: unexpected status code 429" {
				t.Errorf("%+v", rec)
			}
			r.mu.Lock()
			sleeps := r.sleeps
			r.mu.Unlock()
			if len(sleeps) != 2 || sleeps[0] < tc.wantSleep || sleeps[1] < tc.wantSleep || sleeps[0] > maxBackoff || sleeps[1] > maxBackoff {
				t.Errorf("backoffs %v, want 2 of at least %v and at most %v", sleeps, tc.wantSleep, maxBackoff)
			}
		})
	}
	t.Run("400 is final", func(t *testing.T) {
		r := newRig(t, open)
		r.orch.setAnswer(func(*http.Request, []byte) (int, string) { return 400, `{"error":"bad service"}` })
		e := r.engine(r.config(scaleRule()), "a")
		rec := only(t, e.Handle(t.Context(), overloaded(t0), false))
		wantResult(t, rec, ResultFailed, ReasonCall)
		if rec.Attempts != 1 || rec.Detail != "scale of company-extraction-api failed after 1 attempt: unexpected status code 400" {
			t.Errorf("%+v", rec)
		}
	})
	t.Run("network error", func(t *testing.T) {
		r := newRig(t, open)
		c := r.config(scaleRule())
		r.orch.Close() // nothing listens there any more
		e := r.engine(c, "a")
		rec := only(t, e.Handle(t.Context(), overloaded(t0), false))
		wantResult(t, rec, ResultFailed, ReasonCall)
		if rec.Attempts != 3 || !strings.Contains(rec.Detail, "failed after 3 attempts: Post "+r.orch.URL+"/scale") {
			t.Errorf("%+v", rec)
		}
	})
	t.Run("step read fails", func(t *testing.T) {
		r := newRig(t, open)
		r.orch.setAnswer(func(*http.Request, []byte) (int, string) { return 503, "" })
		rule := scaleRule()
		rule.Params = map[string]string{"service": "company-extraction-api", "step": "1"}
		e := r.engine(r.config(rule), "a")
		rec := only(t, e.Handle(t.Context(), overloaded(t0), false))
		wantResult(t, rec, ResultFailed, ReasonCall)
		if rec.Detail != "scale of company-extraction-api failed after 3 attempts: read current replicas: unexpected status code 503" || rec.Request.Method != "GET" {
			t.Errorf("%+v", rec)
		}
		if n := posts(r.takeReqs(), "/scale"); n != 0 {
			t.Errorf("scaled without knowing the current count")
		}
	})
	t.Run("step at the bound", func(t *testing.T) {
		r := newRig(t, open)
		r.orch.setAnswer(func(*http.Request, []byte) (int, string) { return 200, `{"replicas": 10}` })
		rule := scaleRule()
		rule.Params = map[string]string{"service": "company-extraction-api", "step": "1"}
		e := r.engine(r.config(rule), "a")
		rec := only(t, e.Handle(t.Context(), overloaded(t0), false))
		wantResult(t, rec, ResultSkipped, ReasonNoChange)
		if n := posts(r.takeReqs(), "/scale"); n != 0 {
			t.Errorf("scaled past max")
		}
	})
}

// A dry run goes through every guard, consumes the cooldown and the budget,
// writes its audit record, and makes no call.
func testDryRun(t *testing.T, open opener) {
	for _, global := range []bool{true, false} {
		t.Run(fmt.Sprintf("global=%v", global), func(t *testing.T) {
			r := newRig(t, open)
			rule := scaleRule()
			rule.Budget = 5
			rule.DryRun = !global
			c := r.config(rule, Rule{Name: "break-circuit", Matchers: []string{`alertname="ExtractionServiceOverloaded"`}, Action: ActionCircuitBreak, DryRun: !global})
			c.DryRun = global
			e := r.engine(c, "a")
			a := overloaded(t0)
			a.Labels["api"] = "bright_data"
			recs := e.Handle(t.Context(), a, false)
			if len(recs) != 2 {
				t.Fatalf("records %+v", recs)
			}
			for _, rec := range recs {
				wantResult(t, rec, ResultDryRun, ReasonDryRun)
			}
			if recs[0].Detail != "would scale company-extraction-api to 5 replicas" || recs[1].Detail != "would open the circuit breaker for bright_data for 10m" {
				t.Errorf("details %q, %q", recs[0].Detail, recs[1].Detail)
			}
			if recs[0].Request == nil || recs[0].Request.Method != "POST" || recs[0].Request.URL != r.orch.URL+"/scale" || recs[0].Request.BodyBytes == 0 {
				t.Errorf("request summary %+v", recs[0].Request)
			}
			if reqs := r.takeReqs(); len(reqs) != 0 {
				t.Fatalf("a dry run made %d calls", len(reqs))
			}
			if ns := r.takeNotices(); len(ns) != 0 {
				t.Errorf("a dry run announced %+v", ns)
			}
			audit, err := e.Audit(t.Context(), 10)
			if err != nil || len(audit) != 2 || audit[0].Result != ResultDryRun || audit[1].Result != ResultDryRun {
				t.Fatalf("audit %+v %v", audit, err)
			}
			wantResult(t, only(t, e.Handle(t.Context(), a, false)[:1]), ResultSkipped, ReasonCooldown)
		})
	}
}

// Pause lives in the store: one replica pauses, every replica stops; resume
// restores. Both are audited and announced.
func testPauseResume(t *testing.T, open opener) {
	r := newRig(t, open)
	c := r.config(scaleRule())
	a, b := r.engine(c, "a"), r.engine(c, "b")
	if err := a.Pause(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	if p, err := b.Paused(t.Context()); err != nil || !p {
		t.Fatalf("b sees paused=%v %v", p, err)
	}
	if ps, _ := b.PauseState(t.Context()); ps.By != "alice" || !ps.Since.Equal(t0) {
		t.Errorf("pause state %+v", ps)
	}
	r.clk.Add(time.Second)
	rec := only(t, b.Handle(t.Context(), overloaded(t0), false))
	wantResult(t, rec, ResultSkipped, ReasonPaused)
	if !strings.Contains(rec.Detail, "alice") {
		t.Errorf("detail %q", rec.Detail)
	}
	// Pausing again changes nothing, and is not announced twice.
	if err := b.Pause(t.Context(), "bob"); err != nil {
		t.Fatal(err)
	}
	if ps, _ := a.PauseState(t.Context()); ps.By != "alice" {
		t.Errorf("second pause replaced the first: %+v", ps)
	}
	checkReqs(t, r.takeReqs(), nil)
	r.clk.Add(time.Minute)
	if err := b.Resume(t.Context(), "bob"); err != nil {
		t.Fatal(err)
	}
	if p, _ := a.Paused(t.Context()); p {
		t.Fatal("still paused after resume")
	}
	r.clk.Add(time.Second)
	wantResult(t, only(t, a.Handle(t.Context(), overloaded(t0), false)), ResultRan, "")
	var texts []string
	for _, n := range r.takeNotices() {
		texts = append(texts, n.Text)
	}
	if strings.Join(texts, "|") != "remediation paused by alice|remediation resumed by bob|scaled company-extraction-api to 5 replicas because ExtractionServiceOverloaded fired" {
		t.Errorf("notices %q", texts)
	}
	audit, _ := a.Audit(t.Context(), 0)
	var got []string
	for _, rec := range audit {
		got = append(got, rec.Action+":"+rec.Result+":"+rec.Reason)
	}
	if strings.Join(got, " ") != "scale:ran: resume:ran: scale:skipped:paused pause:ran:" {
		t.Errorf("audit, newest first: %q", got)
	}
}

// enabled: false skips everything, and says so in the audit.
func testDisabled(t *testing.T, open opener) {
	r := newRig(t, open)
	c := r.config(scaleRule())
	c.Enabled = false
	e := r.engine(c, "a")
	wantResult(t, only(t, e.Handle(t.Context(), overloaded(t0), false)), ResultSkipped, ReasonDisabled)
	checkReqs(t, r.takeReqs(), nil)
	if audit, err := e.Audit(t.Context(), 5); err != nil || len(audit) != 1 || audit[0].Reason != ReasonDisabled {
		t.Errorf("audit %+v %v", audit, err)
	}
}

// A flapping alert is still remediated when its rule says while_flapping.
func testFlapping(t *testing.T, open opener) {
	r := newRig(t, open)
	strict := scaleRule()
	loose := Rule{Name: "warm-anyway", Matchers: []string{`alertname="ExtractionServiceOverloaded"`}, Action: ActionCacheWarm, WhileFlapping: true}
	e := r.engine(r.config(strict, loose), "a")
	recs := e.Handle(t.Context(), overloaded(t0), true)
	if len(recs) != 2 {
		t.Fatalf("records %+v", recs)
	}
	wantResult(t, recs[0], ResultSkipped, ReasonFlapping)
	wantResult(t, recs[1], ResultRan, "")
	reqs := r.takeReqs()
	if len(reqs) != 1 || reqs[0].Path != "/internal/cache/warm" {
		t.Fatalf("requests %+v", reqs)
	}
	// Not flapping any more: the strict rule acts (the skip spent nothing).
	wantResult(t, e.Handle(t.Context(), overloaded(t0), false)[0], ResultRan, "")
}

// An alert older than max_age is a stale replay: skipped. A resolve is
// judged by when it resolved.
func testStale(t *testing.T, open opener) {
	r := newRig(t, open)
	rule := scaleRule()
	rule.OnResolve = &ActionConfig{Action: ActionScale, Params: map[string]string{"service": "company-extraction-api", "replicas": "2"}}
	e := r.engine(r.config(rule), "a")
	old := overloaded(t0.Add(-2 * time.Hour))
	rec := only(t, e.Handle(t.Context(), old, false))
	wantResult(t, rec, ResultSkipped, ReasonStale)
	checkReqs(t, r.takeReqs(), nil)
	// Resolved just now after a long episode: acted on.
	wantResult(t, only(t, e.Handle(t.Context(), resolvedAt(old, t0.Add(-time.Minute)), false)), ResultRan, "")
	// Resolved long ago (a replay): skipped.
	r2 := overloaded(t0.Add(-5 * time.Hour))
	wantResult(t, only(t, e.Handle(t.Context(), resolvedAt(r2, t0.Add(-3*time.Hour)), false)), ResultSkipped, ReasonStale)
}

// The audit lists records newest first, keeps their fields, and the counter
// has every label pair from the start.
func testAuditAndMetrics(t *testing.T, open opener) {
	r := newRig(t, open)
	e := r.engine(r.config(scaleRule()), "replica-a")
	if n := testutil.CollectAndCount(e.actions); n != len(Actions)*len(Results) {
		t.Errorf("%d series at start, want %d", n, len(Actions)*len(Results))
	}
	a := overloaded(t0)
	for range 3 {
		e.Handle(t.Context(), a, false)
	}
	r.clk.Add(time.Second)
	e.Handle(t.Context(), firing(t0, "alertname", "ExtractionServiceOverloaded", "instance", "x"), false)
	audit, err := e.Audit(t.Context(), 3)
	if err != nil || len(audit) != 3 {
		t.Fatalf("audit %d %v", len(audit), err)
	}
	if audit[0].Labels["instance"] != "x" || audit[1].Reason != ReasonCooldown || audit[2].Reason != ReasonCooldown {
		t.Errorf("order: %+v", audit)
	}
	all, _ := e.Audit(t.Context(), 100)
	if len(all) != 4 || all[3].Result != ResultRan {
		t.Fatalf("all: %+v", all)
	}
	first := all[3]
	if first.Rule != "scale-extraction" || first.Action != ActionScale || first.Fingerprint != a.Fingerprint || first.Replica != "replica-a" ||
		first.Request == nil || first.Request.Method != "POST" || first.Request.URL != r.orch.URL+"/scale" || first.Request.BodyBytes != len(`{"service":"company-extraction-api","replicas":5}`) ||
		first.StatusCode != 200 || first.Attempts != 1 || first.ID == "" || !first.Time.Equal(t0) || first.Labels["alertname"] != "ExtractionServiceOverloaded" {
		t.Errorf("first record: %+v", first)
	}
	if v := testutil.ToFloat64(e.actions.WithLabelValues(ActionScale, ResultRan)); v != 2 {
		t.Errorf("ran = %v", v)
	}
	if v := testutil.ToFloat64(e.actions.WithLabelValues(ActionScale, ResultSkipped)); v != 2 {
		t.Errorf("skipped = %v", v)
	}
	if v := testutil.ToFloat64(e.actions.WithLabelValues(ActionCacheWarm, ResultFailed)); v != 0 {
		t.Errorf("cache_warm failed = %v", v)
	}
	// Past the retention the records are gone from the list.
	r.clk.Add(time.Duration(DefaultAuditRetention) + time.Minute)
	if left, err := e.Audit(t.Context(), 100); err != nil || len(left) != 0 {
		t.Errorf("after the retention: %d records, %v", len(left), err)
	}
}

// A reload swaps the rules; a bad one is refused and the old rules stay.
func testApply(t *testing.T, open opener) {
	r := newRig(t, open)
	e := r.engine(r.config(scaleRule()), "a")
	bad := r.config()
	bad.Rules = []Rule{{Name: "x", Action: "reboot"}}
	if err := e.Apply(bad); err == nil || !strings.Contains(err.Error(), `rules[0].action: must be one of`) {
		t.Fatalf("bad config: %v", err)
	}
	wantResult(t, only(t, e.Handle(t.Context(), overloaded(t0), false)), ResultRan, "")
	if err := e.Apply(r.config(Rule{Name: "warm-cache", Matchers: []string{`alertname="LowCacheHitRate"`}, Action: ActionCacheWarm})); err != nil {
		t.Fatal(err)
	}
	if recs := e.Handle(t.Context(), overloaded(t0), false); len(recs) != 0 {
		t.Errorf("old rule still in effect: %+v", recs)
	}
}

// The token reaches the orchestrator and the API in a header and nowhere
// else: not a record, a log line, a notice, an error or a printed config,
// whatever the endpoint answers.
func testNoTokenLeak(t *testing.T, open opener) {
	r := newRig(t, open)
	echo := func(req *http.Request, body []byte) (int, string) {
		// An endpoint that echoes its request, headers and all.
		h, _ := json.Marshal(req.Header)
		return 503, string(h) + string(body)
	}
	r.orch.setAnswer(echo)
	r.api.setAnswer(func(req *http.Request, body []byte) (int, string) {
		code, s := echo(req, body)
		return code - 103, s // 400
	})
	rules := []Rule{
		scaleRule(),
		{Name: "warm-cache", Matchers: []string{`alertname="ExtractionServiceOverloaded"`}, Action: ActionCacheWarm},
		{Name: "hook", Action: ActionHTTP, Params: map[string]string{"url": r.hook.URL + "/x?token={{ .Labels.instance }}"}},
		{Name: "step", Matchers: []string{`alertname="ExtractionServiceOverloaded"`}, Action: ActionScale, Params: map[string]string{"service": "s", "step": "1"}, Max: 3},
	}
	c := r.config(rules...)
	e := r.engine(c, "a")
	recs := e.Handle(t.Context(), overloaded(t0), false)
	if len(recs) != 4 {
		t.Fatalf("records %+v", recs)
	}
	c.DryRun = true
	if err := e.Apply(c); err != nil {
		t.Fatal(err)
	}
	recs = append(recs, e.Handle(t.Context(), overloaded(t0.Add(time.Second)), false)...)
	_ = e.Pause(t.Context(), "alice")
	recs = append(recs, e.Handle(t.Context(), overloaded(t0), false)...)
	audit, err := e.Audit(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range r.takeReqs() {
		if h.Srv == "hook" && h.Header.Get("Authorization") != "" {
			t.Error("the http action's endpoint got the token")
		}
		if h.Query != "" && recs[2].Request != nil && strings.Contains(recs[2].Request.URL, h.Query) {
			t.Error("the query reached the record")
		}
	}
	var blobs []string
	for _, v := range []any{recs, audit, r.takeNotices(), c} {
		b, _ := json.Marshal(v)
		blobs = append(blobs, string(b))
	}
	blobs = append(blobs, fmt.Sprintf("%v %+v", c, c), r.logs.String())
	// Errors a user can meet.
	bad := c
	bad.BearerTokenFile = "/nonexistent/token"
	for _, err := range bad.Load("") {
		blobs = append(blobs, err.Error())
	}
	if err := e.Apply(bad); err != nil {
		blobs = append(blobs, err.Error())
	}
	for i, s := range blobs {
		if containsToken(s) {
			t.Errorf("blob %d holds the token: %s", i, s)
		}
	}
	if !strings.Contains(r.logs.String(), "unexpected status code 503") {
		t.Error("the failure was not logged")
	}
}

// modelMinutes is a rule duration in minutes.
func modelMinutes(n int) model.Duration { return model.Duration(time.Duration(n) * time.Minute) }

func TestStoreErrorsStopActions(t *testing.T) {
	r := newRig(t, func(*testing.T) func() Store {
		s := &failingStore{mapStore: newMapStore()}
		return func() Store { return s }
	})
	e := r.engine(r.config(scaleRule()), "a")
	rec := only(t, e.Handle(t.Context(), overloaded(t0), false))
	wantResult(t, rec, ResultFailed, ReasonStore)
	checkReqs(t, r.takeReqs(), nil)
	if v := testutil.ToFloat64(e.auditErrors); v != 1 {
		t.Errorf("audit write failures = %v", v)
	}
	if !strings.Contains(r.logs.String(), "write remediation audit record failed") {
		t.Error("the lost audit record was not logged")
	}
}

// failingStore cannot be reached: nothing may run when no guard can be
// checked.
type failingStore struct{ *mapStore }

var errDown = errors.New("store down")

func (s *failingStore) UpdateState(context.Context, string, time.Duration, func([]byte) ([]byte, error)) ([]byte, error) {
	return nil, errDown
}
