package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alertmedic/alertmedic/store"
)

// A store may spread its keys over shards (store.redis.shards): an alert's
// records, its queue entry and its remediation task live in the alert's
// shard, a target's outbox items and rate limit in the target's. A commit
// is atomic in one shard only, so a decision commits in the alert's shard,
// with the outbox work for a target elsewhere as forward items; the
// forwarder puts each in its target's shard once and settles it.

// targetShard is the shard of a target's outbox.
func (p *Pipeline) targetShard(target string) int {
	return store.ShardOf(target, p.o.Store.Shards())
}

// forwardMarkerTTL is how long a target's shard remembers a forward item it
// took: far longer than the lease (30 s) a crashed forwarder's item waits
// out before it is taken again.
const forwardMarkerTTL = time.Hour

// localize keeps in t the outbox work for targets in shard and turns the
// rest into forward items; token makes their IDs unique to this decision
// (an entry's ID, which a retry of the entry keeps). It reports whether
// any was forwarded.
func (p *Pipeline) localize(shard int, token string, t store.Txn) (store.Txn, bool) {
	if p.o.Store.Shards() <= 1 || !p.crosses(shard, t) {
		return t, false
	}
	var puts, forwards []store.Put
	fwd := func(f store.Forward, id string) {
		b, _ := json.Marshal(f)
		forwards = append(forwards, store.Put{Queue: store.QueueForward, Item: store.Item{
			ID: "fwd:" + token + ":" + id, Group: "to:" + strconv.Itoa(f.Shard), Due: p.o.Now(), Payload: b}})
	}
	for _, pu := range t.Put {
		if dest := p.targetShard(pu.Item.Group); pu.Queue == store.QueueOutbox && dest != shard {
			pu := pu
			fwd(store.Forward{Shard: dest, Put: &pu}, pu.Item.ID)
			continue
		}
		puts = append(puts, pu)
	}
	var collects []store.Collect
	for _, c := range t.Collect {
		if dest := p.targetShard(c.Item.Group); c.Queue == store.QueueOutbox && dest != shard {
			c := c
			fwd(store.Forward{Shard: dest, Collect: &c}, c.Item.ID)
			continue
		}
		collects = append(collects, c)
	}
	t.Put, t.Collect = append(puts, forwards...), collects
	return t, len(forwards) > 0
}

// crosses says whether t holds outbox work for a target outside shard: the
// common case of a commit whose targets are all local costs no copy.
func (p *Pipeline) crosses(shard int, t store.Txn) bool {
	for _, pu := range t.Put {
		if pu.Queue == store.QueueOutbox && p.targetShard(pu.Item.Group) != shard {
			return true
		}
	}
	for _, c := range t.Collect {
		if c.Queue == store.QueueOutbox && p.targetShard(c.Item.Group) != shard {
			return true
		}
	}
	return false
}

func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// forward moves every shard's forward items into their targets' shards:
// one CommitAll per destination, each item's commit atomic with the marker
// that makes it happen once; then one settle per source shard.
func (p *Pipeline) forward(ctx context.Context, shards []int) error {
	if p.o.Store.Shards() <= 1 {
		return nil
	}
	var errs []error
	for _, src := range shards {
		for round := 0; round < 20; round++ {
			moved, err := p.forwardFrom(ctx, src)
			if err != nil {
				errs = append(errs, err)
				break
			}
			if moved == 0 {
				break
			}
		}
	}
	return errors.Join(errs...)
}

