package slack

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/routing"
)

// The action IDs of the buttons, as Slack sends them back.
const (
	ActionAcknowledge = "acknowledge"
	ActionSilence     = "silence"
	// ActionResume is on the notice that remediation paused itself (the
	// fleet-wide breaker): it resumes remediation (remediation.go).
	ActionResume = "resume"
	// ActionApprove and ActionDeny are on a proposal's notice (a rule with
	// approval): they answer it (remediation.go).
	ActionApprove = "approve"
	ActionDeny    = "deny"
)

// Click is one click on a button, verified as Slack's: a group's
// (Acknowledge, Silence), or a remediation notice's (Resume), which has no
// group.
type Click struct {
	Action   string        // ActionAcknowledge, ActionSilence or ActionResume
	Duration time.Duration // of the silence
	// Who clicked, in which workspace.
	UserID, UserName, TeamID string
	// The message clicked.
	Channel, TS string
	// Group is empty for a remediation notice's button.
	Group Group
	// Remediation is the opaque ID a remediation notice's button carries
	// (its value is "rem:<action>:<id>"); "" for a group's.
	Remediation string
}

// Group is what the message's ref knows of its alert group.
type Group struct {
	Key         string // Alertmanager's group key
	Target      routing.Target
	ExternalURL string
	Alerts      []template.Alert // the latest observation of each, firing first, at most 100
}

// Actor does what a click asks: acknowledge the group's pages, silence its
// alerts. Declared here, where it is used; it is written elsewhere.
type Actor interface {
	// Act returns the line the message shows ("Acknowledged by <@U123> at
	// 14:02 UTC"); "" for the default. An error's text is shown in a
	// failure line, so it must be fit to show.
	Act(ctx context.Context, c Click) (line string, err error)
}

const (
	// maxInteractionBytes bounds a click's body; Slack's payload for a
	// message with 20 attachments is well under it.
	maxInteractionBytes = 64 << 10
	// replayTTL is how long a click is remembered; Slack's signatures are
	// good for five minutes.
	replayTTL = time.Hour
	// clickTimeout bounds the work of a click: the actor, the store, the
	// message's update.
	clickTimeout = 30 * time.Second
	// guardTimeout bounds what happens before the answer, which Slack
	// wants within 3 seconds.
	guardTimeout = 2 * time.Second
	// maxErrorLen is as much of an actor's error as a failure line shows.
	maxErrorLen = 120
)

// buttons says whether alert messages carry Acknowledge and Silence.
func (n *Notifier) buttons() bool {
	return n.cfg.Token != "" && n.cfg.SigningSecret != "" && n.refs != nil
}

// refKeyPattern is what notifiers.RefKey makes for this integration: a
// button's value that is not one is not ours.
var refKeyPattern = regexp.MustCompile(`^slack:[0-9a-f]{32}$`)

// addButtons puts the text and, while an alert fires, the buttons in Block
// Kit blocks (with blocks, Slack shows a message's text only in
// notifications). A button's value is the group's ref key: opaque, with no
// label or secret in it. Several silence durations make a menu, its
// options' values the key and the duration: a block's action IDs must
// differ.
func (n *Notifier) addButtons(msg *slack.WebhookMessage, key string, firing bool) {
	if !n.buttons() {
		return
	}
	plain := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	blocks := []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, msg.Text, false, false), nil, nil)}
	if firing {
		ack := slack.NewButtonBlockElement(ActionAcknowledge, key, plain("Acknowledge")).WithStyle(slack.StylePrimary)
		var silence slack.BlockElement
		if ds := n.cfg.SilenceDurations; len(ds) == 1 {
			silence = slack.NewButtonBlockElement(ActionSilence, key, plain("Silence "+ds[0].String()))
		} else {
			opts := make([]*slack.OptionBlockObject, len(ds))
			for i, d := range ds {
				opts[i] = slack.NewOptionBlockObject(key+"/"+d.String(), plain(d.String()), nil)
			}
			silence = slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Silence for…"), ActionSilence, opts...)
		}
		blocks = append(blocks, slack.NewActionBlock("", ack, silence))
	}
	msg.Blocks = &slack.Blocks{BlockSet: blocks}
}

// Interactions serves Slack's interactivity requests (the app's Request
// URL): a click on Acknowledge, Silence or Resume is verified with the
// signing secret, acted on once however often Slack sends it, answered at
// once, and then handed to actor; the clicked message (the group's, or the
// notice) shows the outcome. It is
// nil without a signing secret, a token, refs or an actor: there are no
// buttons then.
func (n *Notifier) Interactions(actor Actor, log zerolog.Logger) http.Handler {
	if !n.buttons() || actor == nil {
		return nil
	}
	return &interactions{n: n, actor: actor, log: log}
}

