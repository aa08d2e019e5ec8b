// Package pipeline carries each accepted alert through alertmedic: workers
// take queued webhook entries and decide flapping, routing and quiet hours
// for each alert, and commit what they decided in one atomic step with the
// entry's acknowledgement (so a crash redoes an entry whole or not at all);
// a dispatcher delivers the outbox to the integrations within each target's
// rate limit; a runner takes the remediation queue, another the waits for
// the actions' outcomes (verify.go); a periodic check ends
// flapping that went quiet. Every piece of work waits in the store, so
// another replica, or this one restarted, finishes it.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/store"
)

// Store is what the pipeline needs of the state backend (see package
// store for the contract).
type Store interface {
	Dequeue(ctx context.Context, shard int, consumer string, max int, block time.Duration) ([]*alert.Entry, error)
	Depth(ctx context.Context) (int64, error)
	Get(ctx context.Context, shard int, keys ...string) ([][]byte, error)
	Commit(ctx context.Context, shard int, t store.Txn) error
	CommitMoves(ctx context.Context, shard int, t store.Txn) ([]bool, error)
	CommitAll(ctx context.Context, shard int, ts []store.Txn) []error
	Claim(ctx context.Context, shard int, queue string, o store.ClaimOptions) (store.Claimed, error)
	Settle(ctx context.Context, shard int, queue string, s store.Settlement) (store.Settled, error)
	// DeadLetters lists a queue's dead letters across every shard.
	DeadLetters(ctx context.Context, queue string, page store.DeadPage) (store.DeadList, error)
	MarkedIn(ctx context.Context, shard int, index string, max float64) ([]string, error)
	// Keys lists a shard's value keys under a prefix (the alerts listing).
	Keys(ctx context.Context, shard int, prefix string, max int) ([]string, bool, error)
	// Revive takes a dead letter back into its queue, due at due (send
	// again); false when the shard has none of that ID.
	Revive(ctx context.Context, shard int, queue, id string, due time.Time) (bool, error)
	// Fields reads fields of a notes record (the deliveries of a target's day).
	Fields(ctx context.Context, shard int, key string, fields ...string) ([][]byte, error)
	Shards() int
	Maintain(ctx context.Context) error
}

// Options configure a Pipeline.
type Options struct {
	Store      Store
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
	Workers    int
	// Consumer names this replica to the queue; stable across restarts.
	Consumer string
	// EntryTimeout bounds the processing of one entry; default 30s.
	EntryTimeout time.Duration
	// Block is how long one dequeue waits for work; default 2s.
	Block time.Duration
	// Notifier delivers what routing decided; nil delivers nothing.
	Notifier notifiers.Notifier
	// Retrier holds the delivery retry policy; the zero value takes its
	// defaults.
	Retrier Retrier
	// RateLimits bound messages per target, by integration type.
	RateLimits map[string]store.RateLimit
	// Remediator runs guarded actions off the notification path; nil runs
	// none. RemedyWorkers bounds the actions running at once (default 4).
	Remediator    Remediator
	RemedyWorkers int
	// Rules route and judge flapping; nil (until Apply) only records.
	Rules *Rules
	// RecordTTL is how long an alert's record outlives its last
	// observation (pipeline.history_retention); default 24h.
	RecordTTL time.Duration
	// CheckInterval paces the periodic check (flapping that ended);
	// default 30s.
	CheckInterval time.Duration
	Now           func() time.Time
}

// Pipeline is a pool of workers, a dispatcher and a remediation runner.
type Pipeline struct {
	o     Options
	m     *metrics
	wg    sync.WaitGroup
	rules atomic.Pointer[Rules]
	disp  *Dispatcher

	remedyWake  *shardWake
	forwardWake *shardWake
	remedySlots chan struct{}
	// verifyNext is, per shard, when its verify queue next needs a look.
	verifyNext verifyNext
	verifyWake *shardWake
}

