package slack

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"

	"github.com/prometheus/alertmanager/template"
	"github.com/slack-go/slack"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
)

// Slack's attachment colours, keyed by the severity label.
var colors = map[string]string{"critical": "danger", "warning": "warning"}

// startedAtLayout writes a start time as 2026-01-02 15:04:05 UTC.
const startedAtLayout = "2006-01-02 15:04:05 UTC"

// errNoAlerts: a notification with nothing to show is a caller's bug, and
// Slack would refuse the empty message anyway.
var errNoAlerts = errors.New("build message: notification has no alerts")

// message builds the one Slack message for a notification. Both transports
// send its fields: the webhook as JSON, the Web API as form values.
func (n *Notifier) message(nt *notifiers.Notification) (*slack.WebhookMessage, error) {
	msg := &slack.WebhookMessage{
		Username:  n.cfg.Username,
		IconEmoji: n.cfg.IconEmoji,
		Channel:   nt.Target.Settings["channel"],
	}
	switch nt.Kind {
	case notifiers.KindFlappingStarted, notifiers.KindFlappingStopped, notifiers.KindRemediation:
		msg.Attachments = []slack.Attachment{n.notice(nt)}
		n.addResume(msg, nt)
		n.addApproval(msg, nt)
		return msg, nil
	case notifiers.KindDigest:
		word := "alerts"
		if len(nt.Alerts)+nt.More == 1 {
			word = "alert"
		}
		msg.Text = fmt.Sprintf("Digest: %d %s held during quiet hours", len(nt.Alerts)+nt.More, word)
	}
	if len(nt.Alerts) == 0 && nt.More == 0 {
		return nil, errNoAlerts
	}
	shown := nt.Alerts
	if len(shown) > n.cfg.MaxAttachments {
		shown = shown[:n.cfg.MaxAttachments]
	}
	for i := range shown {
		a, err := n.attachment(nt, i)
		if err != nil {
			return nil, err
		}
		msg.Attachments = append(msg.Attachments, a)
	}
	if rest := len(nt.Alerts) - len(shown) + nt.More; rest > 0 {
		more := fmt.Sprintf("and %d more alerts", rest)
		if rest == 1 {
			more = "and 1 more alert"
		}
		msg.Attachments = append(msg.Attachments, slack.Attachment{Fallback: more, Text: more, Footer: n.cfg.Footer})
	}
	return msg, nil
}

// attachment renders alert i of nt: colour, title, text, fields, runbook.
func (n *Notifier) attachment(nt *notifiers.Notification, i int) (slack.Attachment, error) {
	a := nt.Alerts[i]
	// The templates see this alert alone; see Config.Title.
	one := *nt
	one.Alerts = template.Alerts{a}
	title, err := notifiers.Render(notifiers.TemplateFor(nt, notifiers.SettingTitle, n.cfg.Title), &one)
	if err != nil {
		return slack.Attachment{}, fmt.Errorf("build message: title: %w", err)
	}
	text, err := notifiers.Render(notifiers.TemplateFor(nt, notifiers.SettingText, n.cfg.Text), &one)
	if err != nil {
		return slack.Attachment{}, fmt.Errorf("build message: text: %w", err)
	}

	color := "good"
	if a.Status != alert.StatusResolved {
		if c, ok := colors[a.Labels["severity"]]; ok {
			color = c
		}
	}
	description := a.Annotations["description"]
	if description == "" {
		description = "N/A"
	}
	att := slack.Attachment{
		Color: color,
		// Without a fallback Slack's push notifications and screen readers
		// show "[no preview available]" for an attachment-only message.
		Fallback: title + " - " + text,
		Title:    title,
		Text:     text,
		Fields: []slack.AttachmentField{
			{Title: "Description", Value: description},
			{Title: "Status", Value: a.Status, Short: true},
			{Title: "Started At", Value: a.StartsAt.UTC().Format(startedAtLayout), Short: true},
		},
		Footer: n.cfg.Footer,
	}
	if tried := nt.Tried[a.Fingerprint]; tried != "" {
		// The page was held while remediation tried: what it did.
		att.Fields = append(att.Fields, slack.AttachmentField{Title: "Remediation tried", Value: tried})
	}
	if !a.StartsAt.IsZero() {
		att.Ts = json.Number(strconv.FormatInt(a.StartsAt.Unix(), 10))
	}
	if u := a.Annotations["runbook_url"]; u != "" {
		att.Actions = []slack.AttachmentAction{{Name: "runbook", Type: "button", Text: "Runbook", URL: u}}
	}
	if n.cfg.AlertPageURL != "" && a.Fingerprint != "" {
		// Why was I (not) paged: the alert's timeline on alertmedic's page.
		att.Actions = append(att.Actions, slack.AttachmentAction{Name: "timeline", Type: "button", Text: "Timeline", URL: n.cfg.AlertPageURL + url.PathEscape(a.Fingerprint)})
	}
	return att, nil
}

// notice renders one of alertmedic's own notices: its ready-made text, and
// its facts as fields in a stable order so that messages compare.
func (n *Notifier) notice(nt *notifiers.Notification) slack.Attachment {
	title, color := "Flapping started", "warning"
	switch {
	case nt.Kind == notifiers.KindFlappingStopped:
		title, color = "Flapping stopped", "good"
	case nt.Kind == notifiers.KindRemediation && nt.Facts["result"] == "failed":
		title, color = "Remediation failed", "danger"
	case nt.Kind == notifiers.KindRemediation:
		title, color = "Remediation", "good"
	}
	if name := nt.Facts["alertname"]; name != "" {
		title += ": " + name
	}
	att := slack.Attachment{Color: color, Fallback: nt.Text, Title: title, Text: nt.Text, Footer: n.cfg.Footer}
	keys := make([]string, 0, len(nt.Facts))
	for k := range nt.Facts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		att.Fields = append(att.Fields, slack.AttachmentField{Title: k, Value: nt.Facts[k], Short: true})
	}
	return att
}
