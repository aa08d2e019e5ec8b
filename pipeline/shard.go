package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
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
// took: longer than any lease a crashed forwarder's item waits out.
const forwardMarkerTTL = 24 * time.Hour

// localize keeps in t the outbox work for targets in shard and turns the
// rest into forward items; token makes their IDs unique to this decision
// (an entry's ID, which a retry of the entry keeps). It reports whether
// any was forwarded.
func (p *Pipeline) localize(shard int, token string, t store.Txn) (store.Txn, bool) {
	if p.o.Store.Shards() <= 1 {
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

func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// forward moves every shard's forward items into their targets' shards:
// one CommitAll per destination, each item's commit atomic with the marker
// that makes it happen once; then one settle per source shard.
func (p *Pipeline) forward(ctx context.Context) error {
	n := p.o.Store.Shards()
	if n <= 1 {
		return nil
	}
	var errs []error
	for src := 0; src < n; src++ {
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
			marker := "fwd:" + it.ID
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
