package storetest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/store"
)

func commit(t *testing.T, s Store, txn store.Txn) {
	t.Helper()
	if err := s.Commit(context.Background(), 0, txn); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func get(t *testing.T, s Store, keys ...string) []string {
	t.Helper()
	vs, err := s.Get(context.Background(), 0, keys...)
	if err != nil {
		t.Fatalf("get %v: %v", keys, err)
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		if v == nil {
			out[i] = "<nil>"
		} else {
			out[i] = string(v)
		}
	}
	return out
}

func queueLen(t *testing.T, s Store, q string) int {
	t.Helper()
	n, err := s.QueueLen(context.Background(), 0, q)
	if err != nil {
		t.Fatalf("queue length: %v", err)
	}
	return n
}

// Everything a commit writes is there for another handle, a put of an item
// already there changes nothing, a nil value deletes, and TTLs hold.
func testCommitWrites(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	ctx := context.Background()
	now := base()
	it := store.Item{ID: "n1", Group: "team/slack[0]", Class: "slack", Alerts: 2, Due: now, Payload: []byte(`{"x":1}`)}
	commit(t, a, store.Txn{
		Set:  []store.Value{{Key: "alert:1", Value: []byte("one"), TTL: time.Minute}, {Key: "alert:2", Value: []byte("two"), TTL: time.Minute}},
		Put:  []store.Put{{Queue: store.QueueOutbox, Item: it}, {Queue: store.QueueOutbox, Item: store.Item{ID: "n2", Due: now}}},
		Mark: []store.Mark{{Index: "flapping", Member: "k1", Score: 5}},
	})
	if got := get(t, b, "alert:1", "alert:2", "alert:3"); got[0] != "one" || got[1] != "two" || got[2] != "<nil>" {
		t.Errorf("values from the other handle: %v", got)
	}
	if v, err := b.State(ctx, "alert:1"); err != nil || string(v) != "one" {
		t.Errorf("State reads what Commit wrote: %q %v", v, err)
	}
	if m, _ := b.Marked(ctx, "flapping", 10); len(m) != 1 || m[0] != "k1" {
		t.Errorf("marked: %v", m)
	}
	if n := queueLen(t, b, store.QueueOutbox); n != 2 {
		t.Errorf("outbox holds %d items, want 2", n)
	}
	// The same item again: nothing changes.
	commit(t, b, store.Txn{Put: []store.Put{{Queue: store.QueueOutbox, Item: it}}})
	if n := queueLen(t, a, store.QueueOutbox); n != 2 {
		t.Errorf("after putting n1 again the outbox holds %d items, want 2", n)
	}
	commit(t, b, store.Txn{
		Set:    []store.Value{{Key: "alert:1"}, {Key: "short", Value: []byte("s"), TTL: 200 * time.Millisecond}},
		Unmark: []store.Mark{{Index: "flapping", Member: "k1"}},
	})
	if got := get(t, a, "alert:1", "short"); got[0] != "<nil>" || got[1] != "s" {
		t.Errorf("after delete: %v", got)
	}
	if m, _ := a.Marked(ctx, "flapping", 10); len(m) != 0 {
		t.Errorf("unmarked still listed: %v", m)
	}
	time.Sleep(400 * time.Millisecond)
	if got := get(t, a, "short"); got[0] != "<nil>" {
		t.Errorf("a value outlived its TTL: %v", got)
	}
}

// A commit whose expectation no longer holds writes nothing and says what
// the values are now.
func testCommitConflict(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	ctx := context.Background()
	commit(t, a, store.Txn{Set: []store.Value{{Key: "k", Value: []byte("v1"), TTL: time.Minute}}})
	err := b.Commit(ctx, 0, store.Txn{
		Expect: []store.Value{{Key: "k", Value: []byte("v0")}, {Key: "absent"}},
		Set:    []store.Value{{Key: "k", Value: []byte("v2"), TTL: time.Minute}, {Key: "other", Value: []byte("o"), TTL: time.Minute}},
		Put:    []store.Put{{Queue: store.QueueOutbox, Item: store.Item{ID: "x", Due: base()}}},
	})
	var c *store.Conflict
	if !errors.As(err, &c) || len(c.Current) != 1 || c.Current[0].Key != "k" || string(c.Current[0].Value) != "v1" {
		t.Fatalf("conflict: %v %+v", err, c)
	}
	if got := get(t, a, "k", "other"); got[0] != "v1" || got[1] != "<nil>" {
		t.Errorf("a refused commit wrote: %v", got)
	}
	if n := queueLen(t, a, store.QueueOutbox); n != 0 {
		t.Errorf("a refused commit put %d items", n)
	}
	// Expecting absence of a present key conflicts, with the value.
	err = b.Commit(ctx, 0, store.Txn{Expect: []store.Value{{Key: "k"}}, Set: []store.Value{{Key: "k", Value: []byte("v3"), TTL: time.Minute}}})
	if !errors.As(err, &c) || len(c.Current) != 1 || string(c.Current[0].Value) != "v1" {
		t.Errorf("expecting k absent: %v", err)
	}
	// A present key expected to be gone, and gone: the current value is nil.
	commit(t, a, store.Txn{Set: []store.Value{{Key: "gone", Value: []byte("g"), TTL: time.Minute}}})
	commit(t, a, store.Txn{Set: []store.Value{{Key: "gone"}}})
	err = b.Commit(ctx, 0, store.Txn{Expect: []store.Value{{Key: "gone", Value: []byte("g")}}})
	if !errors.As(err, &c) || len(c.Current) != 1 || c.Current[0].Value != nil {
		t.Errorf("expecting a deleted key: %v %+v", err, c)
	}
	commit(t, b, store.Txn{
		Expect: []store.Value{{Key: "k", Value: []byte("v1")}, {Key: "absent"}},
		Set:    []store.Value{{Key: "k", Value: []byte("v2"), TTL: time.Minute}},
	})
	if got := get(t, a, "k"); got[0] != "v2" {
		t.Errorf("after a commit that held: %v", got)
	}
}

// A commit that acknowledges an entry does so once: the second consumer to
// finish it (it claimed the entry after claim_idle) writes nothing.
func testCommitAcksOnce(t *testing.T, open func(t *testing.T, o Options) Opener) {
	o := suiteOptions()
	o.ClaimIdle = 300 * time.Millisecond
	op := open(t, o)
	a, b := handle(t, op), handle(t, op)
	ctx := context.Background()
	enqueue(t, a, mkEntry("ack-1", mkMessage(firing("Ack"))), time.Minute, alert1())
	e1 := dequeueOne(t, a, "c1", "ack-1", 0)
	time.Sleep(400 * time.Millisecond)
	e2 := dequeueOne(t, b, "c2", "ack-1", 0)
	// A conflict leaves the entry unacknowledged.
	commit(t, a, store.Txn{Set: []store.Value{{Key: "k", Value: []byte("x"), TTL: time.Minute}}})
	err := a.Commit(ctx, 0, store.Txn{Ack: e1.Receipt, Expect: []store.Value{{Key: "k"}}})
	var c *store.Conflict
	if !errors.As(err, &c) {
		t.Fatalf("want a conflict, got %v", err)
	}
	checkDepth(t, a, 1)
	commit(t, b, store.Txn{Ack: e2.Receipt, Set: []store.Value{{Key: "by", Value: []byte("b"), TTL: time.Minute}}})
	checkDepth(t, a, 0)
	err = a.Commit(ctx, 0, store.Txn{Ack: e1.Receipt, Set: []store.Value{{Key: "by", Value: []byte("a"), TTL: time.Minute}}})
	if !errors.Is(err, store.ErrAcked) {
		t.Errorf("second commit of one entry: %v, want ErrAcked", err)
	}
	if got := get(t, a, "by"); got[0] != "b" {
		t.Errorf("the second commit wrote: %v", got)
	}
}

func alert1() alert.EnqueueResult { return alert.EnqueueResult{Queued: true, Accepted: 1} }

// Two replicas read-modify-commit one counter 50 times each, retrying on
// conflict: it ends at 100.
func testCommitConcurrent(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := handle(t, op), handle(t, op)
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, s := range []Store{a, b} {
		for g := 0; g < 5; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					vs, err := s.Get(ctx, 0, "counter")
					for tries := 0; err == nil; tries++ {
						n, _ := strconv.Atoi(string(vs[0]))
						err = s.Commit(ctx, 0, store.Txn{
							Expect: []store.Value{{Key: "counter", Value: vs[0]}},
							Set:    []store.Value{{Key: "counter", Value: []byte(strconv.Itoa(n + 1)), TTL: time.Minute}},
						})
						var c *store.Conflict
						if !errors.As(err, &c) || tries > 200 {
							break
						}
						vs, err = [][]byte{c.Current[0].Value}, nil
					}
					if err != nil {
						t.Errorf("increment: %v", err)
					}
				}
			}()
		}
	}
	wg.Wait()
	if got := get(t, a, "counter"); got[0] != "100" {
		t.Errorf("counter = %s, want 100", got[0])
	}
}

