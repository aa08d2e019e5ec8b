package api

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Stages of a timeline event: what one part of alertmedic decided about an
// alert, in the order they happen.
const (
	StageReceived   = "received"   // an observation came in a webhook (its request, its Alertmanager)
	StageFlapping   = "flapping"   // the flap detection's verdict, when flapping or its state changed
	StageRouted     = "routed"     // the routes it matched
	StageNotify     = "notify"     // queued for a target (Item names the outbox item)
	StageMuted      = "muted"      // dropped on a target by a mute time interval
	StageDeferred   = "deferred"   // held for a target's digest until the mute ends
	StageHeld       = "held"       // held from a target for remediation (hold_for_remediation)
	StageSuppressed = "suppressed" // held back while it flaps
	StageAlready    = "already"    // this observation, or a newer one, went to the target already
	StageAttempt    = "attempt"    // a delivery attempt that failed (and is retried)
	StageDelivered  = "delivered"  // delivered to a target
	StageFailed     = "failed"     // a delivery that failed for good (a dead letter)
	StageRemedy     = "remediation"
	StageClick      = "click" // a Slack button: acknowledged, silenced, approved, by whom
)

// TimelineEvent is one step of an alert's story.
type TimelineEvent struct {
	At     time.Time `json:"at"`
	Stage  string    `json:"stage"`
	Target string    `json:"target,omitempty"` // receiver/integration, for per-target stages
	// Detail says what was decided, in words ("muted by quiet-hours until
	// 08:00 UTC", "status 429, retry after 30s").
	Detail string `json:"detail,omitempty"`
	// Item is the outbox item a notify, deferred or held event queued; the
	// delivery events of that item follow it.
	Item string `json:"item,omitempty"`
	// Messages are, for a delivered event, the keys of the messages that
	// carried it (several items' alerts may go in one message); an
	// integration names a message after its key (an email's Message-ID).
	Messages []string `json:"messages,omitempty"`
}

// Timeline is the answer of GET /api/v1/alerts/{fingerprint}/timeline:
// what alertmedic knows of one alert and every step it took, oldest first.
type Timeline struct {
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
	Status      string            `json:"status"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt,omitzero"`
	// GroupKey is its last Alertmanager group (its Slack message's).
	GroupKey string          `json:"groupKey,omitempty"`
	Events   []TimelineEvent `json:"events"`
	// Dropped counts the oldest events no longer kept (each alert keeps
	// its latest few dozen).
	Dropped int `json:"dropped,omitempty"`
}

// AlertSummary is one alert of GET /api/v1/alerts: its state now.
type AlertSummary struct {
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
	Status      string            `json:"status"` // firing or resolved
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt,omitzero"`
	SeenAt      time.Time         `json:"seenAt"`
	Flapping    bool              `json:"flapping"`
	// MutedUntil is, per target, when its mute ends (a deferred digest).
	MutedUntil map[string]time.Time `json:"mutedUntil,omitempty"`
	// HeldUntil is, per target, when a page held for remediation goes out
	// at the latest.
	HeldUntil map[string]time.Time `json:"heldUntil,omitempty"`
	// LastDelivery is, per target, the last thing that happened to its
	// notification (queued, deferred, delivered, attempt, failed, ...).
	LastDelivery map[string]string `json:"lastDelivery,omitempty"`
	Receivers    []string          `json:"receivers,omitempty"`
}

// AlertQuery selects the alerts GET /api/v1/alerts lists.
type AlertQuery struct {
	// Filter are Alertmanager matchers (alertname="X", team=~"a|b"), all
	// to match the alert's labels.
	Filter []string
	// State is "" or one of AlertStates.
	State string
	// Receiver keeps the alerts that reached one of its targets.
	Receiver string
	Limit    int
}

// AlertStates are the states a listing filters by.
var AlertStates = []string{"firing", "resolved", "flapping", "muted", "held"}

// ErrNoAlert: no record of the alert (never seen, or its history expired).
var ErrNoAlert = errors.New("no such alert (never seen, or its history_retention passed)")

// Alerts is the answer of GET /api/v1/alerts.
type Alerts struct {
	Alerts []AlertSummary `json:"alerts"`
	// Truncated: more alerts matched than the limit.
	Truncated bool `json:"truncated,omitempty"`
}

// LabelText is the labels as Prometheus prints a label set, sorted and
// quoted: {alertname="X", team="a"}.
func (t Timeline) LabelText() string {
	names := make([]string, 0, len(t.Labels))
	for k := range t.Labels {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("{")
	for i, k := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, t.Labels[k])
	}
	b.WriteString("}")
	return b.String()
}

// Story tells the timeline as a person reads it (alertmedic alert why):
// the alert, then each event on a line of its own, oldest first, times in
// UTC. Label values are quoted: they are data, never layout.
func (t Timeline) Story() string {
	var b strings.Builder
	fmt.Fprintf(&b, "alert %s (fingerprint %s)\n", t.LabelText(), t.Fingerprint)
	fmt.Fprintf(&b, "now %s since %s", t.Status, t.StartsAt.UTC().Format(time.RFC3339))
	if !t.EndsAt.IsZero() {
		fmt.Fprintf(&b, ", ended %s", t.EndsAt.UTC().Format(time.RFC3339))
	}
	b.WriteString("\n")
	if t.Dropped > 0 {
		fmt.Fprintf(&b, "(%d older events are no longer kept)\n", t.Dropped)
	}
	for _, e := range t.Events {
		fmt.Fprintf(&b, "%s  %s", e.At.UTC().Format("2006-01-02 15:04:05"), e.Stage)
		if e.Target != "" {
			fmt.Fprintf(&b, " %s", e.Target)
		}
		if e.Detail != "" {
			q := strconv.QuoteToGraphic(e.Detail) // one line, whatever a label held
			fmt.Fprintf(&b, ": %s", q[1:len(q)-1])
		}
		b.WriteString("\n")
	}
	return b.String()
}
