package remediation

// The fleet-wide breaker (remediation.max_actions). Cooldowns and budgets
// stop one rule from running away; nothing stopped twenty rules, or one
// rule on many alerts, from acting at once across every replica. The
// breaker counts the actions that get to their call, every rule and
// replica together, in one store key. The action that would exceed the
// count is not run, and remediation pauses itself with the pause switch
// Pause uses: every replica sees it, and it holds until someone resumes.
// A breaker that reset itself when its window slid on would let a runaway
// go on at count actions per window, unwatched.

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/alert"
)

const (
	keyFleet      = "rem:fleet" // the breaker's run times within max_actions.per, every rule and replica
	maxBreakerPer = 24 * time.Hour
	// BreakerBy is who the breaker's pause is by, in PauseState and the
	// notice.
	BreakerBy = "breaker"
)

// MaxActions is the breaker's limit: Count actions in any rolling Per.
type MaxActions struct {
	Count int            `yaml:"count" json:"count"`
	Per   model.Duration `yaml:"per" json:"per"`
}

func checkMaxActions(m *MaxActions, bad func(string, string, ...any)) {
	if m == nil {
		return
	}
	if m.Count < 1 {
		bad("max_actions.count", "must be 1 or more, got %d", m.Count)
	}
	if m.Per <= 0 || time.Duration(m.Per) > maxBreakerPer {
		bad("max_actions.per", "must be a positive duration of at most %s, got %s", model.Duration(maxBreakerPer), m.Per)
	}
}

// breakerMetrics are the breaker's metrics and what the gauge reads: the
// run times this engine last read from the store.
type breakerMetrics struct {
	trips prometheus.Counter
	used  prometheus.GaugeFunc

	mu   sync.Mutex
	seen []int64
}

func (e *Engine) initBreaker(reg prometheus.Registerer) {
	e.breaker.trips = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "alertmedic_remediation_breaker_trips_total",
		Help: "Times the fleet-wide breaker (remediation.max_actions) stopped an action and paused remediation.",
	})
	e.breaker.used = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "alertmedic_remediation_breaker_slots_used",
		Help: "Actions the fleet-wide breaker counts in its window, as this replica last read them from the store; 0 without max_actions.",
	}, e.breakerUsed)
	if reg != nil {
		e.breaker.trips = register(reg, e.breaker.trips)
		e.breaker.used = register(reg, e.breaker.used)
	}
}

// breakerUsed is the gauge: the last read, less what has left the window
// since, so that it falls to 0 when the fleet is quiet.
func (e *Engine) breakerUsed() float64 {
	m := e.cur.Load().cfg.MaxActions
	if m == nil {
		return 0
	}
	cut := e.now().Add(-time.Duration(m.Per)).UnixNano()
	e.breaker.mu.Lock()
	defer e.breaker.mu.Unlock()
	n := 0
	for _, t := range e.breaker.seen {
		if t > cut {
			n++
		}
	}
	return float64(n)
}

func (e *Engine) noteFleet(runs []int64) {
	e.breaker.mu.Lock()
	e.breaker.seen = append(e.breaker.seen[:0], runs...)
	e.breaker.mu.Unlock()
}

// breakerResult is the result that goes with a reason breakerTake returns:
// a store failure stops the action as failed, like every guard that cannot
// be checked.
func breakerResult(reason string) string {
	if reason == ReasonStore {
		return ResultFailed
	}
	return ResultSkipped
}

