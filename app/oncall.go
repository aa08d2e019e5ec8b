package app

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/notifiers/pagerduty"
	"github.com/alertmedic/alertmedic/oncall"
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
		Target: func(key string) (routing.Target, bool) {
			_, rules := a.current()
			return findTarget(rules.Tree, key)
		},
		Alertmanager: func(externalURL string) *oncall.Alertmanager {
			return alertmanagerFor(a.currentConfig().Alertmanager, externalURL)
		},
		Logger:     a.log.With().Str("component", "oncall").Logger(),
		Registerer: reg,
	})
}

// findTarget finds the target whose key ("receiver/name") is key. A
// receiver's name may hold a slash, so every split is tried.
func findTarget(tree *routing.Tree, key string) (routing.Target, bool) {
	if tree == nil {
		return routing.Target{}, false
	}
	for i := strings.Index(key, "/"); i >= 0; {
		for _, t := range tree.ReceiverTargets(key[:i]) {
			if t.Key() == key {
				return t, true
			}
		}
		j := strings.Index(key[i+1:], "/")
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return routing.Target{}, false
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
