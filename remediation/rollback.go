package remediation

// Rollback: an ineffective action of a rule with rollback_on: ineffective
// is undone. A scale goes back to the replica count it read before it
// acted, a circuit_break is closed (circuit_close, the same api), an http
// action sends the rule's rollback request. It runs once per verdict: a
// lock in the verdict's state (rem:verdict:<key>) is taken before the call
// and the state says rolled_back after it, whatever the result; a holder
// that dies mid-call lets its lock lapse and the verify item, handed out
// again, retries with the same Idempotency-Key. The kill switch and
// enabled: false stop it (audited as skipped), dry_run rehearses it; the
// fleet breaker does not count it: it undoes an action the breaker counted.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// errRollbackBusy: another replica holds the rollback's lock (its lease on
// the verify item lapsed while it called); try again when the lock has.
var errRollbackBusy = errors.New("another replica is rolling this action back")

// rollback undoes the verdict's action under the rule r. It returns nil and
// no error when the rollback was done already.
func (e *Engine) rollback(ctx context.Context, c *compiled, r *compiledRule, d Verdict, key string) (*Record, error) {
	now := e.now()
	token := newToken()
	lockTTL := runBound(c.cfg, 1) + lockMargin
	done, busy := false, false
	_, err := e.store.UpdateState(ctx, key, verdictTTL, func(old []byte) ([]byte, error) {
		done, busy = false, false
		s := decodeVerdictState(old)
		switch {
		case s.RolledBack:
			done = true
			return old, nil
		case s.Rollback != nil && s.Rollback.Until > now.UnixNano() && s.Rollback.Token != token:
			busy = true
			return old, nil
		}
		if s.Outcome == "" {
			s.Outcome, s.Why, s.Announced = d.Outcome, d.Why, true
		}
		s.Rollback = &lockState{Owner: e.replica, Token: token, Since: now.UnixNano(), Until: now.Add(lockTTL).UnixNano()}
		return json.Marshal(s)
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("take remediation rollback lock: %w", err)
	case done:
		return nil, nil
	case busy:
		return nil, errRollbackBusy
	}
	start := time.Now()
	rec, notice, err := e.runRollback(ctx, c, r, d, now)
	if err != nil {
		e.releaseRollback(ctx, key, token, false)
		return nil, err
	}
	e.releaseRollback(ctx, key, token, true)
	rec.DurationSeconds = time.Since(start).Seconds()
	e.finish(ctx, c, &rec, notice, d.Alert)
	return &rec, nil
}

// runRollback decides and makes the rollback's call. An error is a store
// fault before anything was sent.
func (e *Engine) runRollback(ctx context.Context, c *compiled, r *compiledRule, d Verdict, now time.Time) (Record, string, error) {
	kind := d.Action
	if kind == ActionCircuitBreak {
		kind = ActionCircuitClose
	}
	rec := e.verdictRecord(d, now, kind, ReasonRollback)
	because := fmt.Sprintf("%s was %s at the end of the %s window", alertName(d.Alert, r), d.Why, d.Within)
	end := func(result, detail string) (Record, string, error) {
		rec.Result, rec.Detail = result, e.scrub(c, detail)
		return rec, fmt.Sprintf("rollback of %s %s: %s", d.Rule, result, rec.Detail), nil
	}
	if !c.cfg.Enabled {
		return end(ResultSkipped, "not rolled back: remediation is disabled in the configuration")
	}
	p, err := e.pauseState(ctx)
	if err != nil {
		return rec, "", err
	}
	if p != nil {
		return end(ResultSkipped, fmt.Sprintf("not rolled back: remediation was paused by %s at %s", p.By, p.At.UTC().Format(time.RFC3339)))
	}
	cl, err := e.rollbackCall(c, r, d)
	if err != nil {
		return end(ResultFailed, "nothing was sent: "+err.Error())
	}
	rec.Request = &cl.summary
	if c.cfg.DryRun || r.DryRun {
		return end(ResultDryRun, "would "+cl.would)
	}
	runCtx, cancel := context.WithTimeout(ctx, runBound(c.cfg, cl.requests()))
	res := e.execute(runCtx, c, cl, idempotencyKey(d.Rule, d.Fingerprint, ReasonRollback, d.RanAt))
	cancel()
	rec.Attempts, rec.StatusCode = res.attempts, res.status
	if res.summary != nil {
		rec.Request = res.summary
	}
	if res.err != nil {
		return end(ResultFailed, fmt.Sprintf("%s failed after %s: %v", cl.subject, plural(res.attempts, "attempt"), res.err))
	}
	rec.Result, rec.Detail = ResultRan, res.did
	return rec, fmt.Sprintf("rolled back %s: %s, because %s", d.Rule, res.did, because), nil
}

// rollbackCall builds the call that undoes the verdict's action.
func (e *Engine) rollbackCall(c *compiled, r *compiledRule, d Verdict) (*call, error) {
	u := d.Undo
	if u == nil {
		u = &Undo{}
	}
	var cl *call
	switch d.Action {
	case ActionScale:
		switch {
		case u.Service == "":
			return nil, errors.New("the scaled service is not known")
		case u.Replicas == nil:
			return nil, errors.New("the replica count before the scale is not known (it was not read)")
		}
		n := *u.Replicas
		cl = &call{method: http.MethodPost, url: c.orchURL + "/scale", auth: true, body: scaleBody(u.Service, n),
			subject: "rollback scale of " + u.Service,
			would:   fmt.Sprintf("scale %s back to %d replicas", u.Service, n),
			did:     fmt.Sprintf("scaled %s back to %d replicas", u.Service, n)}
	case ActionCircuitBreak:
		seg, err := pathSegment(u.API)
		if u.API == "" || err != nil {
			return nil, errors.New("the circuit breaker's api is not known")
		}
		cl = &call{method: http.MethodDelete, url: c.apiURL + "/internal/circuit-breaker/" + seg, auth: true,
			subject: "circuit close of " + u.API,
			would:   "close the circuit breaker for " + u.API,
			did:     "circuit breaker for " + u.API + " closed"}
	case ActionHTTP:
		if r.rollback == nil {
			return nil, errors.New("the rule has no rollback request")
		}
		prepared, _, err := e.prepare(c, r, r.rollback, d.Alert)
		if err != nil {
			return nil, err
		}
		cl = prepared
		cl.subject = "rollback " + cl.subject
	default:
		return nil, fmt.Errorf("%s cannot be rolled back", d.Action)
	}
	cl.summary = Request{Method: cl.method, URL: summaryURL(cl.url), BodyBytes: len(cl.body)}
	return cl, nil
}

// releaseRollback drops the lock token holds and, when done, marks the
// rollback done for good. It runs even when ctx has ended.
func (e *Engine) releaseRollback(ctx context.Context, key, token string, done bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	_, err := e.store.UpdateState(ctx, key, verdictTTL, func(old []byte) ([]byte, error) {
		s := decodeVerdictState(old)
		if s.Rollback != nil && s.Rollback.Token == token {
			s.Rollback = nil
		}
		s.RolledBack = s.RolledBack || done
		return json.Marshal(s)
	})
	if err != nil {
		e.log.Error().Err(err).Str("key", key).Msg("release remediation rollback lock failed; it expires by itself")
	}
}
