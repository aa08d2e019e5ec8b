package app

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/notifiers/email"
	lognotifier "github.com/alertmedic/alertmedic/notifiers/log"
	"github.com/alertmedic/alertmedic/notifiers/pagerduty"
	"github.com/alertmedic/alertmedic/notifiers/slack"
	"github.com/alertmedic/alertmedic/notifiers/webhook"
	"github.com/alertmedic/alertmedic/routing"
)

// integrations sends each notification through the integration its target
// names. An integration without credentials renders into the log instead,
// so a first run (make run) shows what would be sent and calls nobody.
type integrations struct {
	by  map[string]notifiers.Notifier
	log notifiers.Notifier
	// slack is the Slack integration, when it has credentials, and
	// interactions its handler of button clicks, when it has a signing
	// secret too.
	slack        *slack.Notifier
	interactions http.Handler
}

// refs keep what follow-up messages of a group need (Slack ts, email thread
// roots), in the store; actor does what Slack's
// buttons ask.
func newIntegrations(c *config.Config, l zerolog.Logger, refs notifiers.Refs, actor slack.Actor) (*integrations, []string) {
	// Each integration bounds its requests itself. The pool keeps as many
	// connections per host as the pipeline's dispatcher sends at once (PagerDuty
	// events go several at a time): net/http's default of 2 would open and
	// close a connection for most of them.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	client := &http.Client{Transport: tr}
	// The log shows the body each integration without credentials would send.
	in := c.Integrations
	if ext := c.Web.ExternalURL; ext != "" {
		// Messages link each alert to its timeline on the page.
		in.Slack.AlertPageURL = ext + "/alerts/"
		if in.PagerDuty.AlertPageURL == "" {
			in.PagerDuty.AlertPageURL = ext + "/alerts/"
		}
	}
	d := &integrations{by: map[string]notifiers.Notifier{}, log: lognotifier.New(l, logRenderers(in))}
	var live []string
	if in.Slack.Configured() {
		d.slack = slack.New(in.Slack, client, refs)
		d.by[routing.Slack] = d.slack
		if actor != nil {
			if h := d.slack.Interactions(actor, l.With().Str("integration", "slack").Logger()); h != nil {
				d.interactions = h
			}
		}
		live = append(live, routing.Slack)
	}
	if in.Email.Configured() {
		d.by[routing.Email] = email.New(in.Email, refs).WithLogger(l)
		live = append(live, routing.Email)
	}
	if in.PagerDuty.Configured() {
		d.by[routing.PagerDuty] = pagerduty.New(in.PagerDuty, client)
		live = append(live, routing.PagerDuty)
	}
	if in.Webhook.Configured() {
		d.by[routing.Webhook] = webhook.New(in.Webhook, client)
		live = append(live, routing.Webhook)
	}
	return d, live
}

func (d *integrations) Notify(ctx context.Context, n *notifiers.Notification) (bool, error) {
	if nf, ok := d.by[n.Target.Integration]; ok {
		return nf.Notify(ctx, n)
	}
	return d.log.Notify(ctx, n)
}

// PerMessage is the most alerts one message of the integration carries
// (notifiers.PerMessage); 0 for those that count what they do not show,
// and for the log.
func (d *integrations) PerMessage(integration string) int {
	if pm, ok := d.by[integration].(interface{ PerMessage() int }); ok {
		return pm.PerMessage()
	}
	return 0
}

// String never shows a credential, whatever the integrations hold.
func (d *integrations) String() string {
	return fmt.Sprintf("integrations(%d live)", len(d.by))
}

// swappable lets a reload change credentials and templates while deliveries
// in flight finish on the notifier they started with.
type swappable struct{ p atomic.Pointer[integrations] }

func (s *swappable) set(d *integrations) { s.p.Store(d) }

func (s *swappable) Notify(ctx context.Context, n *notifiers.Notification) (bool, error) {
	return s.p.Load().Notify(ctx, n)
}

func (s *swappable) PerMessage(integration string) int { return s.p.Load().PerMessage(integration) }

// ServeHTTP hands a Slack click to the live Slack integration's handler,
// which checks Slack's signature; without one (no token or no signing
// secret) the endpoint is not there.
func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := s.p.Load().interactions
	if h == nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"Slack interactions are not configured (integrations.slack.token and signing_secret)"}` + "\n"))
		return
	}
	h.ServeHTTP(w, r)
}

// drain waits for the clicks the live Slack integration is still carrying
// out.
func (s *swappable) drain(ctx context.Context) error {
	if sl := s.p.Load().slack; sl != nil {
		return sl.Drain(ctx)
	}
	return nil
}
