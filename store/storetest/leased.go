package storetest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/store"
)

const q = store.QueueOutbox

func put(t *testing.T, s Store, items ...store.Item) {
	t.Helper()
	var ps []store.Put
	for _, it := range items {
		ps = append(ps, store.Put{Queue: q, Item: it})
	}
	commit(t, s, store.Txn{Put: ps})
}

func claim(t *testing.T, s Store, o store.ClaimOptions) store.Claimed {
	t.Helper()
	if o.Max == 0 {
		o.Max = 100
	}
	if o.Lease == 0 {
		o.Lease = time.Minute
	}
	c, err := s.Claim(context.Background(), 0, q, o)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return c
}

func settle(t *testing.T, s Store, st store.Settlement) store.Settled {
	t.Helper()
	r, err := s.Settle(context.Background(), 0, q, st)
	if err != nil {
		t.Fatalf("settle: %v", err)
	}
	return r
}

// shape is a claim as text: "group[id id] group[id]" in claim order.
func shape(c store.Claimed) string {
	var parts []string
	for _, b := range c.Batches {
		var ids []string
		for _, it := range b.Items {
			ids = append(ids, it.ID)
		}
		parts = append(parts, b.Group+"["+strings.Join(ids, " ")+"]")
	}
	return strings.Join(parts, " ")
}

func items(c store.Claimed) []store.Item {
	var out []store.Item
	for _, b := range c.Batches {
		out = append(out, b.Items...)
	}
	return out
}

func testLeasedPutClaimSettle(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	now := base()
	put(t, a,
		store.Item{ID: "i1", Group: "g1", Class: "c", Alerts: 1, Due: now, Payload: []byte("one\nwith a newline")},
		store.Item{ID: "i2", Group: "g1", Alerts: 1, Due: now.Add(time.Hour), Payload: []byte("two")},
		store.Item{ID: "i3\tx", Group: "g2/tab\there", Alerts: 3, Due: now.Add(-time.Second), Payload: []byte("three")},
	)
	c := claim(t, b, store.ClaimOptions{Now: now})
	if got := shape(c); got != "g2/tab\there[i3\tx] g1[i1]" {
		t.Fatalf("claimed %q, want the due groups in due order", got)
	}
	for _, it := range items(c) {
		want := map[string]string{"i1": "one\nwith a newline", "i3\tx": "three"}[it.ID]
		if string(it.Payload) != want || it.Batch == "" || it.Receipt == "" {
			t.Errorf("item %q: payload %q, batch %q", it.ID, it.Payload, it.Batch)
		}
	}
	if c.Batches[1].Items[0].Class != "c" || c.Batches[0].Items[0].Alerts != 3 {
		t.Errorf("class or alerts lost: %+v", c.Batches)
	}
	// The next due time is the earlier lease's end.
	if want := now.Add(time.Minute); !c.Next.Equal(want) {
		t.Errorf("next %v, want %v", c.Next, want)
	}
	if c2 := claim(t, a, store.ClaimOptions{Now: now}); len(c2.Batches) != 0 {
		t.Errorf("claimed items are handed out again: %s", shape(c2))
	}
	settle(t, a, store.Settlement{Done: c.Batches[1].Items, Now: now})
	settle(t, b, store.Settlement{Done: c.Batches[1].Items, Now: now}) // twice: nothing more
	if n := queueLen(t, a, q); n != 2 {
		t.Errorf("after settling i1: %d items, want 2", n)
	}
	settle(t, b, store.Settlement{Done: c.Batches[0].Items, Now: now})
	c = claim(t, a, store.ClaimOptions{Now: now.Add(time.Hour)})
	if got := shape(c); got != "g1[i2]" {
		t.Errorf("an hour later: %q", got)
	}
}

