package slack

// Buttons on remediation notices. A notice is a plain message, not a
// group's: it has no ref. Its button's value is "rem:<action>:<id>", the
// ID opaque (never a label value or a secret), and a click is acted on
// with the message Slack says was clicked (the payload's channel and ts)
// updated in place: app mode posts notices with chat.postMessage and the
// bot token, so the app may update them. The first is Resume, on the
// notice that the fleet-wide breaker paused remediation; another action
// (a proposal's Approve and Deny) adds its ID, its label and its case in
// parse.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"

	"github.com/slack-go/slack"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/remediation"
)

// resumeText is the text of the breaker's notice when it carries Resume:
// with blocks, Slack shows a message's text only in notifications, so a
// section shows it, and a click's line goes under it. The notice's
// attachment is unchanged.
const resumeText = "Remediation paused itself: the fleet-wide breaker tripped (remediation.max_actions)"

// maxSectionLen is Slack's limit on a section block's text.
const maxSectionLen = 3000

// remediationLabels are the buttons' labels, by action ID.
var remediationLabels = map[string]string{ActionResume: "Resume", ActionApprove: "Approve", ActionDeny: "Deny"}

// remediationValuePattern is a remediation button's value: the action, as
// the button's action ID, and an opaque ID.
var remediationValuePattern = regexp.MustCompile(`^rem:([a-z]+):([0-9A-Za-z_-]{1,64})$`)

// remediationValue is the value of action's button for the subject id.
func remediationValue(action, id string) string { return "rem:" + action + ":" + id }

// remediationID reads a button's value: the ID, when the value is one of
// ours for action.
func remediationID(action, value string) (string, bool) {
	m := remediationValuePattern.FindStringSubmatch(value)
	if m == nil || m[1] != action {
		return "", false
	}
	return m[2], true
}

// breakerPaused says whether nt is the notice that the fleet-wide breaker
// paused remediation: the one whose message offers Resume.
func breakerPaused(nt *notifiers.Notification) bool {
	return nt.Kind == notifiers.KindRemediation && nt.Facts["action"] == "pause" && nt.Facts["by"] == remediation.BreakerBy
}

// addResume puts Resume on the breaker's notice, in app mode with a
// signing secret; other notices, and every notice without buttons, are
// left as they were. The ID names the notice (a hash of its notification
// key, which is unique per notice and target): resuming needs no subject,
// but the click's log and audit can say which message it came from.
func (n *Notifier) addResume(msg *slack.WebhookMessage, nt *notifiers.Notification) {
	if !n.buttons() || !breakerPaused(nt) {
		return
	}
	sum := sha256.Sum256([]byte(nt.Key + "\x00" + nt.Text))
	msg.Text = resumeText
	msg.Blocks = &slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, msg.Text, false, false), nil, nil),
		remediationActions(hex.EncodeToString(sum[:16]), ActionResume),
	}}
}

// proposed says whether nt is a proposal's notice (a rule with approval),
// and its ID: the one whose message offers Approve and Deny.
func proposed(nt *notifiers.Notification) (string, bool) {
	id := nt.Facts["proposal"]
	return id, nt.Kind == notifiers.KindRemediation && nt.Facts["result"] == remediation.ResultProposed && remediationValuePattern.MatchString(remediationValue(ActionApprove, id))
}

// addApproval puts Approve and Deny on a proposal's notice, in app mode
// with a signing secret; the button's ID is the proposal's.
func (n *Notifier) addApproval(msg *slack.WebhookMessage, nt *notifiers.Notification) {
	id, ok := proposed(nt)
	if !n.buttons() || !ok {
		return
	}
	text := notifiers.Cut(escape(nt.Text), maxSectionLen)
	msg.Text = text
	msg.Blocks = &slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil),
		remediationActions(id, ActionApprove, ActionDeny),
	}}
}

// remediationActions is the actions block of a notice's buttons for id.
func remediationActions(id string, actions ...string) slack.Block {
	els := make([]slack.BlockElement, len(actions))
	for i, a := range actions {
		b := slack.NewButtonBlockElement(a, remediationValue(a, id), slack.NewTextBlockObject(slack.PlainTextType, remediationLabels[a], false, false))
		if i == 0 {
			b = b.WithStyle(slack.StylePrimary)
		}
		els[i] = b
	}
	return slack.NewActionBlock("", els...)
}

// actRemediation hands a notice's click to the actor and shows the
// outcome in the clicked message: its text with the line under it. The
// button goes once the click did what it asks, and stays after a failure
// so that it can be tried again. Attachments are left out of the update,
// which keeps them.
func (h *interactions) actRemediation(ctx context.Context, req *clickRequest) {
	n, cb := h.n, req.cb
	log := h.log.With().Str("action", req.action).Str("user", cb.User.ID).Str("remediation", req.remediation).Logger()
	c := req.click()
	line, err := h.call(ctx, log, c)
	if c.Channel == "" || c.TS == "" {
		log.Warn().Msg("slack click: no message to show its outcome in")
		return
	}
	text := notifiers.Cut(line, maxLineLen)
	if prev := strings.TrimSpace(cb.Message.Text); prev != "" {
		text = prev + "\n" + text
	}
	text = notifiers.Cut(text, maxSectionLen)
	blocks := []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)}
	if err != nil {
		actions := []string{req.action}
		if req.action == ActionApprove || req.action == ActionDeny {
			actions = []string{ActionApprove, ActionDeny}
		}
		blocks = append(blocks, remediationActions(req.remediation, actions...))
	}
	msg := &slack.WebhookMessage{Text: text, Blocks: &slack.Blocks{BlockSet: blocks}}
	s := n.session()
	_, uerr := s.update(ctx, c.Channel, c.TS, n.options(msg, true)...)
	var se slack.SlackErrorResponse
	if uerr == nil {
		return
	}
	if !errors.As(uerr, &se) || !gone[se.Err] {
		log.Error().Err(n.scrub(uerr)).Msg("slack click: show its outcome")
		return
	}
	// The notice can no longer be updated (deleted, past the edit window):
	// the line goes in its thread.
	r := &slack.WebhookMessage{Text: line, ThreadTimestamp: c.TS, Username: n.cfg.Username, IconEmoji: n.cfg.IconEmoji}
	if _, _, _, err := s.post(ctx, c.Channel, c.Channel, n.options(r, false)...); err != nil {
		log.Error().Err(n.scrub(err)).Str("update", se.Err).Msg("slack click: show its outcome in the thread")
	}
}
