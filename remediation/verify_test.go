package remediation

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/store/memory"
)

// runVerifySuite runs the verification and rollback tests on a backend, as
// runSuite runs the engine's.
func runVerifySuite(t *testing.T, open opener) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, opener)
	}{
		{"EffectiveScale", testEffectiveScale},
		{"IneffectiveScaleRollsBack", testIneffectiveScaleRollsBack},
		{"VerdictOnceAcrossReplicas", testVerdictOnce},
		{"CircuitBreakRollsBackWithClose", testCircuitRollback},
		{"HTTPRollbackRequest", testHTTPRollback},
		{"OnlyRanActionsVerify", testOnlyRanActionsVerify},
		{"RollbackNeedsTheCount", testRollbackNeedsTheCount},
		{"PausedRollbackSkipped", testPausedRollback},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open) })
	}
}

func TestVerifyMapStore(t *testing.T) {
	runVerifySuite(t, func(t *testing.T) func() Store {
		s := newMapStore()
		return func() Store { return s }
	})
}

func TestVerifyMemoryStore(t *testing.T) {
	runVerifySuite(t, func(t *testing.T) func() Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return func() Store { return s }
	})
}

func TestVerifyRedis(t *testing.T) { runVerifySuite(t, openRedis) }

const within = model.Duration(10 * time.Minute)

// verifiedScale is the shipped scale rule with verify and rollback_on.
func verifiedScale() Rule {
	r := scaleRule()
	r.Verify = &VerifyConfig{Within: within}
	r.RollbackOn = RollbackOnIneffective
	return r
}

// replicasAnswer has the orchestrator report n replicas on GET.
func replicasAnswer(n string) func(*http.Request, []byte) (int, string) {
	return func(req *http.Request, _ []byte) (int, string) {
		if req.Method == http.MethodGet {
			return 200, `{"replicas": ` + n + `}`
		}
		return 200, `{}`
	}
}

// ran fires a at e and returns its one record, which must have run and
// started a verification.
func ran(t *testing.T, e *rigEngine, a template.Alert) Record {
	t.Helper()
	rec := only(t, e.Handle(t.Context(), a, false))
	wantResult(t, rec, ResultRan, "")
	if rec.Verify == nil {
		t.Fatalf("a ran action of a verifying rule has no verification: %+v", rec)
	}
	if v := rec.Verify; !v.Due.Equal(rec.Time.Add(time.Duration(within))) || v.Rule != rec.Rule || v.Fingerprint != rec.Fingerprint || v.RecordID != rec.ID {
		t.Errorf("verification %+v of record %+v", v, rec)
	}
	return rec
}

func verdict(rec Record, outcome, why string) Verdict {
	return Verdict{Verification: *rec.Verify, Outcome: outcome, Why: why, ResolvedAt: rec.Time.Add(3 * time.Minute)}
}

func wantOutcomes(t *testing.T, e *rigEngine, rule string, effective, ineffective float64) {
	t.Helper()
	if v := testutil.ToFloat64(e.outcomes.WithLabelValues(rule, OutcomeEffective)); v != effective {
		t.Errorf("%s effective = %v, want %v", rule, v, effective)
	}
	if v := testutil.ToFloat64(e.outcomes.WithLabelValues(rule, OutcomeIneffective)); v != ineffective {
		t.Errorf("%s ineffective = %v, want %v", rule, v, ineffective)
	}
}

const svc = "company-extraction-api"

var (
	getService = want{srv: "orch", method: "GET", path: "/services/company-extraction-api", auth: true}
	scaleTo5   = want{srv: "orch", method: "POST", path: "/scale", body: `{"service":"company-extraction-api","replicas":5}`, auth: true}
	scaleTo2   = want{srv: "orch", method: "POST", path: "/scale", body: `{"service":"company-extraction-api","replicas":2}`, auth: true}
)

