package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/notifiers"
)

// The dispatcher sends what the workers put in the outbox. Workers never
// wait for an integration: a slow or failing Slack delays nobody else.
// Per target, it sends at most one message at a time, within the target's
// rate limit; alerts that wait for the limit coalesce into the next message
// instead of queueing as many messages. A failure worth retrying
// reschedules the item with backoff (at least Retry-After); one that fails
// for good, or runs past the delivery deadline, becomes a dead letter.

// RateLimit is a token bucket per target: PerSecond messages a second on
// average, Burst at once.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// maxCoalesce bounds the alerts merged into one message; the integration
// shows what exceeds its own limit as "and N more".
const maxCoalesce = 1000

type bucket struct {
	tokens float64
	last   time.Time
}

func (p *Pipeline) allow(target, integration string, now time.Time) bool {
	lim, ok := p.o.RateLimits[integration]
	if !ok || lim.PerSecond <= 0 {
		return true
	}
	p.dmu.Lock()
	defer p.dmu.Unlock()
	b := p.buckets[target]
	if b == nil {
		b = &bucket{tokens: float64(max(lim.Burst, 1)), last: now}
		p.buckets[target] = b
	}
	b.tokens = min(float64(max(lim.Burst, 1)), b.tokens+now.Sub(b.last).Seconds()*lim.PerSecond)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (p *Pipeline) wake() {
	select {
	case p.wakeCh <- struct{}{}:
	default:
	}
}

func (p *Pipeline) dispatcher(ctx context.Context) {
	p.loop(ctx, 100*time.Millisecond, p.wakeCh, "dispatch", "dispatch failed; trying again shortly", func(ctx context.Context) error {
		return p.dispatchOnce(ctx, false)
	})
}

// Flush sends what is due now and waits for it (tests, and the end of a
// drain).
func (p *Pipeline) Flush(ctx context.Context) error { return p.dispatchOnce(ctx, true) }

// dispatchOnce starts a send for every target with due items and a free
// rate-limit token; with wait it returns when those sends finished.
func (p *Pipeline) dispatchOnce(ctx context.Context, wait bool) error {
	now := p.o.Now()
	ids, err := p.o.Store.Marked(ctx, indexOutbox, score(now))
	if err != nil {
		return err
	}
	type due struct {
		id string
		it outboxItem
	}
	byTarget := map[string][]due{}
	var order []string
	for _, id := range ids {
		var it outboxItem
		old, err := p.o.Store.State(ctx, "outbox:"+id)
		if err != nil {
			return err
		}
		if old == nil || json.Unmarshal(old, &it) != nil || it.Sent {
			_ = p.o.Store.Unmark(ctx, indexOutbox, id)
			continue
		}
		if it.Due.After(now) || it.Lease.After(now) {
			continue
		}
		k := it.N.Target.Key()
		if _, seen := byTarget[k]; !seen {
			order = append(order, k)
		}
		byTarget[k] = append(byTarget[k], due{id, it})
	}
	var wg sync.WaitGroup
	for _, k := range order {
		items := byTarget[k]
		p.dmu.Lock()
		busy := p.sending[k]
		p.dmu.Unlock()
		if busy || !p.allow(k, items[0].it.N.Target.Integration, now) {
			continue // coalesces into the next message for this target
		}
		p.dmu.Lock()
		p.sending[k] = true
		p.dmu.Unlock()
		ids := make([]string, len(items))
		for i, d := range items {
			ids[i] = d.id
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				p.dmu.Lock()
				delete(p.sending, k)
				p.dmu.Unlock()
				// What came due for this target while it was busy goes now,
				// not at the next tick.
				p.wake()
			}()
			// Sends outlive a shutdown's cancel only as long as their own
			// attempt timeout allows.
			if err := p.sendTarget(context.WithoutCancel(ctx), ids); err != nil {
				p.m.storeErrors.WithLabelValues("dispatch").Inc()
				p.o.Logger.Error().Err(err).Str("target", k).Msg("send failed on the store; the items are retried after their lease")
			}
		}()
	}
	if wait {
		wg.Wait()
	}
	return nil
}

