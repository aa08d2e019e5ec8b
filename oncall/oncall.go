// Package oncall is what on-call does from a message: acknowledge the
// PagerDuty pages of an alert group, silence its alerts in the
// Alertmanager that sent them, and resume remediation that the fleet-wide
// breaker paused. Slack's signed interactions
// (notifiers/slack) call it; every click is audited (who, what, result),
// kept beside the group's other refs and counted.
package oncall

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/notifiers/pagerduty"
	"github.com/alertmedic/alertmedic/notifiers/slack"
	"github.com/alertmedic/alertmedic/routing"
)

// Silences a button may create are bounded: a click is not a change
// freeze.
const (
	MinSilence = time.Minute
	MaxSilence = 30 * 24 * time.Hour
)

// Audit bounds: the clicks kept per group, and for how long.
const (
	maxAuditPerGroup = 50
	AuditTTL         = 7 * 24 * time.Hour
)

// Options are what New needs. The funcs are asked at each click, so that
// a reload's credentials and targets are the ones used.
type Options struct {
	Refs notifiers.Refs
	// PagerDuty is the live PagerDuty integration; nil when it has no
	// credentials.
	PagerDuty func() *pagerduty.Notifier
	// PagerDutyTargets are the PagerDuty targets an alert with these labels
	// is routed to by the live configuration: those its triggers went to.
	PagerDutyTargets func(labels template.KV) []routing.Target
	// Alertmanager is where to silence the alerts of a group that came
	// from externalURL; nil when there is none to use.
	Alertmanager func(externalURL string) *Alertmanager
	// Resume resumes remediation, as POST /api/v1/remediation/resume does
	// (audited, its notice sent), by whom it names; nil when it cannot be
	// resumed from a message.
	Resume func(ctx context.Context, by string) error
	// Answer approves or denies proposal id for by, if one of ids (the
	// clicker's Slack user ID and name) is among the rule's approvers; its
	// error is shown in the message.
	Answer     func(ctx context.Context, id string, approve bool, by string, ids []string) error
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Actions carries out clicks. It is safe for concurrent use.
type Actions struct {
	o      Options
	clicks *prometheus.CounterVec
}

// New returns the Actions for o and registers its metric.
func New(o Options) *Actions {
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Actions{o: o, clicks: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "alertmedic_slack_clicks_total",
		Help: "Slack button clicks carried out, by action and result (ok, failed).",
	}, []string{"action", "result"})}
	for act := range actions {
		for _, r := range []string{"ok", "failed"} {
			a.clicks.WithLabelValues(act, r)
		}
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(a.clicks)
	}
	return a
}

// Audit is one click as kept: who, what, and how it went.
type Audit struct {
	At     time.Time `json:"at"`
	UserID string    `json:"userID"`
	User   string    `json:"user,omitempty"`
	Action string    `json:"action"`
	// Duration of a silence.
	Duration model.Duration `json:"duration,omitempty"`
	Result   string         `json:"result"` // ok or failed
	// Detail is the line the message shows, or why it failed.
	Detail string `json:"detail"`
}

// actions are the clicks Act knows, the label values of the clicks metric.
var actions = map[string]bool{slack.ActionAcknowledge: true, slack.ActionSilence: true, slack.ActionResume: true,
	slack.ActionApprove: true, slack.ActionDeny: true}

// RemediationAudit is the group key under which clicks on remediation
// notices (Resume) are audited: they have no group. Alertmanager's group
// keys are "{…}:{…}", so it is no group's.
const RemediationAudit = "remediation"

