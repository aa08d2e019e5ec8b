package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/remediation"
	"github.com/alertmedic/alertmedic/store"
)

// Remediator runs the guarded actions for one alert observation.
type Remediator interface {
	// Matches says whether any rule would act on this observation; only
	// those get a task.
	Matches(a template.Alert) bool
	Handle(ctx context.Context, a template.Alert, flapping bool) []remediation.Record
	MaxRunTime() time.Duration
	// HoldFor names the rule whose verdict a firing alert's pages wait
	// for on targets with hold_for_remediation, and how long it may take;
	// "" holds nothing (hold.go).
	HoldFor(a template.Alert) (rule string, within time.Duration)
	// Conclude records the verdict on a verified action (and rolls it
	// back when the rule says so); see verify.go.
	Conclude(ctx context.Context, d remediation.Verdict) ([]remediation.Record, remediation.Verdict, error)
	// Carry takes an answered, or expired, proposal on (a rule with
	// approval): it returns the records, what happened
	// (remediation.Carry*) and the rule.
	Carry(ctx context.Context, id string) ([]remediation.Record, string, string, error)
}

// remedyTask is an alert observation waiting for its remediation.
type remedyTask struct {
	Alert    template.Alert `json:"alert"`
	Flapping bool           `json:"flapping"`
	// Hold holds the alert's pages until the verdict of its rule.
	Hold *holdTask `json:"hold,omitempty"`
}

// remedies runs waiting remediation tasks, at most RemedyWorkers at once,
// each under a lease so that a replica dying mid-action leaves it to another.
func (p *Pipeline) remedies(ctx context.Context) {
	if p.o.Remediator == nil {
		return
	}
	// Each pass takes what is due; the ticker only catches tasks other
	// replicas queued and leases that lapsed.
	p.shardLoop(ctx, p.remedyWake, "remedy", "remediation queue failed; trying again shortly", func(ctx context.Context, shards []int) error {
		return p.runRemedies(ctx, shards, false)
	})
}

func (p *Pipeline) runRemedies(ctx context.Context, shards []int, wait bool) error {
	if len(shards) == 0 {
		return nil
	}
	var running chan struct{}
	if wait {
		running = make(chan struct{}, cap(p.remedySlots))
	}
	started, empty, next := 0, 0, 0
	for ctx.Err() == nil {
		free := cap(p.remedySlots) - len(p.remedySlots)
		if free == 0 {
			break
		}
		now := p.o.Now()
		shard := shards[next%len(shards)]
		next++
		c, err := p.o.Store.Claim(ctx, shard, store.QueueRemedy, store.ClaimOptions{
			Now:   now,
			Lease: p.o.Remediator.MaxRunTime() + 5*time.Second,
			Max:   free,
		})
		if err != nil {
			return err
		}
		if len(c.Batches) == 0 {
			if empty++; empty >= len(shards) {
				break
			}
			continue
		}
		empty = 0
		for _, b := range c.Batches {
			for _, it := range b.Items {
				p.remedySlots <- struct{}{}
				started++
				p.wg.Add(1)
				go func() {
					defer p.wg.Done()
					defer func() {
						<-p.remedySlots
						if running != nil {
							running <- struct{}{}
						}
					}()
					p.remedy(ctx, shard, it)
				}()
			}
		}
	}
	for i := 0; i < started && wait; i++ {
		<-running
	}
	return nil
}

func (p *Pipeline) remedy(ctx context.Context, shard int, it store.Item) {
	var task remedyTask
	if err := json.Unmarshal(it.Payload, &task); err == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.o.Remediator.MaxRunTime())
		recs := p.o.Remediator.Handle(rctx, task.Alert, task.Flapping)
		cancel()
		p.ran(ctx, shard, task.Hold, recs)
	} else {
		p.o.Logger.Error().Err(err).Str("task", it.ID).Msg("undecodable remediation task; dropped")
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := p.o.Store.Settle(sctx, shard, store.QueueRemedy, store.Settlement{Done: []store.Item{it}, Now: p.o.Now()}); err != nil {
		p.m.storeErrors.WithLabelValues("remedy").Inc()
		p.o.Logger.Error().Err(err).Str("task", it.ID).Msg("settling a remediation failed; the lease will hand it out again, and its cooldown stops a repeat")
	}
}