// sendTarget claims the due items of one target, sends them as one message
// where they can merge, and settles each item.
func (p *Pipeline) sendTarget(ctx context.Context, ids []string) error {
	now := p.o.Now()
	// The lease outlasts one attempt: a replica that dies mid-send leaves
	// the items to others (or to itself, restarted) soon after.
	lease := now.Add(p.o.Retrier.AttemptTimeoutOrDefault() + 5*time.Second)
	var claimed []outboxItem
	var claimedIDs []string
	for _, id := range ids {
		var it outboxItem
		var mine bool
		if _, err := p.o.Store.UpdateState(ctx, "outbox:"+id, 7*24*time.Hour, func(old []byte) ([]byte, error) {
			// fn runs again when another replica wrote the key meanwhile:
			// decide from the newest value alone, never from a stale copy.
			mine, it = false, outboxItem{}
			if old == nil || json.Unmarshal(old, &it) != nil || it.Sent || it.Due.After(now) || it.Lease.After(now) {
				return old, nil
			}
			it.Lease, mine = lease, true
			if it.First.IsZero() {
				it.First = now
			}
			return json.Marshal(it)
		}); err != nil {
			return err
		}
		if mine {
			claimed = append(claimed, it)
			claimedIDs = append(claimedIDs, id)
		}
	}
	if len(claimed) == 0 {
		return nil
	}
	// Plain alert notifications merge; notices and digests go one each,
	// first in line.
	var batch []int
	for i, it := range claimed {
		if it.N.Kind != notifiers.KindAlerts {
			batch = []int{i}
			break
		}
		batch = append(batch, i)
	}
	n := merge(claimed, batch)
	log := p.o.Logger.With().Str("target", n.Target.Key()).Str("kind", n.Kind).Logger()
	// An alert observation (fingerprint, status, startsAt) goes to a target
	// at most once, however many entries carried it (a resend after the
	// dedup window, a replay).
	if n.Kind == notifiers.KindAlerts {
		fresh, err := p.undelivered(ctx, n)
		if err != nil {
			return err
		}
		if len(fresh) == 0 {
			for _, i := range batch {
				if err := p.settle(ctx, claimedIDs[i], claimed[i], func(it *outboxItem) { it.Sent, it.N.Alerts = true, nil }); err != nil {
					return err
				}
			}
			log.Debug().Int("alerts", len(n.Alerts)).Msg("every alert already delivered to this target; nothing sent")
			return nil
		}
		n.Alerts = fresh
	}
	var retry bool
	var err error
	if p.o.Notifier != nil {
		actx, cancel := context.WithTimeout(ctx, p.o.Retrier.AttemptTimeoutOrDefault())
		retry, err = p.o.Notifier.Notify(actx, &n)
		cancel()
	}

	// Items not in the batch go back at once, unchanged but for the lease.
	inBatch := map[int]bool{}
	for _, i := range batch {
		inBatch[i] = true
	}
	for i := range claimed {
		if !inBatch[i] {
			if err := p.settle(ctx, claimedIDs[i], claimed[i], func(it *outboxItem) { it.Lease = time.Time{} }); err != nil {
				return err
			}
		}
	}
	if err == nil {
		if n.Kind == notifiers.KindAlerts {
			if err := p.markDelivered(ctx, n); err != nil {
				return err
			}
		}
		p.m.notified.WithLabelValues(n.Kind).Inc()
		if len(batch) > 1 {
			p.m.coalesced.Add(float64(len(batch) - 1))
		}
		for _, i := range batch {
			if err := p.settle(ctx, claimedIDs[i], claimed[i], func(it *outboxItem) { it.Sent, it.N.Alerts = true, nil }); err != nil {
				return err
			}
		}
		log.Debug().Int("alerts", len(n.Alerts)).Int("merged", len(batch)).Msg("delivered")
		return nil
	}
	deadline := p.o.Retrier.DeadlineOrDefault()
	// Retry-After counts from the answer, not from when the attempt began.
	now = p.o.Now()
	for _, i := range batch {
		it := claimed[i]
		attempts := it.Attempts + 1
		wait := p.o.Retrier.Backoff(attempts, err)
		final := !retry || now.Add(wait).Sub(it.First) > deadline
		if !final {
			if serr := p.settle(ctx, claimedIDs[i], it, func(x *outboxItem) {
				x.Attempts, x.LastErr, x.Lease, x.Due = attempts, err.Error(), time.Time{}, now.Add(wait)
			}); serr != nil {
				return serr
			}
			if serr := p.o.Store.Mark(ctx, indexOutbox, claimedIDs[i], score(now.Add(wait))); serr != nil {
				return serr
			}
			continue
		}
		why := "failed for good"
		if retry {
			why = "gave up at the delivery deadline"
		}
		derr := fmt.Errorf("deliver %s to %s: %s after %d attempts: %w", it.N.Kind, it.N.Target.Key(), why, attempts, err)
		if serr := p.deadLetter(ctx, it.N, attempts, derr, now); serr != nil {
			return serr
		}
		if serr := p.settle(ctx, claimedIDs[i], it, func(x *outboxItem) { x.Sent, x.N.Alerts = true, nil }); serr != nil {
			return serr
		}
	}
	if retry && !errors.Is(err, context.Canceled) {
		log.Warn().Err(err).Int("alerts", len(n.Alerts)).Msg("delivery failed; retrying with backoff")
	}
	return nil
}