// An effective scale is recorded, counted and announced, and not undone.
func testEffectiveScale(t *testing.T, open opener) {
	r := newRig(t, open)
	r.orch.setAnswer(replicasAnswer("2"))
	e := r.engine(r.config(verifiedScale()), "a")
	wantOutcomes(t, e, "scale-extraction", 0, 0) // initialised: zeros, not gaps
	rec := ran(t, e, overloaded(t0.Add(-time.Minute)))
	checkReqs(t, r.takeReqs(), []want{getService, scaleTo5})
	if rec.PreviousReplicas == nil || *rec.PreviousReplicas != 2 || rec.Verify.Undo == nil || rec.Verify.Undo.Service != svc {
		t.Errorf("the count before is not kept: %+v %+v", rec.PreviousReplicas, rec.Verify.Undo)
	}
	if ns := r.takeNotices(); len(ns) != 1 || ns[0].Text != "scaled company-extraction-api from 2 to 5 replicas because ExtractionServiceOverloaded fired" {
		t.Errorf("notices %+v", ns)
	}

	r.clk.Add(time.Duration(within))
	recs, d, err := e.Conclude(t.Context(), verdict(rec, OutcomeEffective, ""))
	if err != nil || d.Outcome != OutcomeEffective {
		t.Fatalf("conclude: %v %+v", err, d)
	}
	out := only(t, recs)
	wantResult(t, out, OutcomeEffective, ReasonVerify)
	if out.ActionID != rec.ID || out.Rule != "scale-extraction" || out.Fingerprint != rec.Fingerprint || out.Action != ActionScale ||
		!strings.Contains(out.Detail, "scaled company-extraction-api from 2 to 5 replicas") {
		t.Errorf("outcome record %+v", out)
	}
	if out.Notice == nil || !strings.HasPrefix(out.Notice.Text, "effective: ExtractionServiceOverloaded resolved at ") || out.Notice.Facts["outcome"] != OutcomeEffective {
		t.Errorf("notice %+v", out.Notice)
	}
	checkReqs(t, r.takeReqs(), nil)
	wantOutcomes(t, e, "scale-extraction", 1, 0)
	audit, err := e.Audit(t.Context(), 1)
	if err != nil || len(audit) != 1 || audit[0].Result != OutcomeEffective || audit[0].PreviousReplicas == nil || *audit[0].PreviousReplicas != 2 {
		t.Fatalf("audit %+v %v", audit, err)
	}
}

// An ineffective scale with rollback_on goes back to the count it read:
// the orchestrator sees GET, POST 5, POST 2.
func testIneffectiveScaleRollsBack(t *testing.T, open opener) {
	r := newRig(t, open)
	r.orch.setAnswer(replicasAnswer("2"))
	e := r.engine(r.config(verifiedScale()), "a")
	rec := ran(t, e, overloaded(t0.Add(-time.Minute)))
	r.takeNotices()
	r.clk.Add(time.Duration(within))
	// The stand-in sees the read, the scale and, below, the scale back.
	recs, _, err := e.Conclude(t.Context(), verdict(rec, OutcomeIneffective, "still firing"))
	if err != nil || len(recs) != 2 {
		t.Fatalf("conclude: %v %+v", err, recs)
	}
	wantResult(t, recs[0], OutcomeIneffective, ReasonVerify)
	wantResult(t, recs[1], ResultRan, ReasonRollback)
	if rb := recs[1]; rb.Action != ActionScale || rb.ActionID != rec.ID || rb.Detail != "scaled company-extraction-api back to 2 replicas" || rb.Attempts != 1 {
		t.Errorf("rollback record %+v", rb)
	}
	checkReqs(t, r.takeReqs(), []want{getService, scaleTo5, scaleTo2})
	ns := r.takeNotices() // the rig notes Handle's only; Conclude's are in the records
	if len(ns) != 0 {
		t.Errorf("notices %+v", ns)
	}
	// One notice: the verdict's line, then the rollback's.
	if n := recs[0].Notice; n == nil || n.Text != "ineffective: ExtractionServiceOverloaded was still firing at the end of the 10m window (scaled company-extraction-api from 2 to 5 replicas)\n"+
		"rolled back scale-extraction: scaled company-extraction-api back to 2 replicas, because ExtractionServiceOverloaded was still firing at the end of the 10m window" ||
		n.Facts["outcome"] != OutcomeIneffective || n.Facts["rollback"] != ResultRan {
		t.Errorf("outcome notice %+v", n)
	}
	if recs[1].Notice != nil {
		t.Errorf("the rollback is announced twice: %+v", recs[1].Notice)
	}
	wantOutcomes(t, e, "scale-extraction", 0, 1)
	if v := testutil.ToFloat64(e.actions.WithLabelValues(ActionScale, ResultRan)); v != 2 {
		t.Errorf("scale ran %v times, want 2 (the action and its rollback)", v)
	}
}

