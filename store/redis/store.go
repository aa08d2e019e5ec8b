// Package redis is the Redis backend of alertmedic's store (the
// contract and the key list are package store's): several replicas share
// the queue (a Redis Stream read through a consumer group, so a crashed
// worker's entries are claimed by another), the dedup keys, the values, the
// leased queues and the rate limits. It is the only package that imports
// go-redis.
//
// Every key is "{prefix}:..." so that all of them hash to one Cluster slot
// and one Lua script may touch several at once. Every key has a TTL: values,
// dedup keys, collections and rate limits get theirs when written; the
// stream, the leased queues and the indexes, which are written far more often
// than their TTL, get theirs refreshed by Maintain (the pipeline calls it
// every minute), so that an abandoned prefix cleans itself up.
//
// Acknowledging deletes the entry (XACK and XDEL), so the stream's length is
// the queue depth and the capacity check is one XLEN.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/prometheus/alertmanager/template"
	"github.com/redis/go-redis/v9"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/store"
)

// Defaults of the Redis-only options.
const (
	DefaultPrefix = "alertmedic"
	DefaultGroup  = "workers"
	DefaultKeyTTL = 7 * 24 * time.Hour
)

// Options configure a Store.
type Options struct {
	// Client is owned by the Store from now on: Close closes it.
	Client redis.UniversalClient
	// Prefix namespaces every key, so that several alertmedic deployments
	// can share one Redis. Default DefaultPrefix.
	Prefix string
	// Capacity is the most entries queued and not yet acknowledged; 0 means
	// no limit.
	Capacity int
	// ClaimIdle is how long an entry taken by one consumer may stay
	// unacknowledged before another consumer may take it over. Required.
	ClaimIdle time.Duration
	// KeyTTL bounds the life of the stream, the leased queues and the
	// indexes past their last Maintain, so nothing outlives a deployment
	// that is gone. Default DefaultKeyTTL.
	KeyTTL time.Duration
	// MaxDeadLetters bounds each leased queue's dead letters; past it the
	// oldest go. Default 1000.
	MaxDeadLetters int
	// Group is the stream's consumer group. Default DefaultGroup.
	Group string
	// WaitReplicas, when above 0, makes Enqueue wait (Redis WAIT, at most
	// WaitTimeout) until that many replicas have the entry before it
	// reports success: Redis replication is asynchronous, and an entry a
	// master acknowledged and died with before its replica had it would be
	// lost with a 200 already given. Fewer replicas in time is an error
	// (the webhook answers 503; Alertmanager's retry finds the alerts
	// queued, as duplicates, or queues them on the new master).
	WaitReplicas int
	WaitTimeout  time.Duration
	// Shards spreads the keys over that many hash tags (see ShardTag);
	// 0 is 1.
	Shards int
	// ShardKey names the shard of an alert (store.ShardOf of it): its
	// fingerprint when nil. With flapping.by grouping alerts, the flap key,
	// so that a group's alerts share a shard.
	ShardKey func(template.Alert) string
	// Logger hears of entries dropped as undecodable, so that none goes
	// silently. The zero value discards.
	Logger zerolog.Logger
}

// shard is the store under one hash tag: its keys, its queue stream and
// what this handle knows of its consumers. Store holds one per shard.
type shard struct {
	client    redis.UniversalClient
	keyPrefix string // "{prefix}:"
	stream    string
	group     string
	capacity  int
	claimIdle time.Duration
	keyTTL    time.Duration
	maxDead   int
	waitN     int
	waitFor   time.Duration
	log       zerolog.Logger

	mu        sync.Mutex
	consumers map[string]*consumerState
	receipts  map[string]string // receipt → consumer, while handed out
	// toAck are entries deleted by a commit and still in the consumer
	// group's pending list, acknowledged together by flushAcks.
	toAck     []string
	lastFlush time.Time
}

