// Package log is the integration that renders what would be sent into the
// daemon's log. It is what every target uses until its integration has real
// credentials, so that a first run shows routing at work without an outbound
// call.
package log

import (
	"context"
	"strings"

	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
)

// Notifier logs notifications.
type Notifier struct {
	log zerolog.Logger
}

// New returns a Notifier writing to l.
func New(l zerolog.Logger) *Notifier { return &Notifier{log: l} }

// Notify writes one line for the notification and one per alert in it.
func (n *Notifier) Notify(_ context.Context, nt *notifiers.Notification) (bool, error) {
	ev := n.log.Info().
		Str("kind", nt.Kind).
		Str("receiver", nt.Target.Receiver).
		Str("integration", nt.Target.Integration).
		Str("target", nt.Target.Name).
		Str("key", nt.Key).
		Int("alerts", len(nt.Alerts))
	for k, v := range nt.Target.Settings {
		if secretish(k) {
			v = "<secret>"
		}
		ev = ev.Str("settings."+k, v)
	}
	for k, v := range nt.Facts {
		ev = ev.Str("facts."+alert.LogValue(k), alert.LogValue(v))
	}
	if nt.Text != "" {
		ev = ev.Str("text", alert.LogValue(nt.Text))
	}
	ev.Msg("would notify")
	// One short line per alert; what the notification line says already
	// (receiver, kind, key) is not repeated.
	for _, a := range nt.Alerts {
		n.log.Info().
			Str("target", nt.Target.Name).
			Str("alertname", alert.LogValue(a.Labels["alertname"])).
			Str("fingerprint", alert.LogValue(a.Fingerprint)).
			Str("status", a.Status).
			Str("severity", alert.LogValue(a.Labels["severity"])).
			Str("summary", alert.LogValue(a.Annotations["summary"])).
			Msg("would notify alert")
	}
	return false, nil
}

// secretish says whether a setting's name suggests a credential, so that
// the log never carries one even if a user put it in settings.
func secretish(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"key", "token", "password", "secret", "url", "auth"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}
