package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"sort"
	"strings"

	"github.com/alertmedic/alertmedic/api"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/notifiers/email"
	"github.com/alertmedic/alertmedic/notifiers/pagerduty"
	"github.com/alertmedic/alertmedic/oncall"
	"github.com/alertmedic/alertmedic/pipeline"
	"github.com/alertmedic/alertmedic/remediation"
	"github.com/alertmedic/alertmedic/routing"
)

// auditScan bounds the remediation records a timeline looks through.
const auditScan = 1000

// alertsAPI answers GET /api/v1/alerts and the timelines: the pipeline's
// part of an alert's story (received, routed, per target, deliveries),
// with the remediation audit's records of it and the clicks on its group's
// Slack message.
type alertsAPI struct {
	pl   *pipeline.Pipeline
	eng  *remediation.Engine
	refs notifiers.Refs
	// tree is the live route tree: which integration a target is.
	tree func() *routing.Tree
	// emailFrom is the email integration's sender, "" when it is not
	// configured (its targets then render into the log).
	emailFrom func() string
}

func (a alertsAPI) Alerts(ctx context.Context, q api.AlertQuery) (api.Alerts, error) {
	return a.pl.Alerts(ctx, q)
}

func (a alertsAPI) Timeline(ctx context.Context, fp string) (api.Timeline, error) {
	tl, err := a.pl.Timeline(ctx, fp)
	if err != nil {
		return tl, err
	}
	a.deliveryFacts(ctx, &tl)
	if a.eng != nil {
		recs, err := a.eng.Audit(ctx, auditScan)
		if err != nil {
			return tl, err
		}
		for _, r := range recs {
			if r.Fingerprint != fp {
				continue
			}
			d := fmt.Sprintf("rule %s, %s: %s", r.Rule, r.Result, r.Detail)
			if r.Reason != "" && r.Result != remediation.ResultRan {
				d = fmt.Sprintf("rule %s, %s (%s): %s", r.Rule, r.Result, r.Reason, r.Detail)
			}
			if r.ApprovedBy != "" {
				d += " (approved by " + r.ApprovedBy + ")"
			}
			tl.Events = append(tl.Events, api.TimelineEvent{At: r.Time.UTC(), Stage: api.StageRemedy, Detail: d})
		}
	}
	if tl.GroupKey != "" && a.refs != nil {
		clicks, err := oncall.Clicks(ctx, a.refs, tl.GroupKey)
		if err != nil {
			return tl, err
		}
		for _, c := range clicks {
			who := c.User
			if who == "" {
				who = c.UserID
			}
			tl.Events = append(tl.Events, api.TimelineEvent{At: c.At.UTC(), Stage: api.StageClick,
				Detail: fmt.Sprintf("%s by %s: %s (%s)", c.Action, who, strings.TrimSpace(c.Detail), c.Result)})
		}
	}
	sort.SliceStable(tl.Events, func(i, j int) bool { return tl.Events[i].At.Before(tl.Events[j].At) })
	return tl, nil
}

func (a alertsAPI) from() string {
	if a.emailFrom == nil {
		return ""
	}
	return a.emailFrom()
}

// deliveryFacts adds to each delivered event what the integration keeps of
// it: PagerDuty's dedup_key (the incident's), and in Slack app mode the
// message's channel and ts, from its group's ref.
func (a alertsAPI) deliveryFacts(ctx context.Context, tl *api.Timeline) {
	var tree *routing.Tree
	if a.tree != nil {
		tree = a.tree()
	}
	if tree == nil {
		return
	}
	targets := map[string]routing.Target{}
	for i := range tl.Events {
		e := &tl.Events[i]
		if e.Stage != api.StageDelivered || e.Target == "" {
			continue
		}
		t, ok := targets[e.Target]
		if !ok {
			receiver, _, _ := strings.Cut(e.Target, "/")
			for _, rt := range tree.ReceiverTargets(receiver) {
				if rt.Key() == e.Target {
					t = rt
				}
			}
			targets[e.Target] = t
		}
		switch t.Integration {
		case routing.Email:
			// The mail's own Message-ID, and the thread's root by
			// recipient: what to search the mailbox for.
			if from := a.from(); from != "" && len(e.Messages) > 0 {
				ids := make([]string, len(e.Messages))
				for i, k := range e.Messages {
					ids[i] = "<" + email.MessageID(k, from) + ">"
				}
				e.Detail += "; Message-ID " + strings.Join(ids, ", ")
			}
			addrs, err := mail.ParseAddressList(t.Settings["to"])
			if err != nil || a.refs == nil || tl.GroupKey == "" {
				continue
			}
			for _, addr := range addrs {
				b, err := a.refs.Ref(ctx, notifiers.RefKey("email", e.Target, tl.GroupKey, strings.ToLower(addr.Address)))
				var root struct{ ID string }
				if err == nil && b != nil && json.Unmarshal(b, &root) == nil && root.ID != "" {
					e.Detail += fmt.Sprintf("; to %s in the thread of Message-ID %s", addr.Address, root.ID)
				}
			}
		case routing.PagerDuty:
			e.Detail += "; dedup_key " + pagerduty.DedupKey(e.Target, tl.Fingerprint)
		case routing.Slack:
			if a.refs == nil || tl.GroupKey == "" {
				continue
			}
			b, err := a.refs.Ref(ctx, notifiers.RefKey("slack", e.Target, tl.GroupKey))
			var ref struct{ Channel, TS string }
			if err == nil && b != nil && json.Unmarshal(b, &ref) == nil && ref.TS != "" {
				e.Detail += fmt.Sprintf("; the group's message %s in %s", ref.TS, ref.Channel)
			}
		}
	}
}