// newShard checks o and creates the consumer group (and the stream) if
// missing; o.Prefix is the whole hash tag.
func newShard(ctx context.Context, o Options) (*shard, error) {
	if o.Client == nil {
		return nil, errors.New("new redis store: no client")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		// A brace would end the hash tag early and scatter the keys over
		// Cluster slots, which the scripts cannot handle.
		return nil, fmt.Errorf("new redis store: prefix %q must not contain { or }", o.Prefix)
	}
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if o.KeyTTL == 0 {
		o.KeyTTL = DefaultKeyTTL
	}
	if o.MaxDeadLetters <= 0 {
		o.MaxDeadLetters = 1000
	}
	switch {
	case o.Capacity < 0:
		return nil, fmt.Errorf("new redis store: capacity %d is negative", o.Capacity)
	case o.ClaimIdle < time.Millisecond:
		return nil, fmt.Errorf("new redis store: claim idle time %v must be at least 1ms", o.ClaimIdle)
	case o.KeyTTL < time.Millisecond:
		return nil, fmt.Errorf("new redis store: key TTL %v must be at least 1ms", o.KeyTTL)
	}
	p := "{" + o.Prefix + "}:"
	s := &shard{
		client:    o.Client,
		keyPrefix: p,
		stream:    p + "queue",
		group:     o.Group,
		capacity:  o.Capacity,
		claimIdle: o.ClaimIdle,
		keyTTL:    o.KeyTTL,
		maxDead:   o.MaxDeadLetters,
		waitN:     o.WaitReplicas,
		waitFor:   o.WaitTimeout,
		log:       o.Logger,
		consumers: map[string]*consumerState{},
		receipts:  map[string]string{},
	}
	if err := s.createGroup(ctx); err != nil {
		// Redis being down at start is a temporary fault like any other: the
		// daemon starts, answers 503 and not-ready, and the group is created
		// on first use once Redis is back (see withGroup).
		s.log.Warn().Err(err).Msg("redis unreachable at start; the consumer group will be created once it answers")
	}
	return s, nil
}

func (s *shard) key(kind, id string) string { return s.keyPrefix + kind + ":" + id }

// createGroup creates the group reading from the start of the stream, so
// entries added while the group was missing (the stream expired, then an
// enqueue recreated it) are still delivered.
func (s *shard) createGroup(ctx context.Context) error {
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XGroupCreateMkStream(ctx, s.stream, s.group, "0")
		// MKSTREAM creates the stream without a TTL.
		p.PExpire(ctx, s.stream, s.keyTTL)
		return nil
	})
	// Another replica creating the group first is success. The transaction
	// reports its first failed command, and only XGROUP can fail alone.
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return fmt.Errorf("create consumer group: %w", err)
	}
	return nil
}

// withGroup runs fn and, when the group is gone because the stream expired
// or was deleted, recreates it and runs fn again.
func (s *shard) withGroup(ctx context.Context, fn func() error) error {
	err := fn()
	// The stream may have expired (key_ttl passed with no enqueue): XAUTOCLAIM
	// then says the key no longer exists, XREADGROUP says NOGROUP. Either
	// way the group is created again, with the stream.
	if !redis.HasErrorPrefix(err, "NOGROUP") && (err == nil || !strings.Contains(err.Error(), "no longer exists")) {
		return err
	}
	if err := s.createGroup(ctx); err != nil {
		return err
	}
	return fn()
}