// New builds a pipeline and registers its metrics.
func New(o Options) *Pipeline {
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.EntryTimeout <= 0 {
		o.EntryTimeout = 30 * time.Second
	}
	if o.Block <= 0 {
		o.Block = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = 30 * time.Second
	}
	if o.RemedyWorkers <= 0 {
		o.RemedyWorkers = 4
	}
	if o.RecordTTL <= 0 {
		o.RecordTTL = 24 * time.Hour
	}
	p := &Pipeline{o: o, m: newMetrics(o.Registerer, o.Store),
		remedyWake: newShardWake(), verifyWake: newShardWake(), forwardWake: newShardWake(), remedySlots: make(chan struct{}, o.RemedyWorkers)}
	p.disp = newDispatcher(p)
	if o.Rules != nil {
		p.rules.Store(o.Rules)
	}
	return p
}

// Apply swaps the rules, as a reload does; entries already being processed
// finish under the rules they started with.
func (p *Pipeline) Apply(r *Rules) { p.rules.Store(r) }

// Check runs the periodic check once and sends what became due (tests
// drive it with their clock).
func (p *Pipeline) Check(ctx context.Context) error {
	if err := p.check(ctx); err != nil {
		return err
	}
	return p.Flush(ctx)
}

// Flush sends what is due now and waits for it (tests, and the end of a
// memory store's drain).
func (p *Pipeline) Flush(ctx context.Context) error {
	if err := p.forward(ctx, allShards(p.o.Store.Shards())); err != nil {
		return err
	}
	return p.disp.flush(ctx)
}

// loop runs fn every interval, and at once when wake fires (nil: never),
// until ctx is done. A failure is counted under op and logged with msg; the
// next round tries again.
func (p *Pipeline) loop(ctx context.Context, interval time.Duration, wake <-chan struct{}, op, msg string, fn func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			p.m.storeErrors.WithLabelValues(op).Inc()
			p.o.Logger.Error().Err(err).Msg(msg)
		}
	}
}

// Start runs the workers until ctx is cancelled. Cancelling ctx stops them
// from taking new entries; entries they hold are finished (see Wait).
func (p *Pipeline) Start(ctx context.Context) {
	p.wg.Add(4)
	go func() {
		defer p.wg.Done()
		p.loop(ctx, p.o.CheckInterval, nil, "check", "periodic check failed; it runs again at the next interval", func(ctx context.Context) error {
			cctx, cancel := context.WithTimeout(ctx, p.o.CheckInterval)
			defer cancel()
			return p.check(cctx)
		})
	}()
	go func() {
		defer p.wg.Done()
		p.remedies(ctx)
	}()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.verifies(ctx)
	}()
	go func() {
		defer p.wg.Done()
		p.disp.run(ctx)
	}()
	if p.o.Store.Shards() > 1 {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.shardLoop(ctx, p.forwardWake, "forward", "forwarding outbox work to its targets' shards failed; it is tried again", p.forward)
		}()
	}
	go func() {
		defer p.wg.Done()
		// The keys written too often to set a TTL each time get theirs
		// refreshed here.
		p.loop(ctx, time.Minute, nil, "maintain", "refreshing key TTLs failed; it runs again in a minute", p.o.Store.Maintain)
	}()
	if err := p.o.Store.Maintain(ctx); err != nil {
		p.o.Logger.Warn().Err(err).Msg("refreshing key TTLs failed; it runs again in a minute")
	}
	// Every replica consumes every shard: worker i reads shard i mod n,
	// and there is a worker for each shard at least.
	shards := p.o.Store.Shards()
	for i := 0; i < max(p.o.Workers, shards); i++ {
		shard := i % shards
		p.wg.Add(1)
		// Each worker is its own queue consumer: a consumer's unacknowledged
		// entries come back to it first, so two workers sharing a name
		// would both take an entry one of them is still processing. A
		// restart with the same replica id and worker count takes its
		// entries back at once; others are claimed after claim_idle.
		consumer := fmt.Sprintf("%s-%d", p.o.Consumer, i)
		go func() {
			defer p.wg.Done()
			p.work(ctx, shard, consumer)
		}()
	}
}