func (p *Pipeline) forwardFrom(ctx context.Context, src int) (int, error) {
	now := p.o.Now()
	c, err := p.o.Store.Claim(ctx, src, store.QueueForward, store.ClaimOptions{Now: now, Lease: 30 * time.Second, Max: 200})
	if err != nil {
		return 0, err
	}
	st := store.Settlement{Now: now}
	var woken []string
	total := 0
	for _, b := range c.Batches {
		dest, err := strconv.Atoi(strings.TrimPrefix(b.Group, "to:"))
		if err != nil || dest < 0 || dest >= p.o.Store.Shards() {
			// Not one of ours: keep it where it can be seen.
			for _, it := range b.Items {
				it.LastErr = "forward item for an unknown shard " + b.Group
				st.Dead = append(st.Dead, it)
			}
			continue
		}
		txns := make([]store.Txn, 0, len(b.Items))
		items := make([]store.Item, 0, len(b.Items))
		for _, it := range b.Items {
			var f store.Forward
			if err := json.Unmarshal(it.Payload, &f); err != nil || (f.Put == nil && f.Collect == nil) {
				it.LastErr = "undecodable forward item"
				st.Dead = append(st.Dead, it)
				continue
			}
			marker := it.ID // "fwd:...", unique to the decision and the item
			t := store.Txn{
				Expect: []store.Value{{Key: marker}},
				Set:    []store.Value{{Key: marker, Value: []byte("1"), TTL: forwardMarkerTTL}},
			}
			if f.Put != nil {
				t.Put = []store.Put{*f.Put}
				woken = append(woken, f.Put.Item.Group)
			}
			if f.Collect != nil {
				t.Collect = []store.Collect{*f.Collect}
				woken = append(woken, f.Collect.Item.Group)
			}
			txns = append(txns, t)
			items = append(items, it)
		}
		for i, err := range p.o.Store.CommitAll(ctx, dest, txns) {
			var conflict *store.Conflict
			switch {
			case err == nil, errors.As(err, &conflict):
				// Put now, or by an earlier take of this item (the marker).
				st.Done = append(st.Done, items[i])
			default:
				it := items[i]
				it.Due, it.LastErr = now.Add(time.Second), err.Error()
				st.Retry = append(st.Retry, it)
			}
		}
		total += len(items)
	}
	if len(st.Done)+len(st.Retry)+len(st.Dead) > 0 {
		if _, err := p.o.Store.Settle(ctx, src, store.QueueForward, st); err != nil {
			return 0, err
		}
	}
	if len(woken) > 0 {
		p.disp.wake(woken...)
	}
	return total, nil
}

// sweepEvery is how often the loops that serve every shard look at all of
// them (for other replicas' work and lapsed leases) when the store has
// several; between sweeps they look at the shards they were woken for.
// With one shard it is a second, as before sharding.
func (p *Pipeline) sweepEvery() time.Duration {
	if p.o.Store.Shards() > 1 {
		return 5 * time.Second
	}
	return time.Second
}

// shardWake is a set of shards with new work, and a channel that says so.
type shardWake struct {
	mu sync.Mutex
	s  map[int]bool
	ch chan struct{}
}

func newShardWake() *shardWake { return &shardWake{s: map[int]bool{}, ch: make(chan struct{}, 1)} }

func (w *shardWake) mark(shard int) {
	w.mu.Lock()
	w.s[shard] = true
	w.mu.Unlock()
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

func (w *shardWake) take() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]int, 0, len(w.s))
	for s := range w.s {
		out = append(out, s)
	}
	clear(w.s)
	return out
}

// allShards lists 0..n-1.
func allShards(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// shardLoop runs fn for the shards woken, at once, and for every shard each
// sweepEvery, until ctx is done; failures are counted under op and logged.
func (p *Pipeline) shardLoop(ctx context.Context, w *shardWake, op, msg string, fn func(ctx context.Context, shards []int) error) {
	t := time.NewTicker(p.sweepEvery())
	defer t.Stop()
	for {
		var shards []int
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.take()
			shards = allShards(p.o.Store.Shards())
		case <-w.ch:
			shards = w.take()
		}
		if err := fn(ctx, shards); err != nil && ctx.Err() == nil {
			p.m.storeErrors.WithLabelValues(op).Inc()
			p.o.Logger.Error().Err(err).Msg(msg)
		}
	}
}
