// Package remediation runs guarded actions against the service alertmedic
// sits beside: scale it through its orchestrator, warm its cache, open and
// close a circuit breaker, or call any HTTP endpoint, when a matching alert
// fires or resolves.
//
// An action run on every notification of an alert, with no cooldown, no
// budget and no coordination between replicas, scales every 5 minutes from
// each replica while Alertmanager repeats a firing alert. Here every action
// passes guards, in this order, and each guard that stops one is audited
// by name:
// disabled (config) or paused (API), flapping, stale, cooldown, budget,
// lock, breaker (remediation.max_actions, every rule and replica: it
// pauses remediation when it stops one); then dry_run; then the call.
// Cooldowns, budgets, the breaker's count, the lock, the pause switch and
// the audit log live in the shared store, so replicas agree.
package remediation

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/api"
)

// Store is what remediation needs of the state backend; both alertmedic
// backends implement it. UpdateState is atomic per key across replicas, and
// fn may run several times, so every fn here is pure.
type Store interface {
	UpdateState(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) ([]byte, error)
	State(ctx context.Context, key string) ([]byte, error)
	Mark(ctx context.Context, index, member string, score float64) error
	Marked(ctx context.Context, index string, max float64) ([]string, error)
	Unmark(ctx context.Context, index, member string) error
}

// Results of an action.
const (
	ResultRan     = "ran"
	ResultFailed  = "failed"
	ResultSkipped = "skipped"
	ResultDryRun  = "dry_run"
)

// Results lists every result, in the order metrics are initialised.
var Results = []string{ResultRan, ResultFailed, ResultSkipped, ResultDryRun, ResultProposed, ResultApproved, ResultDenied, ResultExpired}

// Reasons, in a record's Reason. The guards come first, in the order they
// are checked.
const (
	ReasonDisabled = "disabled" // enabled: false in the configuration
	ReasonPaused   = "paused"   // paused through the API
	ReasonFlapping = "flapping" // the alert flaps and while_flapping is off
	ReasonStale    = "stale"    // startsAt (endsAt when resolved) older than max_age
	ReasonCooldown = "cooldown" // acted for this alert and state within the cooldown
	ReasonBudget   = "budget"   // the rule's runs in the last hour reached budget
	ReasonLock     = "lock"     // another replica (or worker) is acting on this alert
	ReasonBreaker  = "breaker"  // the fleet's actions in max_actions.per reached max_actions.count: remediation paused itself
	ReasonDryRun   = "dry_run"  // result dry_run: everything but the call

	ReasonMissingLabel = "missing_label" // skipped: the action needs a label the alert lacks (api)
	ReasonNoChange     = "no_change"     // skipped: a step would not change the replica count
	ReasonInvalid      = "invalid"       // failed: a templated param rendered to a bad value
	ReasonRefused      = "refused"       // failed: a value would change where the request goes (host, port, a path step); nothing was sent
	ReasonStore        = "store"         // failed: the store could not be read or written, so nothing was risked
	ReasonCall         = "call"          // failed: the HTTP call failed
)

// Store keys, all prefixed "rem:" so they never meet another package's.
const (
	keyGuard      = "rem:guard:"  // + rule + ":" + fingerprint: lock and cooldowns
	keyBudget     = "rem:budget:" // + rule: the run times of the last hour
	keyPause      = "rem:pause"
	keyAudit      = "rem:audit:" // + record id
	indexAudit    = "rem:audit"  // record ids, scored by time
	pauseTTL      = 10 * 365 * 24 * time.Hour
	storeMargin   = time.Minute      // store TTLs outlive the times kept inside
	lockMargin    = 30 * time.Second // a lock outlives the run it guards
	writeTimeout  = 5 * time.Second  // audit and release, after ctx may have ended
	pruneInterval = time.Minute
	minBackoff    = 200 * time.Millisecond
	maxBackoff    = 2 * time.Second
)

// Options configure an Engine.
type Options struct {
	// Config must have been loaded (Config.Load); New checks it again.
	Config Config
	Store  Store
	Client *http.Client // default: a plain client (each attempt has its own timeout)
	// Logger is the engine's; the caller names the component on it (app
	// adds component=remediation), and the engine adds no such key: a key
	// twice on a line breaks strict JSON parsers.
	Logger     zerolog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
	Now        func() time.Time      // decides cooldowns, budgets, locks, staleness; default time.Now
	// ReplicaID names this process in records and as the lock's owner.
	// Default: the host name.
	ReplicaID string
}