// breakerTake decides and takes the slot, in one atomic update, under the
// rule's lock and after its budget: the count is the fleet's, so this key is
// what serialises every action. It returns "" when the action may go on,
// else the reason and the detail to end the record with; a full count
// trips the breaker. When the breaker stops the action, the budget run just
// spent is given back: the action did not run.
//
// It is not read before the lock, as the budget is: a replica that read a
// full count there could not tell an action from a second delivery of the
// alert another replica is acting on (which the lock stops), and would
// pause the fleet at count actions, not count+1.
func (e *Engine) breakerTake(ctx context.Context, c *compiled, g guard, a template.Alert, rec *Record, pc *pauseCheck) (reason, detail string) {
	m := c.cfg.MaxActions
	if m == nil {
		return "", ""
	}
	per := time.Duration(m.Per)
	ok, used := false, 0
	var seen []int64
	_, err := e.store.UpdateState(ctx, keyFleet, per+storeMargin, func(old []byte) ([]byte, error) {
		ok = false
		runs, err := runsWithin(old, g.now, per, "breaker")
		if err != nil {
			return nil, err
		}
		used, seen = len(runs), runs
		if used >= m.Count {
			return old, nil
		}
		ok = true
		seen = append(runs, g.now.UnixNano())
		used = len(seen)
		return json.Marshal(seen)
	})
	if err != nil {
		g.refundBudget(ctx)
		return ReasonStore, e.scrub(c, fmt.Sprintf("take remediation breaker slot: %v", err))
	}
	e.noteFleet(seen)
	if ok {
		return "", ""
	}
	g.refundBudget(ctx)
	return ReasonBreaker, e.trip(ctx, c, g.rule, a, rec, pc, used)
}

// trip pauses remediation for the breaker and returns the stopped record's
// detail. Only the trip that paused sets the notice (on rec, for Handle's
// caller to send) and counts: a second trip while paused says nothing
// more. The pause is written even when ctx has ended: the action was
// stopped because the fleet did too much, and the next one must be too.
func (e *Engine) trip(ctx context.Context, c *compiled, r *compiledRule, a template.Alert, rec *Record, pc *pauseCheck, used int) string {
	m := c.cfg.MaxActions
	detail := fmt.Sprintf("the fleet ran %s in the last %s, the limit remediation.max_actions: remediation is paused until resumed (POST /api/v1/remediation/resume)", plural(used, "action"), m.Per)
	reason := fmt.Sprintf("%s in %s: the fleet-wide limit remediation.max_actions", plural(m.Count, "action"), m.Per)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	n, err := e.setPause(wctx, BreakerBy, reason, true)
	// The next rule of this Handle reads the switch again, and sees it.
	pc.done = false
	if err != nil {
		// The action is stopped all the same; the next one is stopped by
		// the breaker again while the count is full.
		e.log.Error().Err(err).Str("rule", r.Name).Msg("remediation breaker: pause failed")
		return detail + "; pausing failed: " + e.scrub(c, err.Error())
	}
	if n == nil {
		return detail
	}
	e.breaker.trips.Inc()
	e.log.Warn().Str("rule", r.Name).Str("alertname", alert.LogValue(a.Labels["alertname"])).
		Int("count", m.Count).Str("per", m.Per.String()).
		Msg("remediation breaker tripped; remediation paused until resumed")
	n.Text += fmt.Sprintf(". %s did not run for %s; remediation stays paused until resumed (POST /api/v1/remediation/resume)", r.Name, alertName(a, r))
	n.Facts["rule"] = r.Name
	n.Facts["reason"] = ReasonBreaker
	n.Facts["limit"] = fmt.Sprintf("%d per %s", m.Count, m.Per)
	rec.Notice = n
	return detail
}

// resetBreaker starts the count afresh, on a resume: whoever resumed has
// looked, and a count still full would trip again at the next action.
func (e *Engine) resetBreaker(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	if _, err := e.store.UpdateState(ctx, keyFleet, storeMargin, func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		e.log.Warn().Err(err).Msg("remediation breaker: reset on resume failed; the count clears as its window passes")
		return
	}
	e.noteFleet(nil)
}

// refundBudget gives back the budget run consumeBudget just spent, when a
// later check stopped the action. A failure leaves the run spent: the
// budget is then stricter than it says, for an hour at most.
func (g guard) refundBudget(ctx context.Context) {
	if g.rule.Budget <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	at := g.now.UnixNano()
	_, err := g.e.store.UpdateState(ctx, g.budgetKey(), budgetWindow+storeMargin, func(old []byte) ([]byte, error) {
		runs, err := runsInWindow(old, g.now)
		if err != nil {
			return nil, err
		}
		for i, t := range runs {
			if t == at {
				runs = append(runs[:i], runs[i+1:]...)
				break
			}
		}
		if len(runs) == 0 {
			return nil, nil
		}
		return json.Marshal(runs)
	})
	if err != nil {
		g.e.log.Warn().Err(err).Str("rule", g.rule.Name).Msg("remediation breaker: give back the budget run failed")
	}
}