// ran follows up what Handle (or Carry) decided: the wait for each action's
// outcome, and for each proposal's answer, goes in the store, with the
// pages its rule holds; the records' notices go to notify_receiver; pages
// held for a rule that neither ran (with verify) nor proposed go now.
func (p *Pipeline) ran(ctx context.Context, shard int, hold *holdTask, recs []remediation.Record) {
	for _, rec := range recs {
		var vt *verifyTask
		switch {
		case rec.Verify != nil:
			vt = &verifyTask{Verification: *rec.Verify}
		case rec.Proposed != nil:
			vt = &verifyTask{Approval: rec.Proposed.ID, Expires: rec.Proposed.Expires}
		}
		if vt != nil {
			if hold != nil && rec.Rule == hold.Rule {
				vt.Hold, hold = hold, nil
			}
			p.awaitOutcome(ctx, shard, *vt)
		}
		if rec.Notice != nil {
			p.RemediationNotice(context.WithoutCancel(ctx), rec.Notice)
		}
	}
	if hold != nil {
		for _, rec := range recs {
			if rec.Rule == hold.Rule && rec.Reason == remediation.ReasonCooldown && rec.Again {
				// This task was handed out again after its action ran (the
				// replica that ran it died before settling it): the wait for
				// the outcome, written then, carries the pages; were it not
				// written, they go at the end of their hold. Releasing them
				// now would page although the action may have helped.
				p.o.Logger.Info().Str("rule", hold.Rule).Str("fingerprint", rec.Fingerprint).
					Msg("remediation task handed out again after its action ran; the held pages wait for its verdict")
				return
			}
		}
		// The rule that holds the pages did not act: they go now.
		p.releaseHeld(ctx, hold, triedText(hold.Rule, recs), false)
	}
}

// carry takes a proposal's wait on when it is due (its timeout) or was
// made due by an answer (Answered): an approved action runs, and its
// outcome is waited for as any other's; denied or expired, the held pages
// go. A zero time means done; otherwise look again then.
func (p *Pipeline) carry(ctx context.Context, shard int, v verifyTask) (time.Time, error) {
	recs, outcome, _, err := p.o.Remediator.Carry(ctx, v.Approval)
	if err != nil {
		return time.Time{}, err
	}
	switch outcome {
	case remediation.CarryPending:
		return v.Expires, nil
	case remediation.CarryDone:
		return time.Time{}, nil
	}
	p.ran(ctx, shard, v.Hold, recs)
	return time.Time{}, nil
}

// Answered follows an answer to a proposal (remediation.Engine.Decide):
// its notice goes to notify_receiver, and the proposal's wait is made due
// now, so that the answer is carried at once rather than at the timeout.
// The wait is in its alert's shard, which the answer does not know: each
// is tried. A failure is logged: the wait is carried at its timeout.
func (p *Pipeline) Answered(ctx context.Context, id string, n *remediation.Notice) {
	if n != nil {
		p.RemediationNotice(ctx, n)
	}
	now := p.o.Now()
	for shard := 0; shard < p.o.Store.Shards(); shard++ {
		applied, err := p.o.Store.CommitMoves(ctx, shard, store.Txn{Move: []store.Move{{Queue: store.QueueVerify, ID: approvalItemID(id), Due: now}}})
		if err != nil {
			p.m.storeErrors.WithLabelValues("verify").Inc()
			p.o.Logger.Error().Err(err).Str("proposal", id).Msg("making an answered proposal due failed; it is carried at its timeout")
			continue
		}
		if applied[0] {
			p.verifyNext.put(shard, now)
			p.verifyWake.mark(shard)
			return
		}
	}
}

// RemediationNotice sends what a remediation record (an action that ran or
// failed, a pause or a resume) says to remediation.notify_receiver; a
// failure to queue it is logged, the action's own record stands.
func (p *Pipeline) RemediationNotice(ctx context.Context, n *remediation.Notice) {
	r := p.rules.Load()
	if r == nil {
		return
	}
	if err := p.Notice(ctx, r.RemediationReceiver, notifiers.KindRemediation, n.Text, n.Facts); err != nil {
		p.m.storeErrors.WithLabelValues("notice").Inc()
		p.o.Logger.Error().Err(err).Msg("queueing a remediation notice failed")
	}
}

// Notice sends one of alertmedic's own notices (a remediation ran or
// failed) to every integration of a receiver, through the outbox.
func (p *Pipeline) Notice(ctx context.Context, receiver, kind, text string, facts map[string]string) error {
	r := p.rules.Load()
	if r == nil || r.Tree == nil || receiver == "" {
		return nil
	}
	// The text is in the key too: two notices of one instant (a verdict and
	// its rollback, two rules) are two notifications.
	h := fnv.New64a()
	_, _ = h.Write([]byte(text))
	return p.commitPlan(ctx, 0, nil, func(pl *plan) bool {
		now := pl.now
		for _, t := range r.Tree.ReceiverTargets(receiver) {
			pl.putNotification(notifiers.Notification{Key: fmt.Sprintf("notice:%s:%d:%x:%s", kind, now.UnixNano(), h.Sum64(), t.Key()), Kind: kind, Target: t, Text: text, Facts: facts}, 0)
		}
		return true
	})
}