// Engine decides and runs remediation actions. It is safe for concurrent
// use.
type Engine struct {
	store   Store
	client  *http.Client
	log     zerolog.Logger
	now     func() time.Time
	replica string
	cur     atomic.Pointer[compiled]

	actions     *prometheus.CounterVec
	auditErrors prometheus.Counter
	breaker     breakerMetrics         // breaker.go
	outcomes    *prometheus.CounterVec // verify.go

	// sleep waits between attempts; tests replace it so that no test waits.
	sleep func(ctx context.Context, d time.Duration) error

	mu      sync.Mutex
	lastID  int64     // the last audit id's time, so ids from one engine never tie
	pruneAt time.Time // when the audit index is next pruned
}

// New builds an engine and registers its metrics.
func New(o Options) (*Engine, error) {
	if o.Store == nil {
		return nil, errors.New("new remediation engine: no store")
	}
	e := &Engine{
		store:   o.Store,
		client:  o.Client,
		log:     o.Logger,
		now:     o.Now,
		replica: o.ReplicaID,
		sleep:   sleep,
	}
	if e.client == nil {
		e.client = &http.Client{}
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.replica == "" {
		e.replica, _ = os.Hostname()
		if e.replica == "" {
			e.replica = "alertmedic"
		}
	}
	if err := e.Apply(o.Config); err != nil {
		return nil, fmt.Errorf("new remediation engine: %w", err)
	}
	e.actions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "alertmedic_remediation_actions_total",
		Help: "Remediation actions by action and result (ran, failed, skipped, dry_run).",
	}, []string{"action", "result"})
	e.auditErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "alertmedic_remediation_audit_write_failures_total",
		Help: "Audit records that could not be written to the store (they are still logged).",
	})
	if o.Registerer != nil {
		e.actions = register(o.Registerer, e.actions)
		e.auditErrors = register(o.Registerer, e.auditErrors)
	}
	e.initBreaker(o.Registerer)
	e.initOutcomes(o.Registerer)
	// Zeros, not gaps, on dashboards.
	for _, a := range Actions {
		for _, r := range Results {
			e.actions.WithLabelValues(a, r)
		}
	}
	return e, nil
}

// register registers c, or returns the collector already registered under
// its name: two engines on one registerer (two replicas in a test, a
// rebuilt engine) share their counters instead of failing.
func register[C prometheus.Collector](r prometheus.Registerer, c C) C {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

// Apply replaces the configuration (a reload). It checks c first and keeps
// the running one when c is bad. A Handle already running finishes with the
// configuration it started with.
func (e *Engine) Apply(c Config) error {
	c.SetDefaults()
	cc, errs := compile(c)
	if len(errs) > 0 {
		return fmt.Errorf("check remediation config: %w", errors.Join(errs...))
	}
	e.cur.Store(cc)
	e.zeroOutcomes(cc)
	return nil
}

// Record is one decision about one action, as audited: the audited data
// (api.RemediationRecord, what GET /api/v1/remediations lists) and the
// notice that goes with it, which is handed to Handle's caller and never
// stored.
type Record struct {
	api.RemediationRecord
	// Notice, when set, is what the record says to notify_receiver (an
	// action that ran or failed, or the breaker's pause): Handle's caller
	// sends it.
	Notice *Notice `json:"-"`
	// Verify, when set, is the wait for the action's outcome (a firing
	// action that ran, of a rule with verify): Handle's caller puts it in
	// the store's verify queue, due at Verify.Due (verify.go).
	Verify *Verification `json:"-"`
	// Proposed, when set, is a proposal waiting for its answer (a rule
	// with approval): Handle's caller puts its wait in the store, due at
	// Proposed.Expires (approval.go).
	Proposed *Proposal `json:"-"`
	// Again, on a cooldown stop, says that the run that started the
	// cooldown was for this very observation's episode (it started at or
	// after the alert's startsAt): the same task handed out again after
	// its action ran (a replica died before settling it), not a new firing.
	Again bool `json:"-"`
}

// Request summarises an HTTP call without anything secret in it.
type Request = api.RemediationRequest

// pauseState is what the store keeps while remediation is paused.
type pauseState struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"` // why, when not a person: the breaker's
}

