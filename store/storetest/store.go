// Package storetest is the conformance suite every store backend must pass.
// It declares the whole behaviour the rest of alertmedic relies on, so that
// the memory and the Redis backends cannot drift apart.
package storetest

import (
	"context"
	"time"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/store"
)

// Store is everything the receiver and the pipeline ask of a backend. The
// consumers declare the parts they use as their own, smaller interfaces.
type Store interface {
	// Enqueue durably queues e, minus the alerts whose observation
	// (alert.ObservationKey) was already enqueued within dedupTTL, and
	// remembers the new observations for dedupTTL. Checking the keys, storing
	// them and queueing the entry happen atomically: two replicas enqueueing
	// the same message at the same instant queue it once, and a failed
	// enqueue remembers nothing. When every alert is a duplicate nothing is
	// queued and res.Queued is false. e.ID must be set by the caller (unique,
	// stable across redeliveries); e.Message.Alerts is not modified.
	// Errors: alert.ErrQueueFull when at capacity (nothing stored),
	// an error wrapping alert.ErrStoreUnavailable when the store cannot be
	// reached.
	Enqueue(ctx context.Context, e *alert.Entry, dedupTTL time.Duration) (alert.EnqueueResult, error)

	// Dequeue returns up to max entries for consumer, blocking up to block
	// when none is ready (ctx cancellation ends the wait early with no error
	// and no entries). It returns, in this order: entries this consumer had
	// taken but not acknowledged (after a restart), entries another consumer
	// took and left unacknowledged for longer than the backend's claim idle
	// time, then new entries. Each returned entry has Receipt set.
	Dequeue(ctx context.Context, shard int, consumer string, max int, block time.Duration) ([]*alert.Entry, error)

	// Ack removes an entry for good, by its Receipt. Acknowledging twice is
	// not an error.
	Ack(ctx context.Context, shard int, receipt string) error

	// Depth is the number of entries queued and not yet acknowledged.
	Depth(ctx context.Context) (int64, error)

	// UpdateState atomically replaces the value under key with what fn
	// returns for the current value (nil when there is none) and returns the
	// new value. When another handle changes the value meanwhile, fn runs
	// again on the newer value, so fn must have no side effects. A nil result
	// deletes the key. ttl bounds the value's life (refreshed on each write;
	// returning the value unchanged is not a write).
	// Keys are the caller's names; the backend adds its own prefix.
	UpdateState(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) ([]byte, error)

	// State reads the value UpdateState stored under key (nil when none),
	// in one round trip and without taking part in any transaction.
	State(ctx context.Context, key string) ([]byte, error)

	// Mark puts member in the named index with a score (a time, as unix
	// seconds, for the callers so far); Marked lists the members whose score
	// is at most max, lowest first; Unmark removes one. Periodic checks find
	// their work through an index instead of scanning the whole store.
	Mark(ctx context.Context, index, member string, score float64) error
	Marked(ctx context.Context, index string, max float64) ([]string, error)
	MarkedIn(ctx context.Context, shard int, index string, max float64) ([]string, error)
	Unmark(ctx context.Context, index, member string) error

	// Shards is how many shards the store spreads its keys over; the
	// shard arguments below count from 0.
	Shards() int

	// Get reads values by key (nil for an absent key): the values
	// UpdateState and Commit write.
	Get(ctx context.Context, shard int, keys ...string) ([][]byte, error)
	// Keys lists up to max of the live value keys that start with prefix, in
	// no order; more says there were more. For listings, not every request.
	Keys(ctx context.Context, shard int, prefix string, max int) (keys []string, more bool, err error)
	// Revive takes the dead letter with the ID back into its queue, due at
	// due, as a new delivery (no attempts, LastErr store.Revived, Since at due);
	// false when there is none, or an item of that ID waits.
	Revive(ctx context.Context, shard int, queue, id string, due time.Time) (bool, error)
	// Fields reads fields of a notes record (store.Note); nil for each
	// absent.
	Fields(ctx context.Context, shard int, key string, fields ...string) ([][]byte, error)

	// Commit applies a store.Txn atomically: when an expected value
	// changed it writes nothing and returns a *store.Conflict with the
	// current values; when the entry it acknowledges was acknowledged
	// already it writes nothing and returns store.ErrAcked.
	Commit(ctx context.Context, shard int, t store.Txn) error

	// CommitMoves is Commit, and says which of t.Move applied: one bool
	// for each, in order, true when the item waited and was moved or
	// dropped; nil with any error (then nothing applied).
	CommitMoves(ctx context.Context, shard int, t store.Txn) ([]bool, error)

	// CommitAll applies each Txn in order as Commit does, each atomic on
	// its own, one error per Txn; a later Txn sees what an earlier one
	// wrote.
	CommitAll(ctx context.Context, shard int, ts []store.Txn) []error

	// Claim takes due items of a leased queue in batches, as
	// store.ClaimOptions say; Settle finishes claimed items.
	Claim(ctx context.Context, shard int, queue string, o store.ClaimOptions) (store.Claimed, error)
	Settle(ctx context.Context, shard int, queue string, s store.Settlement) (store.Settled, error)

	// DeadLetters lists the dead letters of a leased queue in every shard,
	// newest first across the shards, a page at a time (store.DeadPage:
	// page.Next continues, each dead letter listed once), and counts them
	// all; a page naming a shard the store does not have is
	// store.ErrBadCursor.
	DeadLetters(ctx context.Context, queue string, page store.DeadPage) (store.DeadList, error)

	// QueueLen counts a leased queue's unfinished items.
	QueueLen(ctx context.Context, shard int, queue string) (int, error)

	// Ping checks the store answers.
	Ping(ctx context.Context) error

	Close() error
}
