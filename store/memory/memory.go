// Package memory is the embedded store: the queue, the dedup memory, values,
// leased queues and rate limits in this process's memory. It needs nothing
// else running, which makes it the default for a first run and for a single
// replica. Every kind of state has a cap (Options) and a TTL. At a cap,
// finished state goes first, oldest first, and is counted (Stats); state
// something still needs (queued entries, unsent items, pinned values) is
// never evicted: Enqueue refuses new work with store.ErrFull instead, so the
// webhook answers 503 and Alertmanager retries. It is not durable: a crash
// (not a graceful shutdown, which drains the queue) loses what was queued.
// Several replicas, or a promise that survives SIGKILL, need the Redis store.
package memory

import (
	"context"
	"hash/maphash"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/store"
)

// Options bound the store. Zero values take the defaults below, which fit
// 100,000 active alerts with room to spare.
type Options struct {
	Capacity     int           // entries queued and unacknowledged; default 10,000
	ClaimIdle    time.Duration // unacknowledged for this long, another consumer may take it; default 1m
	MaxDedupKeys int           // observations remembered for dedup; default 1,000,000
	// MaxValues bounds the values (alert records, remediation state, audit
	// records); past it the least recently written unpinned value goes.
	// Default 1,000,000.
	MaxValues int
	// MaxItems bounds each leased queue's unfinished items; at it, Enqueue
	// answers store.ErrFull. Default 100,000.
	MaxItems int
	// MaxDeadLetters bounds each leased queue's dead letters; past it the
	// oldest go. Default 1,000.
	MaxDeadLetters int
	// MaxIndexMembers bounds each index; past it the lowest scored go.
	// Default 1,000,000.
	MaxIndexMembers int
	Now             func() time.Time
}

