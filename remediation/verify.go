package remediation

// Verification: an action that ran is judged by what the alert did next.
// A rule with verify: {within: D} has each firing action that ran (not a
// dry run, a skip or a failure) followed by a wait in the store: the
// pipeline puts a Verification in a leased queue (store.QueueVerify), in the
// alert's shard, due at the run's time + D, so that a restart or another
// replica finishes it. When it is due the pipeline reads the alert's record
// and hands Conclude a Verdict: effective when the record shows a resolve
// observed after the action ran and no firing since, ineffective
// otherwise. Conclude audits the outcome, counts it, announces it and, for
// rollback_on: ineffective, undoes the action (rollback.go).

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/api"
)

// Outcomes of a verified action; they are its outcome record's Result.
const (
	OutcomeEffective   = "effective"
	OutcomeIneffective = "ineffective"
)

// Outcomes lists every outcome, in the order metrics are initialised.
var Outcomes = []string{OutcomeEffective, OutcomeIneffective}

// RollbackOnIneffective is the one value rollback_on takes.
const RollbackOnIneffective = "ineffective"

// Reasons of the records the loop writes.
const (
	ReasonVerify   = "verify"   // an outcome record (result effective or ineffective)
	ReasonRollback = "rollback" // a rollback's record (result ran, failed, skipped or dry_run)
)

const (
	maxVerifyWithin = 24 * time.Hour
	keyVerdict      = "rem:verdict:" // + Verification.Key(): the verdict and its rollback, once
	verdictTTL      = 48 * time.Hour // outlives every lease and retry of the verify item
)

// VerifyConfig is a rule's verify block.
type VerifyConfig struct {
	// Within is how long the alert has, after the action ran, to resolve.
	Within model.Duration `yaml:"within" json:"within"`
}

// compileVerify checks the rule's verify, rollback_on and rollback at rp,
// and returns an http action's compiled rollback request.
func compileVerify(rp string, r *Rule, bad func(string, string, ...any)) *compiledAction {
	if v := r.Verify; v != nil && (v.Within <= 0 || time.Duration(v.Within) > maxVerifyWithin) {
		bad(rp+".verify.within", "must be a positive duration of at most %s, got %s", model.Duration(maxVerifyWithin), v.Within)
	}
	switch r.RollbackOn {
	case "":
		if r.Rollback != nil {
			bad(rp+".rollback", "only used with rollback_on")
		}
		return nil
	case RollbackOnIneffective:
	default:
		bad(rp+".rollback_on", "must be %s, got %q", RollbackOnIneffective, r.RollbackOn)
		return nil
	}
	if r.Verify == nil {
		bad(rp+".rollback_on", "requires verify: the verdict it acts on")
	}
	switch r.Action {
	case ActionScale, ActionCircuitBreak:
		if r.Rollback != nil {
			bad(rp+".rollback", "only used by http (%s rolls back by itself)", r.Action)
		}
	case ActionHTTP:
		if r.Rollback == nil {
			bad(rp+".rollback", "required: an http action rolls back with the request given here")
			return nil
		}
		if a := r.Rollback.Action; a != "" && a != ActionHTTP {
			bad(rp+".rollback.action", "must be http, got %q", a)
			return nil
		}
		return compileAction(rp, rp+".rollback", ActionHTTP, r.Rollback.Params, r.Rollback.Headers, r.Rollback.Body, r, bad)
	case ActionCacheWarm, ActionCircuitClose:
		bad(rp+".rollback_on", "%s cannot be rolled back", r.Action)
	}
	return nil
}

// Verification is the wait for one action's outcome: the payload of its
// verify item. It carries what judging, rolling back and (issue 16, item 2)
// releasing a held page need, without the configuration, which may change
// meanwhile: the rule is looked up again when it is due.
type Verification struct {
	Rule        string         `json:"rule"`
	Action      string         `json:"action"`
	Fingerprint string         `json:"fingerprint"`
	Alert       template.Alert `json:"alert"`
	// RecordID is the audit record of the action.
	RecordID string    `json:"record_id"`
	RanAt    time.Time `json:"ran_at"`
	// Due is RanAt + the rule's verify.within: the end of the window.
	Due    time.Time      `json:"due"`
	Within model.Duration `json:"within"`
	// Did says what the action did, in words.
	Did  string `json:"did"`
	Undo *Undo  `json:"undo,omitempty"`
}

// Key names the verification: one rule's one run for one alert. The verify
// item's ID and the verdict's store key are made of it (and a held page's
// will be).
func (v Verification) Key() string {
	return v.Rule + ":" + v.Fingerprint + ":" + strconv.FormatInt(v.RanAt.UnixNano(), 10)
}

// Undo is what a rollback needs that only the run knew.
type Undo struct {
	// Service and Replicas: a scale's service and its count before the
	// scale (nil when it was not read).
	Service  string `json:"service,omitempty"`
	Replicas *int   `json:"replicas,omitempty"`
	// API names a circuit breaker.
	API string `json:"api,omitempty"`
}

