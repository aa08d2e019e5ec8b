// Package memory is the embedded store: queue, dedup memory and alert history
// in this process's memory. It needs nothing else running, which makes it the
// default for a first run and for a single replica. It is bounded everywhere,
// but it is not durable: a crash (not a graceful shutdown, which drains the
// queue) loses what was queued. Several replicas, or a promise that survives
// SIGKILL, need the Redis store.
package memory

import (
	"bytes"
	"container/list"
	"context"
	"maps"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
)

// Options bound the store. Zero values take the defaults below.
type Options struct {
	Capacity         int           // entries queued and unacknowledged; default 10000
	ClaimIdle        time.Duration // unacknowledged for this long, another consumer may take it; default 1m
	HistoryRetention time.Duration // default 24h
	HistoryMax       int           // observations per alert; default 100
	DoneTTL          time.Duration // how long a processed entry id is remembered; default 24h
	MaxDedupKeys     int           // dedup keys and done markers kept at most; default 1,000,000
	MaxFingerprints  int           // alert histories kept at most; default 200,000
	Now              func() time.Time
}

func (o *Options) defaults() {
	if o.Capacity <= 0 {
		o.Capacity = 10000
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = time.Minute
	}
	if o.HistoryRetention <= 0 {
		o.HistoryRetention = 24 * time.Hour
	}
	if o.HistoryMax <= 0 {
		o.HistoryMax = 100
	}
	if o.DoneTTL <= 0 {
		o.DoneTTL = 24 * time.Hour
	}
	if o.MaxDedupKeys <= 0 {
		o.MaxDedupKeys = 1_000_000
	}
	if o.MaxFingerprints <= 0 {
		o.MaxFingerprints = 200_000
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

type history struct {
	obs    []alert.Observation // oldest first
	newest time.Time
	// touched is when it was last written: like a Redis key's TTL, the
	// history is forgotten HistoryRetention after its last write.
	touched time.Time
	elem    *list.Element // in Store.byAge
}

// expiring is a key with the expiry it was given, in the order written.
type expiring struct {
	key string
	exp time.Time
}

// expiryQueue forgets keys in the order they were written, at a cost
// proportional to what expires: nothing scans a whole map while holding the
// lock the webhook needs. A key written again has a later entry; the earlier
// one is skipped when it comes up. Entries live in fixed-size chunks so that
// neither growing nor draining ever copies the whole queue under the lock.
type expiryQueue struct {
	chunks [][]expiring
	head   int // next entry to pop in chunks[0]
}

const expiryChunk = 4096

func (e *expiryQueue) push(k string, exp time.Time) {
	if n := len(e.chunks); n == 0 || len(e.chunks[n-1]) == expiryChunk {
		e.chunks = append(e.chunks, make([]expiring, 0, expiryChunk))
	}
	last := len(e.chunks) - 1
	e.chunks[last] = append(e.chunks[last], expiring{k, exp})
}

// pop removes expired entries (or, with force, the oldest regardless) and
// calls drop for each; drop checks the key still has that expiry.
func (e *expiryQueue) pop(now time.Time, force int, drop func(k string, exp time.Time)) {
	for popped := 0; len(e.chunks) > 0; popped++ {
		c := e.chunks[0]
		if e.head == len(c) {
			if len(c) < expiryChunk {
				return // the only, partly filled chunk is drained
			}
			e.chunks[0] = nil
			e.chunks, e.head = e.chunks[1:], 0
			continue
		}
		x := c[e.head]
		if popped >= force && now.Before(x.exp) {
			return
		}
		drop(x.key, x.exp)
		c[e.head] = expiring{}
		e.head++
	}
}

// Store is safe for concurrent use.
type Store struct {
	o Options

	mu        sync.Mutex
	ready     []*alert.Entry
	taken     map[string]*inflight // by receipt
	wake      chan struct{}        // closed when an entry becomes ready
	dedup     map[string]time.Time // observation key → expiry
	done      map[string]time.Time // entry id → expiry
	histories map[string]*history
	byAge     *list.List // of fingerprints, least recently recorded first
	dedupQ    expiryQueue
	doneQ     expiryQueue
	stateQ    expiryQueue
	state     map[string]stateVal
	index     map[string]map[string]float64
	// high holds each map's high-water mark since it was last compacted.
	high      struct{ dedup, done, state, histories, taken int }
	processed int64
	seq       uint64
}

// New returns an empty store.
func New(o Options) *Store {
	o.defaults()
	return &Store{
		o:         o,
		taken:     map[string]*inflight{},
		wake:      make(chan struct{}),
		dedup:     map[string]time.Time{},
		done:      map[string]time.Time{},
		histories: map[string]*history{},
		byAge:     list.New(),
		state:     map[string]stateVal{},
		index:     map[string]map[string]float64{},
	}
}

// Enqueue queues the alerts of e not seen within dedupTTL.
func (s *Store) Enqueue(_ context.Context, e *alert.Entry, dedupTTL time.Duration) (alert.EnqueueResult, error) {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)

	var res alert.EnqueueResult
	fresh := make(template.Alerts, 0, len(e.Message.Alerts))
	keys := make([]string, 0, len(e.Message.Alerts))
	seen := make(map[string]bool, len(e.Message.Alerts))
	for _, a := range e.Message.Alerts {
		k := alert.ObservationKey(a)
		if exp, ok := s.dedup[k]; (ok && now.Before(exp)) || seen[k] {
			res.Duplicates++
			continue
		}
		seen[k] = true
		fresh = append(fresh, a)
		keys = append(keys, k)
	}
	if len(fresh) == 0 {
		return res, nil
	}
	if len(s.ready)+len(s.taken) >= s.o.Capacity {
		return alert.EnqueueResult{}, alert.ErrQueueFull
	}
	for _, k := range keys {
		s.dedup[k] = now.Add(dedupTTL)
		s.dedupQ.push(k, now.Add(dedupTTL))
	}
	s.ready = append(s.ready, withAlerts(e, fresh))
	res.Queued, res.Accepted = true, len(fresh)
	close(s.wake)
	s.wake = make(chan struct{})
	return res, nil
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
func (s *Store) Dequeue(ctx context.Context, consumer string, max int, block time.Duration) ([]*alert.Entry, error) {
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
func (s *Store) Ack(_ context.Context, receipt string) error {
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

// Record adds e's observations to the histories once per entry id.
func (s *Store) Record(_ context.Context, e *alert.Entry) (bool, error) {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if exp, ok := s.done[e.ID]; ok && now.Before(exp) {
		return false, nil
	}
	s.done[e.ID] = now.Add(s.o.DoneTTL)
	s.doneQ.push(e.ID, now.Add(s.o.DoneTTL))
	for _, a := range e.Message.Alerts {
		s.addLocked(a.Fingerprint, alert.ObservationOf(a, e.ReceivedAt))
	}
	s.processed += int64(len(e.Message.Alerts))
	return true, nil
}

func (s *Store) addLocked(fp string, o alert.Observation) {
	h := s.histories[fp]
	if h == nil {
		h = &history{}
		s.histories[fp] = h
		h.elem = s.byAge.PushBack(fp)
	} else {
		s.byAge.MoveToBack(h.elem)
	}
	h.touched = s.o.Now()
	for i, old := range h.obs {
		if sameObservation(old, o) {
			h.obs = append(h.obs[:i], h.obs[i+1:]...)
			if old.ReceivedAt.After(o.ReceivedAt) {
				o.ReceivedAt = old.ReceivedAt
			}
			break
		}
	}
	// Insert keeping the slice ordered by ReceivedAt.
	i := len(h.obs)
	for i > 0 && h.obs[i-1].ReceivedAt.After(o.ReceivedAt) {
		i--
	}
	h.obs = append(h.obs, alert.Observation{})
	copy(h.obs[i+1:], h.obs[i:])
	h.obs[i] = o
	if o.ReceivedAt.After(h.newest) {
		h.newest = o.ReceivedAt
	}
	cut := h.newest.Add(-s.o.HistoryRetention)
	drop := 0
	for drop < len(h.obs) && h.obs[drop].ReceivedAt.Before(cut) {
		drop++
	}
	if over := len(h.obs) - drop - s.o.HistoryMax; over > 0 {
		drop += over
	}
	if drop > 0 {
		h.obs = append([]alert.Observation(nil), h.obs[drop:]...)
	}
}

func sameObservation(a, b alert.Observation) bool {
	return a.Status == b.Status && a.StartsAt.Equal(b.StartsAt) && a.EndsAt.Equal(b.EndsAt)
}

// History returns the observations of fp, oldest first.
func (s *Store) History(_ context.Context, fp string) ([]alert.Observation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.histories[fp]
	if h == nil {
		return nil, nil
	}
	return append([]alert.Observation(nil), h.obs...), nil
}

// Processed counts the alerts recorded.
func (s *Store) Processed(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.processed, nil
}

// Ping always answers: the store is this process.
func (s *Store) Ping(context.Context) error { return nil }

// Close releases nothing; it exists to satisfy the store contract.
func (s *Store) Close() error { return nil }

// Stats is a snapshot of the store's sizes, for the detailed health answer.
func (s *Store) Stats() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]int{
		"queued":       len(s.ready),
		"in_flight":    len(s.taken),
		"dedup_keys":   len(s.dedup),
		"fingerprints": len(s.histories),
	}
}

// sweepLocked drops expired dedup keys, done markers, state and histories.
// Each structure is ordered by age, so the work is what expired, not the
// size of the store. The counts are also capped (MaxDedupKeys,
// MaxFingerprints): past them the oldest go first, so memory stays bounded
// under any alert rate (a dedup key forgotten early at worst lets a repeat
// through, which the pipeline handles as an ordinary repeat).
func (s *Store) sweepLocked(now time.Time) {
	s.dedupQ.pop(now, len(s.dedup)-s.o.MaxDedupKeys, func(k string, exp time.Time) {
		if s.dedup[k].Equal(exp) {
			delete(s.dedup, k)
		}
	})
	s.doneQ.pop(now, len(s.done)-s.o.MaxDedupKeys, func(k string, exp time.Time) {
		if s.done[k].Equal(exp) {
			delete(s.done, k)
		}
	})
	s.stateQ.pop(now, 0, func(k string, exp time.Time) {
		if v, ok := s.state[k]; ok && v.exp.Equal(exp) {
			delete(s.state, k)
		}
	})
	cut := now.Add(-s.o.HistoryRetention)
	for e := s.byAge.Front(); e != nil; e = s.byAge.Front() {
		fp := e.Value.(string)
		h := s.histories[fp]
		if !h.touched.Before(cut) && len(s.histories) <= s.o.MaxFingerprints {
			break
		}
		s.byAge.Remove(e)
		delete(s.histories, fp)
	}
	s.dedup = compact(s.dedup, &s.high.dedup)
	s.done = compact(s.done, &s.high.done)
	s.state = compact(s.state, &s.high.state)
	s.histories = compact(s.histories, &s.high.histories)
	s.taken = compact(s.taken, &s.high.taken)
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

type stateVal struct {
	v   []byte
	exp time.Time
}

// UpdateState applies fn under the store's lock: in one process that is
// atomic, and fn runs exactly once.
func (s *Store) UpdateState(_ context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var old []byte
	if sv, ok := s.state[key]; ok && now.Before(sv.exp) {
		old = sv.v
	}
	v, err := fn(old)
	if err != nil {
		return nil, err
	}
	if v == nil {
		delete(s.state, key)
		return nil, nil
	}
	if old != nil && bytes.Equal(v, old) {
		return v, nil // unchanged: not a write, the TTL stays (as on Redis)
	}
	s.state[key] = stateVal{v: v, exp: now.Add(ttl)}
	s.stateQ.push(key, now.Add(ttl))
	return v, nil
}

// State reads a value UpdateState stored.
func (s *Store) State(_ context.Context, key string) ([]byte, error) {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sv, ok := s.state[key]; ok && now.Before(sv.exp) {
		return sv.v, nil
	}
	return nil, nil
}

// Mark adds member to index with score.
func (s *Store) Mark(_ context.Context, index, member string, score float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.index[index]
	if ix == nil {
		ix = map[string]float64{}
		s.index[index] = ix
	}
	ix[member] = score
	return nil
}

// Marked lists the members of index scored at most max, lowest first.
func (s *Store) Marked(_ context.Context, index string, max float64) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	type ms struct {
		m string
		s float64
	}
	var out []ms
	for m, sc := range s.index[index] {
		if sc <= max {
			out = append(out, ms{m, sc})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].s != out[j].s {
			return out[i].s < out[j].s
		}
		return out[i].m < out[j].m
	})
	res := make([]string, len(out))
	for i, o := range out {
		res[i] = o.m
	}
	return res, nil
}

// Unmark removes member from index.
func (s *Store) Unmark(_ context.Context, index, member string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.index[index], member)
	return nil
}

// IsDone says whether Record has recorded the entry.
func (s *Store) IsDone(_ context.Context, id string) (bool, error) {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.done[id]
	return ok && now.Before(exp), nil
}