// settle rewrites a claimed item (if it is still the one we claimed) and
// drops it from the index once sent.
func (p *Pipeline) settle(ctx context.Context, id string, claimed outboxItem, change func(*outboxItem)) error {
	var sent bool
	_, err := p.o.Store.UpdateState(ctx, "outbox:"+id, 7*24*time.Hour, func(old []byte) ([]byte, error) {
		var cur outboxItem
		if old == nil || json.Unmarshal(old, &cur) != nil || cur.N.Key != claimed.N.Key {
			return old, nil // a digest started anew under the same id: not ours
		}
		change(&cur)
		sent = cur.Sent
		return json.Marshal(cur)
	})
	if err != nil {
		return err
	}
	if sent {
		return p.o.Store.Unmark(ctx, indexOutbox, id)
	}
	return nil
}

// merge makes one notification of the batch: the alerts of all, the latest
// observation of each alert kept.
func merge(items []outboxItem, batch []int) notifiers.Notification {
	n := items[batch[0]].N
	if len(batch) == 1 {
		return n
	}
	byFP := map[string]int{}
	var as template.Alerts
	for _, i := range batch {
		for _, a := range items[i].N.Alerts {
			if j, ok := byFP[a.Fingerprint]; ok {
				as[j] = a
				continue
			}
			byFP[a.Fingerprint] = len(as)
			as = append(as, a)
		}
	}
	if len(as) > maxCoalesce {
		as = as[:maxCoalesce]
	}
	sort.SliceStable(as, func(i, j int) bool { return as[i].StartsAt.Before(as[j].StartsAt) })
	n.Alerts = as
	n.Key = fmt.Sprintf("%s+%d", n.Key, len(batch)-1)
	return n
}

func (p *Pipeline) deadLetter(ctx context.Context, n notifiers.Notification, attempts int, err error, now time.Time) error {
	p.m.notifyErrors.Inc()
	p.m.deadLetters.WithLabelValues(n.Target.Integration).Inc()
	p.o.Logger.Error().Err(err).Str("target", n.Target.Key()).Str("kind", n.Kind).Int("attempts", attempts).Int("alerts", len(n.Alerts)).Msg("notification failed for good; kept as a dead letter")
	dl := DeadLetter{Key: n.Key, Kind: n.Kind, Target: n.Target.Key(), Integration: n.Target.Integration, Alerts: len(n.Alerts), Attempts: attempts, Error: err.Error(), At: now, Notification: n}
	if _, serr := p.o.Store.UpdateState(ctx, "dead:"+n.Key, deadTTL, func([]byte) ([]byte, error) { return json.Marshal(dl) }); serr != nil {
		return fmt.Errorf("keep dead letter: %w", serr)
	}
	return p.o.Store.Mark(ctx, indexDead, n.Key, score(now))
}

// deliveredTTL is how long "this observation reached this target" is
// remembered: longer than any alert's repeat interval.
const deliveredTTL = 7 * 24 * time.Hour

func deliveredKey(target string, a template.Alert) string {
	return "delivered:" + target + ":" + a.Fingerprint + ":" + a.Status + ":" + a.StartsAt.UTC().Format(time.RFC3339Nano)
}

// undelivered keeps the alerts of n not yet delivered to its target.
func (p *Pipeline) undelivered(ctx context.Context, n notifiers.Notification) (template.Alerts, error) {
	var out template.Alerts
	for _, a := range n.Alerts {
		seen, err := p.o.Store.State(ctx, deliveredKey(n.Target.Key(), a))
		if err != nil {
			return nil, err
		}
		if seen == nil {
			out = append(out, a)
		}
	}
	return out, nil
}

func (p *Pipeline) markDelivered(ctx context.Context, n notifiers.Notification) error {
	for _, a := range n.Alerts {
		if _, err := p.o.Store.UpdateState(ctx, deliveredKey(n.Target.Key(), a), deliveredTTL, func([]byte) ([]byte, error) {
			return []byte("1"), nil
		}); err != nil {
			return err
		}
	}
	return nil
}