// Verdict is the outcome of a Verification, as the pipeline judged it from
// the alert's record at the end of the window. It carries the rule and the
// fingerprint (in Verification): what a held page is found by.
type Verdict struct {
	Verification
	Outcome string `json:"outcome"`
	// ResolvedAt is when the alert resolved, for effective.
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// Why says, for ineffective, what the record showed ("still firing").
	Why string `json:"why,omitempty"`
}

// verdictState is kept under rem:verdict:<key>: the first verdict reached
// (a second replica taking the item over after a lapsed lease keeps it),
// whether it was announced, and the rollback's lock and end.
type verdictState struct {
	Outcome    string     `json:"outcome"`
	ResolvedAt time.Time  `json:"resolved_at,omitzero"`
	Why        string     `json:"why,omitempty"`
	Announced  bool       `json:"announced,omitempty"`
	Rollback   *lockState `json:"rollback,omitempty"`
	RolledBack bool       `json:"rolled_back,omitempty"`
}

func decodeVerdictState(b []byte) verdictState {
	var s verdictState
	if b != nil && json.Unmarshal(b, &s) != nil {
		s = verdictState{} // decided afresh rather than stuck
	}
	return s
}

// initOutcomes creates and registers the outcome counter.
func (e *Engine) initOutcomes(reg prometheus.Registerer) {
	e.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "alertmedic_remediation_outcomes_total",
		Help: "Verified remediation actions by rule and outcome (effective: the alert resolved within verify.within; ineffective: it did not).",
	}, []string{"rule", "outcome"})
	if reg != nil {
		e.outcomes = register(reg, e.outcomes)
	}
	e.zeroOutcomes(e.cur.Load())
}

// zeroOutcomes initialises the outcome series of every rule that verifies
// (at start and on reload): zeros, not gaps.
func (e *Engine) zeroOutcomes(c *compiled) {
	if e.outcomes == nil || c == nil {
		return
	}
	for _, r := range c.rules {
		if r.Verify != nil {
			for _, o := range Outcomes {
				e.outcomes.WithLabelValues(r.Name, o)
			}
		}
	}
}

// verification is the wait a record starts, if any: a firing action that
// ran, of a rule that verifies. Nothing for a dry run: it never acted.
func (e *Engine) verification(r *compiledRule, act *compiledAction, rec *Record, a template.Alert) *Verification {
	if r.Verify == nil || act != r.fire || rec.Result != ResultRan || rec.Status != alert.StatusFiring {
		return nil
	}
	within := r.Verify.Within
	v := &Verification{Rule: r.Name, Action: act.kind, Fingerprint: rec.Fingerprint, Alert: a, RecordID: rec.ID,
		RanAt: rec.Time, Due: rec.Time.Add(time.Duration(within)), Within: within, Did: rec.Detail}
	switch act.kind {
	case ActionScale:
		svc, _ := act.render("service", a)
		v.Undo = &Undo{Service: svc, Replicas: rec.PreviousReplicas}
	case ActionCircuitBreak:
		name, _ := act.render("api", a)
		v.Undo = &Undo{API: name}
	}
	return v
}

// render renders one param over the alert, trimmed; "" when the action has
// no such param.
func (act *compiledAction) render(k string, a template.Alert) (string, error) {
	t, ok := act.params[k]
	if !ok {
		return "", nil
	}
	var b strings.Builder
	if err := t.Execute(&b, a); err != nil {
		return "", fmt.Errorf("render params.%s: %w", k, err)
	}
	return strings.TrimSpace(b.String()), nil
}

