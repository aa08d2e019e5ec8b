// Package pipeline runs the workers that take queued webhook messages and
// carry each alert through alertmedic: record the observation in its
// history (this package, now), then flapping, routing, notifiers and
// remediation as they land. An entry is acknowledged only once its processing
// has finished, so a crash leaves it in the queue for a restart or another
// replica to finish.
package pipeline

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
)

// Store is what the pipeline needs of the state backend.
type Store interface {
	Dequeue(ctx context.Context, consumer string, max int, block time.Duration) ([]*alert.Entry, error)
	Ack(ctx context.Context, receipt string) error
	Depth(ctx context.Context) (int64, error)
	// IsDone says whether an entry was recorded (processed) already.
	IsDone(ctx context.Context, id string) (bool, error)
	Record(ctx context.Context, e *alert.Entry) (fresh bool, err error)
	UpdateState(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) ([]byte, error)
	State(ctx context.Context, key string) ([]byte, error)
	Mark(ctx context.Context, index, member string, score float64) error
	Marked(ctx context.Context, index string, max float64) ([]string, error)
	Unmark(ctx context.Context, index, member string) error
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
	RateLimits map[string]RateLimit
	// Remediator runs guarded actions off the notification path; nil runs
	// none. RemedyWorkers bounds the actions running at once (default 4).
	Remediator    Remediator
	RemedyWorkers int
	// Rules route and judge flapping; nil (until Apply) only records.
	Rules *Rules
	// CheckInterval paces the periodic check (flapping that ended, outbox
	// items due); default 30s.
	CheckInterval time.Duration
	Now           func() time.Time
}

// Pipeline is a pool of workers.
type Pipeline struct {
	o     Options
	m     *metrics
	wg    sync.WaitGroup
	rules atomic.Pointer[Rules]

	wakeCh      chan struct{}
	remedyWake  chan struct{}
	remedySlots chan struct{}
	dmu         sync.Mutex
	buckets     map[string]*bucket
	sending     map[string]bool
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
	p := &Pipeline{o: o, m: newMetrics(o.Registerer, o.Store), wakeCh: make(chan struct{}, 1), buckets: map[string]*bucket{}, sending: map[string]bool{},
		remedyWake: make(chan struct{}, 1), remedySlots: make(chan struct{}, o.RemedyWorkers)}
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

func (p *Pipeline) checker(ctx context.Context) {
	p.loop(ctx, p.o.CheckInterval, nil, "check", "periodic check failed; it runs again at the next interval", func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, p.o.CheckInterval)
		defer cancel()
		return p.check(cctx)
	})
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
	p.wg.Add(3)
	go func() {
		defer p.wg.Done()
		p.checker(ctx)
	}()
	go func() {
		defer p.wg.Done()
		p.remedies(ctx)
	}()
	go func() {
		defer p.wg.Done()
		p.dispatcher(ctx)
	}()
	for i := 0; i < p.o.Workers; i++ {
		p.wg.Add(1)
		// Each worker is its own queue consumer: a consumer's unacknowledged
		// entries come back to it first, so two workers sharing a name
		// would both take an entry one of them is still processing. A
		// restart with the same replica id and worker count takes its
		// entries back at once; others are claimed after claim_idle.
		consumer := fmt.Sprintf("%s-%d", p.o.Consumer, i)
		go func() {
			defer p.wg.Done()
			p.work(ctx, consumer)
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
	for ctx.Err() == nil {
		es, err := p.o.Store.Dequeue(ctx, p.o.Consumer+"-drain", 1, 0)
		if err != nil {
			return n, err
		}
		if len(es) == 0 {
			return n, nil
		}
		for _, e := range es {
			if p.process(ctx, e) {
				n++
			}
		}
	}
	return n, ctx.Err()
}

func (p *Pipeline) work(ctx context.Context, consumer string) {
	log := p.o.Logger
	backoff := newBackoff(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		es, err := p.o.Store.Dequeue(ctx, consumer, 1, p.o.Block)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error().Err(err).Msg("dequeue failed; retrying")
			p.m.storeErrors.WithLabelValues("dequeue").Inc()
			sleep(ctx, backoff.next())
			continue
		}
		ok := true
		for _, e := range es {
			// The entry is finished even when shutdown began meanwhile: only a
			// deadline on the shutdown as a whole cuts it short.
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.o.EntryTimeout)
			ok = p.process(pctx, e) && ok
			cancel()
		}
		if ok {
			backoff.reset()
		} else {
			// The failed entry comes straight back on the next dequeue; wait
			// so that a store outage is not met with a busy loop.
			sleep(ctx, backoff.next())
		}
	}
}

// process runs one entry through the stages and acknowledges it; it reports
// whether the entry was acknowledged. An entry that could not be processed is
// left unacknowledged: the queue hands it out again.
func (p *Pipeline) process(ctx context.Context, e *alert.Entry) bool {
	start := p.o.Now()
	log := p.o.Logger.With().Str("entry_id", e.ID).Str("request_id", e.RequestID).Logger()
	p.m.wait.Observe(start.Sub(e.ReceivedAt).Seconds())

	done, err := p.o.Store.IsDone(ctx, e.ID)
	if err != nil {
		p.m.storeErrors.WithLabelValues("record").Inc()
		log.Error().Err(err).Msg("check entry state failed; the entry stays queued and will be retried")
		return false
	}
	if !done {
		// Flap detection, routing and delivery first; the entry is recorded
		// as done only after them, so a crash in between redoes them (their
		// effects carry idempotency keys) instead of losing them.
		if err := p.decide(ctx, e, log); err != nil {
			p.m.storeErrors.WithLabelValues("decide").Inc()
			log.Error().Err(err).Msg("processing failed; the entry stays queued and will be retried")
			return false
		}
	}
	fresh, err := p.o.Store.Record(ctx, e)
	if err != nil {
		p.m.storeErrors.WithLabelValues("record").Inc()
		log.Error().Err(err).Msg("record history failed; the entry stays queued and will be retried")
		return false
	}
	if fresh {
		for _, a := range e.Message.Alerts {
			p.m.processed.WithLabelValues(a.Status).Inc()
			ev := log.Info().
				Str("fingerprint", a.Fingerprint).
				Str("alertname", a.Labels["alertname"]).
				Str("status", a.Status).
				Time("starts_at", a.StartsAt)
			if a.Status == alert.StatusResolved {
				ev = ev.Time("ends_at", a.EndsAt)
			}
			ev.Str("severity", a.Labels["severity"]).
				Str("receiver", e.Message.Receiver).
				Str("group_key", e.Message.GroupKey).
				Msg("alert processed")
		}
	} else {
		// A redelivery after a crash between recording and acknowledging.
		p.m.redelivered.Inc()
		log.Info().Int("alerts", len(e.Message.Alerts)).Msg("entry was already processed; acknowledging the redelivery")
	}

	if err := p.o.Store.Ack(ctx, e.Receipt); err != nil {
		// Recorded but not acknowledged: the redelivery will find it recorded.
		p.m.storeErrors.WithLabelValues("ack").Inc()
		log.Error().Err(err).Msg("acknowledge failed; the entry will be redelivered and skipped")
		return false
	}
	p.m.duration.Observe(p.o.Now().Sub(start).Seconds())
	return true
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
