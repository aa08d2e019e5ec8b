package pipeline

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/api"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/store"
)

// Dispatcher delivers the outbox. Workers never wait for an integration:
// they put notifications in the store's outbox and go on, so a slow or
// failing Slack delays nobody else. The dispatcher claims what is due in
// batches, one per target, within the target's rate limit (alerts that wait
// for the limit are merged into the next message instead of queueing as
// many messages); it splits a batch into as many messages as the
// integration's limits need (one PagerDuty event per alert; a webhook POST
// per max_alerts), sends them in order, and settles each item: delivered,
// retried with backoff (at least Retry-After), or a dead letter when it
// failed for good or ran past the delivery deadline.
type Dispatcher struct {
	p      *Pipeline
	wakeCh chan struct{}
	slots  chan struct{} // batches being sent at once
	mu     sync.Mutex
	// targets serialises the sends to one target within this replica, so
	// that an alert's resolve never overtakes its trigger here.
	targets map[string]*sync.Mutex
	// woken are the targets workers put work for since the last claim, and
	// held those a rate limit holds back, until when: a wake for held
	// targets only is answered when their limit lets them go, not with a
	// claim that would find them held again.
	woken map[string]bool
	held  map[string]time.Time
	// busy counts, per target, the batches this replica has for it: one
	// being sent and at most one waiting behind it, which starts the moment
	// the first is done. A target with both is held at claim time: its new
	// items wait in the store, so a slow target holds no send slot another
	// target could use.
	busy  map[string]int
	sends sync.WaitGroup
	// With several shards: when each shard's earliest item falls due, as
	// its last claim said, and when every shard was last looked at.
	nextDue   []time.Time
	lastSweep time.Time
}

// dispatchSlots bounds the batches one replica sends at once.
const dispatchSlots = 32

// claimMax bounds the items one claim takes.
const claimMax = 256

// coalesce is how long a wake waits for more: what the workers commit
// meanwhile goes in the same claim, and the store's cost is per claim and
// per batch, not per alert.
const coalesce = 10 * time.Millisecond

// poll is how often the dispatcher looks at the outbox with nothing woken
// it: for other replicas' work, and leases that lapsed.
const poll = time.Second

func newDispatcher(p *Pipeline) *Dispatcher {
	return &Dispatcher{p: p, wakeCh: make(chan struct{}, 1), slots: make(chan struct{}, dispatchSlots), targets: map[string]*sync.Mutex{},
		woken: map[string]bool{}, held: map[string]time.Time{}, busy: map[string]int{}}
}

// sweepSoon has the next claim look at every shard: work was put where no
// wake says (a dead letter sent again).
func (d *Dispatcher) sweepSoon() {
	d.mu.Lock()
	d.lastSweep = time.Time{}
	d.mu.Unlock()
	d.wake()
}

func (d *Dispatcher) wake(targets ...string) {
	d.mu.Lock()
	for _, t := range targets {
		d.woken[t] = true
	}
	d.mu.Unlock()
	select {
	case d.wakeCh <- struct{}{}:
	default:
	}
}

// run claims and sends until ctx is done. A wake (a worker queued something)
// is answered after a few milliseconds, so that what the workers commit
// meanwhile goes in the same claim; otherwise it runs when the earliest due
// item falls due, and at least every poll.
func (d *Dispatcher) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			d.sends.Wait()
			return
		case <-d.wakeCh:
			sleep(ctx, coalesce)
			if until, ok := d.allHeld(); ok {
				resetTimer(timer, min(time.Until(until), poll))
				continue
			}
		case <-timer.C:
		}
		next, err := d.dispatch(ctx)
		if err != nil && ctx.Err() == nil {
			d.p.m.storeErrors.WithLabelValues("dispatch").Inc()
			d.p.o.Logger.Error().Err(err).Msg("dispatch failed; trying again shortly")
			next = time.Time{}
		}
		wait := poll
		if !next.IsZero() {
			wait = min(max(time.Until(next), time.Millisecond), poll)
		}
		resetTimer(timer, wait)
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	t.Reset(max(d, time.Millisecond))
}

