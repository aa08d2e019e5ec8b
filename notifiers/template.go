package notifiers

import (
	"fmt"
	"sync"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
)

// Data is what a notification's templates see: Alertmanager's own
// template.Data, so templates written for Alertmanager work unchanged
// ({{ .Status }}, {{ range .Alerts }}, {{ .CommonLabels.alertname }}, ...).
func Data(n *Notification) *template.Data {
	d := &template.Data{
		Receiver:          n.Target.Receiver,
		Status:            alert.StatusResolved,
		Alerts:            n.Alerts,
		GroupLabels:       template.KV{},
		CommonLabels:      template.KV{},
		CommonAnnotations: template.KV{},
		ExternalURL:       n.ExternalURL,
	}
	for _, a := range n.Alerts {
		if a.Status == alert.StatusFiring {
			d.Status = alert.StatusFiring
		}
	}
	if len(n.Alerts) > 0 {
		for k, v := range n.Alerts[0].Labels {
			d.CommonLabels[k] = v
		}
		for k, v := range n.Alerts[0].Annotations {
			d.CommonAnnotations[k] = v
		}
		for _, a := range n.Alerts[1:] {
			for k, v := range d.CommonLabels {
				if a.Labels[k] != v {
					delete(d.CommonLabels, k)
				}
			}
			for k, v := range d.CommonAnnotations {
				if a.Annotations[k] != v {
					delete(d.CommonAnnotations, k)
				}
			}
		}
		if name, ok := d.CommonLabels["alertname"]; ok {
			d.GroupLabels["alertname"] = name
		}
	}
	return d
}

var (
	tmplOnce sync.Once
	tmpl     *template.Template
	tmplErr  error
)

// Template is Alertmanager's template engine with its default templates
// and functions (toUpper, humanizeDuration, ...), shared by every
// integration.
func Template() (*template.Template, error) {
	tmplOnce.Do(func() { tmpl, tmplErr = template.FromGlobs(nil) })
	return tmpl, tmplErr
}

// Render expands a text template against n's data.
func Render(text string, n *Notification) (string, error) {
	t, err := Template()
	if err != nil {
		return "", fmt.Errorf("load templates: %w", err)
	}
	s, err := t.ExecuteTextString(text, Data(n))
	if err != nil {
		return "", fmt.Errorf("render template: %w", err)
	}
	return s, nil
}

// RenderHTML expands an HTML template (escaping values) against n's data.
func RenderHTML(text string, n *Notification) (string, error) {
	t, err := Template()
	if err != nil {
		return "", fmt.Errorf("load templates: %w", err)
	}
	s, err := t.ExecuteHTMLString(text, Data(n))
	if err != nil {
		return "", fmt.Errorf("render template: %w", err)
	}
	return s, nil
}

// Template settings a receiver's integration entry may set to override the
// integration's templates for that target alone.
const (
	SettingTitle   = "title"
	SettingText    = "text"
	SettingSubject = "subject"
	SettingHTML    = "html"
	SettingSummary = "summary"
)

// TemplateFor is the target's own template for key when its settings name
// one, else def (the integration's).
func TemplateFor(n *Notification, key, def string) string {
	if v := n.Target.Settings[key]; v != "" {
		return v
	}
	return def
}

// CheckTemplate parses a template, for load-time checks of overrides.
func CheckTemplate(text string) error {
	_, err := Render(text, &Notification{})
	return err
}
