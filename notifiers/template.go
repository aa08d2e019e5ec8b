package notifiers

import (
	"fmt"
	tmplhtml "html/template"
	"io"
	"strings"
	"sync"
	tmpltext "text/template"

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
	// The text and HTML template sets inside tmpl: its default templates
	// and functions, never executed, cloned once per text (parsed).
	rootText *tmpltext.Template
	rootHTML *tmplhtml.Template
)

// engine is Alertmanager's template engine with its default templates
// and functions (toUpper, humanizeDuration, ...), shared by every
// integration.
func engine() (*template.Template, error) {
	tmplOnce.Do(func() {
		tmpl, tmplErr = template.FromGlobs(nil, func(t *tmpltext.Template, h *tmplhtml.Template) { rootText, rootHTML = t, h })
	})
	return tmpl, tmplErr
}

// Render expands a text template against n's data.
func Render(text string, n *Notification) (string, error) { return Execute(text, Data(n), false) }

// RenderHTML expands an HTML template (escaping values) against n's data.
func RenderHTML(text string, n *Notification) (string, error) { return Execute(text, Data(n), true) }

// Execute expands text against data with Alertmanager's engine, as HTML
// (escaping values) when html is set: what its ExecuteTextString and
// ExecuteHTMLString give. They clone the whole template set (Alertmanager's
// default templates) and parse the text again on every call, which in a
// storm is most of the garbage a notification makes. Here a text is parsed
// once, into a clone of the set of its own, and that is executed each time
// (a parsed template may execute concurrently). The texts are the
// integrations' and the targets' templates, a few dozen; past maxParsed
// (after many reloads that changed them) a text is rendered as
// Alertmanager does, uncached.
//
// Alertmanager's routeLabels function renders the route labels of the
// data it is given (its 0.35 webhook's routeLabels); a notification's data
// carries none, so here it renders "", as Alertmanager's does for it.
func Execute(text string, data any, html bool) (string, error) {
	if text == "" {
		return "", nil
	}
	t, err := engine()
	if err != nil {
		return "", fmt.Errorf("load templates: %w", err)
	}
	x, err := parse(text, html)
	if err != nil {
		return "", fmt.Errorf("render template: %w", err)
	}
	var s string
	if x == nil {
		if html {
			s, err = t.ExecuteHTMLString(text, data)
		} else {
			s, err = t.ExecuteTextString(text, data)
		}
	} else {
		var b strings.Builder
		err = x.Execute(&b, data)
		s = b.String()
	}
	if err != nil {
		return "", fmt.Errorf("render template: %w", err)
	}
	return s, nil
}

// maxParsed bounds the parsed texts kept.
const maxParsed = 1024

type executor interface {
	Execute(w io.Writer, data any) error
}

type parseKey struct {
	text string
	html bool
}

type parsedText struct {
	x   executor
	err error
}

var parsed struct {
	mu sync.Mutex
	m  map[parseKey]parsedText
}

// noRouteLabels is routeLabels for data without route labels.
func noRouteLabels(string) (string, error) { return "", nil }

// Parse reports text's syntax errors as Alertmanager's engine finds them
// (with its functions), for a configuration's load: a typo fails the load,
// not the first page at night.
func Parse(text string) error {
	if _, err := engine(); err != nil {
		return fmt.Errorf("load templates: %w", err)
	}
	_, err := parse(text, false)
	return err
}

// parse is text parsed into a clone of the set, or its parse error; nil,
// nil when maxParsed texts are kept already. The engine is loaded.
func parse(text string, html bool) (executor, error) {
	parsed.mu.Lock()
	defer parsed.mu.Unlock()
	k := parseKey{text, html}
	if p, ok := parsed.m[k]; ok {
		return p.x, p.err
	}
	if len(parsed.m) >= maxParsed {
		return nil, nil
	}
	var p parsedText
	if html {
		c, err := rootHTML.Clone()
		if err == nil {
			c, err = c.New("").Option("missingkey=zero").Funcs(tmplhtml.FuncMap{"routeLabels": noRouteLabels}).Parse(text)
		}
		if p.err = err; err == nil {
			p.x = c
		}
	} else {
		c, err := rootText.Clone()
		if err == nil {
			c, err = c.New("").Option("missingkey=zero").Funcs(tmpltext.FuncMap{"routeLabels": noRouteLabels}).Parse(text)
		}
		if p.err = err; err == nil {
			p.x = c
		}
	}
	if parsed.m == nil {
		parsed.m = map[parseKey]parsedText{}
	}
	parsed.m[k] = p
	return p.x, p.err
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
