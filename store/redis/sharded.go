package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/redis/go-redis/v9"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/store"
)

// Store implements the store contract (package store) on Redis, a Redis
// Sentinel group or a Redis Cluster. Its keys are spread over Shards hash
// tags: an alert's state, its dedup keys and the queue entry it came in
// live in the shard of its ShardKey; a target's outbox and rate limit in
// the shard of the target (the pipeline picks, with store.ShardOf). Every
// script touches the keys of one shard only, so it runs on one Cluster
// node, and a Cluster spreads the shards over its masters. One shard keeps
// the one tag {prefix} of a single Redis. Store is safe for concurrent use.
type Store struct {
	prefix   string
	parts    []*shard
	shardKey func(template.Alert) string
}

// New checks o and creates each shard's consumer group (and stream) if
// missing.
func New(ctx context.Context, o Options) (*Store, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	n := o.Shards
	switch {
	case n == 0:
		n = 1
	case n < 0 || n > 1024:
		return nil, fmt.Errorf("new redis store: %d shards; 1 to 1024", n)
	}
	s := &Store{prefix: o.Prefix, shardKey: o.ShardKey}
	if s.shardKey == nil {
		s.shardKey = func(a template.Alert) string { return a.Fingerprint }
	}
	for i := 0; i < n; i++ {
		po := o
		po.Prefix = ShardTag(o.Prefix, i, n)
		p, err := newShard(ctx, po)
		if err != nil {
			return nil, err
		}
		s.parts = append(s.parts, p)
	}
	return s, nil
}

// ShardTag is the hash tag (without its braces) of shard i of n: prefix
// itself for one shard, else prefix:i-k with the smallest k that puts the
// tag's Cluster slot in the i-th of n equal slot ranges. redis-cli
// --cluster create gives each master one contiguous range, so the shards
// of a Cluster spread evenly over its masters whatever the prefix, and
// every replica, knowing only the configuration, computes the same tags.
func ShardTag(prefix string, i, n int) string {
	if n <= 1 {
		return prefix
	}
	lo, hi := i*16384/n, (i+1)*16384/n
	for k := 0; ; k++ {
		t := prefix + ":" + strconv.Itoa(i) + "-" + strconv.Itoa(k)
		if slot := int(crc16(t) % 16384); slot >= lo && slot < hi {
			return t
		}
	}
}

// crc16 is Redis Cluster's key hash (CRC-16/XMODEM).
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// Shards is how many hash tags the keys are spread over.
func (s *Store) Shards() int { return len(s.parts) }

func (s *Store) part(i int) (*shard, error) {
	if i < 0 || i >= len(s.parts) {
		return nil, fmt.Errorf("shard %d of %d", i, len(s.parts))
	}
	return s.parts[i], nil
}

// ShardOfAlert is the shard an alert's state and queue entry live in.
func (s *Store) ShardOfAlert(a template.Alert) int {
	return store.ShardOf(s.shardKey(a), len(s.parts))
}

// Enqueue queues e part by part: the alerts of each shard as one entry in
// that shard's stream (an ID of its own, the same request), each part
// atomic with its dedup keys. It succeeds only when every part is queued;
// a part that fails makes it fail, and Alertmanager's retry finds the
// parts queued before as duplicates.
func (s *Store) Enqueue(ctx context.Context, e *alert.Entry, dedupTTL time.Duration) (alert.EnqueueResult, error) {
	if len(s.parts) == 1 || e == nil || e.Message == nil || e.Message.Data == nil {
		return s.parts[0].Enqueue(ctx, e, dedupTTL)
	}
	groups := make([]template.Alerts, len(s.parts))
	for _, a := range e.Message.Alerts {
		i := s.ShardOfAlert(a)
		groups[i] = append(groups[i], a)
	}
	var total alert.EnqueueResult
	var errs []error
	for i, as := range groups {
		if len(as) == 0 {
			continue
		}
		d := *e.Message.Data
		d.Alerts = as
		m := *e.Message
		m.Data = &d
		pe := *e
		pe.Message = &m
		pe.ID = e.ID + "." + strconv.Itoa(i)
		r, err := s.parts[i].Enqueue(ctx, &pe, dedupTTL)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		total.Accepted += r.Accepted
		total.Duplicates += r.Duplicates
		total.Queued = total.Queued || r.Queued
	}
	if len(errs) > 0 {
		return alert.EnqueueResult{}, errors.Join(errs...)
	}
	return total, nil
}

// Dequeue takes entries of one shard; each carries its shard.
func (s *Store) Dequeue(ctx context.Context, shard int, consumer string, max int, block time.Duration) ([]*alert.Entry, error) {
	p, err := s.part(shard)
	if err != nil {
		return nil, err
	}
	es, err := p.Dequeue(ctx, consumer, max, block)
	for _, e := range es {
		e.Shard = shard
	}
	return es, err
}

// Ack acknowledges an entry of a shard.
func (s *Store) Ack(ctx context.Context, shard int, receipt string) error {
	p, err := s.part(shard)
	if err != nil {
		return err
	}
	return p.Ack(ctx, receipt)
}

// Depth counts the unfinished entries of every shard.
func (s *Store) Depth(ctx context.Context) (int64, error) {
	var n int64
	for _, p := range s.parts {
		d, err := p.Depth(ctx)
		if err != nil {
			return 0, err
		}
		n += d
	}
	return n, nil
}

// Ping implements the store contract.
func (s *Store) Ping(ctx context.Context) error { return s.parts[0].Ping(ctx) }

// Close acknowledges what every shard has gathered and closes the client
// given in Options.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	for _, p := range s.parts {
		p.flushAcks(ctx)
	}
	cancel()
	if err := s.parts[0].client.Close(); err != nil {
		return fmt.Errorf("close redis client: %w", err)
	}
	return nil
}

