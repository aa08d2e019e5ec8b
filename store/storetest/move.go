package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/store"
)

// moves commits txn and returns which of its moves applied.
func moves(t *testing.T, s Store, txn store.Txn) []bool {
	t.Helper()
	applied, err := s.CommitMoves(context.Background(), 0, txn)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if len(applied) != len(txn.Move) {
		t.Fatalf("%d moves, %d reported: %v", len(txn.Move), len(applied), applied)
	}
	return applied
}

func move(ms ...store.Move) store.Txn { return store.Txn{Move: ms} }

// An item that waits goes earlier or later; Claim sees it at its new due
// time and not before, and its Since follows while it was not yet due. A
// move sees what the Txn's puts left; an ID is only itself.
func testLeasedMoveDue(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	now := base()

	// Later: not at its old due time, at its new one.
	put(t, a, store.Item{ID: "later", Due: now.Add(time.Minute), Payload: []byte("l")})
	if got := moves(t, b, move(store.Move{Queue: q, ID: "later", Due: now.Add(2 * time.Hour)})); !got[0] {
		t.Fatalf("move later: %v", got)
	}
	c := claim(t, a, store.ClaimOptions{Now: now.Add(time.Minute)})
	if len(c.Batches) != 0 {
		t.Fatalf("claimed at its old due time: %s", shape(c))
	}
	if want := now.Add(2 * time.Hour); !c.Next.Equal(want) {
		t.Errorf("next %v, want the new due time %v", c.Next, want)
	}
	got := items(claim(t, a, store.ClaimOptions{Now: now.Add(2 * time.Hour)}))
	if len(got) != 1 || got[0].ID != "later" || string(got[0].Payload) != "l" || !got[0].Since.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("at the new due time: %+v", got)
	}
	settle(t, a, store.Settlement{Done: got, Now: now})

	// Earlier: a claim at now takes it; several moves report in order.
	put(t, a, store.Item{ID: "earlier", Group: "g", Class: "c", Alerts: 2, Due: now.Add(time.Hour), Payload: []byte("e")})
	got1 := moves(t, b, move(store.Move{Queue: q, ID: "absent", Due: now}, store.Move{Queue: q, ID: "earlier", Due: now},
		store.Move{Queue: "no-such-queue", ID: "earlier", Due: now}))
	if fmt.Sprint(got1) != "[false true false]" {
		t.Errorf("applied %v, want [false true false]", got1)
	}
	got = items(claim(t, a, store.ClaimOptions{Now: now}))
	if len(got) != 1 || got[0].ID != "earlier" || got[0].Group != "g" || got[0].Class != "c" || got[0].Alerts != 2 ||
		string(got[0].Payload) != "e" || !got[0].Since.Equal(now) {
		t.Fatalf("moved earlier, a claim at now: %+v", got)
	}

	// A retried item keeps its Since and its attempts; so does one moved
	// with a zero Due, which is due at once.
	r := got[0]
	r.Due, r.Attempts, r.LastErr = now.Add(time.Hour), 1, "503"
	settle(t, a, store.Settlement{Retry: []store.Item{r}, Now: now})
	if got := moves(t, b, move(store.Move{Queue: q, ID: "earlier", Due: now.Add(3 * time.Hour)})); !got[0] {
		t.Fatalf("move a retried item: %v", got)
	}
	if c := claim(t, a, store.ClaimOptions{Now: now.Add(time.Hour)}); len(c.Batches) != 0 {
		t.Fatalf("claimed at its retry time: %s", shape(c))
	}
	got = items(claim(t, a, store.ClaimOptions{Now: now.Add(3 * time.Hour)}))
	if len(got) != 1 || got[0].Attempts != 1 || got[0].LastErr != "503" || !got[0].Since.Equal(now) || string(got[0].Payload) != "e" {
		t.Fatalf("a retried item moved: %+v", got)
	}
	settle(t, a, store.Settlement{Done: got, Now: now})
	put(t, a, store.Item{ID: "zero", Due: now.Add(time.Hour)})
	moves(t, b, move(store.Move{Queue: q, ID: "zero"}))
	if got := items(claim(t, a, store.ClaimOptions{Now: time.Now().Add(time.Second)})); len(got) != 1 || got[0].ID != "zero" {
		t.Fatalf("moved with a zero due time: %+v", got)
	}

	// Put and moved in one Txn; IDs with a glob's and the header's
	// characters move themselves alone.
	odd := "m*[1]\t?\\"
	applied := moves(t, a, store.Txn{
		Put: []store.Put{{Queue: q, Item: store.Item{ID: odd, Due: now.Add(time.Hour)}}, {Queue: q, Item: store.Item{ID: "m1", Due: now.Add(time.Hour)}},
			{Queue: q, Item: store.Item{ID: "m*", Due: now.Add(time.Hour)}}},
		Move: []store.Move{{Queue: q, ID: odd, Due: now}, {Queue: q, ID: "m", Due: now}},
	})
	if fmt.Sprint(applied) != "[true false]" {
		t.Errorf("applied %v", applied)
	}
	if got := shape(claim(t, b, store.ClaimOptions{Now: now})); got != odd+"["+odd+"]" {
		t.Errorf("claimed %q, want %q alone", got, odd)
	}
	if n := queueLen(t, a, q); n != 4 {
		t.Errorf("%d items, want 4 (zero and the three just put)", n)
	}
}

