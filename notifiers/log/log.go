// Package log is the integration that renders what would be sent into the
// daemon's log. It is what every target uses until its integration has real
// credentials, so that a first run shows routing at work without an outbound
// call: with the integration's renderer, the exact body it would send.
package log

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
)

// Render renders the body an integration would send for a notification
// (as slack.Render, pagerduty.Render, email.Render and webhook.Render do),
// nil when it sends nothing. It must never return a credential.
type Render func(nt *notifiers.Notification) ([]byte, error)

// MaxBody bounds the rendered body on a log line, counted as the JSON log
// writes it (a quote or newline takes two bytes, a control character six),
// so that a line stays under 16 KiB with the notification's other fields
// (their values are bounded by alert.LogValue): a storm's message is data
// of any size, and one line of it per notification would swamp the log.
// `alertmedic template render` shows a body whole.
const MaxBody = 10 << 10

// Notifier logs notifications.
type Notifier struct {
	log    zerolog.Logger
	render map[string]Render
}

// New returns a Notifier writing to l. render holds, by integration type
// (routing.Slack, ...), how the integration of that type would render a
// notification; a type without one logs no body.
func New(l zerolog.Logger, render map[string]Render) *Notifier {
	return &Notifier{log: l, render: render}
}

// Notify writes one line for the notification, with the body its
// integration would send, and one per alert in it. It never fails: a body
// that does not render is logged as render_error.
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
	if render := n.render[nt.Target.Integration]; render != nil {
		switch body, err := render(nt); {
		case err != nil:
			ev = ev.Str("render_error", alert.LogValue(err.Error()))
		case len(body) == 0:
			ev = ev.Bool("sends_nothing", true)
		default:
			ev = ev.Str("body", bound(string(body), MaxBody))
		}
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

// bound returns s whole when the JSON log writes it in at most limit bytes,
// or as much of it as fits (cut before a rune) and alert.LogValue's marker
// saying how long it was: "…[cut: 70312 bytes]".
func bound(s string, limit int) string {
	size := 0
	for i, r := range s {
		switch {
		case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
			size += 2
		case r < 0x20 || r == utf8.RuneError:
			size += 6
		default:
			size += utf8.RuneLen(r)
		}
		if size > limit {
			return s[:i] + "…[cut: " + strconv.Itoa(len(s)) + " bytes]"
		}
	}
	return s
}