func (o *Options) defaults() {
	if o.Capacity <= 0 {
		o.Capacity = 10000
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = time.Minute
	}
	if o.MaxDedupKeys <= 0 {
		o.MaxDedupKeys = 1_000_000
	}
	if o.MaxValues <= 0 {
		o.MaxValues = 1_000_000
	}
	if o.MaxItems <= 0 {
		o.MaxItems = 100_000
	}
	if o.MaxDeadLetters <= 0 {
		o.MaxDeadLetters = 1000
	}
	if o.MaxIndexMembers <= 0 {
		o.MaxIndexMembers = 1_000_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

type inflight struct {
	e        *alert.Entry
	consumer string
	since    time.Time
}

// dedupKey is an observation key hashed to 128 bits with a seed of this
// process: a fifth of the string's memory, and no one outside the process
// can aim two keys at one hash.
type dedupKey [2]uint64

var seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func hashKey(s string) dedupKey {
	return dedupKey{maphash.String(seeds[0], s), maphash.String(seeds[1], s)}
}

// Store is safe for concurrent use.
type Store struct {
	o Options

	mu     sync.Mutex
	ready  []*alert.Entry
	taken  map[string]*inflight // by receipt
	wake   chan struct{}        // closed when an entry becomes ready
	dedup  map[dedupKey]int64   // → expiry, unix ns
	dedupQ expiry[dedupKey]
	values map[string]value
	valueQ expiry[string]
	pinned int // values that may not be evicted
	index  map[string]map[string]float64
	queues map[string]*leased
	limits map[string]time.Time // GCRA tat by group
	// high holds each map's high-water mark since it was last compacted.
	high      struct{ dedup, values, taken int }
	evictions map[string]int64
	full      map[string]int64
	seq       uint64
}

// New returns an empty store.
func New(o Options) *Store {
	o.defaults()
	return &Store{
		o:         o,
		taken:     map[string]*inflight{},
		wake:      make(chan struct{}),
		dedup:     map[dedupKey]int64{},
		values:    map[string]value{},
		index:     map[string]map[string]float64{},
		queues:    map[string]*leased{},
		limits:    map[string]time.Time{},
		evictions: map[string]int64{},
		full:      map[string]int64{},
	}
}

// Shards is 1: one process needs no spreading.
func (s *Store) Shards() int { return 1 }

// Enqueue queues the alerts of e not seen within dedupTTL.
func (s *Store) Enqueue(_ context.Context, e *alert.Entry, dedupTTL time.Duration) (alert.EnqueueResult, error) {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)

	var res alert.EnqueueResult
	fresh := make(template.Alerts, 0, len(e.Message.Alerts))
	keys := make([]dedupKey, 0, len(e.Message.Alerts))
	for _, a := range e.Message.Alerts {
		k := hashKey(alert.ObservationKey(a))
		if exp, ok := s.dedup[k]; (ok && now.UnixNano() < exp) || containsKey(keys, k) {
			res.Duplicates++
			// Noted for the alert's timeline: the latest duplicate.
			s.setLocked(fieldKey(store.DuplicatesKey(now), alert.FingerprintOf(a)), store.DuplicateLine(e, a, now),
				store.DuplicatesTTL+dedupTTL, false, now.UnixNano())
			continue
		}
		fresh = append(fresh, a)
		keys = append(keys, k)
	}
	if len(fresh) == 0 {
		return res, nil
	}
	if len(s.ready)+len(s.taken) >= s.o.Capacity {
		s.full["queue"]++
		return alert.EnqueueResult{}, alert.ErrQueueFull
	}
	if kind := s.fullLocked(); kind != "" {
		s.full[kind]++
		return alert.EnqueueResult{}, store.ErrFull
	}
	exp := now.Add(dedupTTL).UnixNano()
	for _, k := range keys {
		s.dedup[k] = exp
		s.dedupQ.push(k, dedupTTL, exp)
	}
	s.ready = append(s.ready, withAlerts(e, fresh))
	res.Queued, res.Accepted = true, len(fresh)
	close(s.wake)
	s.wake = make(chan struct{})
	return res, nil
}

func containsKey(ks []dedupKey, k dedupKey) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// fullLocked names the still-needed state that is at its cap, or "".
func (s *Store) fullLocked() string {
	for name, q := range s.queues {
		if len(q.items) >= s.o.MaxItems {
			return name
		}
	}
	if s.pinned >= s.o.MaxValues {
		return "values"
	}
	return ""
}

// withAlerts copies e with only the given alerts, leaving the caller's
// message as it was.
func withAlerts(e *alert.Entry, as template.Alerts) *alert.Entry {
	c := *e
	m := *e.Message
	d := *e.Message.Data
	d.Alerts = as
	m.Data = &d
	c.Message = &m
	return &c
}

// Dequeue hands out up to max entries to consumer.
func (s *Store) Dequeue(ctx context.Context, shard int, consumer string, max int, block time.Duration) ([]*alert.Entry, error) {
	if err := checkShard(shard); err != nil {
		return nil, err
	}
	if max <= 0 {
		max = 1
	}
	var timeout <-chan time.Time
	if block > 0 {
		t := time.NewTimer(block)
		defer t.Stop()
		timeout = t.C
	}
	for {
		s.mu.Lock()
		out := s.takeLocked(consumer, max)
		wake := s.wake
		s.mu.Unlock()
		if len(out) > 0 || block <= 0 {
			return out, nil
		}
		select {
		case <-wake:
		case <-timeout:
			return nil, nil
		case <-ctx.Done():
			return nil, nil
		}
	}
}

func (s *Store) takeLocked(consumer string, max int) []*alert.Entry {
	now := s.o.Now()
	var out []*alert.Entry
	// Own unacknowledged entries first, then other consumers' stale ones.
	for _, f := range s.taken {
		if len(out) == max {
			return out
		}
		if f.consumer == consumer || now.Sub(f.since) >= s.o.ClaimIdle {
			f.consumer, f.since = consumer, now
			out = append(out, f.e)
		}
	}
	for len(out) < max && len(s.ready) > 0 {
		e := s.ready[0]
		s.ready[0] = nil
		s.ready = s.ready[1:]
		s.seq++
		e.Receipt = strconv.FormatUint(s.seq, 10)
		s.taken[e.Receipt] = &inflight{e: e, consumer: consumer, since: now}
		out = append(out, e)
	}
	return out
}

// Ack forgets the entry.
func (s *Store) Ack(_ context.Context, shard int, receipt string) error {
	if err := checkShard(shard); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.taken, receipt)
	s.mu.Unlock()
	return nil
}