// A dropped item is gone: never claimed, not counted, its payload with
// it, and its ID free for a new item.
func testLeasedMoveDrop(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	now := base()
	big := []byte(fmt.Sprintf("%0600d", 7))
	put(t, a, store.Item{ID: "d1", Group: "g1", Due: now, Payload: []byte("one")}, store.Item{ID: "d2", Group: "g2", Due: now, Payload: []byte("two")},
		store.Item{ID: "d3", Group: "busy", Due: now, Payload: big})
	// d3 waits for its group: its payload moves out of the way (Redis).
	c := claim(t, a, store.ClaimOptions{Now: now, Max: 1, Held: map[string]time.Time{"busy": now.Add(time.Hour)}})
	if got := shape(c); got != "g1[d1]" {
		t.Fatalf("claimed %q", got)
	}
	settle(t, a, store.Settlement{Done: items(c), Now: now})
	if got := moves(t, b, move(store.Move{Queue: q, ID: "d2", Drop: true}, store.Move{Queue: q, ID: "d3", Drop: true},
		store.Move{Queue: q, ID: "d1", Drop: true})); fmt.Sprint(got) != "[true true false]" {
		t.Fatalf("drop: %v, want the settled d1 reported gone already", got)
	}
	if n := queueLen(t, a, q); n != 0 {
		t.Errorf("%d items left after the drops", n)
	}
	if c := claim(t, a, store.ClaimOptions{Now: now.Add(2 * time.Hour)}); len(c.Batches) != 0 {
		t.Fatalf("a dropped item was claimed: %s", shape(c))
	}
	if got := moves(t, a, move(store.Move{Queue: q, ID: "d2", Drop: true})); got[0] {
		t.Errorf("dropped twice")
	}
	// The ID again is a new item: nothing of the old one is left over.
	put(t, b, store.Item{ID: "d3", Group: "busy", Due: now, Payload: []byte("new")})
	got := items(claim(t, a, store.ClaimOptions{Now: now}))
	if len(got) != 1 || got[0].ID != "d3" || string(got[0].Payload) != "new" {
		t.Fatalf("put again after the drop: %+v", got)
	}
}