func testLeasedGroupsAndBounds(t *testing.T, open func(t *testing.T, o Options) Opener) {
	s := handle(t, open(t, suiteOptions()))
	now := base()
	var its []store.Item
	for i := 0; i < 5; i++ {
		its = append(its, store.Item{ID: fmt.Sprintf("a%d", i), Group: "g", Class: "pd", Alerts: 10, Due: now.Add(time.Duration(i) * time.Millisecond)})
	}
	its = append(its, store.Item{ID: "big", Group: "h", Class: "pd", Alerts: 99, Due: now.Add(10 * time.Millisecond)})
	put(t, s, its...)
	classes := map[string]store.ClassLimit{"pd": {MaxAlerts: 25}}
	var got []string
	for i := 0; i < 5; i++ {
		c := claim(t, s, store.ClaimOptions{Now: now.Add(time.Second), Classes: classes})
		if len(c.Batches) == 0 {
			break
		}
		got = append(got, shape(c))
	}
	want := []string{"g[a0 a1] h[big]", "g[a2 a3]", "g[a4]"}
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Errorf("batches %q, want %q (at most 25 alerts each, an item larger than that alone)", got, want)
	}
	// Max bounds the items of one claim.
	var more []store.Item
	for i := 0; i < 5; i++ {
		more = append(more, store.Item{ID: fmt.Sprintf("m%d", i), Group: fmt.Sprintf("m%d", i), Due: now})
	}
	put(t, s, more...)
	if c := claim(t, s, store.ClaimOptions{Now: now.Add(time.Second), Max: 3}); len(items(c)) != 3 {
		t.Errorf("Max 3 claimed %d", len(items(c)))
	}
	if c := claim(t, s, store.ClaimOptions{Now: now.Add(time.Second), Max: 3}); len(items(c)) != 2 {
		t.Errorf("the rest: %d", len(items(c)))
	}
}

// A claimer that dies lets its lease lapse: the next claim takes the same
// batch, the same items with the same receipts, and either settle counts.
func testLeasedLeaseLapses(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	now := base()
	put(t, a, store.Item{ID: "x1", Group: "g", Due: now, Payload: []byte("p1")}, store.Item{ID: "x2", Group: "g", Due: now, Payload: []byte("p2")})
	c1 := claim(t, a, store.ClaimOptions{Now: now, Lease: time.Second})
	// New work for the group meanwhile goes in a batch of its own.
	put(t, a, store.Item{ID: "x3", Group: "g", Due: now.Add(1500 * time.Millisecond)})
	c2 := claim(t, b, store.ClaimOptions{Now: now.Add(2 * time.Second), Lease: time.Second})
	if len(c1.Batches) != 1 || len(c2.Batches) != 2 {
		t.Fatalf("claims %q then %q", shape(c1), shape(c2))
	}
	var again store.Batch
	for _, bt := range c2.Batches {
		if bt.ID == c1.Batches[0].ID {
			again = bt
		}
	}
	if !again.Reclaimed || len(again.Items) != 2 {
		t.Fatalf("the lapsed batch was not claimed whole as itself: %q vs %q", shape(c1), shape(c2))
	}
	for i, it := range again.Items {
		if it.Receipt != c1.Batches[0].Items[i].Receipt || string(it.Payload) != string(c1.Batches[0].Items[i].Payload) {
			t.Errorf("item %s changed between claims", it.ID)
		}
	}
	settle(t, a, store.Settlement{Done: c1.Batches[0].Items, Now: now.Add(2 * time.Second)})
	settle(t, b, store.Settlement{Done: again.Items, Now: now.Add(2 * time.Second)})
	if n := queueLen(t, a, q); n != 1 {
		t.Errorf("left %d items, want x3", n)
	}
}

func testLeasedRetryAndDead(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	ctx := context.Background()
	now := base()
	put(t, a, store.Item{ID: "r1", Group: "g", Alerts: 4, Due: now, Payload: []byte("four")})
	c := claim(t, a, store.ClaimOptions{Now: now})
	it := items(c)[0]
	it.Due, it.Attempts, it.LastErr, it.Payload, it.Alerts = now.Add(5*time.Second), 1, "boom:\tunexpected status 500\nbody", []byte("two"), 2
	settle(t, a, store.Settlement{Retry: []store.Item{it}, Now: now})
	if c := claim(t, b, store.ClaimOptions{Now: now.Add(4 * time.Second)}); len(c.Batches) != 0 {
		t.Fatalf("retried before its due time: %s", shape(c))
	}
	c = claim(t, b, store.ClaimOptions{Now: now.Add(5 * time.Second)})
	got := items(c)
	if len(got) != 1 || got[0].Attempts != 1 || got[0].LastErr != it.LastErr || string(got[0].Payload) != "two" || got[0].Alerts != 2 || !got[0].Since.Equal(now) {
		t.Fatalf("retried item %+v", got)
	}
	// Dead letters: kept newest first, at most MaxDeadLetters (5).
	var evicted int
	for i := 0; i < 7; i++ {
		if i > 0 {
			put(t, a, store.Item{ID: fmt.Sprintf("d%d", i), Due: now})
			got = items(claim(t, a, store.ClaimOptions{Now: now.Add(10 * time.Second)}))
		}
		d := got[0]
		d.LastErr = fmt.Sprintf("failed %d", i)
		r := settle(t, b, store.Settlement{Dead: []store.Item{d}, Now: now.Add(time.Duration(10+i) * time.Second)})
		evicted += r.Evicted
	}
	if n := queueLen(t, a, q); n != 0 {
		t.Errorf("dead letters are still queued: %d", n)
	}
	list, err := a.DeadLetters(ctx, q, store.DeadPage{Limit: 3})
	dl := list.Dead
	if err != nil || list.Total != 5 || evicted != 2 || len(dl) != 3 || list.Next == nil {
		t.Fatalf("dead letters: %d listed of %d, %d evicted, next %v, %v", len(dl), list.Total, evicted, list.Next, err)
	}
	if dl[0].Item.ID != "d6" || dl[0].Item.LastErr != "failed 6" || !dl[0].At.Equal(now.Add(16*time.Second)) || dl[2].Item.ID != "d4" {
		t.Errorf("newest first: %+v", dl)
	}
	list, _ = a.DeadLetters(ctx, q, *list.Next)
	if dl = list.Dead; len(dl) != 2 || dl[1].Item.ID != "d2" || list.Next != nil {
		t.Errorf("second page: %+v, next %v", dl, list.Next)
	}
}