// Depth counts entries queued or handed out and not acknowledged.
func (s *Store) Depth(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.ready) + len(s.taken)), nil
}

// Ping always answers: the store is this process.
func (s *Store) Ping(context.Context) error { return nil }

// Close releases nothing; it exists to satisfy the store contract.
func (s *Store) Close() error { return nil }

// Stats are the store's sizes and what its caps did.
type Stats struct {
	// Sizes by kind: queued, in_flight, dedup_keys, values, and each
	// leased queue's items and dead letters (outbox, outbox_dead, ...).
	Sizes map[string]int
	// Evictions counts finished state dropped at a cap, by kind.
	Evictions map[string]int64
	// Refusals counts work refused because still-needed state was at its
	// cap, by kind (queue, values, or a leased queue's name).
	Refusals map[string]int64
}

// Stats is a snapshot, for the detailed health answer and the metrics.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Sizes: map[string]int{
			"queued":     len(s.ready),
			"in_flight":  len(s.taken),
			"dedup_keys": len(s.dedup),
			"values":     len(s.values),
		},
		Evictions: maps.Clone(s.evictions),
		Refusals:  maps.Clone(s.full),
	}
	for name, q := range s.queues {
		st.Sizes[name] = len(q.items)
		st.Sizes[name+"_dead"] = len(q.dead)
		st.Sizes[name+"_collected"] = q.collectedFields
	}
	return st
}

// sweepLocked drops expired dedup keys and values, and past their caps the
// oldest. Each structure is ordered by age, so the work is what expired,
// not the size of the store.
func (s *Store) sweepLocked(now time.Time) {
	n := now.UnixNano()
	over := len(s.dedup) - s.o.MaxDedupKeys
	s.dedupQ.pop(n, over, func(k dedupKey, exp int64, forced bool) dropped {
		if s.dedup[k] != exp {
			return stale
		}
		delete(s.dedup, k)
		if forced {
			s.evictions["dedup_keys"]++
		}
		return evicted
	})
	over = len(s.values) - s.o.MaxValues
	s.valueQ.pop(n, over, func(k string, exp int64, forced bool) dropped {
		v, ok := s.values[k]
		if !ok || v.exp != exp {
			return stale
		}
		if forced && v.pin {
			// Still needed: it goes to the back instead, and the caps on
			// new work (fullLocked) keep the pinned ones bounded.
			return kept
		}
		s.deleteValueLocked(k)
		if forced {
			s.evictions["values"]++
		}
		return evicted
	})
	for _, q := range s.queues {
		q.sweep(now)
	}
	for g, tat := range s.limits {
		// A tat in the past says no more than no tat at all.
		if tat.Before(now.Add(-time.Minute)) {
			delete(s.limits, g)
		}
	}
	s.dedup = compact(s.dedup, &s.high.dedup)
	s.values = compact(s.values, &s.high.values)
	s.taken = compact(s.taken, &s.high.taken)
}

// expiry forgets keys as they expire, at a cost proportional to what
// expires: nothing scans a whole map while holding the lock the webhook
// needs. Keys are kept in one first-in-first-out queue per TTL, so that each
// queue is in expiry order however the TTLs mix (a 10-year pause written
// first must not hold back the 10-minute dedup keys behind it). A key
// written again has a later entry; the earlier one is skipped (stale) when
// it comes up.
type expiry[K comparable] struct {
	qs map[time.Duration]*expiryQueue[K]
}

func (x *expiry[K]) push(k K, ttl time.Duration, exp int64) {
	if x.qs == nil {
		x.qs = map[time.Duration]*expiryQueue[K]{}
	}
	q := x.qs[ttl]
	if q == nil {
		q = &expiryQueue[K]{}
		x.qs[ttl] = q
	}
	q.push(k, exp)
}

// What drop did with an entry pop handed it.
type dropped int

const (
	stale   dropped = iota // the key was written again (or deleted) since: nothing done
	evicted                // the key is gone
	kept                   // still needed: pop puts it back
)

