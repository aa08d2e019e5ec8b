package api

import (
	"encoding/json"
	"time"
)

// DeadLetters is one page of GET /api/v1/deliveries/failed: notifications
// that failed for good, newest first.
type DeadLetters struct {
	Deliveries []DeadLetter `json:"deliveries"`
	// Total counts the dead letters kept (store.*.max_dead_letters at
	// most; past it the oldest go, counted by
	// alertmedic_notifications_dead_letters_evicted_total).
	Total int `json:"total"`
	// NextCursor, given as cursor, continues after this page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// DeadLetter is a notification that failed for good: a summary, and the
// notification itself when asked for.
type DeadLetter struct {
	Key         string    `json:"key"`
	Kind        string    `json:"kind"`
	Target      string    `json:"target"`
	Integration string    `json:"integration"`
	Alerts      int       `json:"alerts"`
	Attempts    int       `json:"attempts"`
	Error       string    `json:"error"`
	At          time.Time `json:"at"`
	// Fingerprints are the alerts', in order.
	Fingerprints []string `json:"fingerprints"`
	// Notification, with full=true, is the notification itself, a
	// notifiers.Notification as that type encodes itself: decode it into
	// one to read it.
	Notification json.RawMessage `json:"notification,omitempty"`
}