// Enqueue implements the store contract. dedupTTL must be at least 1ms.
func (s *shard) Enqueue(ctx context.Context, e *alert.Entry, dedupTTL time.Duration) (alert.EnqueueResult, error) {
	if e == nil || e.Message == nil || e.Message.Data == nil {
		return alert.EnqueueResult{}, errors.New("enqueue entry: no message")
	}
	if e.ID == "" {
		return alert.EnqueueResult{}, errors.New("enqueue entry: no ID")
	}
	if dedupTTL < time.Millisecond {
		return alert.EnqueueResult{}, fmt.Errorf("enqueue entry %s: dedup TTL %v must be at least 1ms", e.ID, dedupTTL)
	}
	alerts := e.Message.Alerts
	if len(alerts) == 0 {
		return alert.EnqueueResult{}, nil
	}
	head, err := encodeHead(e)
	if err != nil {
		return alert.EnqueueResult{}, fmt.Errorf("enqueue entry %s: %w", e.ID, err)
	}
	keys := make([]string, 0, 1+len(alerts))
	args := make([]any, 0, 3+len(alerts))
	keys = append(keys, s.stream)
	args = append(args, s.capacity, ceilMillis(dedupTTL), head)
	for i, a := range alerts {
		b, err := json.Marshal(a)
		if err != nil {
			return alert.EnqueueResult{}, fmt.Errorf("enqueue entry %s: encode alert %d: %w", e.ID, i, err)
		}
		keys = append(keys, s.key("dedup", alert.ObservationKey(a)))
		args = append(args, b)
	}
	// What a duplicate's note needs; the script writes it only for those.
	now := time.Now()
	args = append(args, s.key("notes", store.DuplicatesKey(now)), ceilMillis(store.DuplicatesTTL+dedupTTL),
		now.UnixMilli(), e.ID, e.Message.ExternalURL)
	for _, a := range alerts {
		args = append(args, alert.FingerprintOf(a), a.Status)
	}
	var res []any
	if s.waitN > 0 {
		res, err = s.enqueueWaiting(ctx, keys, args)
	} else {
		res, err = enqueueScript.Run(ctx, s.client, keys, args...).Slice()
	}
	if err != nil {
		return alert.EnqueueResult{}, alert.Unavailable("enqueue entry "+e.ID, err)
	}
	var queued int64
	ok := len(res) == 2
	if ok {
		queued, ok = res[0].(int64)
	}
	if !ok {
		return alert.EnqueueResult{}, fmt.Errorf("enqueue entry %s: unexpected script reply %v", e.ID, res)
	}
	switch {
	case queued < 0:
		return alert.EnqueueResult{}, fmt.Errorf("enqueue entry %s: %w", e.ID, alert.ErrQueueFull)
	case queued == 0:
		return alert.EnqueueResult{Duplicates: len(alerts)}, nil
	default:
		return alert.EnqueueResult{Queued: true, Accepted: int(queued), Duplicates: len(alerts) - int(queued)}, nil
	}
}

// enqueueWaiting runs the enqueue script and WAIT on one connection to the
// master that holds the stream (WAIT counts the replicas that have this
// connection's writes), and fails unless WaitReplicas have it.
func (s *shard) enqueueWaiting(ctx context.Context, keys []string, args []any) ([]any, error) {
	var node redis.Cmdable = s.client
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		m, err := cc.MasterForKey(ctx, keys[0])
		if err != nil {
			return nil, err
		}
		node = m
	}
	// WAIT answers within half the command timeout, so that the socket's
	// read deadline (the whole timeout) never fires first: a read that
	// times out makes go-redis send the whole pipeline again.
	timeout := s.waitFor / 2
	if timeout <= 0 {
		timeout = time.Second
	}
	for attempt := 0; ; attempt++ {
		var run *redis.Cmd
		var wait *redis.IntCmd
		_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
			run = enqueueScript.EvalSha(ctx, p, keys, args...)
			// A write on this connection whatever the script did: when every
			// alert is a duplicate the script writes nothing, and WAIT then
			// covers only this connection's older writes, not the entry an
			// earlier try (on another connection, maybe answered 503) queued.
			// Replication is in order, so a replica past this write has that
			// entry too.
			p.PExpire(ctx, keys[0], s.keyTTL)
			wait = redis.NewIntCmd(ctx, "wait", s.waitN, timeout.Milliseconds())
			_ = p.Process(ctx, wait)
			return nil
		})
		if err != nil && redis.HasErrorPrefix(run.Err(), "NOSCRIPT") && attempt == 0 {
			if err := enqueueScript.Load(ctx, node).Err(); err != nil {
				return nil, err
			}
			continue
		}
		if err := run.Err(); err != nil {
			return nil, err
		}
		if err := wait.Err(); err != nil {
			return nil, err
		}
		res, err := run.Slice()
		if err != nil {
			return nil, err
		}
		// Duplicates too: they may be what an earlier try queued.
		if q, _ := res[0].(int64); q >= 0 && wait.Val() < int64(s.waitN) {
			return nil, fmt.Errorf("queued on the master, but %d of the %d replicas store.redis.wait_replicas asks for had it within %s", wait.Val(), s.waitN, timeout)
		}
		return res, nil
	}
}

