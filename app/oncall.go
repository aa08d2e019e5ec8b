package app

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/notifiers/pagerduty"
	"github.com/alertmedic/alertmedic/oncall"
	"github.com/alertmedic/alertmedic/remediation"
	"github.com/alertmedic/alertmedic/routing"
)

// newOncall builds what Slack's buttons do. It reads the live
// configuration at each click: a reload's targets and credentials are the
// ones used.
func (a *App) newOncall(reg prometheus.Registerer) *oncall.Actions {
	return oncall.New(oncall.Options{
		Refs: notifiers.StoreRefs(a.st),
		PagerDuty: func() *pagerduty.Notifier {
			pd, _ := a.notifier.p.Load().by[routing.PagerDuty].(*pagerduty.Notifier)
			return pd
		},
		PagerDutyTargets: func(labels template.KV) []routing.Target {
			_, rules := a.current()
			if rules == nil || rules.Tree == nil {
				return nil
			}
			var out []routing.Target
			for _, t := range rules.Tree.Match(labels, time.Now()).Targets {
				if t.Integration == routing.PagerDuty {
					out = append(out, t.Target)
				}
			}
			return out
		},
		Alertmanager: func(externalURL string) *oncall.Alertmanager {
			return alertmanagerFor(a.currentConfig().Alertmanager, externalURL)
		},
		// As POST /api/v1/remediation/resume: the engine audits, the
		// pipeline sends the notice. Both are built after the actor (the
		// integrations need it first) and are there by the first click.
		Resume: func(ctx context.Context, by string) error {
			if a.eng == nil || a.pl == nil {
				return errors.New("resume remediation: not started yet")
			}
			return remediationAPI{a.eng, a.pl}.Resume(ctx, by)
		},
		Answer: func(ctx context.Context, id string, approve bool, by string, ids []string) error {
			if a.eng == nil || a.pl == nil {
				return errors.New("approval: not started yet")
			}
			_, err := remediationAPI{a.eng, a.pl}.answer(ctx, id, approve, remediation.Approver{By: by, IDs: ids})
			return err
		},
		Logger:     a.log.With().Str("component", "oncall").Logger(),
		Registerer: reg,
	})
}

// alertmanagerFor is the Alertmanager a Silence button talks to: the
// configured alertmanager.url with its credentials, else the one the alert
// came from (its externalURL, http or https), with none: credentials are
// never sent to an address a webhook named.
func alertmanagerFor(c config.AlertmanagerConfig, externalURL string) *oncall.Alertmanager {
	client := &http.Client{Timeout: 15 * time.Second}
	if c.URL != "" {
		am := &oncall.Alertmanager{URL: c.URL, Client: client, BearerToken: c.HTTPConfig.BearerToken}
		if b := c.HTTPConfig.BasicAuth; b != nil {
			am.Username, am.Password = b.Username, b.Password
		}
		return am
	}
	u, err := url.Parse(externalURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil
	}
	return &oncall.Alertmanager{URL: externalURL, Client: client}
}