func (c *compiled) rule(name string) *compiledRule {
	for _, r := range c.rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Conclude records a verdict: once per verification, whichever replica
// reaches it, the first verdict reached stands; it is audited (result
// effective or ineffective, reason verify), counted in
// alertmedic_remediation_outcomes_total and announced; then, when it is
// ineffective and the rule (as configured now) says rollback_on:
// ineffective, the action is undone, once. It returns the records written
// (their notices for notify_receiver) and the verdict that stands. An
// error means nothing could be decided for a store fault: call again later;
// what was done already is not done twice.
func (e *Engine) Conclude(ctx context.Context, d Verdict) ([]Record, Verdict, error) {
	c := e.cur.Load()
	key := keyVerdict + d.Key()
	var st verdictState
	_, err := e.store.UpdateState(ctx, key, verdictTTL, func(old []byte) ([]byte, error) {
		st = decodeVerdictState(old)
		if st.Outcome == "" {
			st = verdictState{Outcome: d.Outcome, ResolvedAt: d.ResolvedAt, Why: d.Why}
		}
		return json.Marshal(st)
	})
	if err != nil {
		return nil, d, fmt.Errorf("record remediation verdict: %w", err)
	}
	d.Outcome, d.ResolvedAt, d.Why = st.Outcome, st.ResolvedAt, st.Why
	r := c.rule(d.Rule)
	rollback := d.Outcome == OutcomeIneffective && r != nil && r.RollbackOn == RollbackOnIneffective
	var recs []Record
	if !st.Announced {
		rec := e.outcomeRecord(ctx, c, d, rollback)
		recs = append(recs, rec)
		if _, err := e.store.UpdateState(ctx, key, verdictTTL, func(old []byte) ([]byte, error) {
			s := decodeVerdictState(old)
			s.Announced = true
			return json.Marshal(s)
		}); err != nil {
			// At worst a replica that takes the item over says it again.
			e.log.Warn().Err(err).Str("rule", d.Rule).Msg("marking a remediation verdict announced failed")
		}
	}
	if !rollback {
		return recs, d, nil
	}
	rec, err := e.rollback(ctx, c, r, d, key)
	if err != nil {
		return recs, d, err
	}
	if rec != nil {
		if len(recs) == 1 && recs[0].Notice != nil && rec.Notice != nil {
			// One message per verdict, the rollback's line after the
			// verdict's: two messages of one instant may arrive in
			// either order.
			n := recs[0].Notice
			n.Text = strings.TrimSuffix(n.Text, rollingBack) + "\n" + rec.Notice.Text
			n.Facts["rollback"] = rec.Result
			rec.Notice = nil
		}
		recs = append(recs, *rec)
	}
	return recs, d, nil
}

// rollingBack ends a verdict's notice when its rollback is announced on
// its own (it comes later: a store fault delayed it).
const rollingBack = "; rolling it back"

// verdictRecord starts a record about d's action: its outcome, or its
// rollback (action is then the rollback's kind).
func (e *Engine) verdictRecord(d Verdict, now time.Time, action, reason string) Record {
	rec := Record{RemediationRecord: api.RemediationRecord{
		Time:        now,
		Rule:        d.Rule,
		Action:      action,
		Status:      alert.StatusFiring,
		Reason:      reason,
		Fingerprint: d.Fingerprint,
		Labels:      map[string]string(d.Alert.Labels),
		Replica:     e.replica,
		ActionID:    d.RecordID,
	}}
	if d.Undo != nil {
		rec.PreviousReplicas = d.Undo.Replicas
	}
	return rec
}

// outcomeRecord audits, counts, logs and announces a verdict.
func (e *Engine) outcomeRecord(ctx context.Context, c *compiled, d Verdict, rollback bool) Record {
	name := d.Alert.Labels["alertname"]
	if name == "" {
		name = "the alert"
	}
	what := d.Did
	if what == "" {
		what = "the " + d.Action + " action"
	}
	var detail string
	if d.Outcome == OutcomeEffective {
		detail = fmt.Sprintf("%s resolved at %s, within %s of the action (%s)", name, d.ResolvedAt.UTC().Format(time.RFC3339), d.Within, what)
	} else {
		detail = fmt.Sprintf("%s was %s at the end of the %s window (%s)", name, d.Why, d.Within, what)
	}
	rec := e.verdictRecord(d, e.now(), d.Action, ReasonVerify)
	rec.Result, rec.Detail = d.Outcome, e.scrub(c, detail)
	e.audit(ctx, c, &rec)
	e.outcomes.WithLabelValues(d.Rule, d.Outcome).Inc()
	e.logRecord(&rec)
	text := fmt.Sprintf("%s: %s", d.Outcome, rec.Detail)
	if rollback {
		text += rollingBack
	}
	rec.Notice = &Notice{Text: text, Facts: map[string]string{
		"rule":        d.Rule,
		"action":      d.Action,
		"result":      d.Outcome,
		"outcome":     d.Outcome,
		"reason":      ReasonVerify,
		"alertname":   d.Alert.Labels["alertname"],
		"fingerprint": d.Fingerprint,
		"replica":     e.replica,
		"within":      d.Within.String(),
	}}
	return rec
}

// HoldFor names the rule a firing alert's held pages wait for
// (hold_for_remediation) and how long its verdict may take: the first rule,
// in configuration order, that acts on the alert and verifies, when
// remediation is enabled and neither it nor the rule is a dry run (a dry
// run never acts, so it holds nothing). "" when no rule would.
func (e *Engine) HoldFor(a template.Alert) (rule string, within time.Duration) {
	return e.cur.Load().holdFor(a)
}

// HoldFor is Engine.HoldFor for a configuration that is not running (the
// routes test): "" when c does not compile.
func HoldFor(c Config, a template.Alert) (rule string, within time.Duration) {
	cc, errs := compile(c)
	if len(errs) > 0 || cc == nil {
		return "", 0
	}
	return cc.holdFor(a)
}

func (c *compiled) holdFor(a template.Alert) (string, time.Duration) {
	if !c.cfg.Enabled || c.cfg.DryRun || a.Status == alert.StatusResolved {
		return "", 0
	}
	for _, r := range c.rules {
		if r.fire != nil && r.Verify != nil && !r.DryRun && r.matches(a.Labels) {
			within := time.Duration(r.Verify.Within)
			if r.Approval != nil {
				within += time.Duration(r.Approval.Timeout) // the answer may take that long
			}
			return r.Name, within
		}
	}
	return "", 0
}