// A claimed item is out: a move neither takes it back nor changes it,
// under its lease or past it, and says so.
func testLeasedMoveLeavesClaimed(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	now := base()
	put(t, a, store.Item{ID: "c1", Group: "g", Due: now, Payload: []byte("p")})
	c := claim(t, a, store.ClaimOptions{Now: now, Lease: time.Minute})
	if len(items(c)) != 1 {
		t.Fatalf("claimed %s", shape(c))
	}
	got := moves(t, b, move(store.Move{Queue: q, ID: "c1", Due: now.Add(time.Hour)}, store.Move{Queue: q, ID: "c1", Drop: true}))
	if fmt.Sprint(got) != "[false false]" {
		t.Errorf("moves of a claimed item: %v, want none applied", got)
	}
	if n := queueLen(t, a, q); n != 1 {
		t.Errorf("%d items, want the claimed one", n)
	}
	if c := claim(t, b, store.ClaimOptions{Now: now.Add(30 * time.Second)}); len(c.Batches) != 0 {
		t.Fatalf("claimed under a lease: %s", shape(c))
	}
	// Past the lease it is claimed again, as the same batch: the move
	// later did not move it, the drop did not drop it.
	again := claim(t, b, store.ClaimOptions{Now: now.Add(time.Minute)})
	if len(again.Batches) != 1 || !again.Batches[0].Reclaimed || again.Batches[0].ID != c.Batches[0].ID {
		t.Fatalf("past the lease: %+v", again)
	}
	// A lapsed lease's item is out still.
	if got := moves(t, a, move(store.Move{Queue: q, ID: "c1", Drop: true})); got[0] {
		t.Errorf("dropped a reclaimed item")
	}
	settle(t, b, store.Settlement{Done: items(again), Now: now})
	if n := queueLen(t, a, q); n != 0 {
		t.Errorf("%d items after the settle", n)
	}
}

// A Txn refused (its expectation failed, or its entry was acknowledged)
// moves nothing, and CommitMoves reports no moves.
func testLeasedMoveRefusedTxn(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	ctx := context.Background()
	now := base()
	commit(t, a, store.Txn{Set: []store.Value{{Key: "k", Value: []byte("v1"), TTL: time.Minute}}})
	put(t, a, store.Item{ID: "x1", Due: now, Payload: []byte("x")}, store.Item{ID: "x2", Due: now.Add(time.Hour)})
	applied, err := b.CommitMoves(ctx, 0, store.Txn{
		Expect: []store.Value{{Key: "k", Value: []byte("v0")}},
		Set:    []store.Value{{Key: "k", Value: []byte("v2"), TTL: time.Minute}},
		Move:   []store.Move{{Queue: q, ID: "x1", Drop: true}, {Queue: q, ID: "x2", Due: now}},
	})
	var c *store.Conflict
	if !errors.As(err, &c) || applied != nil {
		t.Fatalf("a stale expectation: %v %v, want a conflict and no moves", applied, err)
	}
	if err := b.Commit(ctx, 0, store.Txn{Expect: []store.Value{{Key: "k"}}, Move: []store.Move{{Queue: q, ID: "x1", Drop: true}}}); !errors.As(err, &c) {
		t.Fatalf("Commit with a move and a stale expectation: %v", err)
	}
	if got := get(t, a, "k"); got[0] != "v1" {
		t.Errorf("a refused commit wrote: %v", got)
	}
	if n := queueLen(t, a, q); n != 2 {
		t.Errorf("%d items, want both", n)
	}
	if got := shape(claim(t, a, store.ClaimOptions{Now: now})); got != "x1[x1]" {
		t.Errorf("claimed %q: the refused moves applied", got)
	}
	// The expectation holds: the move applies with the write.
	applied, err = b.CommitMoves(ctx, 0, store.Txn{
		Expect: []store.Value{{Key: "k", Value: []byte("v1")}},
		Set:    []store.Value{{Key: "k", Value: []byte("v2"), TTL: time.Minute}},
		Move:   []store.Move{{Queue: q, ID: "x2", Due: now}},
	})
	if err != nil || fmt.Sprint(applied) != "[true]" {
		t.Fatalf("commit that holds: %v %v", applied, err)
	}
	if got := shape(claim(t, a, store.ClaimOptions{Now: now})); got != "x2[x2]" {
		t.Errorf("claimed %q after the move", got)
	}
	// CommitAll applies moves as Commit does.
	put(t, a, store.Item{ID: "x3", Due: now.Add(time.Hour)})
	if errs := a.CommitAll(ctx, 0, []store.Txn{move(store.Move{Queue: q, ID: "x3", Due: now})}); errs[0] != nil {
		t.Fatalf("commit all: %v", errs)
	}
	if got := shape(claim(t, b, store.ClaimOptions{Now: now})); got != "x3[x3]" {
		t.Errorf("claimed %q after a CommitAll move", got)
	}
}

