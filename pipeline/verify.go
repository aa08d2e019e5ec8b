package pipeline

// Verification waits (remediation's verify: {within: D}). When a firing
// action of a rule that verifies ran, the remediation runner puts a wait in
// the verify queue of the alert's shard (where its remedy task was and its
// record alert:<fp> is), due at the run's time + D. This runner takes due
// waits under a lease, as the remediation runner takes tasks, so a restart
// or another replica finishes one; it reads the alert's record and judges:
// a resolve observed after the action ran, and no firing since, is
// effective; anything else at the end of the window (still firing, firing
// again, no record) is ineffective. The verdict is given at the end of the
// window, not earlier when the resolve comes: one decision, one place, and
// the end of the window is when a held page (issue 16, item 2) is due
// anyway.

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/remediation"
	"github.com/alertmedic/alertmedic/store"
)

const (
	verifyBatch      = 8
	verifyRetry      = 30 * time.Second
	maxVerifyRetries = 20
	// verifyRecheck is how often a verify queue known to be empty, or due
	// later, is looked at anyway: another replica may have put a wait in it.
	// A verdict is at most this late, well within the minute a held page
	// may outlast its window.
	verifyRecheck = 30 * time.Second
)

// verifyNext remembers when each shard's verify queue next needs a look,
// so that an idle pipeline does not claim from every shard every second.
type verifyNext struct {
	mu sync.Mutex
	at map[int]time.Time
}

// due says whether shard's queue needs a look at now.
func (v *verifyNext) due(shard int, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return !now.Before(v.at[shard])
}

// set records when shard's queue next needs a look: its earliest due
// item, no later than a recheck from now.
func (v *verifyNext) set(shard int, now, next time.Time) {
	at := now.Add(verifyRecheck)
	if !next.IsZero() && next.Before(at) {
		at = next
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.at == nil {
		v.at = map[int]time.Time{}
	}
	v.at[shard] = at
}

// put notes a wait this replica put, due at due.
func (v *verifyNext) put(shard int, due time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.at == nil {
		v.at = map[int]time.Time{}
	}
	if cur, ok := v.at[shard]; !ok || due.Before(cur) {
		v.at[shard] = due
	}
}

// verifyTask is a verify item's payload: the verification, or the
// proposal waiting for its answer (Approval, its ID, and when it expires),
// and the pages held for them.
type verifyTask struct {
	remediation.Verification
	Approval string    `json:"approval,omitempty"`
	Expires  time.Time `json:"expires,omitzero"`
	Hold     *holdTask `json:"hold,omitempty"`
}

// approvalItemID names a proposal's wait.
func approvalItemID(id string) string { return "approval:" + id }

// verifyItemID names a verification's item: one per run, so a remedy task
// handed out again after a crash puts nothing twice.
func verifyItemID(v remediation.Verification) string { return "verify:" + v.Key() }

// awaitOutcome puts the wait for a ran action's outcome in shard's verify
// queue, due at the end of its window. A failure is logged: the action
// stands, unjudged.
func (p *Pipeline) awaitOutcome(ctx context.Context, shard int, v verifyTask) {
	id, due := verifyItemID(v.Verification), v.Due
	if v.Approval != "" {
		id, due = approvalItemID(v.Approval), v.Expires
	}
	b, err := json.Marshal(v)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		put := store.Txn{Put: []store.Put{{Queue: store.QueueVerify, Item: store.Item{ID: id, Due: due, Alerts: 1, Payload: b}}}}
		backoff := newBackoff(200*time.Millisecond, 2*time.Second)
		for attempt := 0; attempt < 3; attempt++ {
			if err = p.o.Store.Commit(ctx, shard, put); err == nil {
				p.verifyNext.put(shard, due)
				return
			}
			sleep(ctx, backoff.next())
		}
	}
	p.m.storeErrors.WithLabelValues("verify").Inc()
	p.o.Logger.Error().Err(err).Str("rule", v.Rule).Str("fingerprint", alert.LogValue(v.Fingerprint)).
		Msg("queueing a remediation verification failed; the action's outcome will not be judged (held pages go out when their hold ends)")
}

// verifies runs due verifications until ctx is done; the sweep finds them
// (they fall due long after they were put, so nothing wakes it).
func (p *Pipeline) verifies(ctx context.Context) {
	if p.o.Remediator == nil {
		return
	}
	p.shardLoop(ctx, p.verifyWake, "verify", "verification queue failed; trying again shortly", p.runVerifies)
}

// runVerifies judges every verification due now in shards, and waits for
// them.
func (p *Pipeline) runVerifies(ctx context.Context, shards []int) error {
	for _, shard := range shards {
		if !p.verifyNext.due(shard, p.o.Now()) {
			continue
		}
		for ctx.Err() == nil {
			now := p.o.Now()
			c, err := p.o.Store.Claim(ctx, shard, store.QueueVerify, store.ClaimOptions{
				Now:   now,
				Lease: p.o.Remediator.MaxRunTime() + 30*time.Second,
				Max:   verifyBatch,
			})
			if err != nil {
				return err
			}
			if len(c.Batches) == 0 {
				p.verifyNext.set(shard, now, c.Next)
				break
			}
			var wg sync.WaitGroup
			for _, b := range c.Batches {
				for _, it := range b.Items {
					wg.Add(1)
					go func() {
						defer wg.Done()
						p.verify(ctx, shard, it)
					}()
				}
			}
			wg.Wait()
		}
	}
	return nil
}