// Act carries out one click and returns the line its message shows.
func (a *Actions) Act(ctx context.Context, c slack.Click) (string, error) {
	now := a.o.Now()
	var line string
	var err error
	auditKey := c.Group.Key
	switch c.Action {
	case slack.ActionAcknowledge:
		line, err = a.acknowledge(ctx, c, now)
	case slack.ActionSilence:
		line, err = a.silence(ctx, c, now)
	case slack.ActionResume:
		auditKey = RemediationAudit
		line, err = a.resume(ctx, c, now)
	case slack.ActionApprove, slack.ActionDeny:
		auditKey = RemediationAudit
		line, err = a.answer(ctx, c, now)
	default:
		err = fmt.Errorf("unknown action %q", c.Action)
	}
	result, detail := "ok", line
	if err != nil {
		result, detail = "failed", err.Error()
	}
	if actions[c.Action] {
		a.clicks.WithLabelValues(c.Action, result).Inc()
	}
	rec := Audit{At: now.UTC(), UserID: c.UserID, User: c.UserName, Action: c.Action, Duration: model.Duration(c.Duration), Result: result, Detail: detail}
	a.audit(ctx, auditKey, rec)
	return line, err
}

// resume resumes remediation for whoever clicked: anyone in the workspace
// may, as anyone with the API's token may. The engine audits the resume
// itself, by "slack:<name>", and Options.Resume sends its notice.
func (a *Actions) resume(ctx context.Context, c slack.Click, now time.Time) (string, error) {
	if a.o.Resume == nil {
		return "", errors.New("resume: remediation cannot be resumed from Slack here (use POST /api/v1/remediation/resume)")
	}
	if err := a.o.Resume(ctx, "slack:"+cmp.Or(c.UserName, c.UserID)); err != nil {
		return "", err // the engine's: "resume remediation: …"
	}
	return fmt.Sprintf("Resumed by %s at %s", userMention(c.UserID), now.UTC().Format("15:04 MST")), nil
}

// answer approves or denies the proposal the notice is about. Only the
// rule's approvers may: the clicker's Slack user ID and name are checked
// against them. The engine audits the answer by "slack:<name>", and
// Options.Answer sends its notice and has the proposal carried.
func (a *Actions) answer(ctx context.Context, c slack.Click, now time.Time) (string, error) {
	if a.o.Answer == nil {
		return "", errors.New("approval: proposals cannot be answered from Slack here (use POST /api/v1/remediations/{id}/approve)")
	}
	approve := c.Action == slack.ActionApprove
	if err := a.o.Answer(ctx, c.Remediation, approve, "slack:"+cmp.Or(c.UserName, c.UserID), []string{c.UserID, c.UserName}); err != nil {
		return "", err
	}
	verb := "Denied"
	if approve {
		verb = "Approved"
	}
	return fmt.Sprintf("%s by %s at %s", verb, userMention(c.UserID), now.UTC().Format("15:04 MST")), nil
}

// userMention is Slack's mention of a user ID, or plain text when the ID
// is not one (it is Slack's, signed, but a message is no place to find out).
func userMention(id string) string {
	if slackID.MatchString(id) {
		return "<@" + id + ">"
	}
	return "someone"
}

var slackID = regexp.MustCompile(`^[A-Z0-9]{1,32}$`)

func (a *Actions) acknowledge(ctx context.Context, c slack.Click, now time.Time) (string, error) {
	if a.o.PagerDuty == nil || a.o.PagerDuty() == nil {
		return "", errors.New("acknowledge: PagerDuty has no credentials here")
	}
	pd := a.o.PagerDuty()
	// What the group paged: its alerts, on the PagerDuty targets they are
	// routed to. Nothing is written per page for this; an acknowledge of
	// an alert PagerDuty never opened changes nothing there.
	type paged struct {
		t   routing.Target
		fps []string
	}
	var order []string
	byTarget := map[string]*paged{}
	for _, al := range c.Group.Alerts {
		fp := al.Fingerprint
		if fp == "" {
			fp = alert.Fingerprint(al.Labels)
		}
		if a.o.PagerDutyTargets == nil {
			break
		}
		for _, t := range a.o.PagerDutyTargets(al.Labels) {
			p := byTarget[t.Key()]
			if p == nil {
				p = &paged{t: t}
				byTarget[t.Key()] = p
				order = append(order, t.Key())
			}
			p.fps = append(p.fps, fp)
		}
	}
	if len(order) == 0 {
		return "", errors.New("acknowledge: no PagerDuty target pages this group's alerts")
	}
	var failed []error
	acked := 0
	for _, key := range order {
		p := byTarget[key]
		if err := pd.Acknowledge(ctx, p.t, p.fps); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", key, err))
			continue
		}
		acked++
	}
	if acked == 0 {
		return "", fmt.Errorf("acknowledge: %w", errors.Join(failed...))
	}
	line := fmt.Sprintf("Acknowledged by %s at %s", userMention(c.UserID), now.UTC().Format("15:04 MST"))
	if len(failed) > 0 {
		a.o.Logger.Warn().Err(errors.Join(failed...)).Int("acknowledged", acked).Msg("acknowledge: some PagerDuty targets failed")
		line += fmt.Sprintf(" (%d of %d PagerDuty targets)", acked, acked+len(failed))
	}
	return line, nil
}