// The verdict and the rollback happen once: a second replica concluding the
// same verification (its lease lapsed) keeps the first verdict, writes no
// record and sends nothing.
func testVerdictOnce(t *testing.T, open opener) {
	r := newRig(t, open)
	r.orch.setAnswer(replicasAnswer("2"))
	c := r.config(verifiedScale())
	a, b := r.engine(c, "a"), r.engine(c, "b")
	rec := ran(t, a, overloaded(t0.Add(-time.Minute)))
	r.takeReqs()
	r.clk.Add(time.Duration(within))
	if recs, _, err := a.Conclude(t.Context(), verdict(rec, OutcomeIneffective, "still firing")); err != nil || len(recs) != 2 {
		t.Fatalf("first: %v %+v", err, recs)
	}
	recs, d, err := b.Conclude(t.Context(), verdict(rec, OutcomeEffective, ""))
	if err != nil || len(recs) != 0 || d.Outcome != OutcomeIneffective || d.Why != "still firing" {
		t.Fatalf("second: %v %+v %+v", err, recs, d)
	}
	if n := posts(r.takeReqs(), "/scale"); n != 1 {
		t.Errorf("%d rollbacks, want 1", n)
	}
	wantOutcomes(t, a, "scale-extraction", 0, 1)
}

// circuit_break rolls back with circuit_close, on the same api.
func testCircuitRollback(t *testing.T, open opener) {
	r := newRig(t, open)
	e := r.engine(r.config(Rule{Name: "break-circuit", Matchers: []string{`alertname="ExternalAPIFailure"`}, Action: ActionCircuitBreak,
		Params: map[string]string{"ttl": "10m"}, Verify: &VerifyConfig{Within: within}, RollbackOn: RollbackOnIneffective}), "a")
	rec := ran(t, e, firing(t0, "alertname", "ExternalAPIFailure", "api", "bright_data"))
	checkReqs(t, r.takeReqs(), []want{{srv: "api", method: "POST", path: "/internal/circuit-breaker/bright_data", body: `{"ttl_seconds":600}`, auth: true}})
	r.clk.Add(time.Duration(within))
	recs, _, err := e.Conclude(t.Context(), verdict(rec, OutcomeIneffective, "still firing"))
	if err != nil || len(recs) != 2 {
		t.Fatalf("conclude: %v %+v", err, recs)
	}
	wantResult(t, recs[1], ResultRan, ReasonRollback)
	if recs[1].Action != ActionCircuitClose || recs[1].Detail != "circuit breaker for bright_data closed" {
		t.Errorf("rollback record %+v", recs[1])
	}
	checkReqs(t, r.takeReqs(), []want{{srv: "api", method: "DELETE", path: "/internal/circuit-breaker/bright_data", auth: true}})
}

// An http action rolls back with the rule's rollback request, rendered over
// the alert, without the token, and without its query in the record.
func testHTTPRollback(t *testing.T, open opener) {
	r := newRig(t, open)
	e := r.engine(r.config(Rule{Name: "custom", Action: ActionHTTP,
		Params:     map[string]string{"url": r.hook.URL + "/hooks/{{ .Labels.alertname }}"},
		Verify:     &VerifyConfig{Within: within},
		RollbackOn: RollbackOnIneffective,
		Rollback: &ActionConfig{
			Params:  map[string]string{"method": "DELETE", "url": r.hook.URL + "/hooks/{{ .Labels.alertname }}?key=q-secret"},
			Headers: map[string]string{"X-Undo": "{{ .Labels.instance }}"},
		},
	}), "a")
	rec := ran(t, e, overloaded(t0))
	checkReqs(t, r.takeReqs(), []want{{srv: "hook", method: "POST", path: "/hooks/ExtractionServiceOverloaded"}})
	recs, _, err := e.Conclude(t.Context(), verdict(rec, OutcomeIneffective, "still firing"))
	if err != nil || len(recs) != 2 {
		t.Fatalf("conclude: %v %+v", err, recs)
	}
	wantResult(t, recs[1], ResultRan, ReasonRollback)
	got := r.takeReqs()
	checkReqs(t, got, []want{{srv: "hook", method: "DELETE", path: "/hooks/ExtractionServiceOverloaded", header: map[string]string{"X-Undo": "api-1:8000"}}})
	if got[0].Query != "key=q-secret" {
		t.Errorf("query %q", got[0].Query)
	}
	if rq := recs[1].Request; rq == nil || rq.URL != r.hook.URL+"/hooks/ExtractionServiceOverloaded" || strings.Contains(recs[1].Detail+recs[0].Notice.Text, "q-secret") {
		t.Errorf("rollback record shows the query: %+v %+v", rq, recs[1])
	}
}