// Stream entry fields. The alerts are apart from the rest of the entry
// because the enqueue script picks which of them to keep.
const (
	fieldEntry  = "entry"
	fieldAlerts = "alerts"
)

// encodeHead encodes e without its alerts, leaving the caller's entry as it
// was.
func encodeHead(e *alert.Entry) ([]byte, error) {
	d := *e.Message.Data
	d.Alerts = nil
	m := *e.Message
	m.Data = &d
	c := *e
	c.Message = &m
	c.Receipt = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode entry: %w", err)
	}
	return b, nil
}

func decodeEntry(msg redis.XMessage) (*alert.Entry, error) {
	head, ok1 := msg.Values[fieldEntry].(string)
	alerts, ok2 := msg.Values[fieldAlerts].(string)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("decode entry %s: fields %q and %q missing", msg.ID, fieldEntry, fieldAlerts)
	}
	var e alert.Entry
	if err := json.Unmarshal([]byte(head), &e); err != nil {
		return nil, fmt.Errorf("decode entry %s: %w", msg.ID, err)
	}
	if e.Message == nil || e.Message.Data == nil {
		return nil, fmt.Errorf("decode entry %s: no message", msg.ID)
	}
	var as template.Alerts
	if err := json.Unmarshal([]byte(alerts), &as); err != nil {
		return nil, fmt.Errorf("decode entry %s: alerts: %w", msg.ID, err)
	}
	e.Message.Alerts = as
	e.Receipt = msg.ID
	return &e, nil
}

// Dequeue implements the store contract.
//
// An entry that cannot be decoded is acknowledged and deleted on the spot
// and never returned: it can never be processed, and left in the stream it
// would be delivered and reclaimed forever and count against the capacity.
//
// When ctx is cancelled while Dequeue blocks, Dequeue returns at once but
// the blocking read it sent finishes in the background; an entry that read
// takes stays pending for this consumer name and comes back on its next
// Dequeue (or to another consumer after ClaimIdle). go-redis cannot abort a
// command once sent.
func (s *shard) Dequeue(ctx context.Context, consumer string, max int, block time.Duration) ([]*alert.Entry, error) {
	if consumer == "" {
		return nil, errors.New("dequeue: no consumer name")
	}
	if max < 1 {
		max = 1
	}
	s.mu.Lock()
	flush := len(s.toAck) > 0 && time.Since(s.lastFlush) >= ackEvery
	s.mu.Unlock()
	if flush {
		s.flushAcks(ctx)
	}
	entries, err := s.dequeue(ctx, consumer, int64(max), block)
	if err != nil {
		// A read that failed may still have handed entries to this
		// consumer in Redis (the reply was lost): look at its pending list
		// again next time instead of waiting for ClaimIdle.
		s.mu.Lock()
		s.consumer(consumer).known = false
		s.mu.Unlock()
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, alert.Unavailable("dequeue for "+consumer, err)
	}
	return entries, nil
}