// pop hands drop every expired entry, then (forced) the entries that expire
// soonest until force keys were evicted. drop checks that the key still
// has that expiry and says what it did.
func (x *expiry[K]) pop(now int64, force int, drop func(k K, exp int64, forced bool) dropped) {
	for ttl, q := range x.qs {
		for {
			e, ok := q.peek()
			if !ok || now < e.exp {
				break
			}
			q.next()
			drop(e.key, e.exp, false)
		}
		if q.empty() {
			delete(x.qs, ttl)
		}
	}
	type held struct {
		q *expiryQueue[K]
		e expiring[K]
	}
	var keptBack []held
	for force > 0 {
		var best *expiryQueue[K]
		var bestExp int64
		for _, q := range x.qs {
			if e, ok := q.peek(); ok && (best == nil || e.exp < bestExp) {
				best, bestExp = q, e.exp
			}
		}
		if best == nil {
			break
		}
		e := best.next()
		switch drop(e.key, e.exp, true) {
		case evicted:
			force--
		case kept:
			keptBack = append(keptBack, held{best, e})
		}
	}
	// Still needed: back at the end of their queues, after this round.
	for _, h := range keptBack {
		h.q.push(h.e.key, h.e.exp)
	}
}

// expiryQueue is one TTL's keys in the order written. Entries live in
// chunks, each twice the one before up to expiryChunk, so that neither
// growing nor draining ever copies the whole queue under the lock, and a
// TTL written a few times holds a few entries' memory, not a full chunk's.
// Every chunk but the last is full (len == cap).
type expiryQueue[K comparable] struct {
	chunks [][]expiring[K]
	head   int // next entry in chunks[0]
}

type expiring[K comparable] struct {
	key K
	exp int64 // unix ns
}

const (
	expiryChunk      = 4096
	expiryFirstChunk = 8
)

func (e *expiryQueue[K]) push(k K, exp int64) {
	if n := len(e.chunks); n == 0 || len(e.chunks[n-1]) == cap(e.chunks[n-1]) {
		size := expiryFirstChunk
		if n > 0 {
			size = min(2*cap(e.chunks[n-1]), expiryChunk)
		}
		e.chunks = append(e.chunks, make([]expiring[K], 0, size))
	}
	last := len(e.chunks) - 1
	e.chunks[last] = append(e.chunks[last], expiring[K]{k, exp})
}

func (e *expiryQueue[K]) peek() (expiring[K], bool) {
	for len(e.chunks) > 0 {
		c := e.chunks[0]
		if e.head < len(c) {
			return c[e.head], true
		}
		if len(c) < cap(c) {
			return expiring[K]{}, false // the only, partly filled chunk is drained
		}
		e.chunks[0] = nil
		e.chunks, e.head = e.chunks[1:], 0
	}
	return expiring[K]{}, false
}

// next removes and returns the entry peek returned.
func (e *expiryQueue[K]) next() expiring[K] {
	x := e.chunks[0][e.head]
	e.chunks[0][e.head] = expiring[K]{}
	e.head++
	return x
}

func (e *expiryQueue[K]) empty() bool {
	_, ok := e.peek()
	return !ok
}

// compactMin and compactRatio: a Go map keeps the table it grew to after
// its keys are deleted, so a burst of 100,000 alerts would hold its
// tables for good once expired. A map that has shrunk to an eighth of its
// high-water mark (of at least compactMin keys) is copied into one of its
// current size. The copy is at most an eighth of the deletes that led to
// it, and small enough to make under the lock.
const (
	compactMin   = 4096
	compactRatio = 8
)

func compact[K comparable, V any](m map[K]V, high *int) map[K]V {
	n := len(m)
	if n > *high {
		*high = n
	}
	if *high < compactMin || n > *high/compactRatio {
		return m
	}
	c := make(map[K]V, n)
	maps.Copy(c, m)
	*high = n
	return c
}

// Maintain sweeps what expired; every write sweeps too, so this only
// matters for a store nobody writes to.
func (s *Store) Maintain(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.o.Now())
	return nil
}