// verify judges one verification and settles its item: done, or again
// later when the store failed (what was done is not done twice).
func (p *Pipeline) verify(ctx context.Context, shard int, it store.Item) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.o.Remediator.MaxRunTime()+20*time.Second)
	defer cancel()
	st := store.Settlement{Now: p.o.Now()}
	var v verifyTask
	err := json.Unmarshal(it.Payload, &v)
	if err == nil && v.Approval == "" && (v.Rule == "" || v.Fingerprint == "") {
		err = fmt.Errorf("no rule or fingerprint")
	}
	var later time.Time
	if err != nil {
		it.LastErr = "undecodable verification: " + err.Error()
		st.Dead = []store.Item{it}
	} else if v.Approval != "" {
		if later, err = p.carry(ctx, shard, v); err == nil && !later.IsZero() {
			it.Due = later // not answered yet: look again at its timeout
			st.Retry = []store.Item{it}
		}
	} else {
		err = p.conclude(ctx, shard, v)
	}
	switch {
	case st.Dead != nil || st.Retry != nil: // decided above
	case err != nil:
		p.m.storeErrors.WithLabelValues("verify").Inc()
		it.Attempts++
		it.LastErr = err.Error()
		if it.Attempts >= maxVerifyRetries {
			st.Dead = []store.Item{it}
		} else {
			it.Due = st.Now.Add(verifyRetry)
			st.Retry = []store.Item{it}
		}
		p.o.Logger.Warn().Err(err).Str("rule", v.Rule).Str("fingerprint", alert.LogValue(v.Fingerprint)).Int("attempts", it.Attempts).
			Msg("judging a remediation's outcome failed; it is tried again")
	default:
		st.Done = []store.Item{it}
	}
	if _, err := p.o.Store.Settle(ctx, shard, store.QueueVerify, st); err != nil {
		p.m.storeErrors.WithLabelValues("verify").Inc()
		p.o.Logger.Error().Err(err).Str("item", it.ID).Msg("settling a verification failed; the lease will hand it out again, and the verdict stands")
	}
}

// conclude reads the alert's record, judges, and has the remediator record
// the verdict; the notices its records carry go to notify_receiver.
func (p *Pipeline) conclude(ctx context.Context, shard int, v verifyTask) error {
	vals, err := p.o.Store.Get(ctx, shard, recordKeyOf(v.Fingerprint))
	if err != nil {
		return fmt.Errorf("read the alert's record: %w", err)
	}
	recs, d, err := p.o.Remediator.Conclude(ctx, judge(v.Verification, vals[0]))
	if err == nil && v.Hold != nil {
		p.verdictReached(ctx, d, v.Hold, recs)
	}
	for _, rec := range recs {
		if rec.Notice != nil {
			p.RemediationNotice(ctx, rec.Notice)
		}
	}
	return err
}

// judge decides a verification on the alert's record (b; nil: none) at
// the end of its window.
func judge(v remediation.Verification, b []byte) remediation.Verdict {
	d := remediation.Verdict{Verification: v, Outcome: remediation.OutcomeIneffective}
	if b == nil {
		d.Why = "not on record (alertmedic holds no record of it)"
		return d
	}
	r := decodeRecord(v.Fingerprint, b)
	ran := v.RanAt.UnixMilli()
	at := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
	switch {
	case r.Status == alert.StatusResolved && (r.EndsAt >= ran || r.SeenAt >= ran):
		d.Outcome = remediation.OutcomeEffective
		end := r.EndsAt
		if end == 0 {
			end = r.SeenAt
		}
		d.ResolvedAt = time.UnixMilli(end).UTC()
	case r.Status == alert.StatusResolved:
		d.Why = "resolved at " + at(r.EndsAt) + ", before the action ran, and not seen since"
	case r.StartsAt > ran:
		d.Why = "firing again (since " + at(r.StartsAt) + ")"
	default:
		d.Why = "still firing"
	}
	return d
}

// verdictReached acts on the pages held for d (hold.go), once the verdict
// stands (Conclude returns the first verdict reached, whichever replica
// reached it): effective drops them, and the verdict's notice, when it is
// announced now, becomes the one "auto-remediated" line that stands for
// them; ineffective sends them now, saying what was tried. Acting twice
// (the item taken over after a lapsed lease) finds them gone.
func (p *Pipeline) verdictReached(ctx context.Context, d remediation.Verdict, h *holdTask, recs []remediation.Record) {
	if d.Outcome != remediation.OutcomeEffective {
		p.releaseHeld(ctx, h, verdictTried(d, recs), false)
		return
	}
	reached := p.releaseHeld(ctx, h, "", true)
	if len(reached) == 0 {
		return
	}
	for i := range recs {
		if n := recs[i].Notice; n != nil && recs[i].Reason == remediation.ReasonVerify {
			autoRemediated(n, reached)
		}
	}
}
