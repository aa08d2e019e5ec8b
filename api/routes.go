package api

import (
	"encoding/json"
	"time"
)

// RouteAnswer is the answer of `alertmedic routes test` and of
// GET /api/v1/routes/test: where an alert with these labels goes at that
// instant.
type RouteAnswer struct {
	Labels   map[string]string `json:"labels"`
	At       time.Time         `json:"at"`
	Routes   []string          `json:"routes"`
	Targets  []RouteTarget     `json:"targets"`
	Notified []string          `json:"notified_receivers"`
	// Flapping is the flap detection that applies to the alert, a
	// flapping.Config as that type encodes itself (its durations as
	// Prometheus durations, "30m"): decode it into one to read it.
	Flapping json.RawMessage `json:"flapping"`
	// Explanation is the same answer for people.
	Explanation string `json:"explanation"`
}

// RouteTarget is one target and its fate at that instant.
type RouteTarget struct {
	Receiver    string `json:"receiver"`
	Integration string `json:"integration"`
	Name        string `json:"name"`
	Route       string `json:"route"`
	Action      string `json:"action"` // notify, hold, drop or defer
	// HeldFor names the remediation rule whose verdict a firing alert's
	// page waits for here (hold_for_remediation).
	HeldFor string     `json:"held_for_remediation,omitempty"`
	MutedBy string     `json:"muted_by,omitempty"`
	Until   *time.Time `json:"until,omitempty"`
}