func (s *shard) dequeue(ctx context.Context, consumer string, count int64, block time.Duration) ([]*alert.Entry, error) {
	// This consumer's own unacknowledged entries first: after a restart
	// they are back at once, without waiting for ClaimIdle. A consumer this
	// handle knows to hold nothing unacknowledged skips the round trip.
	var msgs []redis.XMessage
	var err error
	if s.mayHavePending(consumer) {
		msgs, err = s.read(ctx, consumer, "0", count, -1)
		if err != nil {
			return nil, err
		}
		if entries := s.decode(ctx, msgs); len(entries) > 0 {
			s.handedOut(consumer, entries)
			return entries, nil
		}
		s.noPending(consumer)
	}

	// Then what another consumer took and left, looked for at most a few
	// times per ClaimIdle: an entry becomes claimable only after ClaimIdle
	// anyway. Starting from the beginning every time is fine for a pending
	// list this short-lived.
	if !s.claimDue(consumer) {
		msgs, err = s.readNew(ctx, consumer, count, block)
		if err != nil {
			return nil, err
		}
		entries := s.decode(ctx, msgs)
		s.handedOut(consumer, entries)
		return entries, nil
	}
	err = s.withGroup(ctx, func() error {
		msgs, _, err = s.client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream:   s.stream,
			Group:    s.group,
			Consumer: consumer,
			MinIdle:  s.claimIdle,
			Start:    "0-0",
			Count:    count,
		}).Result()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim idle entries: %w", err)
	}
	if entries := s.decode(ctx, msgs); len(entries) > 0 {
		s.handedOut(consumer, entries)
		return entries, nil
	}

	msgs, err = s.readNew(ctx, consumer, count, block)
	if err != nil {
		return nil, err
	}
	entries := s.decode(ctx, msgs)
	s.handedOut(consumer, entries)
	return entries, nil
}

// consumerState is what this handle knows of a consumer, to save round
// trips: which entries it handed out and that are not acknowledged yet, and
// when it last looked for entries to claim.
type consumerState struct {
	known     bool // its pending list was read since this handle opened
	out       map[string]bool
	lastClaim time.Time
}

func (s *shard) consumer(name string) *consumerState {
	c := s.consumers[name]
	if c == nil {
		c = &consumerState{out: map[string]bool{}}
		s.consumers[name] = c
	}
	return c
}

func (s *shard) mayHavePending(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.consumer(name)
	return !c.known || len(c.out) > 0
}

func (s *shard) noPending(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.consumer(name)
	c.known = true
	clear(c.out)
}

func (s *shard) handedOut(name string, es []*alert.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.consumer(name)
	for _, e := range es {
		c.out[e.Receipt] = true
		s.receipts[e.Receipt] = name
	}
}

func (s *shard) acked(receipts ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range receipts {
		if name, ok := s.receipts[r]; ok {
			delete(s.consumers[name].out, r)
			delete(s.receipts, r)
		}
	}
}

// claimDue says whether it is time for name to look for idle entries.
func (s *shard) claimDue(name string) bool {
	every := min(max(s.claimIdle/4, 100*time.Millisecond), 5*time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.consumer(name)
	if now := time.Now(); now.Sub(c.lastClaim) >= every {
		c.lastClaim = now
		return true
	}
	return false
}

// readNew reads new entries, blocking up to block, and returns as soon as
// ctx is done.
func (s *shard) readNew(ctx context.Context, consumer string, count int64, block time.Duration) ([]redis.XMessage, error) {
	if block <= 0 {
		// go-redis leaves BLOCK out for a negative value; BLOCK 0 would wait
		// forever.
		return s.read(ctx, consumer, ">", count, -1)
	}
	// BLOCK counts in milliseconds; rounding a short wait down to 0 would
	// make it endless.
	block = time.Duration(ceilMillis(block)) * time.Millisecond
	if ctx.Done() == nil {
		return s.read(ctx, consumer, ">", count, block)
	}
	type result struct {
		msgs []redis.XMessage
		err  error
	}
	done := make(chan result, 1)
	go func() {
		msgs, err := s.read(ctx, consumer, ">", count, block)
		done <- result{msgs, err}
	}()
	select {
	case r := <-done:
		return r.msgs, r.err
	case <-ctx.Done():
		// The abandoned read may still take an entry for this consumer:
		// its next Dequeue must look at its pending list again.
		s.mu.Lock()
		s.consumer(consumer).known = false
		s.mu.Unlock()
		return nil, ctx.Err()
	}
}

// read runs XREADGROUP from id ("0": own pending entries, ">": new ones);
// block < 0 means do not block.
func (s *shard) read(ctx context.Context, consumer, id string, count int64, block time.Duration) ([]redis.XMessage, error) {
	var streams []redis.XStream
	err := s.withGroup(ctx, func() error {
		var err error
		streams, err = s.client.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group:    s.group,
			Consumer: consumer,
			Streams:  []string{s.stream, id},
			Count:    count,
			Block:    block,
		}).Result()
		return err
	})
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read group from %s: %w", id, err)
	}
	var msgs []redis.XMessage
	for _, st := range streams {
		msgs = append(msgs, st.Messages...)
	}
	return msgs, nil
}