// allHeld says whether every target woken since the last claim is held
// back by its rate limit, and until when the first of them is.
func (d *Dispatcher) allHeld() (time.Time, bool) {
	now := d.p.o.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	var first time.Time
	for t := range d.woken {
		until, ok := d.held[t]
		if !ok || !until.After(now) {
			return time.Time{}, false
		}
		if first.IsZero() || until.Before(first) {
			first = until
		}
	}
	return first, len(d.woken) > 0
}

// flush sends what is due now and waits for it.
func (d *Dispatcher) flush(ctx context.Context) error {
	for i := 0; i < 100; i++ {
		var mine sync.WaitGroup
		c, err := d.claimOnce(ctx, &mine)
		if err != nil {
			return err
		}
		mine.Wait()
		if c.batches == 0 {
			return nil
		}
	}
	return nil
}

// dispatch claims everything due and starts sending it; it returns when the
// queue says the next item falls due.
func (d *Dispatcher) dispatch(ctx context.Context) (time.Time, error) {
	for i := 0; i < 50; i++ {
		n, err := d.claimOnce(ctx, nil)
		if err != nil || n.batches == 0 || ctx.Err() != nil {
			return n.next, err
		}
	}
	return time.Now(), nil
}

type claimed struct {
	batches int
	next    time.Time
}

func (d *Dispatcher) classes() map[string]store.ClassLimit {
	out := map[string]store.ClassLimit{}
	for _, typ := range []string{"slack", "email", "pagerduty", "webhook", "log"} {
		lim := d.p.o.RateLimits[typ]
		pm := d.perMessage(typ)
		c := store.ClassLimit{RateLimit: lim, MaxAlerts: batchAlerts}
		switch {
		case lim.PerSecond > 0 && pm > 0:
			// Limited: a batch is exactly one message.
			c.MaxAlerts = pm
		case lim.PerSecond > 0:
			// Limited, and one message counts what it does not show
			// (Slack): in a storm, each message may stand for many.
			c.MaxAlerts = limitedBatchAlerts
		case pm == 1:
			// One request per alert: a batch the size its lease can
			// carry through a slow endpoint.
			c.MaxAlerts = oneByOneBatch
		}
		out[typ] = c
	}
	return out
}

// batchAlerts bounds the alerts one batch takes; oneByOneBatch does for an
// integration that sends a request per alert.
const (
	batchAlerts        = 1000
	limitedBatchAlerts = 10000
	oneByOneBatch      = 100
)

func (d *Dispatcher) perMessage(integration string) int {
	if pm, ok := d.p.o.Notifier.(notifiers.PerMessage); ok {
		return pm.PerMessage(integration)
	}
	return 0
}

// lease is how long a claimed batch is ours: it starts messages for one
// attempt's time, the last of them may take another, and a margin.
func (d *Dispatcher) lease() time.Duration {
	return 2*d.p.o.Retrier.AttemptTimeoutOrDefault() + 10*time.Second
}

// eventWave is how many one-alert requests a batch sends at once.
const eventWave = 8

// busyHold is how long the new items of a target with a batch waiting wait
// before the next look.
const busyHold = 25 * time.Millisecond