// base is now to the millisecond: Redis keeps due times in milliseconds.
func base() time.Time { return time.Now().Truncate(time.Millisecond) }

// CommitAll commits in order, each on its own: a later commit sees what an
// earlier one wrote, and one that conflicts stops no other.
func testCommitAll(t *testing.T, open func(t *testing.T, o Options) Opener) {
	s := handle(t, open(t, suiteOptions()))
	ctx := context.Background()
	commit(t, s, store.Txn{Set: []store.Value{{Key: "b", Value: []byte("b0"), TTL: time.Minute}}})
	errs := s.CommitAll(ctx, 0, []store.Txn{
		{Expect: []store.Value{{Key: "a"}}, Set: []store.Value{{Key: "a", Value: []byte("a1"), TTL: time.Minute}}},
		{Expect: []store.Value{{Key: "b", Value: []byte("stale")}}, Set: []store.Value{{Key: "b", Value: []byte("b1"), TTL: time.Minute}}},
		{Expect: []store.Value{{Key: "a", Value: []byte("a1")}}, Set: []store.Value{{Key: "a", Value: []byte("a2"), TTL: time.Minute}},
			Put: []store.Put{{Queue: store.QueueOutbox, Item: store.Item{ID: "x", Due: base()}}}},
	})
	var c *store.Conflict
	if len(errs) != 3 || errs[0] != nil || !errors.As(errs[1], &c) || errs[2] != nil {
		t.Fatalf("errors %v: want the second alone to conflict", errs)
	}
	if got := get(t, s, "a", "b"); got[0] != "a2" || got[1] != "b0" {
		t.Errorf("values %v", got)
	}
	if n := queueLen(t, s, store.QueueOutbox); n != 1 {
		t.Errorf("outbox %d", n)
	}
}