// decode returns the entries of msgs and drops the ones that cannot be
// decoded, including pending IDs whose entry was deleted (no fields).
func (s *shard) decode(ctx context.Context, msgs []redis.XMessage) []*alert.Entry {
	var entries []*alert.Entry
	var bad []string
	for _, m := range msgs {
		if len(m.Values) == 0 {
			// Deleted by a commit, its pending-list place not acknowledged
			// yet (the process stopped before it flushed): done already.
			bad = append(bad, m.ID)
			continue
		}
		e, err := decodeEntry(m)
		if err != nil {
			// Only a corrupted stream or a foreign writer on our prefix can
			// get here; the entry can never be processed, and keeping it
			// would wedge the queue.
			s.log.Error().Str("stream_id", m.ID).Err(err).Msg("dropping undecodable queue entry")
			bad = append(bad, m.ID)
			continue
		}
		entries = append(entries, e)
	}
	if len(bad) > 0 {
		// Best effort: if this fails they are delivered again and dropped
		// then.
		_ = s.ack(ctx, bad...)
	}
	return entries
}

// Ack implements the store contract.
func (s *shard) Ack(ctx context.Context, receipt string) error {
	if receipt == "" {
		return errors.New("ack entry: no receipt")
	}
	if err := s.ack(ctx, receipt); err != nil {
		return alert.Unavailable("ack entry "+receipt, err)
	}
	return nil
}

// ackEvery is how often the pending list is told of the entries commits
// deleted: an entry deleted but not yet acknowledged costs nothing but a
// line in XPENDING, and a consumer that reads its own pending list (after a
// restart) drops it as undecodable.
const ackEvery = 100 * time.Millisecond

// deleted notes an entry a commit took out of the stream, and acknowledges
// what has gathered when it is time.
func (s *shard) deleted(ctx context.Context, receipt string) {
	s.acked(receipt)
	s.mu.Lock()
	s.toAck = append(s.toAck, receipt)
	due := time.Since(s.lastFlush) >= ackEvery || len(s.toAck) >= 512
	s.mu.Unlock()
	if due {
		s.flushAcks(ctx)
	}
}

// flushAcks acknowledges, in one XACK, the entries commits deleted.
func (s *shard) flushAcks(ctx context.Context) {
	s.mu.Lock()
	ids := s.toAck
	s.toAck, s.lastFlush = nil, time.Now()
	s.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	if err := s.client.XAck(ctx, s.stream, s.group, ids...).Err(); err != nil && !redis.HasErrorPrefix(err, "NOGROUP") {
		// They go on the next flush; the entries themselves are gone.
		s.mu.Lock()
		s.toAck = append(s.toAck, ids...)
		s.mu.Unlock()
	}
}

func (s *shard) ack(ctx context.Context, ids ...string) error {
	var xack *redis.IntCmd
	var xdel *redis.IntCmd
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		xack = p.XAck(ctx, s.stream, s.group, ids...)
		xdel = p.XDel(ctx, s.stream, ids...)
		return nil
	})
	if err == nil {
		s.acked(ids...)
		return nil
	}
	// Without the group (the stream expired) there is nothing to
	// acknowledge; the delete is what matters.
	if xack != nil && redis.HasErrorPrefix(xack.Err(), "NOGROUP") && xdel.Err() == nil {
		return nil
	}
	return err
}