// Drain waits for the clicks being acted on, or for ctx: call it after the
// HTTP server serving Interactions has shut down.
func (n *Notifier) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		n.clicks.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type interactions struct {
	n     *Notifier
	actor Actor
	log   zerolog.Logger
}

// clickRequest is a verified click, as the background work needs it: key
// is a group's ref key, or remediation the ID of a remediation notice's
// button.
type clickRequest struct {
	action      string
	duration    time.Duration
	key         string
	remediation string
	cb          *slack.InteractionCallback
}

func (h *interactions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInteractionBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read request", http.StatusBadRequest)
		return
	}
	// Nothing is read from the request before its signature is checked.
	if err := h.verify(r.Header, body); err != nil {
		h.log.Warn().Err(err).Msg("slack interaction refused")
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	req, err := h.parse(body)
	if err != nil {
		h.log.Warn().Err(err).Msg("slack interaction unreadable")
		http.Error(w, "invalid payload", http.StatusBadRequest)
		return
	}
	if req == nil {
		// Not a click of ours (another block, a link button): nothing to do.
		w.WriteHeader(http.StatusOK)
		return
	}
	cb := req.cb
	ctx, cancel := context.WithTimeout(r.Context(), guardTimeout)
	defer cancel()
	first, err := notifiers.Once(ctx, h.n.refs, "click:"+clickID(cb), replayTTL)
	if err != nil {
		// Unsure whether it was acted on: the user may click again.
		h.log.Error().Err(err).Msg("slack click: replay guard unavailable")
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	if !first {
		h.log.Info().Str("action", req.action).Str("user", cb.User.ID).Str("retry", r.Header.Get("X-Slack-Retry-Num")).
			Msg("slack click already acted on")
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusOK)
	// The answer is due within 3 seconds; the actor and the update may
	// take longer, so they go on after it, bounded, and Drain waits for
	// them.
	bg := context.WithoutCancel(r.Context())
	h.n.clicks.Add(1)
	go func() {
		defer h.n.clicks.Done()
		ctx, cancel := context.WithTimeout(bg, clickTimeout)
		defer cancel()
		h.act(ctx, req)
	}()
}

// verify checks Slack's v0 signature of the body (HMAC-SHA256 of
// "v0:{timestamp}:{body}", compared in constant time) and that its
// timestamp is within five minutes of now.
func (h *interactions) verify(header http.Header, body []byte) error {
	sv, err := slack.NewSecretsVerifier(header, string(h.n.cfg.SigningSecret))
	if err != nil {
		return err
	}
	if _, err := sv.Write(body); err != nil {
		return err
	}
	return sv.Ensure()
}

// parse reads a block_actions payload; nil when it holds no click on
// Acknowledge, Silence or Resume.
func (h *interactions) parse(body []byte) (*clickRequest, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("parse form: %w", err)
	}
	payload := form.Get("payload")
	if payload == "" {
		return nil, errors.New("parse form: no payload")
	}
	cb := &slack.InteractionCallback{}
	if err := json.Unmarshal([]byte(payload), cb); err != nil {
		return nil, fmt.Errorf("parse payload: %w", err)
	}
	if cb.Type != slack.InteractionTypeBlockActions {
		return nil, nil
	}
	for _, a := range cb.ActionCallback.BlockActions {
		req := &clickRequest{action: a.ActionID, cb: cb, key: a.Value}
		switch a.ActionID {
		case ActionAcknowledge:
		case ActionSilence:
			if len(h.n.cfg.SilenceDurations) > 0 {
				req.duration = time.Duration(h.n.cfg.SilenceDurations[0])
			}
			if v := a.SelectedOption.Value; v != "" {
				key, d, _ := strings.Cut(v, "/")
				md, err := model.ParseDuration(d)
				// Only what the configuration offers: an option of a
				// message posted before a reload may be gone.
				if err != nil || !slices.Contains(h.n.cfg.SilenceDurations, md) {
					return nil, fmt.Errorf("silence: duration %q is not offered", d)
				}
				req.key, req.duration = key, time.Duration(md)
			}
		case ActionResume, ActionApprove, ActionDeny:
			id, ok := remediationID(a.ActionID, a.Value)
			if !ok {
				return nil, errors.New("button value is not a remediation ref")
			}
			req.key, req.remediation = "", id
			return req, nil
		default:
			continue
		}
		if !refKeyPattern.MatchString(req.key) {
			return nil, errors.New("button value is not a message ref")
		}
		return req, nil
	}
	return nil, nil
}