// Wait blocks until every worker has finished its entry and returned, or
// until ctx is done; it reports ctx's error in that case.
func (p *Pipeline) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Drain processes what is left in the queue, without waiting for more, until
// it is empty or ctx is done. The memory store calls it on shutdown: its
// queue would not survive the process.
func (p *Pipeline) Drain(ctx context.Context) (int, error) {
	n := 0
	for shard := 0; shard < p.o.Store.Shards(); shard++ {
		for ctx.Err() == nil {
			es, err := p.o.Store.Dequeue(ctx, shard, p.o.Consumer+"-drain", dequeueBatch, 0)
			if err != nil {
				return n, err
			}
			if len(es) == 0 {
				break
			}
			if p.processBatch(ctx, es) {
				n += len(es)
			}
		}
	}
	return n, ctx.Err()
}

// dequeueBatch is how many entries one worker takes at once: a backlog is
// read in few round trips, and an entry waits behind at most a few others.
const dequeueBatch = 8

func (p *Pipeline) work(ctx context.Context, shard int, consumer string) {
	log := p.o.Logger
	backoff := newBackoff(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		es, err := p.o.Store.Dequeue(ctx, shard, consumer, dequeueBatch, p.o.Block)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error().Err(err).Msg("dequeue failed; retrying")
			p.m.storeErrors.WithLabelValues("dequeue").Inc()
			sleep(ctx, backoff.next())
			continue
		}
		// The entries are finished even when shutdown began meanwhile: only
		// a deadline on the shutdown as a whole cuts them short.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.o.EntryTimeout)
		ok := p.processBatch(pctx, es)
		cancel()
		if ok {
			backoff.reset()
		} else {
			// The failed entry comes straight back on the next dequeue; wait
			// so that a store outage is not met with a busy loop.
			sleep(ctx, backoff.next())
		}
	}
}