// testLeasedDeadLetterPages pages through dead letters of which many died
// in the same millisecond (one settlement dead-letters a whole batch), while
// new ones arrive between the pages: every one is listed once.
func testLeasedDeadLetterPages(t *testing.T, open func(t *testing.T, o Options) Opener) {
	o := suiteOptions()
	o.MaxDeadLetters = 100
	s := handle(t, open(t, o))
	ctx := context.Background()
	now := base()
	q := store.QueueOutbox
	kill := func(at time.Time, ids ...string) {
		for _, id := range ids {
			put(t, s, store.Item{ID: id, Group: "g" + id, Due: at})
		}
		got := items(claim(t, s, store.ClaimOptions{Now: at, Max: len(ids)}))
		if len(got) != len(ids) {
			t.Fatalf("claimed %d of %d", len(got), len(ids))
		}
		settle(t, s, store.Settlement{Dead: got, Now: at})
	}
	kill(now, "a1", "a2", "a3", "a4", "a5")
	kill(now.Add(time.Second), "b1", "b2")
	seen := map[string]int{}
	page := store.DeadPage{Limit: 2}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pages do not end")
		}
		list, err := s.DeadLetters(ctx, q, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list.Dead {
			seen[d.Item.ID]++
		}
		if pages == 1 {
			kill(now.Add(2*time.Second), "c1", "c2", "c3")
		}
		if list.Next == nil {
			break
		}
		page = *list.Next
	}
	want := []string{"a1", "a2", "a3", "a4", "a5", "b1", "b2"}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("%s listed %d times: %v", id, seen[id], seen)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("listed %v, want only %v (c* are newer than the first page)", seen, want)
	}
}

