package memory

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/alertmedic/alertmedic/store"
)

func TestExpiryAcrossChunksAndTTLs(t *testing.T) {
	var x expiry[string]
	t0 := time.Unix(1000, 0).UnixNano()
	sec := int64(time.Second)
	// A long TTL written first must not hold back the short ones.
	x.push("pause", 10*365*24*time.Hour, t0+10*365*24*3600*sec)
	for i := 0; i < 3*expiryChunk+10; i++ {
		x.push(strconv.Itoa(i), time.Hour, t0+int64(i)*sec)
	}
	var got []string
	drop := func(k string, _ int64, forced bool) dropped {
		got = append(got, k)
		return evicted
	}
	x.pop(t0-sec, 0, drop)
	if len(got) != 0 {
		t.Fatalf("popped %d before expiry", len(got))
	}
	// Expired up to and including #5000, in order, across a chunk boundary.
	x.pop(t0+5000*sec, 0, drop)
	if len(got) != 5001 || got[0] != "0" || got[5000] != "5000" {
		t.Fatalf("popped %d, first %s last %s", len(got), got[0], got[len(got)-1])
	}
	// Forced: the 10 that expire soonest, not the pause.
	got = nil
	x.pop(t0, 10, drop)
	if len(got) != 10 || got[0] != "5001" {
		t.Fatalf("forced %v", got)
	}
	// A kept (still needed) key does not count, and going round ends.
	got = nil
	x.push("pinned", time.Minute, t0+1)
	keptOnce := false
	x.pop(t0, 1, func(k string, exp int64, forced bool) dropped {
		got = append(got, k)
		if k == "pinned" && !keptOnce {
			keptOnce = true
			return kept
		}
		return evicted
	})
	if len(got) != 2 || got[0] != "pinned" || got[1] != "5011" {
		t.Fatalf("with a kept key: %v", got)
	}
	got = nil
	x.pop(t0+24*3600*sec, 0, drop)
	if len(got) != 3*expiryChunk+10-5012+1 || !slices.Contains(got, "pinned") {
		t.Fatalf("drained %d: %v", len(got), got[:3])
	}
	for _, k := range got {
		if k == "pause" {
			t.Fatal("the 10-year key expired after a day")
		}
	}
}

// A notes record's fields expire with the record, in its TTL's queue:
// settles at a thousand different instants make one expiry queue, not one
// each (each of which held a chunk of its own).
func TestNoteFieldsShareTheRecordsQueue(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := New(Options{Now: func() time.Time { return now }})
	ctx := t.Context()
	for i := 0; i < 1000; i++ {
		now = now.Add(time.Millisecond + time.Duration(i)*time.Nanosecond)
		st := store.Settlement{Now: now, Notes: []store.Note{{Key: "dl:t:20261201", Field: "item" + strconv.Itoa(i), Line: []byte("x\n"), TTL: time.Hour}}}
		if _, err := s.Settle(ctx, 0, store.QueueOutbox, st); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.valueQ.qs); n != 1 {
		t.Fatalf("%d expiry queues for one record's fields", n)
	}
	got, err := s.Fields(ctx, 0, "dl:t:20261201", "item0", "item999")
	if err != nil || string(got[0]) != "x\n" || string(got[1]) != "x\n" {
		t.Fatalf("fields %q, %v", got, err)
	}
	// The record's hour is up: every field goes with it.
	now = now.Add(time.Hour)
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.Stats().Sizes["values"]; n != 0 {
		t.Fatalf("%d values left after the record's TTL", n)
	}
}
