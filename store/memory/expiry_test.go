package memory

import (
	"strconv"
	"testing"
	"time"
)

func TestExpiryQueueAcrossChunks(t *testing.T) {
	var q expiryQueue
	t0 := time.Unix(1000, 0)
	for i := 0; i < 3*expiryChunk+10; i++ {
		q.push(strconv.Itoa(i), t0.Add(time.Duration(i)*time.Second))
	}
	var got []string
	drop := func(k string, _ time.Time) { got = append(got, k) }
	// Nothing expired: nothing popped.
	q.pop(t0.Add(-time.Second), 0, drop)
	if len(got) != 0 {
		t.Fatalf("popped %d before expiry", len(got))
	}
	// Expired up to and including #5000, in order, across a chunk boundary.
	q.pop(t0.Add(5000*time.Second), 0, drop)
	if len(got) != 5001 || got[0] != "0" || got[5000] != "5000" {
		t.Fatalf("popped %d, first %s last %s", len(got), got[0], got[len(got)-1])
	}
	// Forced: the 10 oldest regardless of expiry.
	got = nil
	q.pop(t0, 10, drop)
	if len(got) != 10 || got[0] != "5001" {
		t.Fatalf("forced %v", got)
	}
	// Drain all, then reuse.
	got = nil
	q.pop(t0.Add(time.Hour*24), 0, drop)
	if len(got) != 3*expiryChunk+10-5011 || len(q.chunks) > 1 {
		t.Fatalf("drained %d, %d chunks left", len(got), len(q.chunks))
	}
	q.push("again", t0)
	got = nil
	q.pop(t0, 0, drop)
	if len(got) != 1 || got[0] != "again" {
		t.Fatalf("after reuse: %v", got)
	}
}