// clickID names a click for the replay guard: Slack's trigger_id is unique
// per interaction; without it, the action's time and the user.
func clickID(cb *slack.InteractionCallback) string {
	id := cb.TriggerID
	if id == "" {
		ts := cb.ActionTs
		if len(cb.ActionCallback.BlockActions) > 0 && cb.ActionCallback.BlockActions[0].ActionTs != "" {
			ts = cb.ActionCallback.BlockActions[0].ActionTs
		}
		id = ts + "\x00" + cb.User.ID
	}
	sum := sha256.Sum256([]byte(cb.Team.ID + "\x00" + id))
	return hex.EncodeToString(sum[:16])
}

// act hands a click to the actor and shows its outcome in the group's
// message, keeping the line in the ref for the group's later updates.
func (h *interactions) act(ctx context.Context, req *clickRequest) {
	if req.remediation != "" {
		h.actRemediation(ctx, req)
		return
	}
	n, cb := h.n, req.cb
	log := h.log.With().Str("action", req.action).Str("user", cb.User.ID).Logger()
	raw, err := n.refs.Ref(ctx, req.key)
	if err != nil {
		log.Error().Err(n.scrub(err)).Msg("slack click: read message ref")
		return
	}
	if raw == nil {
		// A day past the group's last notification: nothing left to act on.
		log.Warn().Msg("slack click on a group no longer followed")
		return
	}
	g := decodeRef(raw)
	c := req.click()
	c.Group = g.group()
	// A failed act is logged by call and shown by its line.
	line, _ := h.call(ctx, log, c)
	raw, err = n.refs.UpdateRef(ctx, req.key, notifiers.RefTTL, func(old []byte) ([]byte, error) {
		cur := decodeRef(old)
		if old == nil {
			cp := *g
			cur = &cp
		}
		cur.addLine(line)
		return json.Marshal(cur)
	})
	if err != nil {
		log.Error().Err(n.scrub(err)).Msg("slack click: keep its outcome")
		return
	}
	g = decodeRef(raw)
	if g.TS == "" {
		return
	}
	gm, err := n.groupMessage(req.key, g)
	if err != nil {
		log.Error().Err(err).Msg("slack click: build message")
		return
	}
	if _, _, err := n.updateMessage(ctx, n.session(), req.key, g, gm); err != nil {
		log.Error().Err(err).Msg("slack click: show its outcome")
	}
}

// click is what the actor is told of req, but the group.
func (req *clickRequest) click() Click {
	cb := req.cb
	return Click{
		Action: req.action, Duration: req.duration,
		UserID: cb.User.ID, UserName: cmp.Or(cb.User.Name, cb.User.Username), TeamID: cb.Team.ID,
		Channel: cmp.Or(cb.Container.ChannelID, cb.Channel.ID), TS: cmp.Or(cb.Container.MessageTs, cb.Message.Timestamp),
		Remediation: req.remediation,
	}
}

// call hands c to the actor and returns the line the message shows, and
// the actor's error.
func (h *interactions) call(ctx context.Context, log zerolog.Logger, c Click) (string, error) {
	line, err := h.actor.Act(ctx, c)
	switch {
	case err != nil:
		log.Warn().Err(err).Msg("slack click failed")
		return h.n.failureLine(c, err), err
	case line == "":
		line = h.n.outcomeLine(c)
	}
	log.Info().Msg("slack click acted on")
	return line, nil
}

// outcomeLine is what the message shows when the actor gives no line.
func (n *Notifier) outcomeLine(c Click) string {
	at := n.now().UTC()
	switch c.Action {
	case ActionSilence:
		return fmt.Sprintf("Silenced for %s by <@%s> until %s", model.Duration(c.Duration), c.UserID, at.Add(c.Duration).Format("15:04 UTC"))
	case ActionResume:
		return fmt.Sprintf("Resumed by <@%s> at %s", c.UserID, at.Format("15:04 UTC"))
	case ActionApprove:
		return fmt.Sprintf("Approved by <@%s> at %s", c.UserID, at.Format("15:04 UTC"))
	case ActionDeny:
		return fmt.Sprintf("Denied by <@%s> at %s", c.UserID, at.Format("15:04 UTC"))
	}
	return fmt.Sprintf("Acknowledged by <@%s> at %s", c.UserID, at.Format("15:04 UTC"))
}

// failureLine says that a click failed, with the actor's error (which is
// fit to show) cut short and escaped for mrkdwn.
func (n *Notifier) failureLine(c Click, err error) string {
	what := "Acknowledge"
	switch c.Action {
	case ActionSilence:
		what = "Silence for " + model.Duration(c.Duration).String()
	case ActionResume, ActionApprove, ActionDeny:
		what = remediationLabels[c.Action]
	}
	return fmt.Sprintf("%s by <@%s> failed at %s: %s", what, c.UserID, n.now().UTC().Format("15:04 UTC"),
		escape(notifiers.Cut(n.scrub(err).Error(), maxErrorLen)))
}

// escape makes text literal in mrkdwn, as Slack documents: &, < and >.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
