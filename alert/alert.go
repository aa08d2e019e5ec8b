// Package alert holds alertmedic's domain types: the webhook message that
// Alertmanager sends (version 4), its validation, the alert fingerprint and the
// unit of work that travels through the queue.
//
// The payload types are Alertmanager's own (template.Data, template.Alert), so
// the templates users already wrote for Alertmanager work on them unchanged.
package alert

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
)

// Alert statuses, as Alertmanager spells them.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Message is Alertmanager's webhook message, version 4. Alertmanager's own
// type lives in notify/webhook, which would pull in most of Alertmanager, so
// the four fields are repeated here.
type Message struct {
	*template.Data

	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// Fingerprint identifies an alert by its label set, exactly as Alertmanager
// computes it, so fingerprints in alertmedic's logs and API match those in
// Alertmanager's UI and amtool.
func Fingerprint(labels template.KV) string {
	ls := make(model.LabelSet, len(labels))
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}

// IsFingerprint says whether s is written as Alertmanager writes a
// fingerprint: 16 lowercase hexadecimal digits.
func IsFingerprint(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// FingerprintOf is the alert's fingerprint, as Alertmanager sent it or
// computed from its labels.
func FingerprintOf(a template.Alert) string {
	if a.Fingerprint != "" {
		return a.Fingerprint
	}
	return Fingerprint(a.Labels)
}

// ObservationKey names one observation of an alert: the same alert in the same
// state of the same episode. Alertmanager HA replicas and retries send the same
// observation many times; this is the key they are deduplicated by. endsAt is
// part of it only once the alert has resolved: while firing, Alertmanager moves
// endsAt forward on every resend.
func ObservationKey(a template.Alert) string {
	k := FingerprintOf(a) + "|" + a.Status + "|" + a.StartsAt.UTC().Format(time.RFC3339Nano)
	if a.Status == StatusResolved {
		k += "|" + a.EndsAt.UTC().Format(time.RFC3339Nano)
	}
	return k
}

// Watermark orders the observations of one alert: by startsAt, and within
// one episode the resolve after the firing it ends. Whoever keeps the latest
// observation of an alert (a record, a merge, a message that follows its
// group) keeps the one with the highest.
func Watermark(a template.Alert) int64 {
	w := a.StartsAt.UnixMilli() * 2
	if a.Status == StatusResolved {
		w++
	}
	return w
}

// Entry is one accepted webhook message as it waits in the queue: the message
// holds only the alerts that were not duplicates.
type Entry struct {
	// ID is unique per accepted message, set by the receiver; it stays the
	// same when the entry is redelivered, so processing can be idempotent.
	ID string `json:"id"`
	// Receipt is the queue's handle for acknowledging this delivery of the
	// entry; set by the queue, never stored.
	Receipt string `json:"-"`
	// Shard is the store shard whose queue the entry came from, set by the
	// queue with Receipt: the entry's alerts live there, and its commit
	// goes there.
	Shard      int       `json:"-"`
	ReceivedAt time.Time `json:"receivedAt"`
	RequestID  string    `json:"requestId,omitempty"`
	Message    *Message  `json:"message"`
}

// Observation is one sighting of an alert, as kept in its history.
type Observation struct {
	Status     string    `json:"status"`
	StartsAt   time.Time `json:"startsAt"`
	EndsAt     time.Time `json:"endsAt,omitzero"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// ObservationOf returns the observation an alert represents, received at t.
func ObservationOf(a template.Alert, t time.Time) Observation {
	o := Observation{Status: a.Status, StartsAt: a.StartsAt.UTC(), ReceivedAt: t.UTC()}
	if a.Status == StatusResolved {
		o.EndsAt = a.EndsAt.UTC()
	}
	return o
}

// Queue errors shared by every backend, so that the receiver can tell
// Alertmanager to retry without knowing which backend is in use.
var (
	// ErrQueueFull means the queue is at capacity; the sender should retry.
	ErrQueueFull = errors.New("queue is full")
	// ErrStoreUnavailable wraps a failure to reach the store.
	ErrStoreUnavailable = errors.New("store unavailable")
)

// ErrBadCursor is a page cursor that the API did not give: the caller's
// mistake (400), not a fault.
var ErrBadCursor = errors.New("cursor is not one this API gave")

// Unavailable wraps err so that errors.Is(err, ErrStoreUnavailable) holds.
func Unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, ErrStoreUnavailable, err)
}

// EnqueueResult says what a queue did with an entry.
type EnqueueResult struct {
	Queued     bool // an entry was queued
	Accepted   int  // alerts queued
	Duplicates int  // alerts left out as already seen within the dedup window
}
