package email

import (
	"fmt"
	"strings"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/notifiers"
)

// Data is what the subject, text and HTML templates see: Alertmanager's
// template data, so templates written for Alertmanager work unchanged, and
// what a notice adds to it.
type Data struct {
	*template.Data
	// Kind is the notification's kind (alerts, digest, flapping_started,
	// flapping_stopped).
	Kind string
	// Intro opens the body: a notice's text, or a digest's summary line.
	// Empty for alerts.
	Intro string
	// Facts are a notice's figures (changes, window, percent, ...).
	Facts map[string]string
}

func data(nt *notifiers.Notification) *Data {
	d := &Data{Data: notifiers.Data(nt), Kind: nt.Kind, Facts: nt.Facts}
	switch nt.Kind {
	case notifiers.KindFlappingStarted, notifiers.KindFlappingStopped, notifiers.KindRemediation:
		d.Intro = nt.Text
	case notifiers.KindDigest:
		d.Intro = fmt.Sprintf("%s held during quiet hours; their latest state follows.", digestCount(len(nt.Alerts)))
		if nt.More > 0 {
			d.Intro = fmt.Sprintf("%s held during quiet hours; the latest state of %d follows, the other %d are not listed.", digestCount(len(nt.Alerts)+nt.More), len(nt.Alerts), nt.More)
		}
		if nt.Text != "" {
			d.Intro = nt.Text
		}
	case notifiers.KindAlerts:
		// A page held while remediation tried says what it did.
		var tried []string
		for _, a := range nt.Alerts {
			if s := nt.Tried[a.Fingerprint]; s != "" {
				tried = append(tried, s)
			}
		}
		if len(tried) > 0 {
			d.Intro = "Remediation tried first: " + strings.Join(tried, "; ")
		}
	}
	return d
}

// render expands a template with Alertmanager's engine (its default
// templates and functions), as HTML (escaping values) when html is set.
func render(text string, nt *notifiers.Notification, html bool) (string, error) {
	return notifiers.Execute(text, data(nt), html)
}