// A collecting item moves with what it collected; dropped, its collection
// goes with it; out, it is left alone with what it collects meanwhile.
func testLeasedMoveCollecting(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	now := base()
	digest := store.Item{ID: "digest:t", Group: "t", Due: now.Add(time.Hour), Payload: []byte("d")}
	add := func(s Store, names ...string) {
		t.Helper()
		var fs []store.Field
		for _, n := range names {
			fs = append(fs, store.Field{Name: n, Value: []byte("firing")})
		}
		commit(t, s, store.Txn{Collect: []store.Collect{{Queue: q, Item: digest, Fields: fs, Cap: 2, TTL: time.Minute}}})
	}
	collected := func(it store.Item) string {
		return fmt.Sprintf("%d+%d", len(it.Collected), it.Overflow)
	}

	// Dropped: the next collect starts afresh.
	add(a, "f1", "f2", "f3")
	if got := moves(t, b, move(store.Move{Queue: q, ID: digest.ID, Drop: true})); !got[0] {
		t.Fatalf("drop a collecting item: %v", got)
	}
	if n := queueLen(t, a, q); n != 0 {
		t.Fatalf("%d items after the drop", n)
	}
	add(b, "f4")
	got := items(claim(t, a, store.ClaimOptions{Now: now.Add(time.Hour)}))
	if len(got) != 1 || collected(got[0]) != "1+0" || got[0].Collected["f4"] == nil {
		t.Fatalf("collected after the drop: %+v", got)
	}
	settle(t, a, store.Settlement{Done: got, Now: now})

	// Moved later, past its collection's TTL after its old due time: it
	// keeps what it collected. Then earlier again.
	add(a, "f1", "f2", "f3")
	moves(t, b, move(store.Move{Queue: q, ID: digest.ID, Due: now.Add(5 * time.Hour)}))
	moves(t, b, move(store.Move{Queue: q, ID: digest.ID, Due: now}))
	got = items(claim(t, a, store.ClaimOptions{Now: now}))
	if len(got) != 1 || collected(got[0]) != "2+1" || string(got[0].Payload) != "d" || !got[0].Collects {
		t.Fatalf("moved: %+v", got)
	}

	// Out: left alone, and what it collects meanwhile comes after the
	// settle as it would have.
	add(b, "late")
	if got := moves(t, a, move(store.Move{Queue: q, ID: digest.ID, Drop: true}, store.Move{Queue: q, ID: digest.ID, Due: now.Add(time.Hour)})); fmt.Sprint(got) != "[false false]" {
		t.Fatalf("moves of a claimed collecting item: %v", got)
	}
	settle(t, b, store.Settlement{Done: got, Now: now})
	got = items(claim(t, a, store.ClaimOptions{Now: now}))
	if len(got) != 1 || collected(got[0]) != "1+0" || got[0].Collected["late"] == nil {
		t.Fatalf("after the settle: %+v", got)
	}
}

// A move with a payload replaces the item's, whether it is in the member
// or (Redis, an item that waited) moved out of it; its header stays.
func testLeasedMovePayload(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	now := base()
	big := []byte(fmt.Sprintf("%0600d", 7))
	put(t, a, store.Item{ID: "p1", Group: "g1", Alerts: 1, Due: now.Add(time.Hour), Payload: []byte("held")},
		store.Item{ID: "p2", Group: "busy", Alerts: 2, Due: now, Payload: big})
	// p2 waits for its group: its payload moves out of the member (Redis).
	if c := claim(t, a, store.ClaimOptions{Now: now, Held: map[string]time.Time{"busy": now.Add(time.Hour)}}); len(c.Batches) != 0 {
		t.Fatalf("claimed %s", shape(c))
	}
	got := moves(t, b, move(store.Move{Queue: q, ID: "p1", Due: now, Payload: []byte("released")},
		store.Move{Queue: q, ID: "p2", Due: now, Payload: []byte("small now")}))
	if fmt.Sprint(got) != "[true true]" {
		t.Fatalf("applied %v", got)
	}
	byID := map[string]store.Item{}
	for _, it := range items(claim(t, a, store.ClaimOptions{Now: now})) {
		byID[it.ID] = it
	}
	if it := byID["p1"]; string(it.Payload) != "released" || it.Group != "g1" || it.Alerts != 1 || !it.Since.Equal(now) {
		t.Errorf("p1 after the move: %+v", it)
	}
	if it := byID["p2"]; string(it.Payload) != "small now" || it.Group != "busy" || it.Alerts != 2 {
		t.Errorf("p2 after the move: %+v", it)
	}
	if n := queueLen(t, a, q); n != 2 {
		t.Errorf("%d items, want the 2 moved (under lease)", n)
	}
}