// testLeasedDeadLettersAcrossShards pages through the dead letters of
// every shard as one list: newest first across the shards, the dead
// letters of one millisecond in several shards shard by shard and split
// between pages, each listed once, the total counting every shard, new
// ones (newer) left out of the pages already begun; the cursor goes as its
// token, and a token the store did not make is store.ErrBadCursor.
func testLeasedDeadLettersAcrossShards(t *testing.T, open func(t *testing.T, o Options) Opener) {
	o := suiteOptions()
	o.MaxDeadLetters, o.Shards = 100, 3
	s := handle(t, open(t, o))
	ctx := context.Background()
	n := s.Shards()
	now := base()
	shardOf := map[string]int{}
	kill := func(shard int, at time.Time, ids ...string) {
		t.Helper()
		var ps []store.Put
		for _, id := range ids {
			ps = append(ps, store.Put{Queue: q, Item: store.Item{ID: id, Group: "g" + id, Due: at}})
			shardOf[id] = shard
		}
		if err := s.Commit(ctx, shard, store.Txn{Put: ps}); err != nil {
			t.Fatalf("put in shard %d: %v", shard, err)
		}
		c, err := s.Claim(ctx, shard, q, store.ClaimOptions{Now: at, Lease: time.Minute, Max: len(ids)})
		if err != nil || len(items(c)) != len(ids) {
			t.Fatalf("claimed %d of %d in shard %d: %v", len(items(c)), len(ids), shard, err)
		}
		if _, err := s.Settle(ctx, shard, q, store.Settlement{Dead: items(c), Now: at}); err != nil {
			t.Fatalf("settle in shard %d: %v", shard, err)
		}
	}
	// In every shard: three dead at the same instant (ties within and
	// across the shards), one older, and one newer, the newer the higher
	// the shard.
	var want []string
	for i := 0; i < n; i++ {
		id := func(x string) string { return fmt.Sprintf("%s%d", x, i) }
		kill(i, now, id("t")+"a", id("t")+"b", id("t")+"c")
		kill(i, now.Add(-time.Second), id("o"))
		kill(i, now.Add(time.Duration(i+1)*time.Second), id("n"))
		want = append(want, id("t")+"a", id("t")+"b", id("t")+"c", id("o"), id("n"))
	}
	total := len(want)
	if list, err := s.DeadLetters(ctx, q, store.DeadPage{}); err != nil || len(list.Dead) != 0 || list.Next != nil || list.Total != total {
		t.Errorf("a page of none: %d listed of %d, next %v, %v", len(list.Dead), list.Total, list.Next, err)
	}
	seen := map[string]int{}
	var order []store.Dead
	page, err := store.ParseDeadCursor("", 2)
	if err != nil {
		t.Fatalf("the first page: %v", err)
	}
	for pages := 0; ; pages++ {
		if pages > 3*total {
			t.Fatal("pages do not end")
		}
		list, err := s.DeadLetters(ctx, q, page)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if len(list.Dead) > 2 || (list.Next != nil && len(list.Dead) != 2) {
			t.Fatalf("page %d: %d dead letters, next %v", pages, len(list.Dead), list.Next)
		}
		if list.Total != total {
			t.Errorf("page %d: total %d, want %d", pages, list.Total, total)
		}
		for _, d := range list.Dead {
			seen[d.Item.ID]++
			order = append(order, d)
		}
		if pages == 1 {
			// Newer than every page begun: in no page, in the total.
			kill(n-1, now.Add(time.Minute), "late")
			total++
		}
		if list.Next == nil {
			break
		}
		if page, err = store.ParseDeadCursor(list.Next.Cursor(), 2); err != nil {
			t.Fatalf("page %d: its own cursor: %v", pages, err)
		}
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("%s listed %d times: %v", id, seen[id], seen)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("listed %v, want only %v", seen, want)
	}
	for i := 1; i < len(order); i++ {
		a, b := order[i-1], order[i]
		am, bm := a.At.UnixMilli(), b.At.UnixMilli()
		if am < bm || (am == bm && shardOf[a.Item.ID] > shardOf[b.Item.ID]) {
			t.Errorf("%s (shard %d, %v) listed before %s (shard %d, %v): not newest first, shard by shard", a.Item.ID, shardOf[a.Item.ID], a.At, b.Item.ID, shardOf[b.Item.ID], b.At)
		}
	}

	// Tokens the store did not make, and a page in a shard it does not
	// have (a cursor from when there were more), are the caller's error.
	for _, c := range []string{"bm90IGEgY3Vyc29y", "!", base64.RawURLEncoding.EncodeToString([]byte("123")), base64.RawURLEncoding.EncodeToString([]byte("-5.1")), base64.RawURLEncoding.EncodeToString([]byte("123.1,x"))} {
		if _, err := store.ParseDeadCursor(c, 2); !errors.Is(err, store.ErrBadCursor) || !errors.Is(err, alert.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want store.ErrBadCursor", c, err)
		}
	}
	far := store.DeadPage{Before: now, Skip: make([]int, n+1), Limit: 2}
	far.Skip[n] = 1
	if page, err = store.ParseDeadCursor(far.Cursor(), 2); err != nil {
		t.Fatalf("a well-formed cursor: %v", err)
	}
	if _, err := s.DeadLetters(ctx, q, page); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("a page in shard %d of %d: %v, want store.ErrBadCursor", n, n, err)
	}
}

