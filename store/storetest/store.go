// Package storetest is the conformance suite every store backend must pass.
// It declares the whole behaviour the rest of alertmedic relies on, so that
// the memory and the Redis backends cannot drift apart.
package storetest

import (
	"context"
	"time"

	"github.com/alertmedic/alertmedic/alert"
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
	Dequeue(ctx context.Context, consumer string, max int, block time.Duration) ([]*alert.Entry, error)

	// Ack removes an entry for good, by its Receipt. Acknowledging twice is
	// not an error.
	Ack(ctx context.Context, receipt string) error

	// Depth is the number of entries queued and not yet acknowledged.
	Depth(ctx context.Context) (int64, error)

	// Record adds the observations of every alert of e to each alert's
	// history, unless e.ID was recorded before; it reports whether this call
	// did the recording. Idempotent across replicas and restarts: an entry
	// redelivered after a crash is recorded once. Each history keeps
	// observations for the retention given to the backend and at most its
	// configured count, newest kept. The same observation (same
	// ObservationKey) seen again updates its ReceivedAt instead of adding a
	// second element.
	Record(ctx context.Context, e *alert.Entry) (fresh bool, err error)

	// IsDone reports whether Record recorded the entry with this id.
	IsDone(ctx context.Context, id string) (bool, error)

	// History returns the observations of the alert with fingerprint fp,
	// oldest first. ReceivedAt is kept to the millisecond.
	History(ctx context.Context, fp string) ([]alert.Observation, error)

	// Processed is the number of alerts recorded by Record since the store
	// was created (shared by every replica using the same store).
	Processed(ctx context.Context) (int64, error)

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
	Unmark(ctx context.Context, index, member string) error

	// Ping checks the store answers.
	Ping(ctx context.Context) error

	Close() error
}
