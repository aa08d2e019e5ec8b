package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/alertmedic/alertmedic/store"
)

type value struct {
	v   []byte
	exp int64 // unix ns
	ttl time.Duration
	// pin: still needed (a flapping alert's held notifications); never
	// evicted at the cap.
	pin bool
}

func (s *Store) getLocked(key string, now int64) []byte {
	if v, ok := s.values[key]; ok && now < v.exp {
		return v.v
	}
	return nil
}

func (s *Store) setLocked(key string, v []byte, ttl time.Duration, pin bool, now int64) {
	if v == nil {
		s.deleteValueLocked(key)
		return
	}
	s.setExpLocked(key, v, ttl, now+int64(ttl), pin)
}

// setExpLocked stores v until exp, in the expiry queue of ttl: a value
// that expires with another (a notes record's field) takes the other's
// TTL and expiry, so that the queues stay one per TTL the caller uses
// rather than one per write.
func (s *Store) setExpLocked(key string, v []byte, ttl time.Duration, exp int64, pin bool) {
	old, had := s.values[key]
	if had && old.pin {
		s.pinned--
	}
	if pin {
		s.pinned++
	}
	s.values[key] = value{v: v, exp: exp, ttl: ttl, pin: pin}
	s.valueQ.push(key, ttl, exp)
}

func (s *Store) deleteValueLocked(key string) {
	if v, ok := s.values[key]; ok {
		if v.pin {
			s.pinned--
		}
		delete(s.values, key)
	}
}

// Get reads values by key; an absent key reads as nil. The returned slices
// are the store's own: do not modify them.
func (s *Store) Get(_ context.Context, shard int, keys ...string) ([][]byte, error) {
	if err := checkShard(shard); err != nil {
		return nil, err
	}
	now := s.o.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = s.getLocked(k, now)
	}
	return out, nil
}

func checkShard(shard int) error {
	if shard != 0 {
		return fmt.Errorf("memory store has one shard, not shard %d", shard)
	}
	return nil
}

// State reads one value.
func (s *Store) State(_ context.Context, key string) ([]byte, error) {
	now := s.o.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.getLocked(key, now), nil
}

// UpdateState applies fn under the store's lock: in one process that is
// atomic, and fn runs exactly once.
func (s *Store) UpdateState(_ context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	old := s.getLocked(key, now.UnixNano())
	v, err := fn(old)
	if err != nil {
		return nil, err
	}
	if v == nil {
		s.deleteValueLocked(key)
		return nil, nil
	}
	if old != nil && bytes.Equal(v, old) {
		return v, nil // unchanged: not a write, the TTL stays (as on Redis)
	}
	s.setLocked(key, v, ttl, false, now.UnixNano())
	return v, nil
}

// Commit applies t atomically (see store.Txn).
func (s *Store) Commit(ctx context.Context, shard int, t store.Txn) error {
	_, err := s.CommitMoves(ctx, shard, t)
	return err
}

// CommitMoves is Commit, and says which of t.Move applied (one for each,
// in order); nil when the Txn was refused.
func (s *Store) CommitMoves(_ context.Context, shard int, t store.Txn) ([]bool, error) {
	if err := checkShard(shard); err != nil {
		return nil, err
	}
	if err := checkTxn(&t); err != nil {
		return nil, err
	}
	now := s.o.Now()
	n := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	var conflict store.Conflict
	for _, e := range t.Expect {
		cur := s.getLocked(e.Key, n)
		if !bytes.Equal(cur, e.Value) || (cur == nil) != (e.Value == nil) {
			conflict.Current = append(conflict.Current, store.Value{Key: e.Key, Value: cur})
		}
	}
	if len(conflict.Current) > 0 {
		return nil, &conflict
	}
	if t.Ack != "" {
		if _, ok := s.taken[t.Ack]; !ok {
			return nil, store.ErrAcked
		}
	}
	// Needed state at its cap refuses the whole commit before any write:
	// the entry stays queued, and Enqueue refuses new work meanwhile.
	adds := map[string]int{}
	for _, p := range t.Put {
		if q := s.queues[p.Queue]; q == nil || q.items[p.Item.ID] == nil {
			adds[p.Queue]++
		}
	}
	for name, k := range adds {
		if q := s.queues[name]; q != nil && len(q.items)+k > s.o.MaxItems {
			s.full[name]++
			return nil, fmt.Errorf("commit: %s holds %d items: %w", name, len(q.items), store.ErrFull)
		}
	}
	if t.Ack != "" {
		delete(s.taken, t.Ack)
	}
	for _, v := range t.Set {
		s.setLocked(v.Key, v.Value, v.TTL, v.Pin, n)
	}
	for _, p := range t.Put {
		s.queue(p.Queue).put(p.Item, now)
	}
	for _, c := range t.Collect {
		s.queue(c.Queue).collect(c, now)
	}
	applied := make([]bool, len(t.Move))
	for i, m := range t.Move {
		if q := s.queues[m.Queue]; q != nil {
			applied[i] = q.move(m, now)
		}
	}
	for _, m := range t.Mark {
		s.markLocked(m.Index, m.Member, m.Score)
	}
	for _, m := range t.Unmark {
		delete(s.index[m.Index], m.Member)
	}
	return applied, nil
}