// Depth implements the store contract.
func (s *shard) Depth(ctx context.Context) (int64, error) {
	n, err := s.client.XLen(ctx, s.stream).Result()
	if err != nil {
		return 0, alert.Unavailable("read queue depth", err)
	}
	return n, nil
}

// Ping implements the store contract.
func (s *shard) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return alert.Unavailable("ping redis", err)
	}
	return nil
}

// Close closes the client given in Options.
func (s *shard) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	s.flushAcks(ctx)
	cancel()
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("close redis client: %w", err)
	}
	return nil
}

// ceilMillis rounds up, so that a positive duration never becomes 0 ms,
// which Redis refuses as a TTL.
func ceilMillis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// Purge deletes every key under the store's prefix, and nothing else: for
// tests and benchmarks that share a Redis, and for retiring a deployment.
// It returns how many keys it deleted.
func (s *shard) Purge(ctx context.Context) (int, error) {
	return s.purge(ctx, globEscape(s.keyPrefix)+"*")
}

// purge deletes the keys matching pattern (SCAN MATCH), on every master
// of a Cluster.
func (s *shard) purge(ctx context.Context, pattern string) (int, error) {
	cc, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return purgeNode(ctx, s.client, pattern)
	}
	var mu sync.Mutex
	total := 0
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		n, err := purgeNode(ctx, c, pattern)
		mu.Lock()
		total += n
		mu.Unlock()
		return err
	})
	return total, err
}

func purgeNode(ctx context.Context, c redis.Cmdable, pattern string) (int, error) {
	var n int
	iter := c.Scan(ctx, 0, pattern, 500).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// One DEL per key: on a Cluster node, keys of several slots in one
		// command are refused (CROSSSLOT).
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range batch {
				p.Del(ctx, k)
			}
			return nil
		})
		if err != nil {
			return alert.Unavailable("purge keys", err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, alert.Unavailable("scan keys", err)
	}
	return n, flush()
}

// globEscape quotes the characters SCAN MATCH treats as patterns.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// maintained are the keys written too often to set their TTL on every
// write: Maintain refreshes theirs.
func (s *shard) maintained() []string {
	ks := []string{s.stream}
	for _, q := range []string{store.QueueOutbox, store.QueueRemedy, store.QueueForward, store.QueueVerify} {
		ks = append(ks, s.queueKey(q), s.queueKey(q)+":dead", s.queueKey(q)+":p")
	}
	for _, ix := range []string{"flapping", "rem:audit"} {
		ks = append(ks, s.key("index", ix))
	}
	return ks
}

// Maintain refreshes the TTL of the keys in maintained (one pipeline of
// PEXPIREs); call it every few minutes.
func (s *shard) Maintain(ctx context.Context) error {
	s.flushAcks(ctx)
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range s.maintained() {
			p.PExpire(ctx, k, s.keyTTL)
		}
		return nil
	})
	if err != nil {
		return alert.Unavailable("refresh key TTLs", err)
	}
	return nil
}

// Keys lists up to max of the shard's value keys that start with prefix
// (SCAN MATCH, on every master of a Cluster), without the store's prefix,
// in no order; more says there were more. It is for listings (the alerts
// alertmedic knows), not for every request.
func (s *shard) Keys(ctx context.Context, shard int, prefix string, max int) (keys []string, more bool, err error) {
	if err := s.checkShard(shard); err != nil {
		return nil, false, err
	}
	full := s.key("state", prefix)
	pattern := globEscape(full) + "*"
	var mu sync.Mutex
	seen := map[string]bool{}
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 500).Iterator()
		for iter.Next(ctx) {
			k := strings.TrimPrefix(iter.Val(), s.key("state", ""))
			mu.Lock()
			if len(seen) >= max {
				more = true
				mu.Unlock()
				return nil
			}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
			mu.Unlock()
		}
		return iter.Err()
	}
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.client)
	}
	if err != nil {
		return nil, false, alert.Unavailable("list keys", err)
	}
	return keys, more, nil
}