// Only an action that ran is verified: a dry run, a failure, a skip and a
// resolve's action never are.
func testOnlyRanActionsVerify(t *testing.T, open opener) {
	r := newRig(t, open)
	r.orch.setAnswer(replicasAnswer("2"))
	dry := verifiedScale()
	dry.DryRun = true
	dry.OnResolve = &ActionConfig{Action: ActionScale, Params: map[string]string{"service": svc, "replicas": "2"}}
	e := r.engine(r.config(dry), "a")
	a := overloaded(t0)
	rec := only(t, e.Handle(t.Context(), a, false))
	wantResult(t, rec, ResultDryRun, ReasonDryRun)
	if rec.Verify != nil {
		t.Errorf("a dry run verifies: %+v", rec.Verify)
	}
	checkReqs(t, r.takeReqs(), nil) // a dry run reads nothing either

	live := verifiedScale()
	live.OnResolve = dry.OnResolve
	e = r.engine(r.config(live), "a")
	r.clk.Add(time.Minute)
	rec = only(t, e.Handle(t.Context(), resolvedAt(a, r.clk.Now()), false))
	wantResult(t, rec, ResultRan, "")
	if rec.Verify != nil {
		t.Errorf("a resolve's action verifies: %+v", rec.Verify)
	}
	checkReqs(t, r.takeReqs(), []want{scaleTo2})
	r.orch.setAnswer(func(*http.Request, []byte) (int, string) { return 400, `{}` })
	rec = only(t, e.Handle(t.Context(), firing(t0, "alertname", "ExtractionServiceOverloaded", "instance", "api-2:8000"), false))
	if rec.Result != ResultFailed || rec.Verify != nil {
		t.Errorf("failed action: %+v", rec)
	}
}

// A rule that rolls back needs the count before: a scale that cannot read
// it does not act. One that only verifies acts anyway.
func testRollbackNeedsTheCount(t *testing.T, open opener) {
	r := newRig(t, open)
	r.orch.setAnswer(func(req *http.Request, _ []byte) (int, string) {
		if req.Method == http.MethodGet {
			return 404, `{}`
		}
		return 200, `{}`
	})
	e := r.engine(r.config(verifiedScale()), "a")
	rec := only(t, e.Handle(t.Context(), overloaded(t0), false))
	wantResult(t, rec, ResultFailed, ReasonCall)
	if !strings.Contains(rec.Detail, "read current replicas") || !strings.Contains(rec.Detail, "rollback_on needs it") || rec.Verify != nil {
		t.Errorf("record %+v", rec)
	}
	checkReqs(t, r.takeReqs(), []want{getService})

	only := verifiedScale()
	only.RollbackOn = ""
	e = r.engine(r.config(only), "b")
	rec = ran(t, e, firing(t0, "alertname", "ExtractionServiceOverloaded", "instance", "api-2:8000"))
	if rec.PreviousReplicas != nil || rec.Verify.Undo.Replicas != nil || rec.Detail != "scaled company-extraction-api to 5 replicas" {
		t.Errorf("record %+v", rec)
	}
	checkReqs(t, r.takeReqs(), []want{getService, scaleTo5})
}