// PauseState says whether remediation is paused, by whom and since when.
type PauseState struct {
	Paused bool      `json:"paused"`
	By     string    `json:"by,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

// Handle decides, runs and audits every rule that matches one observation of
// an alert: a firing alert runs the rules' action, a resolved one their
// on_resolve (rules without one do nothing). flapping says whether the
// pipeline judged the alert to be flapping. It is synchronous and may take
// as long as MaxRunTime for each matching rule: call it off the notification
// path. Rules run one after another, in configuration order.
func (e *Engine) Handle(ctx context.Context, a template.Alert, flapping bool) []Record {
	c := e.cur.Load()
	if a.Fingerprint == "" {
		a.Fingerprint = alert.Fingerprint(a.Labels)
	}
	status := alert.StatusFiring
	if a.Status == alert.StatusResolved {
		status = alert.StatusResolved
	}
	pc := &pauseCheck{e: e}
	var recs []Record
	for _, r := range c.rules {
		act := r.fire
		if status == alert.StatusResolved {
			act = r.resolve
		}
		if act == nil || !r.matches(a.Labels) {
			continue
		}
		start := time.Now()
		rec, notice := e.run(ctx, c, r, act, a, status, flapping, pc, "")
		rec.DurationSeconds = time.Since(start).Seconds()
		e.finish(ctx, c, &rec, notice, a)
		rec.Verify = e.verification(r, act, &rec, a)
		recs = append(recs, rec)
	}
	return recs
}

// Matches says whether Handle would have any rule to decide for this
// observation: a rule that matches its labels and has an action for its
// status. Alerts no rule matches need no remediation task at all.
func (e *Engine) Matches(a template.Alert) bool {
	for _, r := range e.cur.Load().rules {
		act := r.fire
		if a.Status == alert.StatusResolved {
			act = r.resolve
		}
		if act != nil && r.matches(a.Labels) {
			return true
		}
	}
	return false
}

func (r *compiledRule) matches(ls template.KV) bool {
	for _, m := range r.matchers {
		if !m.Matches(ls[m.Name]) {
			return false
		}
	}
	return true
}

// pauseCheck reads the pause switch once per Handle, when a rule needs it.
type pauseCheck struct {
	e    *Engine
	done bool
	p    *pauseState
	err  error
}

func (pc *pauseCheck) get(ctx context.Context) (*pauseState, error) {
	if !pc.done {
		pc.p, pc.err = pc.e.pauseState(ctx)
		pc.done = true
	}
	return pc.p, pc.err
}

// MaxRunTime bounds one action's run, retries and the step read included,
// under the current configuration; give Handle a context at least this long
// per matching rule.
func (e *Engine) MaxRunTime() time.Duration {
	return runBound(e.cur.Load().cfg, 2)
}

// runBound is how long a run with n requests may take: every attempt's
// timeout and the longest backoffs. The lock outlives it, so a holder never
// acts after losing its lock.
func runBound(c Config, requests int) time.Duration {
	per := time.Duration(c.Retries+1)*time.Duration(c.Timeout) + time.Duration(c.Retries)*maxBackoff
	return time.Duration(requests)*per + time.Second
}

// run takes one rule's action through the guards and, if they all pass,
// runs it; a firing action of a rule with approval is proposed instead,
// unless approvedBy answered its proposal. It returns the record (without
// ID and duration) and the notice to send, if any.
func (e *Engine) run(ctx context.Context, c *compiled, r *compiledRule, act *compiledAction, a template.Alert, status string, flapping bool, pc *pauseCheck, approvedBy string) (rec Record, notice string) {
	now := e.now()
	rec = Record{RemediationRecord: api.RemediationRecord{
		Time:        now,
		Rule:        r.Name,
		Action:      act.kind,
		Status:      status,
		Fingerprint: a.Fingerprint,
		Labels:      maps.Clone(map[string]string(a.Labels)),
		Replica:     e.replica,
	}}
	end := func(result, reason, detail string) (Record, string) {
		rec.Result, rec.Reason, rec.Detail = result, reason, detail
		return rec, ""
	}
	skip := func(reason, detail string) (Record, string) { return end(ResultSkipped, reason, detail) }
	storeFailed := func(err error) (Record, string) {
		// Fail safe: a guard that cannot be checked stops the action.
		return end(ResultFailed, ReasonStore, e.scrub(c, err.Error()))
	}

	if !c.cfg.Enabled {
		return skip(ReasonDisabled, "remediation is disabled in the configuration")
	}
	p, err := pc.get(ctx)
	if err != nil {
		return storeFailed(err)
	}
	if p != nil {
		detail := fmt.Sprintf("remediation was paused by %s at %s", p.By, p.At.UTC().Format(time.RFC3339))
		if p.Reason != "" {
			detail += ": " + p.Reason
		}
		return skip(ReasonPaused, detail)
	}
	if flapping && !r.WhileFlapping {
		return skip(ReasonFlapping, "the alert is flapping and the rule does not act while_flapping")
	}
	ref, what := a.StartsAt, "started"
	if status == alert.StatusResolved && !a.EndsAt.IsZero() {
		ref, what = a.EndsAt, "resolved"
	}
	if maxAge := time.Duration(c.cfg.MaxAge); ref.IsZero() || now.Sub(ref) > maxAge {
		return skip(ReasonStale, fmt.Sprintf("the alert %s at %s, more than max_age (%s) ago: a stale replay", what, ref.UTC().Format(time.RFC3339), c.cfg.MaxAge))
	}

	cl, reason, err := e.prepare(c, r, act, a)
	if err != nil {
		if reason == ReasonMissingLabel {
			return skip(reason, err.Error())
		}
		return end(ResultFailed, reason, e.scrub(c, err.Error()))
	}
	rec.Request = &cl.summary

	// Cooldown and budget are first read, so that a resend (the common
	// case) is named by the guard that stops it, then decided again
	// atomically: the cooldown in the same update that takes the lock, the
	// budget under the lock.
	g := guard{e: e, rule: r, fp: a.Fingerprint, status: status, now: now, lockTTL: runBound(c.cfg, cl.requests()) + lockMargin}
	st, err := g.read(ctx)
	if err != nil {
		return storeFailed(err)
	}
	if until := st.cooldownUntil(status); until > now.UnixNano() {
		rec.Again = st.ranSince(status, a.StartsAt)
		return skip(ReasonCooldown, g.cooldownDetail(until))
	}
	if r.Budget > 0 {
		used, err := g.budgetUsed(ctx)
		if err != nil {
			return storeFailed(err)
		}
		if used >= r.Budget {
			return skip(ReasonBudget, budgetDetail(r, used))
		}
	}
	dry := c.cfg.DryRun || r.DryRun
	if r.Approval != nil && act == r.fire && approvedBy == "" && !dry {
		// Proposed, not run: the lock, the budget's slot and the breaker
		// are taken when it is approved (Carry runs it through here again).
		notice, err := e.propose(ctx, r, &rec, a, flapping, cl.would, now)
		if err != nil {
			return storeFailed(err)
		}
		return rec, notice
	}
	token := newToken()
	decision, st, err := g.acquire(ctx, token)
	if err != nil {
		return storeFailed(err)
	}
	switch decision {
	case ReasonCooldown:
		rec.Again = st.ranSince(status, a.StartsAt)
		return skip(ReasonCooldown, g.cooldownDetail(st.cooldownUntil(status)))
	case ReasonLock:
		return skip(ReasonLock, fmt.Sprintf("%s holds the lock on this rule and alert until %s", st.Lock.Owner, time.Unix(0, st.Lock.Until).UTC().Format(time.RFC3339)))
	}
	// The lock is ours. The run counts (cooldown and budget) from here.
	if r.Budget > 0 {
		ok, used, err := g.consumeBudget(ctx)
		if err != nil || !ok {
			g.release(ctx, token, false)
			if err != nil {
				return storeFailed(err)
			}
			return skip(ReasonBudget, budgetDetail(r, used))
		}
	}
	// The fleet-wide breaker, under the lock: an observation the lock
	// stops (the same alert delivered to two replicas) is not an action
	// and must not trip it. A dry run neither takes a slot nor is stopped:
	// a rehearsal must not pause the fleet.
	if !dry {
		if reason, detail := e.breakerTake(ctx, c, g, a, &rec, pc); reason != "" {
			g.release(ctx, token, false)
			return end(breakerResult(reason), reason, detail)
		}
	}
	if dry {
		g.release(ctx, token, true)
		return end(ResultDryRun, ReasonDryRun, "would "+cl.would)
	}

	runCtx, cancel := context.WithTimeout(ctx, runBound(c.cfg, cl.requests()))
	res := e.execute(runCtx, c, cl, idempotencyKey(r.Name, a.Fingerprint, status, now))
	cancel()
	g.release(ctx, token, true)
	rec.Attempts, rec.StatusCode = res.attempts, res.status
	rec.PreviousReplicas = res.previous
	if res.summary != nil {
		rec.Request = res.summary
	}
	switch {
	case res.err != nil:
		rec.Result, rec.Reason = ResultFailed, res.reason
		rec.Detail = e.scrub(c, fmt.Sprintf("%s failed after %s: %v", cl.subject, plural(res.attempts, "attempt"), res.err))
		return rec, rec.Detail
	case res.noChange != "":
		return skip(ReasonNoChange, res.noChange)
	}
	rec.Result, rec.Detail = ResultRan, res.did
	verb := "fired"
	if status == alert.StatusResolved {
		verb = "resolved"
	}
	return rec, fmt.Sprintf("%s because %s %s", res.did, alertName(a, r), verb)
}

func alertName(a template.Alert, r *compiledRule) string {
	if n := a.Labels["alertname"]; n != "" {
		return n
	}
	return "an alert matching rule " + r.Name
}

func budgetDetail(r *compiledRule, used int) string {
	return fmt.Sprintf("the rule ran %s in the last hour; its budget is %d", plural(used, "time"), r.Budget)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// idempotencyKey is sent with every attempt of one run, so an endpoint that
// honours Idempotency-Key applies a retried call once; a later run (after
// the cooldown) has a new key.
func idempotencyKey(rule, fp, status string, start time.Time) string {
	h := sha256.Sum256([]byte(rule + "|" + fp + "|" + status + "|" + strconv.FormatInt(start.UnixNano(), 10)))
	return hex.EncodeToString(h[:16])
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// scrub removes the token from text that reaches records, logs and
// notices. The token is only ever sent in a header, so it should never be
// there; this is the belt to that brace (an endpoint echoing its request in
// an error, a token pasted into a templated URL by mistake).
func (e *Engine) scrub(c *compiled, s string) string {
	if t := string(c.cfg.BearerToken); t != "" {
		s = strings.ReplaceAll(s, t, secretPlaceholder)
	}
	return s
}

// finish audits, logs, counts and announces a record.
func (e *Engine) finish(ctx context.Context, c *compiled, rec *Record, notice string, a template.Alert) {
	e.audit(ctx, c, rec)
	e.actions.WithLabelValues(rec.Action, rec.Result).Inc()
	e.logRecord(rec)
	if notice == "" {
		return
	}
	facts := map[string]string{
		"rule":        rec.Rule,
		"action":      rec.Action,
		"result":      rec.Result,
		"status":      rec.Status,
		"alertname":   a.Labels["alertname"],
		"fingerprint": rec.Fingerprint,
		"replica":     rec.Replica,
		"attempts":    strconv.Itoa(rec.Attempts),
	}
	if rec.StatusCode != 0 {
		facts["status_code"] = strconv.Itoa(rec.StatusCode)
	}
	if rec.Reason != "" {
		facts["reason"] = rec.Reason
	}
	if rec.Proposal != "" {
		facts["proposal"] = rec.Proposal
	}
	if rec.ApprovedBy != "" {
		facts["approved_by"] = rec.ApprovedBy
	}
	rec.Notice = &Notice{Text: notice, Facts: facts}
}

// Notice is one notification about a remediation, for notify_receiver.
type Notice struct {
	Text  string
	Facts map[string]string
}

func (e *Engine) logRecord(rec *Record) {
	var ev *zerolog.Event
	switch {
	case rec.Result == ResultFailed:
		ev = e.log.Warn()
	case rec.Reason == ReasonCooldown || rec.Reason == ReasonLock:
		// Routine: every resend of a firing alert, every other replica.
		ev = e.log.Debug()
	default:
		ev = e.log.Info()
	}
	ev = ev.Str("id", rec.ID).
		Str("rule", rec.Rule).
		Str("action", rec.Action).
		Str("status", rec.Status).
		Str("result", rec.Result).
		Str("reason", rec.Reason).
		Str("fingerprint", alert.LogValue(rec.Fingerprint)).
		Str("alertname", alert.LogValue(rec.Labels["alertname"])).
		Str("replica", rec.Replica).
		Float64("duration_seconds", rec.DurationSeconds)
	if rec.Request != nil {
		ev = ev.Str("method", rec.Request.Method).Str("url", alert.LogValue(rec.Request.URL)).Int("body_bytes", rec.Request.BodyBytes)
	}
	if rec.Attempts > 0 {
		ev = ev.Int("attempts", rec.Attempts)
	}
	if rec.StatusCode > 0 {
		ev = ev.Int("status_code", rec.StatusCode)
	}
	ev.Str("detail", alert.LogValue(rec.Detail)).Msg(recordMessage(rec))
}

// recordMessage is a record's log message: a constant. The detail quotes
// label values, so it is a field, which both log formats quote; as the
// message, printed as it is in console format, a newline in a label forged
// a line.
func recordMessage(rec *Record) string {
	switch rec.Action {
	case "pause":
		return "remediation paused"
	case "resume":
		return "remediation resumed"
	}
	switch rec.Result {
	case OutcomeEffective:
		return "remediation action effective"
	case OutcomeIneffective:
		return "remediation action ineffective"
	case ResultRan:
		return "remediation action ran"
	case ResultFailed:
		return "remediation action failed"
	case ResultSkipped:
		return "remediation action skipped"
	case ResultDryRun:
		return "remediation action dry run"
	}
	return "remediation action decided"
}

// guard holds one rule's lock and cooldown for one alert, and the rule's
// budget.
type guard struct {
	e       *Engine
	rule    *compiledRule
	fp      string
	status  string
	now     time.Time
	lockTTL time.Duration
}

// guardState is kept under rem:guard:<rule>:<fingerprint>. Times are unix
// nanoseconds of the engine's clock, which decides; the store's TTL only
// collects the garbage.
type guardState struct {
	Lock *lockState `json:"lock,omitempty"`
	// Cooldown maps an alert status (firing, resolved) to when its cooldown
	// ends: resolving does not wait for firing's cooldown, or the reverse.
	Cooldown map[string]int64 `json:"cooldown,omitempty"`
	// Ran maps a status to when the run that started its cooldown began;
	// kept as long as the cooldown.
	Ran map[string]int64 `json:"ran,omitempty"`
}

type lockState struct {
	Owner string `json:"owner"`
	Token string `json:"token"`
	Since int64  `json:"since"`
	Until int64  `json:"until"`
}

func (s guardState) cooldownUntil(status string) int64 { return s.Cooldown[status] }

// ranSince says whether the run that started status's cooldown began at
// or after from.
func (s guardState) ranSince(status string, from time.Time) bool {
	ran, ok := s.Ran[status]
	return ok && !from.IsZero() && ran >= from.UnixNano()
}

func (g guard) key() string { return keyGuard + g.rule.Name + ":" + g.fp }

func (g guard) ttl() time.Duration {
	return time.Duration(g.rule.Cooldown) + g.lockTTL + storeMargin
}

func (g guard) cooldownDetail(until int64) string {
	return fmt.Sprintf("the rule acted for this alert (%s) less than its cooldown (%s) ago; next possible at %s", g.status, g.rule.Cooldown, time.Unix(0, until).UTC().Format(time.RFC3339))
}

func decodeGuard(b []byte) (guardState, error) {
	var s guardState
	if b == nil {
		return s, nil
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decode remediation guard: %w", err)
	}
	return s, nil
}

// read returns the state without changing it.
func (g guard) read(ctx context.Context) (guardState, error) {
	b, err := g.e.store.State(ctx, g.key())
	if err != nil {
		return guardState{}, fmt.Errorf("read remediation guard: %w", err)
	}
	return decodeGuard(b)
}

// acquire decides, in one atomic update: the cooldown stops it, else a live
// lock held by someone else stops it, else it takes the lock. decision is
// "" when the lock is now token's.
func (g guard) acquire(ctx context.Context, token string) (decision string, st guardState, err error) {
	now := g.now.UnixNano()
	_, err = g.e.store.UpdateState(ctx, g.key(), g.ttl(), func(old []byte) ([]byte, error) {
		decision = ""
		s, err := decodeGuard(old)
		if err != nil {
			return nil, err
		}
		st = s
		if s.cooldownUntil(g.status) > now {
			decision = ReasonCooldown
			return old, nil
		}
		if s.Lock != nil && s.Lock.Until > now && s.Lock.Token != token {
			decision = ReasonLock
			return old, nil
		}
		s.Lock = &lockState{Owner: g.e.replica, Token: token, Since: now, Until: now + int64(g.lockTTL)}
		st = s
		return json.Marshal(s)
	})
	if err != nil {
		return "", st, fmt.Errorf("take remediation lock: %w", err)
	}
	return decision, st, nil
}

// release drops the lock if token still holds it and, when the action ran
// (or dry-ran), starts the cooldown from the moment the lock was taken. The
// cooldown is set here rather than at acquire so that, while a run is in
// progress, another replica is told the truth (the lock stops it); the lock
// covers the whole run, so check and consumption are still one decision.
// If the holder dies mid-run, its lock expires and no cooldown was started:
// the action did not provably happen, and the next observation may retry it.
// It runs even when ctx has ended: a lock left behind would block the rule
// for the alert until it expired.
func (g guard) release(ctx context.Context, token string, ran bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	start := g.now.UnixNano()
	until := start + int64(g.rule.Cooldown)
	_, err := g.e.store.UpdateState(ctx, g.key(), g.ttl(), func(old []byte) ([]byte, error) {
		s, err := decodeGuard(old)
		if err != nil {
			s = guardState{} // never leave a broken value behind our lock
		}
		if s.Lock != nil && s.Lock.Token == token {
			s.Lock = nil
		}
		if ran {
			if s.Cooldown == nil {
				s.Cooldown = map[string]int64{}
			}
			if s.Ran == nil {
				s.Ran = map[string]int64{}
			}
			if until >= s.Cooldown[g.status] {
				s.Cooldown[g.status], s.Ran[g.status] = until, start
			}
		}
		now := g.e.now().UnixNano()
		for k, v := range s.Cooldown {
			if v <= now {
				delete(s.Cooldown, k)
				delete(s.Ran, k)
			}
		}
		if s.Lock == nil && len(s.Cooldown) == 0 {
			return nil, nil
		}
		return json.Marshal(s)
	})
	if err != nil {
		// The lock expires by itself; say so, since until then this rule
		// does not act for this alert.
		g.e.log.Error().Err(err).Str("rule", g.rule.Name).Str("fingerprint", g.fp).
			Msg("release remediation lock failed; it expires by itself")
	}
}

func (g guard) budgetKey() string { return keyBudget + g.rule.Name }

// runsInWindow keeps the run times within the last hour.
func runsInWindow(b []byte, now time.Time) ([]int64, error) {
	return runsWithin(b, now, budgetWindow, "budget")
}

// runsWithin decodes a list of run times (a budget's, the breaker's) and
// keeps those within window of now.
func runsWithin(b []byte, now time.Time, window time.Duration, what string) ([]int64, error) {
	var runs []int64
	if b != nil {
		if err := json.Unmarshal(b, &runs); err != nil {
			return nil, fmt.Errorf("decode remediation %s: %w", what, err)
		}
	}
	cut := now.Add(-window).UnixNano()
	kept := runs[:0]
	for _, t := range runs {
		if t > cut {
			kept = append(kept, t)
		}
	}
	return kept, nil
}

func (g guard) budgetUsed(ctx context.Context) (int, error) {
	b, err := g.e.store.State(ctx, g.budgetKey())
	if err != nil {
		return 0, fmt.Errorf("read remediation budget: %w", err)
	}
	runs, err := runsInWindow(b, g.now)
	return len(runs), err
}

// consumeBudget checks and spends one run in one atomic update: the budget
// is per rule, shared by every alert, so this key is what serialises them.
func (g guard) consumeBudget(ctx context.Context) (ok bool, used int, err error) {
	_, err = g.e.store.UpdateState(ctx, g.budgetKey(), budgetWindow+storeMargin, func(old []byte) ([]byte, error) {
		ok = false
		runs, err := runsInWindow(old, g.now)
		if err != nil {
			return nil, err
		}
		used = len(runs)
		if used >= g.rule.Budget {
			return old, nil
		}
		ok = true
		used++
		return json.Marshal(append(runs, g.now.UnixNano()))
	})
	if err != nil {
		return false, 0, fmt.Errorf("spend remediation budget: %w", err)
	}
	return ok, used, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