// Purge deletes every key under the prefix, of every shard and of any
// shard count (a deployment that changed store.redis.shards), and nothing
// else.
func (s *Store) Purge(ctx context.Context) (int, error) {
	total := 0
	for _, pattern := range []string{"{" + globEscape(s.prefix) + "}:*", "{" + globEscape(s.prefix) + ":*"} {
		n, err := s.parts[0].purge(ctx, pattern)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Maintain refreshes the TTLs of every shard's long-lived keys.
func (s *Store) Maintain(ctx context.Context) error {
	var errs []error
	for _, p := range s.parts {
		if err := p.Maintain(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// The leased queues and the atomic commits of one shard.

func (s *Store) Get(ctx context.Context, shard int, keys ...string) ([][]byte, error) {
	p, err := s.part(shard)
	if err != nil {
		return nil, err
	}
	return p.Get(ctx, 0, keys...)
}

func (s *Store) Commit(ctx context.Context, shard int, t store.Txn) error {
	p, err := s.part(shard)
	if err != nil {
		return err
	}
	return p.Commit(ctx, 0, t)
}

// CommitMoves is Commit, and says which of t.Move applied; a Txn goes
// to one shard, its moves too.
func (s *Store) CommitMoves(ctx context.Context, shard int, t store.Txn) ([]bool, error) {
	p, err := s.part(shard)
	if err != nil {
		return nil, err
	}
	return p.CommitMoves(ctx, 0, t)
}

func (s *Store) CommitAll(ctx context.Context, shard int, ts []store.Txn) []error {
	p, err := s.part(shard)
	if err != nil {
		errs := make([]error, len(ts))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	return p.CommitAll(ctx, 0, ts)
}

func (s *Store) Claim(ctx context.Context, shard int, queue string, o store.ClaimOptions) (store.Claimed, error) {
	p, err := s.part(shard)
	if err != nil {
		return store.Claimed{}, err
	}
	return p.Claim(ctx, 0, queue, o)
}

func (s *Store) Settle(ctx context.Context, shard int, queue string, st store.Settlement) (store.Settled, error) {
	p, err := s.part(shard)
	if err != nil {
		return store.Settled{}, err
	}
	return p.Settle(ctx, 0, queue, st)
}

// DeadLetters lists a queue's dead letters across every shard, newest
// first, as page selects (see store.DeadPage), and counts them all: one
// pipeline reads each shard's share and count, which a Cluster client
// sends to each master at once.
func (s *Store) DeadLetters(ctx context.Context, queue string, page store.DeadPage) (store.DeadList, error) {
	if err := page.InShards(len(s.parts)); err != nil {
		return store.DeadList{}, err
	}
	reads := make([]deadRead, len(s.parts))
	_, err := s.parts[0].client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, sh := range s.parts {
			reads[i] = sh.readDead(ctx, p, queue, page, page.SkipIn(i))
		}
		return nil
	})
	if err != nil {
		return store.DeadList{}, alert.Unavailable("list dead letters of "+queue, err)
	}
	got := make([][]store.Dead, len(reads))
	total := 0
	for i, r := range reads {
		got[i] = r.dead()
		total += int(r.count.Val())
	}
	dead, next := store.MergeDead(page, got)
	return store.DeadList{Dead: dead, Next: next, Total: total}, nil
}

func (s *Store) QueueLen(ctx context.Context, shard int, queue string) (int, error) {
	p, err := s.part(shard)
	if err != nil {
		return 0, err
	}
	return p.QueueLen(ctx, 0, queue)
}

// MarkedIn lists the members of a shard's index scored at most max.
func (s *Store) MarkedIn(ctx context.Context, shard int, index string, max float64) ([]string, error) {
	p, err := s.part(shard)
	if err != nil {
		return nil, err
	}
	return p.Marked(ctx, index, max)
}

// The remediation engine's state (guards, locks, the audit) is not an
// alert's: it lives in shard 0.

func (s *Store) UpdateState(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	return s.parts[0].UpdateState(ctx, key, ttl, fn)
}
func (s *Store) State(ctx context.Context, key string) ([]byte, error) {
	return s.parts[0].State(ctx, key)
}
func (s *Store) Mark(ctx context.Context, index, member string, score float64) error {
	return s.parts[0].Mark(ctx, index, member, score)
}
func (s *Store) Marked(ctx context.Context, index string, max float64) ([]string, error) {
	return s.parts[0].Marked(ctx, index, max)
}
func (s *Store) Unmark(ctx context.Context, index, member string) error {
	return s.parts[0].Unmark(ctx, index, member)
}

// Keys lists a shard's value keys that start with prefix (see shard.Keys).
func (s *Store) Keys(ctx context.Context, shard int, prefix string, max int) ([]string, bool, error) {
	p, err := s.part(shard)
	if err != nil {
		return nil, false, err
	}
	return p.Keys(ctx, 0, prefix, max)
}

// Fields reads fields of a shard's notes record (see shard.Fields).
func (s *Store) Fields(ctx context.Context, shard int, key string, fields ...string) ([][]byte, error) {
	p, err := s.part(shard)
	if err != nil {
		return nil, err
	}
	return p.Fields(ctx, 0, key, fields...)
}

// Revive takes a dead letter of a shard back into its queue (see
// shard.Revive).
func (s *Store) Revive(ctx context.Context, shard int, queue, id string, due time.Time) (bool, error) {
	p, err := s.part(shard)
	if err != nil {
		return false, err
	}
	return p.Revive(ctx, 0, queue, id, due)
}
