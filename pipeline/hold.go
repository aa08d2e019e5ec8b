package pipeline

// Pages held for remediation (hold_for_remediation). When a firing alert
// reaches a target that holds, and remediation has a rule that acts on it
// and verifies (Remediator.HoldFor), its notification for that target is
// not sent now: it is put in the outbox as usual (in the target's shard),
// but due at the end of the rule's verify window plus HoldGrace, under an
// ID made of the alert's episode and the target. The alert's record notes
// the hold (alertRecord.Holds), and the remediation task carries the held
// pages (holdTask) to the remediation runner, which hands them to the
// verification of the action it ran:
//
//   - the action did not run (a guard stopped it, it failed, the rule is
//     gone): the pages are made due now, saying so;
//   - effective (the alert resolved within the window): the pages are
//     dropped, and the verdict's notice to notify_receiver says
//     "auto-remediated";
//   - ineffective: the pages are made due now, saying what was tried.
//
// A page that nobody releases (every replica died, the store failed) goes
// out at its due time anyway: nothing is held longer than the window plus
// HoldGrace. A resolve that arrives for a target while it is held waits
// with the page (due at the same time, holdResolveID) and is dropped with
// it, so that a page never sent is never resolved.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/api"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/remediation"
	"github.com/alertmedic/alertmedic/routing"
	"github.com/alertmedic/alertmedic/store"
)

// HoldGrace is how long past the end of its verify window a page may be
// held: time for the verdict to be reached and acted on.
const HoldGrace = time.Minute

// holdTask is what a remediation task carries of the pages it holds: the
// rule whose outcome they wait for, and the pages as they would go out.
type holdTask struct {
	Rule  string                   `json:"rule"`
	Pages []notifiers.Notification `json:"pages"`
}

// holdID names the held page of one episode of an alert for one target;
// holdResolveID the resolve that waits with it.
func holdID(fp string, startsAt time.Time, target string) string {
	return fmt.Sprintf("hold:%s:%d:%s", fp, startsAt.UnixNano(), target)
}

func holdResolveID(fp string, startsAt time.Time, target string) string {
	return fmt.Sprintf("hold-resolve:%s:%d:%s", fp, startsAt.UnixNano(), target)
}

// holding says whether target holds the alert's pages at now.
func (r *alertRecord) holding(target string, now time.Time) (time.Time, bool) {
	until, ok := r.Holds[target]
	if !ok || until <= now.UnixMilli() {
		return time.Time{}, false
	}
	return time.UnixMilli(until), true
}

// hold notes that target holds the alert's pages until until; holds that
// ended are forgotten.
func (r *alertRecord) hold(target string, now, until time.Time) {
	for k, u := range r.Holds {
		if u <= now.UnixMilli() {
			delete(r.Holds, k)
		}
	}
	if r.Holds == nil {
		r.Holds = map[string]int64{}
	}
	r.Holds[target] = until.UnixMilli()
}

// holdPage puts a's page for t in the outbox, due at the latest time it
// may be held, and adds it to the task's hold.
func (pl *plan) holdPage(rec *alertRecord, h *holdTask, within time.Duration, t routing.Routed, a template.Alert, groupKey, extURL string) {
	until := pl.now.Add(within + HoldGrace)
	n := notifiers.Notification{Key: holdID(a.Fingerprint, a.StartsAt, t.Key()), Kind: notifiers.KindAlerts, Target: t.Target,
		Alerts: template.Alerts{a}, GroupKey: groupKey, ExternalURL: extURL,
		// What the page says if it goes out at its due time, unreleased.
		Tried: map[string]string{a.Fingerprint: fmt.Sprintf("held while rule %s acted, to be verified within %s; no verdict was reached by %s, so this page went out",
			h.Rule, model.Duration(within), until.UTC().Format(time.RFC3339))}}
	pl.putDue(n, 1, until)
	rec.hold(t.Key(), pl.now, until)
	rec.note(pl.now, api.StageHeld, t.Key(), fmt.Sprintf("held while rule %s acts, to be verified; goes out by %s at the latest", h.Rule, until.UTC().Format(time.RFC3339)), n.Key)
	h.Pages = append(h.Pages, n)
	pl.holds++
}

// holdResolve puts a resolve for a target that holds the alert's page:
// due with the page, dropped with it.
func (pl *plan) holdResolve(t routing.Routed, a template.Alert, until time.Time, groupKey, extURL string) {
	n := notifiers.Notification{Key: holdResolveID(a.Fingerprint, a.StartsAt, t.Key()), Kind: notifiers.KindAlerts, Target: t.Target,
		Alerts: template.Alerts{a}, GroupKey: groupKey, ExternalURL: extURL}
	pl.putDue(n, 1, until)
	pl.holds++
}