// checkTxn refuses what no backend could store.
func checkTxn(t *store.Txn) error {
	for _, v := range t.Set {
		if v.Value != nil && v.TTL < time.Millisecond {
			return fmt.Errorf("commit: value %s needs a TTL of at least 1ms", v.Key)
		}
	}
	for _, p := range t.Put {
		if p.Item.ID == "" {
			return errors.New("commit: item without an ID")
		}
	}
	for _, c := range t.Collect {
		if c.Item.ID == "" || c.Cap < 1 || c.TTL < time.Millisecond {
			return fmt.Errorf("commit: collect into %q needs an item ID, a cap and a TTL", c.Item.ID)
		}
	}
	for _, m := range t.Move {
		if m.ID == "" {
			return errors.New("commit: move without an item ID")
		}
	}
	return nil
}

func (s *Store) markLocked(index, member string, score float64) {
	ix := s.index[index]
	if ix == nil {
		ix = map[string]float64{}
		s.index[index] = ix
	}
	ix[member] = score
	if over := len(ix) - s.o.MaxIndexMembers; over > 0 {
		// Rare (the cap is far above any index's use): sort and cut.
		type ms struct {
			m string
			s float64
		}
		all := make([]ms, 0, len(ix))
		for m, sc := range ix {
			all = append(all, ms{m, sc})
		}
		sort.Slice(all, func(i, j int) bool { return all[i].s < all[j].s })
		for _, x := range all[:over] {
			delete(ix, x.m)
		}
		s.evictions["index:"+index] += int64(over)
	}
}

// Mark adds member to index with score.
func (s *Store) Mark(_ context.Context, index, member string, score float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.markLocked(index, member, score)
	return nil
}

// Marked lists the members of index scored at most max, lowest first.
// MarkedIn is Marked for shard 0, the only one.
func (s *Store) MarkedIn(ctx context.Context, shard int, index string, max float64) ([]string, error) {
	if err := checkShard(shard); err != nil {
		return nil, err
	}
	return s.Marked(ctx, index, max)
}

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

// CommitAll applies each Txn as Commit does, in order.
func (s *Store) CommitAll(ctx context.Context, shard int, ts []store.Txn) []error {
	errs := make([]error, len(ts))
	for i, t := range ts {
		errs[i] = s.Commit(ctx, shard, t)
	}
	return errs
}

// Keys lists up to max of the live value keys that start with prefix, in
// no order; more says there were more.
func (s *Store) Keys(_ context.Context, shard int, prefix string, max int) ([]string, bool, error) {
	if err := checkShard(shard); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.o.Now().UnixNano()
	var out []string
	for k, v := range s.values {
		if !strings.HasPrefix(k, prefix) || v.exp <= now {
			continue
		}
		if len(out) >= max {
			return out, true, nil
		}
		out = append(out, k)
	}
	return out, false, nil
}

// recordKey and fieldKey hold a notes record (store.Note) and one of its
// fields as values; "\x00" is in no key alertmedic writes.
func recordKey(key string) string       { return key + "\x00" }
func fieldKey(key, field string) string { return key + "\x00" + field }

// Fields reads fields of a notes record; nil for each absent.
func (s *Store) Fields(ctx context.Context, shard int, key string, fields ...string) ([][]byte, error) {
	ks := make([]string, len(fields))
	for i, f := range fields {
		ks[i] = fieldKey(key, f)
	}
	return s.Get(ctx, shard, ks...)
}