func testLeasedRateLimit(t *testing.T, open func(t *testing.T, o Options) Opener) {
	s := handle(t, open(t, suiteOptions()))
	now := base()
	classes := map[string]store.ClassLimit{"slack": {RateLimit: store.RateLimit{PerSecond: 1, Burst: 2}}}
	n := 0
	next := func(at time.Time) store.Claimed {
		n++
		put(t, s, store.Item{ID: fmt.Sprintf("s%d", n), Group: "chan", Class: "slack", Alerts: 1, Due: at})
		c := claim(t, s, store.ClaimOptions{Now: at, Classes: classes})
		settle(t, s, store.Settlement{Done: items(c), Now: at})
		return c
	}
	// A burst of 2, then one a second.
	var c store.Claimed
	for i, want := range []int{1, 1, 0} {
		if c = next(now); len(c.Batches) != want {
			t.Fatalf("claim %d: %d batches, want %d", i, len(c.Batches), want)
		}
	}
	// Held back, and not looked at again before it may go.
	if c.Limited != 1 || !c.Next.Equal(now.Add(time.Second)) || !c.Held["chan"].Equal(now.Add(time.Second)) {
		t.Errorf("limited %d, next %v, held %v: want 1 and %v", c.Limited, c.Next, c.Held, now.Add(time.Second))
	}
	if c := claim(t, s, store.ClaimOptions{Now: now.Add(999 * time.Millisecond), Classes: classes}); len(c.Batches) != 0 || c.Limited != 0 {
		t.Errorf("before its retry time: %q, %d limited", shape(c), c.Limited)
	}
	c = claim(t, s, store.ClaimOptions{Now: now.Add(time.Second), Classes: classes})
	if got := shape(c); got != "chan[s3]" {
		t.Errorf("a second later: %q", got)
	}
	// Other groups and classes are not held back.
	put(t, s, store.Item{ID: "o1", Group: "other", Class: "slack", Due: now}, store.Item{ID: "p1", Group: "chan", Class: "pd", Due: now})
	c = claim(t, s, store.ClaimOptions{Now: now.Add(time.Second), Classes: classes})
	got := []string{}
	for _, b := range c.Batches {
		got = append(got, b.Group)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != "chan,other" {
		t.Errorf("claimed %q: another group, and the same group's items of another class, are not limited", shape(c))
	}
	// A group the caller holds (it is busy with it) waits, limit or none.
	at := now.Add(2 * time.Second)
	put(t, s, store.Item{ID: "b1", Group: "busy", Due: at})
	c = claim(t, s, store.ClaimOptions{Now: at, Held: map[string]time.Time{"busy": at.Add(200 * time.Millisecond)}})
	if len(c.Batches) != 0 || !c.Held["busy"].Equal(at.Add(200*time.Millisecond)) {
		t.Errorf("a held group was claimed: %q, held %v", shape(c), c.Held)
	}
	if c = claim(t, s, store.ClaimOptions{Now: at.Add(200 * time.Millisecond)}); shape(c) != "busy[b1]" {
		t.Errorf("after its hold: %q", shape(c))
	}
}

// Two replicas share one limit.
func testLeasedRateLimitShared(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	now := base()
	classes := map[string]store.ClassLimit{"slack": {RateLimit: store.RateLimit{PerSecond: 1, Burst: 3}}}
	batches := 0
	for i := 0; i < 10; i++ {
		s := []Store{a, b}[i%2]
		put(t, s, store.Item{ID: fmt.Sprintf("h%d", i), Group: "chan", Class: "slack", Due: now})
		c := claim(t, s, store.ClaimOptions{Now: now.Add(time.Duration(i) * 100 * time.Millisecond), Classes: classes})
		batches += len(c.Batches)
		settle(t, s, store.Settlement{Done: items(c), Now: now})
	}
	// 0.9 s: the burst of 3 and no more.
	if batches != 3 {
		t.Errorf("two replicas took %d batches in 0.9 s under a limit of 1/s with a burst of 3", batches)
	}
}

func testLeasedCollect(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	now := base()
	due := now.Add(time.Minute)
	digest := store.Item{ID: "digest:team/slack[0]", Group: "team/slack[0]", Class: "slack", Due: due, Payload: []byte(`{"kind":"digest"}`)}
	add := func(s Store, fs ...store.Field) {
		t.Helper()
		commit(t, s, store.Txn{Collect: []store.Collect{{Queue: q, Item: digest, Fields: fs, Cap: 3, TTL: time.Hour}}})
	}
	f := func(name, v string, keep bool) store.Field {
		return store.Field{Name: name, Value: []byte(v), Keep: keep}
	}
	add(a, f("f1", "firing", false), f("f2", "firing", false))
	add(b, f("f3", "firing", false), f("f4", "firing", false), f("f5", "firing", false))
	add(a, f("f1", "resolved", true), f("r1", "resolved", true), f("f4", "resolved", true))
	add(b, f("f5", "firing again", false))
	if n := queueLen(t, a, q); n != 1 {
		t.Fatalf("one digest item, got %d", n)
	}
	if c := claim(t, a, store.ClaimOptions{Now: now}); len(c.Batches) != 0 {
		t.Fatalf("claimed before its due time: %s", shape(c))
	}
	c := claim(t, a, store.ClaimOptions{Now: due})
	its := items(c)
	if len(its) != 1 {
		t.Fatalf("claimed %s", shape(c))
	}
	got := its[0]
	want := map[string]string{"f1": "resolved", "f2": "firing", "f3": "firing", "r1": "resolved", "f4": "resolved"}
	if len(got.Collected) != len(want) || got.Overflow != 1 {
		t.Errorf("collected %d fields with %d over the cap; want %v and f5 over", len(got.Collected), got.Overflow, want)
	}
	for k, v := range want {
		if string(got.Collected[k]) != v {
			t.Errorf("field %s = %q, want %q", k, got.Collected[k], v)
		}
	}
	if string(got.Payload) != `{"kind":"digest"}` || !got.Collects {
		t.Errorf("digest item %+v", got)
	}
	// Collected while it is out: waits, and comes right after the settle.
	add(b, f("late", "firing", false))
	settle(t, b, store.Settlement{Done: its, Now: due})
	c = claim(t, a, store.ClaimOptions{Now: due})
	its = items(c)
	if len(its) != 1 || len(its[0].Collected) != 1 || string(its[0].Collected["late"]) != "firing" || its[0].Overflow != 0 {
		t.Fatalf("after the settle: %+v", its)
	}
	// A retry puts back what it was claimed with, under what came since.
	add(a, f("late", "resolved", true), f("new", "firing", false))
	r := its[0]
	r.Due, r.Attempts = due.Add(time.Second), 1
	settle(t, a, store.Settlement{Retry: []store.Item{r}, Now: due})
	c = claim(t, b, store.ClaimOptions{Now: due.Add(time.Second)})
	its = items(c)
	if len(its) != 1 || string(its[0].Collected["late"]) != "resolved" || string(its[0].Collected["new"]) != "firing" || its[0].Attempts != 1 {
		t.Fatalf("after the retry: %+v", its)
	}
	settle(t, b, store.Settlement{Done: its, Now: due})
	if n := queueLen(t, a, q); n != 0 {
		t.Errorf("%d items left", n)
	}
}

// An item that waits (its group held) comes back with its payload whole,
// through a retry and into the dead letters.
func testLeasedWaitingKeepsPayload(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	ctx := context.Background()
	now := base()
	big := []byte(strings.Repeat(`{"alert":"x\ty"}`, 400))
	put(t, a, store.Item{ID: "w1", Group: "busy", Alerts: 50, Due: now, Payload: big}, store.Item{ID: "w2", Group: "free", Due: now, Payload: []byte("small")})
	for i := 0; i < 3; i++ {
		at := now.Add(time.Duration(i) * 100 * time.Millisecond)
		c := claim(t, []Store{a, b}[i%2], store.ClaimOptions{Now: at, Held: map[string]time.Time{"busy": at.Add(100 * time.Millisecond)}})
		for _, bt := range c.Batches {
			if bt.Group == "busy" {
				t.Fatalf("claim %d took the held group", i)
			}
		}
	}
	c := claim(t, b, store.ClaimOptions{Now: now.Add(300 * time.Millisecond)})
	got := items(c)
	if len(got) != 1 || got[0].ID != "w1" || string(got[0].Payload) != string(big) || got[0].Alerts != 50 {
		t.Fatalf("after waiting: %+v", got)
	}
	r := got[0]
	r.Due, r.Attempts, r.LastErr = now.Add(time.Second), 1, "503"
	settle(t, b, store.Settlement{Retry: []store.Item{r}, Now: now})
	got = items(claim(t, a, store.ClaimOptions{Now: now.Add(time.Second)}))
	if len(got) != 1 || string(got[0].Payload) != string(big) {
		t.Fatalf("after the retry: %+v", got)
	}
	d := got[0]
	d.LastErr = "400"
	settle(t, a, store.Settlement{Dead: []store.Item{d}, Now: now.Add(time.Second)})
	list, err := b.DeadLetters(ctx, q, store.DeadPage{Limit: 10})
	dl := list.Dead
	if err != nil || len(dl) != 1 || string(dl[0].Item.Payload) != string(big) {
		t.Fatalf("dead letter: %v %v", dl, err)
	}
}
