package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/alertmanager/template"
	"github.com/slack-go/slack"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/routing"
)

// Bounds of a group's ref, which the store keeps for a day after its last
// write.
const (
	maxRefAlerts     = 100  // alerts kept; the rest are counted
	maxRefLines      = 10   // outcome lines kept, the latest
	maxLineLen       = 200  // characters of one outcome line
	maxAnnotationLen = 1024 // characters of one annotation kept
	maxReplyChanges  = 5    // changes a thread reply names
)

// gone are chat.update's answers for a message that can no longer be
// updated: deleted, not the app's, or past the workspace's edit window.
// The group then gets a new message.
var gone = map[string]bool{"message_not_found": true, "cant_update_message": true, "edit_window_closed": true}

// groupRef is what the store keeps of a group followed up on one target:
// its message, the group as merged from its notifications, and the outcome
// of the clicks on its buttons.
type groupRef struct {
	Channel     string         `json:"channel,omitempty"` // the ID Slack answered, which chat.update needs
	TS          string         `json:"ts,omitempty"`
	GroupKey    string         `json:"groupKey"`
	TargetKey   string         `json:"targetKey"`
	Target      routing.Target `json:"target"`
	ExternalURL string         `json:"externalURL,omitempty"`
	// Alerts by fingerprint, the latest observation of each, firing first.
	Alerts []template.Alert `json:"alerts"`
	// More counts the alerts past maxRefAlerts, and those the last
	// notification counted without carrying.
	More  int      `json:"more,omitempty"`
	Lines []string `json:"lines,omitempty"`
	// LastKey is the notification merged last and LastReply its thread
	// reply, so that a retried notification replies as its first try.
	LastKey   string `json:"lastKey,omitempty"`
	LastReply string `json:"lastReply,omitempty"`
}

// decodeRef reads a ref; an unreadable one (written by a later version, or
// damaged) starts the group anew rather than stopping its notifications.
func decodeRef(b []byte) *groupRef {
	g := &groupRef{}
	if b != nil && json.Unmarshal(b, g) != nil {
		return &groupRef{}
	}
	return g
}

// group is what the ref knows of the group, as an Actor sees it.
func (g *groupRef) group() Group {
	return Group{Key: g.GroupKey, Target: g.Target, ExternalURL: g.ExternalURL, Alerts: g.Alerts}
}

// merge adds nt's alerts to the group and returns what changed, as
// "HighErrorRate resolved". An alert's latest observation wins, ordered as
// the pipeline orders them (start time, then resolved after firing), so a
// notification retried late does not bring back a state already replaced.
func (g *groupRef) merge(nt *notifiers.Notification) []string {
	g.GroupKey, g.TargetKey, g.Target = nt.GroupKey, nt.Target.Key(), nt.Target
	if nt.ExternalURL != "" {
		g.ExternalURL = nt.ExternalURL
	}
	at := make(map[string]int, len(g.Alerts)+len(nt.Alerts))
	for i, a := range g.Alerts {
		at[a.Fingerprint] = i
	}
	var changes []string
	for _, a := range nt.Alerts {
		a = bounded(a)
		i, ok := at[a.Fingerprint]
		switch {
		case !ok:
			at[a.Fingerprint] = len(g.Alerts)
			g.Alerts = append(g.Alerts, a)
			changes = append(changes, alertName(a)+" "+a.Status)
		case alert.Watermark(a) >= alert.Watermark(g.Alerts[i]):
			if a.Status != g.Alerts[i].Status {
				changes = append(changes, alertName(a)+" "+a.Status)
			}
			g.Alerts[i] = a
		}
	}
	sort.SliceStable(g.Alerts, func(i, j int) bool {
		a, b := g.Alerts[i], g.Alerts[j]
		if fa, fb := a.Status != alert.StatusResolved, b.Status != alert.StatusResolved; fa != fb {
			return fa
		}
		if !a.StartsAt.Equal(b.StartsAt) {
			return a.StartsAt.Before(b.StartsAt)
		}
		return a.Fingerprint < b.Fingerprint
	})
	// Alertmanager sends the whole group each time, so what is past the cap
	// now is counted afresh; firing alerts are kept first.
	g.More = nt.More
	if len(g.Alerts) > maxRefAlerts {
		g.More += len(g.Alerts) - maxRefAlerts
		g.Alerts = g.Alerts[:maxRefAlerts]
	}
	return changes
}