// claimOnce claims what is due and starts sending it; wg, when given,
// hears of each send's end too.
func (d *Dispatcher) claimOnce(ctx context.Context, wg *sync.WaitGroup) (claimed, error) {
	now := d.p.o.Now()
	d.mu.Lock()
	held := map[string]time.Time{}
	for t, until := range d.held {
		if until.After(now) {
			held[t] = until
		}
	}
	for t, n := range d.busy {
		if n >= 2 && held[t].Before(now.Add(busyHold)) {
			held[t] = now.Add(busyHold)
		}
	}
	d.mu.Unlock()
	c, err := d.claimShards(ctx, store.ClaimOptions{
		Now: now, Lease: d.lease(), Max: claimMax, Classes: d.classes(), Held: held,
	})
	if err != nil {
		return claimed{}, err
	}
	d.mu.Lock()
	clear(d.woken)
	for t, until := range d.held {
		if !until.After(now) {
			delete(d.held, t)
		}
	}
	for t, until := range c.Held {
		if d.busy[t] < 2 {
			d.held[t] = until
			d.p.m.limited.Inc()
		}
	}
	for _, b := range c.Batches {
		d.busy[b.Group]++
	}
	d.mu.Unlock()
	claimedAt := time.Now()
	for _, b := range c.Batches {
		d.sends.Add(1)
		if wg != nil {
			wg.Add(1)
		}
		go func() {
			defer d.sends.Done()
			if wg != nil {
				defer wg.Done()
			}
			// The target's turn first, then a send slot: a batch waiting
			// behind another to its target holds no slot.
			mu := d.target(b.Group)
			mu.Lock()
			defer func() {
				mu.Unlock()
				d.mu.Lock()
				if d.busy[b.Group]--; d.busy[b.Group] <= 0 {
					delete(d.busy, b.Group)
				}
				d.mu.Unlock()
				// What came for this target meanwhile goes now.
				d.wake(b.Group)
			}()
			select {
			case d.slots <- struct{}{}:
			case <-ctx.Done():
				// Not sent: the lease hands it to the next claimer.
				return
			}
			defer func() { <-d.slots }()
			// A send outlives a shutdown's cancel only as long as its own
			// attempt timeout allows.
			var err error
			if time.Since(claimedAt) > d.lease()-2*d.p.o.Retrier.AttemptTimeoutOrDefault()-5*time.Second {
				// It waited so long behind another batch that its lease
				// would not outlast its own send: put back for a new one.
				err = d.putBack(context.WithoutCancel(ctx), b)
			} else {
				err = d.send(context.WithoutCancel(ctx), b)
			}
			if err != nil {
				d.p.m.storeErrors.WithLabelValues("dispatch").Inc()
				d.p.o.Logger.Error().Err(err).Str("target", b.Group).Msg("settling a delivery failed on the store; the batch is sent again after its lease")
			}
		}()
	}
	return claimed{batches: len(c.Batches), next: c.Next}, nil
}