// A settle's notes write fields of a record Field reads: a field is set,
// or appended to; a settle writes them with or without items; a note
// without a TTL is refused.
func testSettleNotes(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a := handle(t, op)
	ctx := context.Background()
	now := base()
	put(t, a, store.Item{ID: "n1", Group: "g", Due: now, Payload: []byte("x")})
	got := items(claim(t, a, store.ClaimOptions{Now: now}))
	settle(t, a, store.Settlement{Retry: []store.Item{func() store.Item { it := got[0]; it.Due = now; return it }()}, Now: now,
		Notes: []store.Note{{Key: "dl:g", Field: "n1", Line: []byte("attempt 1 failed\n"), TTL: time.Hour},
			{Key: "dl:g", Field: "n2", Line: []byte("other\n"), TTL: time.Hour}}})
	got = items(claim(t, a, store.ClaimOptions{Now: now}))
	settle(t, a, store.Settlement{Done: got, Now: now, Notes: []store.Note{{Key: "dl:g", Field: "n1", Line: []byte("delivered\n"), Append: true, TTL: time.Hour},
		{Key: "dl:g", Field: "n2", Line: []byte("replaced\n"), TTL: time.Hour}}})
	settle(t, a, store.Settlement{Now: now, Notes: []store.Note{{Key: "dl:h", Field: "x", Line: []byte("alone\n"), Append: true, TTL: time.Hour}}})
	read := func(key, field string) string {
		t.Helper()
		bs, err := a.Fields(ctx, 0, key, field)
		if err != nil {
			t.Fatal(err)
		}
		b := bs[0]
		if b == nil {
			return "<nil>"
		}
		return string(b)
	}
	for _, c := range [][3]string{{"dl:g", "n1", "attempt 1 failed\ndelivered\n"}, {"dl:g", "n2", "replaced\n"}, {"dl:h", "x", "alone\n"}, {"dl:g", "none", "<nil>"}, {"dl:none", "n1", "<nil>"}} {
		if got := read(c[0], c[1]); got != c[2] {
			t.Errorf("%s %s = %q, want %q", c[0], c[1], got, c[2])
		}
	}
	if _, err := a.Settle(ctx, 0, q, store.Settlement{Now: now, Notes: []store.Note{{Key: "dl:x", Field: "y", Line: []byte("y")}}}); err == nil {
		t.Error("a note without a TTL was taken")
	}
}

// Keys lists the live values under a prefix, up to a max, and says when
// there were more.
func testKeys(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a := handle(t, op)
	ctx := context.Background()
	var sets []store.Value
	for _, k := range []string{"alert:1", "alert:2", "alert:3", "flap:1", "alerts"} {
		sets = append(sets, store.Value{Key: k, Value: []byte("x"), TTL: time.Hour})
	}
	if err := a.Commit(ctx, 0, store.Txn{Set: sets}); err != nil {
		t.Fatal(err)
	}
	keys, more, err := a.Keys(ctx, 0, "alert:", 10)
	slices.Sort(keys)
	if err != nil || more || fmt.Sprint(keys) != "[alert:1 alert:2 alert:3]" {
		t.Errorf("Keys = %v %v %v", keys, more, err)
	}
	if keys, more, err := a.Keys(ctx, 0, "alert:", 2); err != nil || !more || len(keys) != 2 {
		t.Errorf("Keys up to 2 = %v %v %v", keys, more, err)
	}
}

