package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/notifiers/email"
	lognotifier "github.com/alertmedic/alertmedic/notifiers/log"
	"github.com/alertmedic/alertmedic/notifiers/pagerduty"
	"github.com/alertmedic/alertmedic/notifiers/slack"
	"github.com/alertmedic/alertmedic/notifiers/webhook"
	"github.com/alertmedic/alertmedic/routing"
)

// renderers render, by integration type, the body each integration would
// send with its configuration in in. None returns a credential, configured
// or not.
func renderers(in config.IntegrationsConfig) map[string]lognotifier.Render {
	return map[string]lognotifier.Render{
		routing.Slack:     func(nt *notifiers.Notification) ([]byte, error) { return slack.Render(in.Slack, nt) },
		routing.Email:     func(nt *notifiers.Notification) ([]byte, error) { return email.Render(in.Email, nt) },
		routing.PagerDuty: func(nt *notifiers.Notification) ([]byte, error) { return pagerduty.Render(in.PagerDuty, nt) },
		routing.Webhook:   func(nt *notifiers.Notification) ([]byte, error) { return webhook.Render(in.Webhook, nt) },
	}
}

// logRenderers are the log integration's: one for each integration without
// credentials, whose targets render into the log instead of sending.
func logRenderers(in config.IntegrationsConfig) map[string]lognotifier.Render {
	r := renderers(in)
	for typ, live := range map[string]bool{
		routing.Slack:     in.Slack.Configured(),
		routing.Email:     in.Email.Configured(),
		routing.PagerDuty: in.PagerDuty.Configured(),
		routing.Webhook:   in.Webhook.Configured(),
	} {
		if live {
			delete(r, typ)
		}
	}
	return r
}

// TemplateRender writes, for each integration of receiver in cfg, the body
// it would send for payload (an Alertmanager webhook message, decoded and
// checked as the webhook does), under a heading "receiver/name (type)":
// the answer of `alertmedic template render`. Every alert of the message
// is rendered, as Alertmanager's `amtool template render` does: routes,
// mutes, flapping and deduplication do not apply, and nothing is sent. JSON
// bodies are indented, one event or message after another; the log shows
// them as sent. An unknown receiver is an error; so is a body that does not
// render, after every other integration's is written.
func TemplateRender(w io.Writer, cfg *config.Config, receiver string, payload []byte) error {
	msg, err := alert.Decode(payload, alert.Limits{MaxAlerts: cfg.Web.MaxAlerts})
	if err != nil {
		return fmt.Errorf("read payload: %w", err)
	}
	var names []string
	known := false
	for _, r := range cfg.Receivers {
		names = append(names, r.Name)
		known = known || r.Name == receiver
	}
	if !known {
		return fmt.Errorf("receiver %q is not in the configuration (receivers: %s)", receiver, strings.Join(names, ", "))
	}
	tree, err := CompileRoutes(cfg)
	if err != nil {
		return err
	}
	targets := tree.ReceiverTargets(receiver)
	if len(targets) == 0 {
		fmt.Fprintf(w, "receiver %q has no integrations: nothing is sent\n", receiver)
		return nil
	}
	render := renderers(cfg.Integrations)
	var failed []string
	for i, t := range targets {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s (%s)\n", t.Key(), t.Integration)
		nt := &notifiers.Notification{
			// As the pipeline names a message's notification; email's
			// Message-ID comes from it.
			Key:         "e:render:" + t.Key(),
			Kind:        notifiers.KindAlerts,
			Target:      t,
			Alerts:      msg.Alerts,
			GroupKey:    msg.GroupKey,
			ExternalURL: msg.ExternalURL,
		}
		r := render[t.Integration]
		if r == nil {
			fmt.Fprintf(w, "(the %s integration renders no message)\n", t.Integration)
			continue
		}
		body, err := r(nt)
		switch {
		case err != nil:
			fmt.Fprintf(w, "error: %s\n", err)
			failed = append(failed, t.Key())
		case len(body) == 0:
			fmt.Fprintln(w, "(nothing is sent)")
		case t.Integration == routing.Email:
			_, _ = w.Write(body)
		default:
			_, _ = w.Write(indentJSON(body))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("render %s: failed", strings.Join(failed, ", "))
	}
	return nil
}

// indentJSON indents each line of body that is a JSON document (a
// PagerDuty event per line, or one message), for a person to read.
func indentJSON(body []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimRight(body, "\n"), []byte("\n")) {
		if err := json.Indent(&out, line, "", "  "); err != nil {
			out.Write(line)
		}
		out.WriteByte('\n')
	}
	return out.Bytes()
}