// retryStore runs op until it succeeds or ctx ends, backing off from
// 100 ms to 1 s. What a delivery writes after the message went out must
// reach the store: given up at once (a Redis master failing over answers
// "connection refused" for a few seconds), the batch would be sent again
// when its lease lapses. Settling twice is harmless: the second finds its
// items settled.
func retryStore(ctx context.Context, op func() error) error {
	wait := 100 * time.Millisecond
	for {
		err := op()
		if err == nil || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// claimShards claims what is due in every shard's outbox (a target's
// items are all in its own shard) as one claim.
//
// It looks only where there can be work: the shards of the targets woken
// since the last claim, those whose earliest item (or lapsing lease) is due
// by what their last claim said, and every shard each sweepEvery (other
// replicas queue work this one is not woken for).
func (d *Dispatcher) claimShards(ctx context.Context, o store.ClaimOptions) (store.Claimed, error) {
	n := d.p.o.Store.Shards()
	if n <= 1 {
		return d.p.o.Store.Claim(ctx, 0, store.QueueOutbox, o)
	}
	d.mu.Lock()
	if len(d.nextDue) != n {
		d.nextDue = make([]time.Time, n)
	}
	sweep := o.Now.Sub(d.lastSweep) >= d.p.sweepEvery()
	if sweep {
		d.lastSweep = o.Now
	}
	look := make([]bool, n)
	for t := range d.woken {
		look[d.p.targetShard(t)] = true
	}
	for s, due := range d.nextDue {
		look[s] = look[s] || sweep || (!due.IsZero() && !due.After(o.Now))
	}
	d.mu.Unlock()
	var all store.Claimed
	var errs []error
	for s := 0; s < n; s++ {
		if !look[s] {
			continue
		}
		c, err := d.p.o.Store.Claim(ctx, s, store.QueueOutbox, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d.mu.Lock()
		d.nextDue[s] = c.Next
		d.mu.Unlock()
		all.Batches = append(all.Batches, c.Batches...)
		all.Limited += c.Limited
		for g, until := range c.Held {
			if all.Held == nil {
				all.Held = map[string]time.Time{}
			}
			all.Held[g] = until
		}
	}
	d.mu.Lock()
	for _, due := range d.nextDue {
		if !due.IsZero() && (all.Next.IsZero() || due.Before(all.Next)) {
			all.Next = due
		}
	}
	d.mu.Unlock()
	if len(all.Batches) == 0 && len(errs) > 0 {
		return store.Claimed{}, errors.Join(errs...)
	}
	if len(errs) > 0 {
		d.p.m.storeErrors.WithLabelValues("dispatch").Inc()
		d.p.o.Logger.Error().Err(errors.Join(errs...)).Msg("claiming from some shards failed; they are tried again at the next look")
	}
	return all, nil
}

func (d *Dispatcher) target(key string) *sync.Mutex {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.targets[key]
	if m == nil {
		m = &sync.Mutex{}
		d.targets[key] = m
	}
	return m
}

// unit is what one claimed batch splits into: each notice or digest item
// on its own, and the batch's alert items merged into one notification.
// A unit is sent as one or more messages (its parts).
type unit struct {
	items []store.Item // the items it finishes
	n     *notifiers.Notification
	parts []*notifiers.Notification
	// Outcome of each part.
	sent   []bool
	failed []error
}

// putBack returns a batch's items to the queue, due at once, untried.
func (d *Dispatcher) putBack(ctx context.Context, b store.Batch) error {
	st := store.Settlement{Now: d.p.o.Now()}
	for _, it := range b.Items {
		it.Due = st.Now
		st.Retry = append(st.Retry, it)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return retryStore(sctx, func() error {
		_, err := d.p.o.Store.Settle(sctx, d.p.targetShard(b.Group), store.QueueOutbox, st)
		return err
	})
}

// send delivers one claimed batch and settles its items.
func (d *Dispatcher) send(ctx context.Context, b store.Batch) error {
	p := d.p
	var st store.Settlement
	integration := b.Items[0].Class
	pm := d.perMessage(integration)

	var units []*unit
	var alertItems []store.Item
	var alertNs []*notifiers.Notification
	for _, it := range b.Items {
		var n notifiers.Notification
		if err := json.Unmarshal(it.Payload, &n); err != nil {
			it.LastErr = "undecodable notification: " + err.Error()
			d.deadItem(&st, it)
			continue
		}
		switch {
		case it.Collects:
			n.Alerts, n.More = collected(it), it.Overflow
			if len(n.Alerts) == 0 && n.More == 0 {
				st.Done = append(st.Done, it) // an empty digest: nothing to say
				continue
			}
			units = append(units, &unit{items: []store.Item{it}, n: &n})
		case n.Kind == notifiers.KindAlerts:
			alertItems = append(alertItems, it)
			alertNs = append(alertNs, &n)
		default:
			units = append(units, &unit{items: []store.Item{it}, n: &n})
		}
	}
	if len(alertItems) > 0 {
		units = append(units, &unit{items: alertItems, n: merge(alertItems, alertNs)})
		if len(alertItems) > 1 {
			p.m.coalesced.Add(float64(len(alertItems) - 1))
		}
	}
	// A stable key per message: the same batch sends the same messages
	// under the same keys, whoever sends it.
	var msgs []*notifiers.Notification
	sum := sha256.Sum256([]byte(b.ID))
	base := hex.EncodeToString(sum[:10])
	for _, u := range units {
		u.parts = split(u.n, pm)
		u.sent, u.failed = make([]bool, len(u.parts)), make([]error, len(u.parts))
		for _, part := range u.parts {
			part.Key = base + "-" + strconv.Itoa(len(msgs))
			msgs = append(msgs, part)
		}
	}

	sendN := len(msgs)
	if p.o.RateLimits[integration].PerSecond > 0 && sendN > 1 {
		// One message per token: the rest waits for the next claim.
		sendN = 1
	}
	skip := 0
	if b.Reclaimed && len(msgs) > 1 {
		// Its first claimer died midway: what it delivered is on record.
		skip = d.progress(ctx, b.Group, b.ID)
	}
	// Each message is one attempt, with its own timeout. A batch starts no
	// message after one attempt's time, so that it ends within its lease;
	// what it did not start goes back at once. No deadline cuts a message
	// short that its own timeout would not: a request cut off after the
	// endpoint took it is one the retry sends twice.
	attempt := p.o.Retrier.AttemptTimeoutOrDefault()
	began := time.Now()
	type ref struct {
		u *unit
		j int
	}
	var refs []ref
	for _, u := range units {
		for j := range u.parts {
			refs = append(refs, ref{u, j})
		}
	}
	// Requests of one alert each (PagerDuty events) go several at once:
	// the alerts of a batch are distinct, so their order does not matter,
	// and a batch of them takes a wave's time instead of a request's each.
	wave := 1
	if pm == 1 && p.o.RateLimits[integration].PerSecond <= 0 {
		wave = eventWave
	}
	var retryErr error
	var mu sync.Mutex
	progress := skip // leading messages delivered, as recorded
	for i := 0; i < min(skip, sendN); i++ {
		refs[i].u.sent[refs[i].j] = true
	}
	for i := skip; i < sendN && retryErr == nil; i += wave {
		if i > skip && time.Since(began) > attempt {
			break
		}
		var wg sync.WaitGroup
		end := min(i+wave, sendN)
		for k := i; k < end; k++ {
			wg.Add(1)
			go func(r ref) {
				defer wg.Done()
				part := r.u.parts[r.j]
				retry, err := false, error(nil)
				mctx, cancel := context.WithTimeout(ctx, attempt)
				if p.o.Notifier != nil {
					retry, err = p.o.Notifier.Notify(mctx, part)
				}
				timedOut := mctx.Err() != nil
				cancel()
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					r.u.sent[r.j] = true
					p.m.notified.WithLabelValues(part.Kind).Inc()
					p.m.alertsOut.WithLabelValues(integration, "delivered").Add(float64(len(part.Alerts) + part.More))
				case retry || timedOut:
					// The endpoint is unwell: the rest waits with this one.
					retryErr = err
				default:
					r.u.failed[r.j] = err
				}
			}(refs[k])
		}
		wg.Wait()
		// Progress counts the leading messages delivered; one that failed
		// for good stops it, so that a takeover meets it again.
		for progress < end && refs[progress].u.sent[refs[progress].j] {
			progress++
		}
		if progress < sendN && progress > skip && len(msgs) > 1 && retryErr == nil {
			d.saveProgress(ctx, b.Group, b.ID, progress)
			skip = progress
		}
	}

	// Retry-After counts from the answer, not from when the batch began.
	now := p.o.Now()
	c := &carried{in: map[string][]string{}, rest: map[string]string{}}
	for _, u := range units {
		if err := d.settleUnit(ctx, &st, b, u, retryErr, now, c); err != nil {
			return err
		}
	}
	if retryErr != nil && !errors.Is(retryErr, context.Canceled) {
		p.o.Logger.Warn().Err(retryErr).Str("target", b.Group).Msg("delivery failed; retrying with backoff")
	}
	// Past the delivery deadline a retry is a dead letter.
	deadline := p.o.Retrier.DeadlineOrDefault()
	keep := st.Retry[:0]
	for _, it := range st.Retry {
		if it.Attempts > 0 && it.Due.Sub(it.Since) > deadline {
			it.LastErr = fmt.Sprintf("gave up at the delivery deadline (%s) after %d attempts: %s", deadline, it.Attempts, it.LastErr)
			d.deadItem(&st, it)
			continue
		}
		keep = append(keep, it)
	}
	st.Retry = keep
	st.Now = p.o.Now()
	p.deliveryNotes(&st, b.Group, retryErr, c)
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	var res store.Settled
	err := retryStore(sctx, func() error {
		var err error
		res, err = p.o.Store.Settle(sctx, p.targetShard(b.Group), store.QueueOutbox, st)
		return err
	})
	if err != nil {
		return err
	}
	if res.Evicted > 0 {
		p.m.deadEvicted.Add(float64(res.Evicted))
		p.o.Logger.Warn().Int("evicted", res.Evicted).Msg("dead letters past the cap dropped, oldest first")
	}
	return nil
}

// settleUnit decides what becomes of a unit's items: done when every part
// went; back in the queue, as they are, when none went; else a dead letter
// for each part that failed for good and the alerts of the parts not sent
// back as one item.
func (d *Dispatcher) settleUnit(ctx context.Context, st *store.Settlement, b store.Batch, u *unit, retryErr error, now time.Time, c *carried) error {
	var sent, failed int
	var rest template.Alerts
	var keys []string
	restMore := 0
	for j, part := range u.parts {
		switch {
		case u.sent[j]:
			sent++
			keys = append(keys, part.Key)
		case u.failed[j] != nil:
			failed++
		default:
			rest = append(rest, part.Alerts...)
			restMore += part.More
		}
	}
	for _, it := range u.items {
		if len(keys) > 0 {
			c.in[it.ID] = keys
		}
	}
	switch {
	case sent == len(u.parts):
		st.Done = append(st.Done, u.items...)
		return nil
	case sent == 0 && failed == 0:
		for _, it := range u.items {
			st.Retry = append(st.Retry, d.retryItem(it, retryErr, now))
		}
		return nil
	case len(u.parts) == 1 && failed == 1 && len(u.items) == 1:
		it := u.items[0]
		it.Attempts++
		it.LastErr = fmt.Sprintf("failed for good after %d attempts: %v", it.Attempts, u.failed[0])
		d.deadItem(st, it)
		return nil
	}
	for j, part := range u.parts {
		if err := u.failed[j]; err != nil {
			it := store.Item{ID: part.Key, Group: b.Group, Class: u.items[0].Class, Alerts: len(part.Alerts), Since: u.items[0].Since}
			it.Attempts = u.items[0].Attempts + 1
			it.LastErr = fmt.Sprintf("failed for good after %d attempts: %v", it.Attempts, err)
			it.Payload, _ = json.Marshal(part)
			d.deadItem(st, it) // no receipt: a part, a dead letter of its own
		}
	}
	if len(rest) > 0 || restMore > 0 {
		// Put back before the batch is settled: a crash in between sends
		// the rest twice, never loses it.
		n := *u.n
		n.Alerts, n.More, n.Key = rest, restMore, b.ID+":rest"
		it := store.Item{ID: n.Key, Group: b.Group, Class: u.items[0].Class, Alerts: len(rest), Since: u.items[0].Since}
		for _, x := range u.items {
			it.Attempts = max(it.Attempts, x.Attempts)
			if x.Since.Before(it.Since) {
				it.Since = x.Since
			}
		}
		it = d.retryItem(it, retryErr, now)
		it.Payload, _ = json.Marshal(n)
		if err := retryStore(ctx, func() error {
			return d.p.o.Store.Commit(ctx, d.p.targetShard(b.Group), store.Txn{Put: []store.Put{{Queue: store.QueueOutbox, Item: it}}})
		}); err != nil {
			return err
		}
	}
	for _, it := range u.items {
		if it.Collects {
			// The digest's content is in the dead letters and the rest;
			// the item itself is done.
			it.Collected = nil
		}
		if len(rest) > 0 || restMore > 0 {
			c.rest[it.ID] = b.ID + ":rest"
		}
		st.Done = append(st.Done, it)
	}
	return nil
}

// retryItem is it, put back: with backoff after a failed attempt (err),
// else due at once (a rate limit let only part of its batch go).
func (d *Dispatcher) retryItem(it store.Item, err error, now time.Time) store.Item {
	if err == nil {
		it.Due = now
		return it
	}
	it.Attempts++
	it.LastErr = err.Error()
	it.Due = now.Add(d.p.o.Retrier.Backoff(it.Attempts, err))
	return it
}

// deadItem keeps it as a dead letter: logged, counted, listed.
func (d *Dispatcher) deadItem(st *store.Settlement, it store.Item) {
	p := d.p
	p.m.notifyErrors.Inc()
	p.m.deadLetters.WithLabelValues(it.Class).Inc()
	if it.Collects {
		// What the digest collected goes with it into the dead letter.
		var n notifiers.Notification
		if json.Unmarshal(it.Payload, &n) == nil && len(n.Alerts) == 0 {
			n.Alerts, n.More = collected(it), it.Overflow
			it.Payload, _ = json.Marshal(n)
			it.Alerts = len(n.Alerts)
		}
	}
	p.m.alertsOut.WithLabelValues(it.Class, "dead_letter").Add(float64(it.Alerts))
	p.o.Logger.Error().Str("error", it.LastErr).Str("target", it.Group).Int("attempts", it.Attempts).Int("alerts", it.Alerts).
		Msg("notification failed for good; kept as a dead letter")
	st.Dead = append(st.Dead, it)
}

func progressKey(batch string) string { return "progress:" + batch }

func (d *Dispatcher) progress(ctx context.Context, target, batch string) int {
	vs, err := d.p.o.Store.Get(ctx, d.p.targetShard(target), progressKey(batch))
	if err != nil || len(vs) == 0 || vs[0] == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(vs[0]))
	return n
}

// saveProgress records that a batch's first n messages were delivered, so
// that whoever takes the batch over after a crash does not send them again.
// The record is left to expire: batch ids are never reused.
func (d *Dispatcher) saveProgress(ctx context.Context, target, batch string, n int) {
	if err := d.p.o.Store.Commit(ctx, d.p.targetShard(target), store.Txn{Set: []store.Value{{Key: progressKey(batch), Value: []byte(strconv.Itoa(n)), TTL: 2 * d.lease()}}}); err != nil {
		d.p.o.Logger.Warn().Err(err).Msg("recording delivery progress failed; a takeover after a crash may send some messages again")
	}
}

// collected decodes a digest's alerts, oldest first.
func collected(it store.Item) template.Alerts {
	as := make(template.Alerts, 0, len(it.Collected))
	for _, v := range it.Collected {
		var a template.Alert
		if json.Unmarshal(v, &a) == nil {
			as = append(as, a)
		}
	}
	sortByStart(as)
	return as
}

// merge makes one notification of alert items (ns are their decoded
// payloads): the latest observation of each alert kept. It decides the same
// whatever order the items come in, so that a batch claimed again after a
// crash merges into the same messages.
func merge(items []store.Item, ns []*notifiers.Notification) *notifiers.Notification {
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(items[a].Since.Compare(items[b].Since), cmp.Compare(items[a].ID, items[b].ID))
	})
	out := *ns[order[0]]
	total := 0
	for _, n := range ns {
		total += len(n.Alerts)
	}
	byFP := make(map[string]int, total)
	as := make(template.Alerts, 0, total)
	for _, i := range order {
		for _, a := range ns[i].Alerts {
			if j, ok := byFP[a.Fingerprint]; ok {
				if alert.Watermark(a) >= alert.Watermark(as[j]) {
					as[j] = a
				}
				continue
			}
			byFP[a.Fingerprint] = len(as)
			as = append(as, a)
		}
	}
	sortByStart(as)
	out.Alerts = as
	// A message that follows its group (a Slack message updated in place,
	// an email thread) must carry that group's alerts only: alerts of
	// several groups merged under a rate limit make a message of no group.
	out.Tried = nil
	for _, n := range ns {
		for fp, s := range n.Tried {
			if out.Tried == nil {
				out.Tried = map[string]string{}
			}
			out.Tried[fp] = s
		}
		if n.GroupKey != out.GroupKey {
			out.GroupKey = ""
		}
		if n.ExternalURL != out.ExternalURL {
			out.ExternalURL = ""
		}
	}
	return &out
}