// The kill switch stops a rollback too; it is recorded as skipped, once.
func testPausedRollback(t *testing.T, open opener) {
	r := newRig(t, open)
	r.orch.setAnswer(replicasAnswer("2"))
	e := r.engine(r.config(verifiedScale()), "a")
	rec := ran(t, e, overloaded(t0))
	r.takeReqs()
	if err := e.Pause(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	recs, _, err := e.Conclude(t.Context(), verdict(rec, OutcomeIneffective, "still firing"))
	if err != nil || len(recs) != 2 {
		t.Fatalf("conclude: %v %+v", err, recs)
	}
	wantResult(t, recs[1], ResultSkipped, ReasonRollback)
	if !strings.Contains(recs[1].Detail, "paused by alice") {
		t.Errorf("detail %q", recs[1].Detail)
	}
	checkReqs(t, r.takeReqs(), nil)
	if recs, _, err := e.Conclude(t.Context(), verdict(rec, OutcomeIneffective, "still firing")); err != nil || len(recs) != 0 {
		t.Errorf("again: %v %+v", err, recs)
	}
}

// verify, rollback_on and rollback are checked at load, with exact errors.
func TestVerifyConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Rule)
		want []string
	}{
		{"within zero", func(r *Rule) { r.Verify = &VerifyConfig{} },
			[]string{"rules[0].verify.within: must be a positive duration of at most 1d, got 0s"}},
		{"within too long", func(r *Rule) { r.Verify = &VerifyConfig{Within: model.Duration(25 * time.Hour)} },
			[]string{"rules[0].verify.within: must be a positive duration of at most 1d, got 1d1h"}},
		{"rollback_on unknown", func(r *Rule) { r.Verify = &VerifyConfig{Within: within}; r.RollbackOn = "failed" },
			[]string{`rules[0].rollback_on: must be ineffective, got "failed"`}},
		{"rollback_on without verify", func(r *Rule) { r.RollbackOn = RollbackOnIneffective },
			[]string{"rules[0].rollback_on: requires verify: the verdict it acts on"}},
		{"rollback without rollback_on", func(r *Rule) { r.Rollback = &ActionConfig{} },
			[]string{"rules[0].rollback: only used with rollback_on"}},
		{"rollback on scale", func(r *Rule) {
			r.Verify, r.RollbackOn, r.Rollback = &VerifyConfig{Within: within}, RollbackOnIneffective, &ActionConfig{}
		}, []string{"rules[0].rollback: only used by http (scale rolls back by itself)"}},
		{"cache warm cannot", func(r *Rule) {
			*r = Rule{Name: "warm", Action: ActionCacheWarm, Verify: &VerifyConfig{Within: within}, RollbackOn: RollbackOnIneffective}
		}, []string{"rules[0].rollback_on: cache_warm cannot be rolled back"}},
		{"http needs a rollback", func(r *Rule) {
			*r = Rule{Name: "h", Action: ActionHTTP, Params: map[string]string{"url": "http://127.0.0.1:9/x"}, Verify: &VerifyConfig{Within: within}, RollbackOn: RollbackOnIneffective}
		}, []string{"rules[0].rollback: required: an http action rolls back with the request given here"}},
		{"http rollback checked like the action", func(r *Rule) {
			*r = Rule{Name: "h", Action: ActionHTTP, Params: map[string]string{"url": "http://127.0.0.1:9/x"}, Verify: &VerifyConfig{Within: within}, RollbackOn: RollbackOnIneffective,
				Rollback: &ActionConfig{Action: ActionScale, Params: map[string]string{"url": "ftp://x"}}}
		}, []string{`rules[0].rollback.action: must be http, got "scale"`}},
		{"http rollback url", func(r *Rule) {
			*r = Rule{Name: "h", Action: ActionHTTP, Params: map[string]string{"url": "http://127.0.0.1:9/x"}, Verify: &VerifyConfig{Within: within}, RollbackOn: RollbackOnIneffective,
				Rollback: &ActionConfig{Params: map[string]string{"method": "get me", "body": "{"}, Headers: map[string]string{"bad header": "x"}}}
		}, []string{
			"rules[0].rollback.headers.bad header: not a valid header name",
			`rules[0].rollback.params.method: must be an HTTP method, got "get me"`,
			"rules[0].rollback.params.url: required",
			"rules[0].rollback.params.body: not valid JSON",
		}},
		{"fine", func(r *Rule) { *r = verifiedScale() }, nil},
		{"approval timeout zero", func(r *Rule) { r.Approval = &ApprovalConfig{Approvers: []string{"U0ALICE"}} },
			[]string{"rules[0].approval.timeout: must be a positive duration of at most 1d, got 0s"}},
		{"approval past max_age", func(r *Rule) {
			r.Approval = &ApprovalConfig{Timeout: model.Duration(time.Hour), Approvers: []string{"U0ALICE"}}
		}, []string{"rules[0].approval.timeout: must be below max_age (1h): an action approved later would be a stale replay"}},
		{"approval without approvers", func(r *Rule) { r.Approval = &ApprovalConfig{Timeout: model.Duration(time.Minute)} },
			[]string{"rules[0].approval.approvers: name at least one Slack user (ID or name) who may approve"}},
		{"approval with a mention", func(r *Rule) {
			r.Approval = &ApprovalConfig{Timeout: model.Duration(time.Minute), Approvers: []string{"<@U0ALICE>"}}
		}, []string{`rules[0].approval.approvers[0]: must be a Slack user ID or name, got "<@U0ALICE>"`}},
		{"approval fine", func(r *Rule) {
			r.Approval = &ApprovalConfig{Timeout: model.Duration(15 * time.Minute), Approvers: []string{"U0ALICE", "bob"}}
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rule := scaleRule()
			tc.edit(&rule)
			c := DefaultConfig()
			c.OrchestratorURL, c.APIBaseURL = "http://127.0.0.1:8081", "http://127.0.0.1:8080"
			c.Rules = []Rule{rule}
			var got []string
			for _, err := range c.Load("") {
				got = append(got, err.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
