// Package notifiers turns a routed notification into a message on an
// integration (Slack, email, PagerDuty, webhook, or the log). This file holds
// what every integration shares: the notification, the contract and the
// default rendering; each integration lives in its own sub-package.
package notifiers

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/routing"
)

// Kinds of notification.
const (
	KindAlerts          = "alerts"           // alerts as they arrive
	KindDigest          = "digest"           // alerts held during a mute (defer), sent when it ends
	KindFlappingStarted = "flapping_started" // an alert (or group, with by:) started flapping
	KindFlappingStopped = "flapping_stopped" // and stopped
	KindRemediation     = "remediation"      // a remediation action ran or failed
)

// Notification is one message for one target.
type Notification struct {
	// Key makes delivery idempotent: the same key is delivered once.
	Key    string          `json:"key"`
	Kind   string          `json:"kind"`
	Target routing.Target  `json:"target"`
	Alerts template.Alerts `json:"alerts,omitempty"`
	// GroupKey and ExternalURL come from the Alertmanager message, when one
	// caused this notification.
	GroupKey    string `json:"groupKey,omitempty"`
	ExternalURL string `json:"externalURL,omitempty"`
	// Text is the ready-made body of alertmedic's own notices.
	Text string `json:"text,omitempty"`
	// Facts carry a notice's figures (changes, window, percent) for
	// templates and structured logs.
	Facts map[string]string `json:"facts,omitempty"`
	// More counts alerts this message stands for but does not carry (a
	// digest past its cap): a message that shows a count ("and N more")
	// adds them to it.
	More int `json:"more,omitempty"`
	// Tried says, by fingerprint, what remediation did before this alert's
	// page went out: set on a page held for remediation
	// (hold_for_remediation) and released because the action did not help
	// or did not run. Integrations show it with the alert.
	Tried map[string]string `json:"tried,omitempty"`
}

// PerMessage is implemented by notifiers whose messages carry a bounded
// number of alerts (a PagerDuty event carries one, a webhook POST up to its
// max_alerts): the dispatcher splits a notification into messages of at
// most that many. 0 means one message carries, or counts, any number.
type PerMessage interface {
	PerMessage(integration string) int
}

// Notifier delivers notifications. Like Alertmanager's, it says whether a
// failure is worth retrying.
type Notifier interface {
	Notify(ctx context.Context, n *Notification) (retry bool, err error)
}

// Cut shortens s to at most limit bytes, "…" included, on a rune boundary,
// so that what an integration sends stays valid UTF-8 (invalid bytes already
// in s are replaced too) and within the service's limit.
func Cut(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= limit {
		return s
	}
	i := max(limit-len("…"), 0)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