func sortByStart(as template.Alerts) {
	sort.SliceStable(as, func(i, j int) bool {
		if !as[i].StartsAt.Equal(as[j].StartsAt) {
			return as[i].StartsAt.Before(as[j].StartsAt)
		}
		return as[i].Fingerprint < as[j].Fingerprint
	})
}

// split cuts n into messages of at most per alerts (0: one message); the
// count of alerts not carried (More) goes with the last.
func split(n *notifiers.Notification, per int) []*notifiers.Notification {
	if per <= 0 || len(n.Alerts) <= per {
		return []*notifiers.Notification{n}
	}
	var out []*notifiers.Notification
	for i := 0; i < len(n.Alerts); i += per {
		c := *n
		c.Alerts = n.Alerts[i:min(i+per, len(n.Alerts))]
		c.More = 0
		out = append(out, &c)
	}
	out[len(out)-1].More = n.More
	return out
}

// FailedDeliveries lists a page of the dead letters of the outbox, newest
// first across the store's shards, from cursor ("" for the first page; an
// unknown one is store.ErrBadCursor). full adds each notification.
func (p *Pipeline) FailedDeliveries(ctx context.Context, cursor string, limit int, full bool) (api.DeadLetters, error) {
	page, err := store.ParseDeadCursor(cursor, limit)
	if err != nil {
		return api.DeadLetters{}, err
	}
	list, err := p.o.Store.DeadLetters(ctx, store.QueueOutbox, page)
	if err != nil {
		return api.DeadLetters{}, err
	}
	out := api.DeadLetters{Deliveries: make([]api.DeadLetter, 0, len(list.Dead)), Total: list.Total}
	for _, d := range list.Dead {
		out.Deliveries = append(out.Deliveries, deadLetter(d, full))
	}
	if list.Next != nil {
		out.NextCursor = list.Next.Cursor()
	}
	return out, nil
}

