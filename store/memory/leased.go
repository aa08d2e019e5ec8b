package memory

import (
	"container/heap"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/alertmedic/alertmedic/store"
)

// leased is one leased queue: its unfinished items in a heap by due time
// (a claimed item's due time is its lease's end), its collections and its
// dead letters.
type leased struct {
	items map[string]*litem
	due   dueHeap
	// coll holds what collecting items collect until they are claimed.
	coll            map[string]*collection
	collectedFields int
	dead            []store.Dead // oldest first
	seq             uint64
}

type litem struct {
	it    store.Item
	score int64 // unix ns
	seq   uint64
	idx   int
	// claimed holds what a collecting item was claimed with.
	claimed *collection
}

type collection struct {
	fields   map[string][]byte
	overflow map[string]bool
	exp      int64
}

func (s *Store) queue(name string) *leased {
	q := s.queues[name]
	if q == nil {
		q = &leased{items: map[string]*litem{}, coll: map[string]*collection{}}
		s.queues[name] = q
	}
	return q
}

func (q *leased) put(it store.Item, now time.Time) *litem {
	if x := q.items[it.ID]; x != nil {
		return x // already there: putting it again changes nothing
	}
	if it.Due.IsZero() {
		it.Due = now
	}
	if it.Since.IsZero() {
		it.Since = it.Due
	}
	it.Batch, it.Receipt, it.Collected, it.Overflow = "", "", nil, 0
	q.seq++
	x := &litem{it: it, score: it.Due.UnixNano(), seq: q.seq}
	q.items[it.ID] = x
	heap.Push(&q.due, x)
	return x
}

func (q *leased) remove(x *litem) {
	delete(q.items, x.it.ID)
	heap.Remove(&q.due, x.idx)
	if x.claimed != nil {
		q.collectedFields -= len(x.claimed.fields)
	}
}

func (q *leased) collect(c store.Collect, now time.Time) {
	it := c.Item
	it.Collects = true
	q.put(it, now)
	col := q.coll[it.ID]
	if col == nil {
		col = &collection{fields: map[string][]byte{}, overflow: map[string]bool{}}
		q.coll[it.ID] = col
	}
	due := it.Due
	if due.IsZero() {
		due = now
	}
	col.exp = max(col.exp, due.Add(c.TTL).UnixNano())
	for _, f := range c.Fields {
		_, have := col.fields[f.Name]
		switch {
		case have || f.Keep || len(col.fields) < c.Cap:
			if !have {
				q.collectedFields++
			}
			col.fields[f.Name] = f.Value
			delete(col.overflow, f.Name)
		default:
			col.overflow[f.Name] = true
		}
	}
}

// move moves or drops an item that waits (see store.Move) and says
// whether it did: a claimed item (its Batch set until it is settled) and
// an absent one are left alone.
func (q *leased) move(m store.Move, now time.Time) bool {
	x := q.items[m.ID]
	if x == nil || x.it.Batch != "" {
		return false
	}
	if m.Drop {
		q.remove(x)
		if col := q.coll[m.ID]; col != nil {
			q.collectedFields -= len(col.fields)
			delete(q.coll, m.ID)
		}
		return true
	}
	due := m.Due
	if due.IsZero() {
		due = now
	}
	if x.it.Since.After(now) {
		x.it.Since = due // not yet due: it first becomes due at its new time
	}
	x.it.Due = due
	if m.Payload != nil {
		x.it.Payload = slices.Clone(m.Payload)
	}
	x.score = due.UnixNano()
	heap.Fix(&q.due, x.idx)
	return true
}

// sweep drops collections whose TTL passed (their item went long ago).
func (q *leased) sweep(now time.Time) {
	for id, col := range q.coll {
		if col.exp < now.UnixNano() && q.items[id] == nil {
			q.collectedFields -= len(col.fields)
			delete(q.coll, id)
		}
	}
}

