package storetest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

func suiteOptions() Options {
	return Options{Capacity: 100, ClaimIdle: time.Second, MaxDeadLetters: 5, Shards: 1}
}

func testUpdateState(t *testing.T, open func(t *testing.T, o Options) Opener) {
	s := open(t, suiteOptions())()
	defer s.Close()
	ctx := context.Background()
	var seen []string
	v, err := s.UpdateState(ctx, "flap:abc", time.Minute, func(old []byte) ([]byte, error) {
		seen = append(seen, string(old))
		return []byte("one"), nil
	})
	if err != nil || string(v) != "one" || len(seen) != 1 || seen[0] != "" {
		t.Fatalf("first update: %q %v, fn saw %q", v, err, seen)
	}
	v, err = s.UpdateState(ctx, "flap:abc", time.Minute, func(old []byte) ([]byte, error) {
		return append(old, "+two"...), nil
	})
	if err != nil || string(v) != "one+two" {
		t.Fatalf("second update: %q %v", v, err)
	}
	// An error from fn changes nothing and comes back as it was.
	boom := errors.New("boom")
	if _, err := s.UpdateState(ctx, "flap:abc", time.Minute, func([]byte) ([]byte, error) { return []byte("x"), boom }); !errors.Is(err, boom) {
		t.Errorf("fn error: %v", err)
	}
	v, _ = s.UpdateState(ctx, "flap:abc", time.Minute, func(old []byte) ([]byte, error) { return old, nil })
	if string(v) != "one+two" {
		t.Errorf("value after a failed update: %q", v)
	}
	// nil deletes.
	if _, err := s.UpdateState(ctx, "flap:abc", time.Minute, func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	s.UpdateState(ctx, "flap:abc", time.Minute, func(old []byte) ([]byte, error) {
		if old != nil {
			t.Errorf("deleted key still holds %q", old)
		}
		return nil, nil
	})
	// State reads what UpdateState wrote, and nil for a key never written.
	if _, err := s.UpdateState(ctx, "read", time.Minute, func([]byte) ([]byte, error) { return []byte("R"), nil }); err != nil {
		t.Fatal(err)
	}
	if v, err := s.State(ctx, "read"); err != nil || string(v) != "R" {
		t.Errorf("State(read) = %q, %v", v, err)
	}
	if v, err := s.State(ctx, "never"); err != nil || v != nil {
		t.Errorf("State(never) = %q, %v; want nil", v, err)
	}
	// Keys are independent.
	s.UpdateState(ctx, "a", time.Minute, func([]byte) ([]byte, error) { return []byte("A"), nil })
	s.UpdateState(ctx, "b", time.Minute, func(old []byte) ([]byte, error) {
		if old != nil {
			t.Errorf("key b sees %q", old)
		}
		return nil, nil
	})
}

// Two replicas incrementing one counter 50 times each end at 100: no update
// is lost to a race.
func testUpdateStateConcurrent(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := op(), op()
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, s := range []Store{a, b} {
		for g := 0; g < 5; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					_, err := s.UpdateState(ctx, "counter", time.Minute, func(old []byte) ([]byte, error) {
						n, _ := strconv.Atoi(string(old))
						return []byte(strconv.Itoa(n + 1)), nil
					})
					if err != nil {
						t.Errorf("update: %v", err)
					}
				}
			}()
		}
	}
	wg.Wait()
	v, _ := a.UpdateState(ctx, "counter", time.Minute, func(old []byte) ([]byte, error) { return old, nil })
	if string(v) != "100" {
		t.Errorf("counter = %s, want 100", v)
	}
}

func testUpdateStateTTL(t *testing.T, open func(t *testing.T, o Options) Opener) {
	s := open(t, suiteOptions())()
	defer s.Close()
	ctx := context.Background()
	s.UpdateState(ctx, "short", 200*time.Millisecond, func([]byte) ([]byte, error) { return []byte("v"), nil })
	time.Sleep(400 * time.Millisecond)
	s.UpdateState(ctx, "short", time.Minute, func(old []byte) ([]byte, error) {
		if old != nil {
			t.Errorf("value outlived its ttl: %q", old)
		}
		return nil, nil
	})
}

func testIndex(t *testing.T, open func(t *testing.T, o Options) Opener) {
	op := open(t, suiteOptions())
	a, b := op(), op()
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	for m, score := range map[string]float64{"k3": 30, "k1": 10, "k2": 20} {
		if err := a.Mark(ctx, "flapping", m, score); err != nil {
			t.Fatal(err)
		}
	}
	a.Mark(ctx, "other", "x", 1)
	got, err := b.Marked(ctx, "flapping", 20)
	if err != nil || len(got) != 2 || got[0] != "k1" || got[1] != "k2" {
		t.Errorf("Marked(≤20) = %v %v, want [k1 k2]", got, err)
	}
	// Marking again moves the score.
	a.Mark(ctx, "flapping", "k1", 40)
	if got, _ := b.Marked(ctx, "flapping", 20); len(got) != 1 || got[0] != "k2" {
		t.Errorf("after re-mark: %v", got)
	}
	b.Unmark(ctx, "flapping", "k2")
	if got, _ := a.Marked(ctx, "flapping", 100); len(got) != 2 || got[0] != "k3" || got[1] != "k1" {
		t.Errorf("after unmark: %v", got)
	}
	if got, _ := a.Marked(ctx, "other", 100); len(got) != 1 {
		t.Errorf("indexes are not separate: %v", got)
	}
}