// releaseHeld ends a hold: drop cancels the pages (and a resolve that
// waits with them); otherwise they are due now and say tried. It returns
// the targets of the pages it reached (a page that went out at its due
// time, or is being sent, is not). A failure is logged: the pages go out
// at their due time.
func (p *Pipeline) releaseHeld(ctx context.Context, h *holdTask, tried string, drop bool) []string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// Per shard, each page with the resolve that waits with it.
	type held struct {
		target string
		moves  [2]store.Move // the page, its resolve
	}
	byShard := map[int][]held{}
	var order []int
	now := p.o.Now()
	var fp string
	for _, n := range h.Pages {
		if len(n.Alerts) != 1 {
			continue // not a held page: each holds its one alert
		}
		fp = n.Alerts[0].Fingerprint
		start := n.Alerts[0].StartsAt
		m := store.Move{Queue: store.QueueOutbox, ID: n.Key, Due: now, Drop: drop}
		if !drop {
			n.Tried = map[string]string{fp: tried}
			m.Payload, _ = json.Marshal(n)
		}
		shard := p.targetShard(n.Target.Key())
		if _, ok := byShard[shard]; !ok {
			order = append(order, shard)
		}
		byShard[shard] = append(byShard[shard], held{n.Target.Key(),
			[2]store.Move{m, {Queue: store.QueueOutbox, ID: holdResolveID(fp, start, n.Target.Key()), Due: now, Drop: drop}}})
	}
	var reached []string
	for _, shard := range order {
		pages := byShard[shard]
		backoff := newBackoff(200*time.Millisecond, time.Second)
		for attempt := 0; ; attempt++ {
			var moves []store.Move
			for _, hp := range pages {
				moves = append(moves, hp.moves[:]...)
			}
			applied, err := p.o.Store.CommitMoves(ctx, shard, store.Txn{Move: moves})
			if err == nil {
				var missed []held
				for i, hp := range pages {
					if applied[2*i] { // the page's own move
						reached = append(reached, hp.target)
					} else {
						missed = append(missed, hp)
					}
				}
				// A page put a moment ago for a target in another shard
				// may still be on its way there (the forward queue): a
				// release that finds nothing looks again, briefly.
				if len(missed) == 0 || drop || attempt >= 3 {
					break
				}
				pages = missed
			} else if attempt >= 3 {
				p.m.storeErrors.WithLabelValues("hold").Inc()
				p.o.Logger.Error().Err(err).Str("fingerprint", alert.LogValue(fp)).
					Msg("releasing pages held for remediation failed; they go out when their hold ends")
				break
			}
			sleep(ctx, backoff.next())
		}
	}
	return reached
}

// triedText says what remediation did about a held alert when the rule
// that held it did not act, from the records Handle returned.
func triedText(rule string, recs []remediation.Record) string {
	for _, r := range recs {
		if r.Rule != rule {
			continue
		}
		switch r.Result {
		case remediation.ResultFailed:
			return fmt.Sprintf("rule %s tried %s and failed: %s", rule, r.Action, r.Detail)
		case remediation.ResultDryRun:
			return fmt.Sprintf("rule %s only rehearsed (dry run): %s", rule, r.Detail)
		case remediation.ResultRan:
			return fmt.Sprintf("rule %s: %s; it is not verified", rule, r.Detail)
		case remediation.ResultProposed, remediation.ResultDenied, remediation.ResultExpired:
			return fmt.Sprintf("rule %s asked for approval: %s", rule, r.Detail)
		}
		return fmt.Sprintf("rule %s did not act (%s): %s", rule, r.Reason, r.Detail)
	}
	return fmt.Sprintf("rule %s no longer acts on this alert (the configuration changed)", rule)
}

// verdictTried says what was tried, for a page released by an ineffective
// verdict: the action, the verdict, and the rollback when one ran.
func verdictTried(d remediation.Verdict, recs []remediation.Record) string {
	s := fmt.Sprintf("rule %s at %s: %s; the alert was %s at the end of the %s window", d.Rule, d.RanAt.UTC().Format(time.RFC3339), d.Did, d.Why, d.Within)
	for _, r := range recs {
		if r.Reason == remediation.ReasonRollback {
			s += fmt.Sprintf("; rollback %s: %s", r.Result, r.Detail)
		}
	}
	return s
}

// autoRemediated turns an effective verdict's notice into the one line
// that stands for the pages it dropped (to targets).
func autoRemediated(n *remediation.Notice, targets []string) {
	n.Text = "auto-remediated: " + strings.TrimPrefix(n.Text, remediation.OutcomeEffective+": ") +
		"; the held page to " + strings.Join(targets, ", ") + " was not sent"
	n.Facts["held_pages_dropped"] = fmt.Sprint(len(targets))
}