func (a *Actions) silence(ctx context.Context, c slack.Click, now time.Time) (string, error) {
	if c.Duration < MinSilence || c.Duration > MaxSilence {
		return "", fmt.Errorf("silence: %s is not between %s and %s", model.Duration(c.Duration), model.Duration(MinSilence), model.Duration(MaxSilence))
	}
	var sets []map[string]string
	for _, al := range c.Group.Alerts {
		sets = append(sets, al.Labels)
	}
	ms, err := matchers(sets)
	if err != nil {
		return "", fmt.Errorf("silence: %w", err)
	}
	var am *Alertmanager
	if a.o.Alertmanager != nil {
		am = a.o.Alertmanager(c.Group.ExternalURL)
	}
	if am == nil {
		return "", errors.New("silence: no Alertmanager to silence in (the alert named none; set alertmanager.url)")
	}
	end := now.Add(c.Duration)
	who := c.UserName
	if who == "" {
		who = c.UserID
	}
	s := Silence{
		Matchers:  ms,
		StartsAt:  now.UTC(),
		EndsAt:    end.UTC(),
		CreatedBy: "slack:" + who,
		Comment:   fmt.Sprintf("Silenced from Slack by %s: %s", who, permalink(c.Channel, c.TS)),
	}
	id, err := am.CreateSilence(ctx, s)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Silenced for %s by %s until %s (silence %s)", model.Duration(c.Duration), userMention(c.UserID), end.UTC().Format("15:04 MST"), id), nil
}

// permalink links a Slack message: Slack sends whoever opens it to the
// workspace the channel is in.
func permalink(channel, ts string) string {
	p := make([]byte, 0, len(ts))
	for i := 0; i < len(ts); i++ {
		if ts[i] != '.' {
			p = append(p, ts[i])
		}
	}
	return "https://slack.com/archives/" + channel + "/p" + string(p)
}

// audit keeps rec beside the group's refs and logs it. Failing to keep it
// does not undo the click; it is logged.
func (a *Actions) audit(ctx context.Context, groupKey string, rec Audit) {
	ev := a.o.Logger.Info()
	if rec.Result != "ok" {
		ev = a.o.Logger.Warn()
	}
	ev.Str("action", rec.Action).Str("user_id", rec.UserID).Str("user", rec.User).Str("result", rec.Result).Str("detail", rec.Detail).Msg("slack click")
	if a.o.Refs == nil {
		return
	}
	_, err := a.o.Refs.UpdateRef(ctx, AuditKey(groupKey), AuditTTL, func(old []byte) ([]byte, error) {
		var list []Audit
		if old != nil {
			_ = json.Unmarshal(old, &list)
		}
		list = append(list, rec)
		if len(list) > maxAuditPerGroup {
			list = list[len(list)-maxAuditPerGroup:]
		}
		return json.Marshal(list)
	})
	if err != nil {
		a.o.Logger.Warn().Err(err).Msg("slack click: could not keep its audit record")
	}
}

// AuditKey is the ref under which a group's clicks are kept.
func AuditKey(groupKey string) string { return notifiers.RefKey("clicks", "", groupKey) }

// Clicks lists the clicks kept for a group, oldest first.
func Clicks(ctx context.Context, refs notifiers.Refs, groupKey string) ([]Audit, error) {
	b, err := refs.Ref(ctx, AuditKey(groupKey))
	if err != nil || b == nil {
		return nil, err
	}
	var list []Audit
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("clicks of the group: %w", err)
	}
	return list, nil
}