// A dead letter taken back is an item again, due at once with no attempts,
// gone from the dead letters; one that is not there, or whose ID waits,
// is not.
func testRevive(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	ctx := context.Background()
	now := base()
	put(t, a, store.Item{ID: "r1", Group: "g", Class: "slack", Alerts: 2, Due: now, Payload: []byte("p1")},
		store.Item{ID: "r2", Group: "g2", Due: now, Payload: []byte("p2")})
	got := items(claim(t, a, store.ClaimOptions{Now: now}))
	for i := range got {
		got[i].Attempts, got[i].LastErr = 3, "400 invalid_payload"
	}
	settle(t, a, store.Settlement{Dead: got, Now: now})
	later := now.Add(time.Hour)
	if ok, err := b.Revive(ctx, 0, q, "r1", later); err != nil || !ok {
		t.Fatalf("revive r1: %v %v", ok, err)
	}
	if ok, err := b.Revive(ctx, 0, q, "r1", later); err != nil || ok {
		t.Errorf("revived twice: %v %v", ok, err)
	}
	if ok, err := b.Revive(ctx, 0, q, "none", later); err != nil || ok {
		t.Errorf("revived what is not there: %v %v", ok, err)
	}
	list, err := a.DeadLetters(ctx, q, store.DeadPage{Limit: 10})
	if err != nil || list.Total != 1 || len(list.Dead) != 1 || list.Dead[0].Item.ID != "r2" {
		t.Errorf("dead letters after: %+v %v", list, err)
	}
	c := items(claim(t, a, store.ClaimOptions{Now: later}))
	if len(c) != 1 || c[0].ID != "r1" || c[0].Attempts != 0 || c[0].LastErr != store.Revived || string(c[0].Payload) != "p1" ||
		c[0].Group != "g" || c[0].Class != "slack" || c[0].Alerts != 2 || !c[0].Since.Equal(later) {
		t.Fatalf("revived item: %+v", c)
	}
	// An ID that waits already is left alone, and so is its dead letter.
	put(t, a, store.Item{ID: "r2", Group: "g2", Due: later, Payload: []byte("new")})
	if ok, err := b.Revive(ctx, 0, q, "r2", later); err != nil || ok {
		t.Errorf("revived over a waiting item: %v %v", ok, err)
	}
}

// An observation dropped as a duplicate is noted for its alert's timeline
// in the day's duplicates record: the latest one, with its request and its
// Alertmanager.
func testDuplicatesNoted(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a := handle(t, op)
	ctx := context.Background()
	fa := firing("Dup")
	first := &alert.Entry{ID: "req-1", Message: &alert.Message{Version: "4", Data: &template.Data{Alerts: template.Alerts{fa}, ExternalURL: "http://am-a:9093"}}}
	if res, err := a.Enqueue(ctx, first, time.Minute); err != nil || !res.Queued {
		t.Fatalf("first: %+v %v", res, err)
	}
	again := &alert.Entry{ID: "req-2", Message: &alert.Message{Version: "4", Data: &template.Data{Alerts: template.Alerts{fa}, ExternalURL: "http://am-b:9093"}}}
	if res, err := a.Enqueue(ctx, again, time.Minute); err != nil || res.Queued || res.Duplicates != 1 {
		t.Fatalf("again: %+v %v", res, err)
	}
	vals, err := a.Fields(ctx, 0, store.DuplicatesKey(time.Now()), alert.FingerprintOf(fa))
	if err != nil {
		t.Fatal(err)
	}
	var d store.DuplicateRecord
	if err := json.Unmarshal(vals[0], &d); err != nil || d.Request != "req-2" || d.ExternalURL != "http://am-b:9093" || d.Status != "firing" ||
		d.At < time.Now().Add(-time.Minute).UnixMilli() {
		t.Errorf("noted %q: %+v %v", vals[0], d, err)
	}
}