// addLine keeps the outcome of a click, the latest maxRefLines.
func (g *groupRef) addLine(line string) {
	g.Lines = append(g.Lines, notifiers.Cut(line, maxLineLen))
	if len(g.Lines) > maxRefLines {
		g.Lines = g.Lines[len(g.Lines)-maxRefLines:]
	}
}

func (g *groupRef) firing() bool {
	for _, a := range g.Alerts {
		if a.Status != alert.StatusResolved {
			return true
		}
	}
	return false
}

// text is the message's text: the summary, then each outcome line.
func (g *groupRef) text() string {
	return strings.Join(append([]string{summarize(g.Alerts, g.More)}, g.Lines...), "\n")
}

// reply is the thread reply to an update, as "2 firing, 1 resolved:
// HighErrorRate resolved".
func (g *groupRef) reply(changes []string) string {
	s := summarize(g.Alerts, g.More)
	switch {
	case len(changes) > 0:
		return s + ": " + listChanges(changes)
	case g.firing():
		// Alertmanager's repeat_interval: the reply is the reminder.
		return s + ": still firing"
	}
	return s
}

// summarize counts alerts as "3 firing, 2 resolved".
func summarize(as []template.Alert, more int) string {
	firing := 0
	for _, a := range as {
		if a.Status != alert.StatusResolved {
			firing++
		}
	}
	var parts []string
	if resolved := len(as) - firing; firing > 0 || resolved == 0 {
		parts = append(parts, fmt.Sprintf("%d firing", firing))
	}
	if resolved := len(as) - firing; resolved > 0 {
		parts = append(parts, fmt.Sprintf("%d resolved", resolved))
	}
	if more > 0 {
		parts = append(parts, fmt.Sprintf("%d more", more))
	}
	return strings.Join(parts, ", ")
}

// listChanges names the first maxReplyChanges distinct changes, each with
// how often it occurs ("HighErrorRate resolved ×3"), and counts the rest.
func listChanges(changes []string) string {
	count := map[string]int{}
	var distinct []string
	for _, c := range changes {
		if count[c] == 0 {
			distinct = append(distinct, c)
		}
		count[c]++
	}
	var out []string
	for i, c := range distinct {
		if i == maxReplyChanges {
			out = append(out, fmt.Sprintf("and %d more", len(distinct)-i))
			break
		}
		if count[c] > 1 {
			c = fmt.Sprintf("%s ×%d", c, count[c])
		}
		out = append(out, c)
	}
	return strings.Join(out, ", ")
}

func alertName(a template.Alert) string {
	if n := a.Labels["alertname"]; n != "" {
		return n
	}
	return a.Fingerprint
}

// bounded is a with its fingerprint set and each annotation cut to
// maxAnnotationLen, so that a group's ref stays small.
func bounded(a template.Alert) template.Alert {
	if a.Fingerprint == "" {
		a.Fingerprint = alert.Fingerprint(a.Labels)
	}
	long := false
	for _, v := range a.Annotations {
		long = long || len(v) > maxAnnotationLen
	}
	if long {
		ann := make(template.KV, len(a.Annotations))
		for k, v := range a.Annotations {
			ann[k] = notifiers.Cut(v, maxAnnotationLen)
		}
		a.Annotations = ann
	}
	return a
}

// followed says whether nt belongs to a group this Notifier follows up: an
// Alertmanager group, in app mode, with refs, whose message is updated or
// carries buttons.
func (n *Notifier) followed(nt *notifiers.Notification) bool {
	return n.refs != nil && nt.Kind == notifiers.KindAlerts && nt.GroupKey != "" && (updates(nt.Target) || n.buttons())
}

func updates(t routing.Target) bool { return t.Settings[SettingUpdateMessage] != "false" }

func threadReplies(t routing.Target) bool { return t.Settings[SettingThreadReplies] == "true" }