func deadLetter(d store.Dead, full bool) api.DeadLetter {
	var n notifiers.Notification
	_ = json.Unmarshal(d.Item.Payload, &n)
	dl := api.DeadLetter{Key: d.Item.ID, Kind: n.Kind, Target: d.Item.Group, Integration: d.Item.Class, Alerts: d.Item.Alerts,
		Attempts: d.Item.Attempts, Error: d.Item.LastErr, At: d.At, Fingerprints: make([]string, 0, len(n.Alerts))}
	for _, a := range n.Alerts {
		dl.Fingerprints = append(dl.Fingerprints, a.Fingerprint)
	}
	if full {
		// Encoded again from what was decoded, not passed on as stored:
		// the answer stays valid JSON whatever the payload holds.
		dl.Notification, _ = json.Marshal(&n)
	}
	return dl
}

// SendAgain takes the dead letter with the key (its item ID, as
// GET /api/v1/deliveries/failed lists it) back into the outbox, due now,
// as a new delivery; the dispatcher sends it as any other. It reports
// false when no shard holds that dead letter (sent again already, evicted
// at the cap, or never one).
func (p *Pipeline) SendAgain(ctx context.Context, key string) (bool, error) {
	now := p.o.Now()
	for shard := 0; shard < p.o.Store.Shards(); shard++ {
		ok, err := p.o.Store.Revive(ctx, shard, store.QueueOutbox, key, now)
		if err != nil {
			return false, err
		}
		if ok {
			p.o.Logger.Info().Str("item", key).Msg("dead letter sent again")
			p.disp.sweepSoon()
			return true, nil
		}
	}
	return false, nil
}