// Claim takes the due items of a leased queue in batches (see
// store.ClaimOptions).
func (s *Store) Claim(_ context.Context, shard int, queue string, o store.ClaimOptions) (res store.Claimed, err error) {
	if err := checkShard(shard); err != nil {
		return store.Claimed{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue(queue)
	now := o.Now.UnixNano()
	// The due items, in due order; they go back into the heap with their
	// new scores (a lease, a rate limit's retry time) or unchanged.
	var due []*litem
	for len(q.due) > 0 && q.due[0].score <= now && len(due) < 4*max(o.Max, 1)+64 {
		due = append(due, heap.Pop(&q.due).(*litem))
	}
	defer func() {
		for _, x := range due {
			heap.Push(&q.due, x)
		}
		if len(q.due) > 0 {
			res.Next = time.Unix(0, q.due[0].score)
		}
	}()
	type group struct {
		key   string
		batch string // set for a lapsed batch
		items []*litem
	}
	var order []*group
	byKey := map[string]*group{}
	for _, x := range due {
		k, batch := "g:"+groupOf(x.it), ""
		if x.it.Batch != "" {
			k, batch = "b:"+x.it.Batch, x.it.Batch
		}
		g := byKey[k]
		if g == nil {
			g = &group{key: groupOf(x.it), batch: batch}
			byKey[k] = g
			order = append(order, g)
		}
		g.items = append(g.items, x)
	}
	taken := 0
	for _, g := range order {
		if taken >= o.Max {
			break
		}
		lim := o.Classes[g.items[0].it.Class]
		var ok bool
		var tat, retry time.Time
		if until, held := o.Held[g.key]; held && until.After(o.Now) {
			retry = until
		} else {
			ok, tat, retry = store.GCRA(s.limits[g.key], o.Now, lim.PerSecond, lim.Burst)
		}
		if !ok {
			res.Limited++
			if res.Held == nil {
				res.Held = map[string]time.Time{}
			}
			res.Held[g.key] = retry
			for _, x := range g.items {
				x.score = retry.UnixNano()
			}
			continue
		}
		if lim.PerSecond > 0 {
			s.limits[g.key] = tat
		}
		b := store.Batch{ID: g.batch, Group: g.key, Reclaimed: g.batch != ""}
		if b.ID == "" {
			b.ID = batchID(g.key, g.items[0].it.ID, o.Now)
		}
		alerts := 0
		for _, x := range g.items {
			if g.batch == "" && len(b.Items) > 0 && (taken >= o.Max || (lim.MaxAlerts > 0 && alerts+x.it.Alerts > lim.MaxAlerts)) {
				break // stays due, for the next batch
			}
			alerts += x.it.Alerts
			taken++
			x.it.Batch = b.ID
			x.it.Receipt = x.it.ID + "\x00" + b.ID
			x.score = o.Now.Add(o.Lease).UnixNano()
			if x.it.Collects && x.claimed == nil {
				// Detach what it collected: what comes meanwhile waits.
				x.claimed = q.coll[x.it.ID]
				delete(q.coll, x.it.ID)
				if x.claimed == nil {
					x.claimed = &collection{}
				}
			}
			it := x.it
			if x.claimed != nil {
				it.Collected = maps.Clone(x.claimed.fields)
				it.Overflow = len(x.claimed.overflow)
			}
			b.Items = append(b.Items, it)
		}
		res.Batches = append(res.Batches, b)
	}
	return res, nil
}

func groupOf(it store.Item) string {
	if it.Group != "" {
		return it.Group
	}
	return it.ID
}

// batchID names a batch by its group, its first item and the claim time:
// unique, and the same on every backend.
func batchID(group, first string, now time.Time) string {
	return group + "#" + first + "#" + strconv.FormatInt(now.UnixMilli(), 10)
}

// Settle finishes claimed items (see store.Settlement).
func (s *Store) Settle(_ context.Context, shard int, queue string, st store.Settlement) (store.Settled, error) {
	if err := checkShard(shard); err != nil {
		return store.Settled{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue(queue)
	var res store.Settled
	claimed := func(it store.Item) *litem {
		x := q.items[it.ID]
		if x == nil || it.Receipt == "" || x.it.Receipt != it.Receipt {
			return nil // settled already (a lapsed lease's second claimer)
		}
		return x
	}
	rearm := func(id string, x *litem) {
		// What was collected while the item was out goes at once.
		if col := q.coll[id]; col != nil && (len(col.fields) > 0 || len(col.overflow) > 0) {
			it := x.it
			it.Due, it.Since, it.Attempts, it.LastErr = st.Now, st.Now, 0, ""
			q.put(it, st.Now)
		}
	}
	now := s.o.Now().UnixNano() // values expire by the store's clock
	for _, n := range st.Notes {
		if n.Key == "" || n.Field == "" || n.TTL < time.Millisecond {
			return store.Settled{}, fmt.Errorf("settle: note %q needs a key, a field and a TTL of at least 1ms", n.Key)
		}
		// A field is a value of its own here, under the record's key and
		// the field's; it expires with the record (its first note's TTL).
		k := fieldKey(n.Key, n.Field)
		r, ok := s.values[recordKey(n.Key)]
		if !ok || r.exp <= now {
			s.setLocked(recordKey(n.Key), []byte{1}, n.TTL, false, now)
			r = s.values[recordKey(n.Key)]
		}
		if v, ok := s.values[k]; ok && v.exp > now && n.Append {
			v.v = append(slices.Clip(v.v), n.Line...)
			s.values[k] = v
			continue
		}
		s.setExpLocked(k, slices.Clone(n.Line), r.ttl, r.exp, false)
	}
	for _, it := range st.Done {
		if x := claimed(it); x != nil {
			q.remove(x)
			rearm(it.ID, x)
		}
	}
	for _, it := range st.Retry {
		x := claimed(it)
		if x == nil {
			continue
		}
		q.remove(x)
		if x.claimed != nil {
			// Back under what was collected since: the newer value wins.
			col := q.coll[it.ID]
			if col == nil {
				col = &collection{fields: map[string][]byte{}, overflow: map[string]bool{}, exp: x.claimed.exp}
				q.coll[it.ID] = col
			}
			for k, v := range x.claimed.fields {
				if _, ok := col.fields[k]; !ok {
					col.fields[k] = v
					q.collectedFields++
				}
			}
			for k := range x.claimed.overflow {
				if _, ok := col.fields[k]; !ok {
					col.overflow[k] = true
				}
			}
		}
		next := it
		next.Collects = x.it.Collects
		if next.Since.IsZero() {
			next.Since = x.it.Since
		}
		q.put(next, st.Now)
	}
	for _, it := range st.Dead {
		if it.Receipt != "" {
			x := claimed(it)
			if x == nil {
				continue
			}
			q.remove(x)
			rearm(it.ID, x)
		}
		d := it
		d.Batch, d.Receipt, d.Collected = "", "", nil
		// Kept in the order they died, as the Redis sorted set keeps them,
		// even when a settlement's clock is behind an earlier one's.
		i := len(q.dead)
		for i > 0 && q.dead[i-1].At.After(st.Now) {
			i--
		}
		q.dead = slices.Insert(q.dead, i, store.Dead{Item: d, At: st.Now})
		if over := len(q.dead) - s.o.MaxDeadLetters; over > 0 {
			clear(q.dead[:over])
			q.dead = append(q.dead[:0:0], q.dead[over:]...)
			res.Evicted += over
			s.evictions[queue+"_dead"] += int64(over)
		}
	}
	return res, nil
}

// DeadLetters lists a queue's dead letters, newest first, as page
// selects, and counts them. The memory store has one shard.
func (s *Store) DeadLetters(_ context.Context, queue string, page store.DeadPage) (store.DeadList, error) {
	if err := page.InShards(1); err != nil {
		return store.DeadList{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue(queue)
	var out []store.Dead
	skip := page.SkipIn(0)
	for i := len(q.dead) - 1; i >= 0 && len(out) <= page.Limit; i-- {
		d := q.dead[i]
		if !page.Before.IsZero() {
			at, before := d.At.UnixMilli(), page.Before.UnixMilli()
			if at > before {
				continue
			}
			if at == before && skip > 0 {
				skip--
				continue
			}
		}
		out = append(out, d)
	}
	out, next := store.MergeDead(page, [][]store.Dead{out})
	return store.DeadList{Dead: out, Next: next, Total: len(q.dead)}, nil
}

// QueueLen counts a leased queue's unfinished items.
func (s *Store) QueueLen(_ context.Context, shard int, queue string) (int, error) {
	if err := checkShard(shard); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue(queue).items), nil
}

// dueHeap orders items by score, then by insertion.
type dueHeap []*litem

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score < h[j].score
	}
	return h[i].seq < h[j].seq
}
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *dueHeap) Push(x any) {
	it := x.(*litem)
	it.idx = len(*h)
	*h = append(*h, it)
}
func (h *dueHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	x.idx = -1
	return x
}

// Revive takes the dead letter with the ID back into its queue, due at
// due, as a new delivery: no attempts, LastErr store.Revived, its Since
// at due.
// It reports false when there is no such dead letter, or an item of that
// ID waits already.
func (s *Store) Revive(_ context.Context, shard int, queue, id string, due time.Time) (bool, error) {
	if err := checkShard(shard); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[queue]
	if q == nil {
		return false, nil
	}
	for i, d := range q.dead {
		if d.Item.ID != id {
			continue
		}
		if q.items[id] != nil {
			return false, nil // the ID waits already (a newer item): leave both
		}
		it := d.Item
		it.Attempts, it.LastErr, it.Due, it.Since, it.Collects = 0, store.Revived, due, due, false
		q.dead = slices.Delete(q.dead, i, i+1)
		q.put(it, due)
		return true, nil
	}
	return false, nil
}