// notifyGroup delivers a notification of a followed group. The group's
// ref is merged first (atomically, so replicas agree on the group), then:
// the first message is posted and its ts kept; a later one updates that
// message to show the whole group, and with thread_replies says what
// changed in its thread; a message that can no longer be updated is posted
// anew. With update_message "false" every notification is a message of its
// own, and the ref only serves its buttons.
func (n *Notifier) notifyGroup(ctx context.Context, nt *notifiers.Notification, msg *slack.WebhookMessage) (bool, error) {
	key := notifiers.RefKey("slack", nt.Target.Key(), nt.GroupKey)
	var reply string
	raw, err := n.refs.UpdateRef(ctx, key, notifiers.RefTTL, func(old []byte) ([]byte, error) {
		g := decodeRef(old)
		retried := nt.Key != "" && g.LastKey == nt.Key
		changes := g.merge(nt)
		if !retried {
			g.LastKey, g.LastReply = nt.Key, g.reply(changes)
		}
		reply = g.LastReply
		return json.Marshal(g)
	})
	if err != nil {
		return true, n.scrub(fmt.Errorf("keep message ref: %w", err))
	}
	g := decodeRef(raw)
	channel := msg.Channel
	s := n.session()

	if !updates(nt.Target) {
		own := *msg
		own.Text = summarize(nt.Alerts, nt.More)
		n.addButtons(&own, key, g.firing())
		ch, ts, retry, err := s.post(ctx, channel, channel, n.options(&own, false)...)
		if err != nil {
			return retry, n.scrub(fmt.Errorf("post message: %w", err))
		}
		// The message is out whatever the store says; a ref without it
		// only costs the buttons their update.
		_ = n.keepMessage(ctx, key, g, ch, ts, "", true)
		return false, nil
	}

	gm, err := n.groupMessage(key, g)
	if err != nil {
		return false, err
	}
	if g.TS == "" {
		ch, ts, retry, err := s.post(ctx, channel, channel, n.options(gm, false)...)
		if err != nil {
			return retry, n.scrub(fmt.Errorf("post message: %w", err))
		}
		// Should the store fail here, the group's next notification posts
		// a second message: better than failing one that was delivered.
		_ = n.keepMessage(ctx, key, g, ch, ts, "", false)
		return false, nil
	}
	reposted, retry, err := n.updateMessage(ctx, s, key, g, gm)
	if err != nil {
		return retry, err
	}
	if reposted || !threadReplies(nt.Target) {
		return false, nil
	}
	r := &slack.WebhookMessage{Text: reply, ThreadTimestamp: g.TS, Username: n.cfg.Username, IconEmoji: n.cfg.IconEmoji}
	if _, _, retry, err := s.post(ctx, channel, g.Channel, n.options(r, false)...); err != nil {
		return retry, n.scrub(fmt.Errorf("post reply: %w", err))
	}
	return false, nil
}

// updateMessage shows g in its message, or, when Slack no longer lets the
// message be updated, in a new one whose ts it keeps.
func (n *Notifier) updateMessage(ctx context.Context, s *session, key string, g *groupRef, gm *slack.WebhookMessage) (reposted, retry bool, err error) {
	retry, err = s.update(ctx, g.Channel, g.TS, n.options(gm, true)...)
	var se slack.SlackErrorResponse
	if err == nil || !errors.As(err, &se) || !gone[se.Err] {
		if err != nil {
			return false, retry, n.scrub(fmt.Errorf("update message: %w", err))
		}
		return false, false, nil
	}
	channel := g.Target.Settings["channel"]
	ch, ts, retry, err := s.post(ctx, channel, channel, n.options(gm, false)...)
	if err != nil {
		return true, retry, n.scrub(fmt.Errorf("post message (the old one: %s): %w", se.Err, err))
	}
	_ = n.keepMessage(ctx, key, g, ch, ts, g.TS, false)
	return true, false, nil
}

// keepMessage records the group's message. expect is the ts the caller
// replaces ("" for the first): when another replica recorded a message
// meanwhile, its message stays the group's. always records the message
// regardless (update_message "false": the latest message is the group's).
func (n *Notifier) keepMessage(ctx context.Context, key string, g *groupRef, channel, ts, expect string, always bool) error {
	_, err := n.refs.UpdateRef(ctx, key, notifiers.RefTTL, func(old []byte) ([]byte, error) {
		cur := decodeRef(old)
		if old == nil {
			// Gone since the merge (evicted): keep what the message shows.
			c := *g
			cur = &c
		}
		if always || cur.TS == expect {
			cur.Channel, cur.TS = channel, ts
		}
		return json.Marshal(cur)
	})
	return err
}

// groupMessage is the message that shows g as it now is: its summary and
// outcome lines, an attachment per alert (as a notification of the whole
// group would have) and, while an alert fires, the buttons.
func (n *Notifier) groupMessage(key string, g *groupRef) (*slack.WebhookMessage, error) {
	view := &notifiers.Notification{Kind: notifiers.KindAlerts, Target: g.Target, Alerts: g.Alerts, More: g.More,
		GroupKey: g.GroupKey, ExternalURL: g.ExternalURL}
	msg, err := n.message(view)
	if err != nil {
		return nil, err
	}
	msg.Text = g.text()
	n.addButtons(msg, key, g.firing())
	return msg, nil
}