// processBatch decides a dequeued batch of entries from one read and
// commits them in one round trip, each commit atomic on its own; an entry
// whose commit conflicted (another replica changed one of its alerts) is
// then decided again alone. It reports whether every entry is finished.
func (p *Pipeline) processBatch(ctx context.Context, es []*alert.Entry) bool {
	if len(es) == 0 {
		return true
	}
	if len(es) == 1 {
		return p.process(ctx, es[0])
	}
	start := p.o.Now()
	r := p.rules.Load()
	now := p.o.Now()
	matches := make([][]match, len(es))
	var keys []string
	seen := map[string]bool{}
	for i, e := range es {
		p.m.wait.Observe(start.Sub(e.ReceivedAt).Seconds())
		var ks []string
		matches[i], ks = matchEntry(r, e, now)
		for _, k := range ks {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	vals, err := p.o.Store.Get(ctx, es[0].Shard, keys...)
	if err != nil {
		p.m.storeErrors.WithLabelValues("read").Inc()
		p.o.Logger.Error().Err(err).Int("entries", len(es)).Msg("read alert records failed; the entries stay queued and will be retried")
		return false
	}
	// Each entry is decided on what the ones before it in the batch will
	// have written: its expectations are their writes.
	state := make(map[string][]byte, len(keys))
	for i, k := range keys {
		state[k] = vals[i]
	}
	plans := make([]*plan, len(es))
	txns := make([]store.Txn, len(es))
	for i, e := range es {
		cur := make(map[string][]byte, len(matches[i])+1)
		for _, a := range e.Message.Alerts {
			cur[alertKey(a.Fingerprint)] = state[alertKey(a.Fingerprint)]
		}
		for _, m := range matches[i] {
			if grouped(m.key) {
				cur[flapKey(m.key)] = state[flapKey(m.key)]
			}
		}
		pl := p.newPlan(r, cur, now)
		pl.decideEntry(e, matches[i])
		txns[i], pl.forwarded = p.localize(e.Shard, e.ID, pl.finish())
		pl.shard = e.Shard
		txns[i].Ack = e.Receipt
		for _, v := range txns[i].Set {
			state[v.Key] = v.Value
		}
		plans[i] = pl
	}
	ok := true
	for i, err := range p.o.Store.CommitAll(ctx, es[0].Shard, txns) {
		e := es[i]
		log := p.o.Logger.With().Str("entry_id", e.ID).Str("request_id", e.RequestID).Logger()
		var c *store.Conflict
		switch {
		case err == nil:
			p.committed(plans[i], e, log)
			p.m.duration.Observe(p.o.Now().Sub(start).Seconds())
		case errors.Is(err, store.ErrAcked):
			p.m.redelivered.Inc()
			log.Info().Int("alerts", len(e.Message.Alerts)).Msg("entry was finished by another consumer; dropping this copy")
		case errors.As(err, &c):
			// Decided on what changed meanwhile (or on an earlier entry of
			// the batch that did not commit): again, alone.
			p.m.conflicts.Inc()
			ok = p.process(ctx, e) && ok
		default:
			p.m.storeErrors.WithLabelValues("commit").Inc()
			log.Error().Err(err).Msg("commit failed; the entry stays queued and will be retried")
			ok = false
		}
	}
	return ok
}

// maxConflicts bounds how often one entry is decided again because another
// replica changed one of its alerts' records meanwhile.
const maxConflicts = 20

// process decides one entry and commits the decision with the entry's
// acknowledgement; it reports whether the entry is finished. An entry that
// could not be committed is left unacknowledged: the queue hands it out
// again, and since nothing of it was written, it is decided afresh.
func (p *Pipeline) process(ctx context.Context, e *alert.Entry) bool {
	start := p.o.Now()
	log := p.o.Logger.With().Str("entry_id", e.ID).Str("request_id", e.RequestID).Logger()
	p.m.wait.Observe(start.Sub(e.ReceivedAt).Seconds())
	r := p.rules.Load()
	now := p.o.Now()
	ms, keys := matchEntry(r, e, now)
	vals, err := p.o.Store.Get(ctx, e.Shard, keys...)
	if err != nil {
		p.m.storeErrors.WithLabelValues("read").Inc()
		log.Error().Err(err).Msg("read alert records failed; the entry stays queued and will be retried")
		return false
	}
	cur := make(map[string][]byte, len(keys))
	for i, k := range keys {
		cur[k] = vals[i]
	}
	for attempt := 0; ; attempt++ {
		pl := p.newPlan(r, cur, now)
		pl.decideEntry(e, ms)
		var txn store.Txn
		txn, pl.forwarded = p.localize(e.Shard, e.ID, pl.finish())
		pl.shard = e.Shard
		txn.Ack = e.Receipt
		err := p.o.Store.Commit(ctx, e.Shard, txn)
		var c *store.Conflict
		switch {
		case err == nil:
			p.committed(pl, e, log)
			p.m.duration.Observe(p.o.Now().Sub(start).Seconds())
			return true
		case errors.Is(err, store.ErrAcked):
			// Another consumer took it over after claim_idle and finished
			// it: nothing of this decision was written.
			p.m.redelivered.Inc()
			log.Info().Int("alerts", len(e.Message.Alerts)).Msg("entry was finished by another consumer; dropping this copy")
			return true
		case errors.As(err, &c) && attempt < maxConflicts:
			p.m.conflicts.Inc()
			for _, v := range c.Current {
				cur[v.Key] = v.Value
			}
			continue
		}
		p.m.storeErrors.WithLabelValues("commit").Inc()
		log.Error().Err(err).Msg("commit failed; the entry stays queued and will be retried")
		return false
	}
}

// committed logs and counts what a committed plan did, and wakes whoever
// has new work.
func (p *Pipeline) committed(pl *plan, e *alert.Entry, log zerolog.Logger) {
	for _, ev := range pl.events {
		d := ev.d
		log.Warn().Str("flap_key", alert.LogValue(ev.key)).Str("alertname", alert.LogValue(ev.alertname)).Str("event", string(d.Event)).
			Int("changes", d.Changes).Str("window", d.Window.String()).Float64("percent", d.Percent).Str("reason", d.Reason).
			Msg("flapping state changed")
	}
	if pl.held > 0 {
		p.m.held.Add(float64(pl.held))
		log.Info().Int("alerts", pl.held).Msg("alerts are flapping; their notifications are held back")
	}
	for a, n := range pl.muted {
		p.m.muted.WithLabelValues(string(a)).Add(float64(n))
	}
	for _, d := range pl.deferred {
		if d.drop {
			log.Info().Str("target", d.target).Str("interval", d.interval).Int("alerts", d.alerts).Msg("target muted; notification dropped")
		} else {
			log.Info().Str("target", d.target).Str("interval", d.interval).Time("until", d.until).Int("alerts", d.alerts).Msg("target muted; deferred to its digest")
		}
	}
	if e != nil {
		// The message's own fields once, then one short line per alert:
		// a log written for a request stays a small multiple of its body.
		log.Info().Str("receiver", alert.LogValue(e.Message.Receiver)).
			Str("group_key", alert.LogValue(e.Message.GroupKey)).
			Int("alerts", len(e.Message.Alerts)).
			Msg("message processed")
		for _, a := range e.Message.Alerts {
			p.m.processed.WithLabelValues(a.Status).Inc()
			ev := log.Info().
				Str("fingerprint", alert.LogValue(a.Fingerprint)).
				Str("alertname", alert.LogValue(a.Labels["alertname"])).
				Str("status", a.Status).
				Time("starts_at", a.StartsAt)
			if a.Status == alert.StatusResolved {
				ev = ev.Time("ends_at", a.EndsAt)
			}
			ev.Str("severity", alert.LogValue(a.Labels["severity"])).
				Msg("alert processed")
		}
	}
	if len(pl.outbox) > 0 {
		p.disp.wake(pl.outbox...)
	}
	if pl.forwarded {
		p.forwardWake.mark(pl.shard)
	}
	if pl.remedy {
		p.remedyWake.mark(pl.shard)
	}
}

// commitPlan commits a plan that acknowledges no entry (a periodic check, a
// notice), deciding it again on conflict with decide.
func (p *Pipeline) commitPlan(ctx context.Context, shard int, keys []string, decide func(pl *plan) bool) error {
	r := p.rules.Load()
	vals, err := p.o.Store.Get(ctx, shard, keys...)
	if err != nil {
		return err
	}
	cur := make(map[string][]byte, len(keys))
	for i, k := range keys {
		cur[k] = vals[i]
	}
	for attempt := 0; ; attempt++ {
		pl := p.newPlan(r, cur, p.o.Now())
		if !decide(pl) {
			return nil
		}
		var txn store.Txn
		txn, pl.forwarded = p.localize(shard, newToken(), pl.finish())
		pl.shard = shard
		err := p.o.Store.Commit(ctx, shard, txn)
		var c *store.Conflict
		if errors.As(err, &c) && attempt < maxConflicts {
			p.m.conflicts.Inc()
			for _, v := range c.Current {
				cur[v.Key] = v.Value
			}
			continue
		}
		if err == nil {
			p.committed(pl, nil, p.o.Logger)
		}
		return err
	}
}

type backoff struct{ min, max, cur time.Duration }

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else if b.cur *= 2; b.cur > b.max {
		b.cur = b.max
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Retrier is the delivery retry policy (notifiers.Retrier).
type Retrier = notifiers.Retrier
