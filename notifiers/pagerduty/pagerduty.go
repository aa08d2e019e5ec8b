// Package pagerduty is the PagerDuty integration: it turns a notification
// into Events API v2 events through github.com/PagerDuty/go-pagerduty, one
// event per alert, triggering while the alert fires and resolving the same
// PagerDuty alert when it resolves. It owns the integrations.pagerduty
// configuration block, the event's field mapping (after Alertmanager's
// notify/pagerduty) and the classification of the API's answers into
// retry or not, without ever letting the routing key into an error.
// Acknowledge acknowledges what a target's triggers opened, for a button.
package pagerduty

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	pd "github.com/PagerDuty/go-pagerduty"
	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/outbound"
	"github.com/alertmedic/alertmedic/routing"
)

const (
	// maxSummaryRunes is PagerDuty's limit on payload.summary, counted in
	// characters; a longer one is refused with a 400.
	maxSummaryRunes = 1024
	// maxEventBytes is PagerDuty's limit on a whole event. Over it the
	// largest custom details are cut (fit), so the page still goes out.
	maxEventBytes = 512000
	// maxErrorBody bounds how much of a failed answer is read for the error.
	maxErrorBody = 4096
)

// Event actions.
const (
	actionTrigger     = "trigger"
	actionResolve     = "resolve"
	actionAcknowledge = "acknowledge"
)

// Notifier sends notifications to PagerDuty's Events API v2.
type Notifier struct {
	conf    Config
	client  *pd.Client
	key     string // the routing key, for the events
	secrets outbound.Secrets
}

// New returns a Notifier for c (loaded, or at least defaulted: New applies
// the defaults itself) sending through client; a nil client is a plain
// http.Client, each request being bounded by c.Timeout anyway.
func New(c Config, client *http.Client) *Notifier {
	c.setDefaults()
	if client == nil {
		client = &http.Client{}
	}
	// go-pagerduty posts to the endpoint it is given plus /v2/enqueue.
	base := strings.TrimSuffix(c.URL, enqueuePath)
	pc := pd.NewClient("", pd.WithV2EventsAPIEndpoint(base))
	pc.HTTPClient = doer{client: client}
	return &Notifier{
		conf: c, client: pc, key: string(c.RoutingKey), secrets: outbound.NewSecrets(string(c.RoutingKey)),
	}
}

// Notify sends one event per alert: the Events API takes one alert per
// event, and one dedup key per alert is what lets a resolve close exactly
// the PagerDuty alert its trigger opened. A digest is its alerts, sent the
// same way.
//
// Flapping notices send nothing and succeed. alertmedic's notice is about
// alerts that PagerDuty already holds (triggered while they fired, resolved
// when they resolved, and sent again when flapping ends), so a page for the
// notice itself would page the on-call a second time for the same problem.
//
// Events are sent in order. A failure worth retrying (429, 5xx, the
// network) stops the notification there: the endpoint is unwell and the
// retry sends every event again, which the dedup keys make harmless. A
// final failure (another 4xx) is about that one event, so the others are
// still sent and the errors are joined.
func (n *Notifier) Notify(ctx context.Context, nt *notifiers.Notification) (bool, error) {
	switch nt.Kind {
	case notifiers.KindFlappingStarted, notifiers.KindFlappingStopped, notifiers.KindRemediation:
		return false, nil
	}
	if n.key == "" {
		return false, errors.New("send pagerduty event: no routing key configured")
	}
	var errs []error
	for i, a := range nt.Alerts {
		if err := ctx.Err(); err != nil {
			return true, fmt.Errorf("send pagerduty event: %w", err)
		}
		ev, err := n.event(nt, a)
		if err != nil {
			errs = append(errs, n.redact(err))
			continue
		}
		retry, err := n.send(ctx, ev)
		if err != nil {
			err = n.redact(fmt.Errorf("send pagerduty event %d of %d (%s): %w", i+1, len(nt.Alerts), ev.Action, err))
			if retry {
				return true, errors.Join(append(errs, err)...)
			}
			errs = append(errs, err)
			continue
		}
	}
	return false, errors.Join(errs...)
}

// Acknowledge acknowledges the PagerDuty alerts that t's triggers opened
// for the alerts of fingerprints: one Events API v2
// "acknowledge" event each, with the trigger's dedup_key and the routing
// key the triggers use (integrations.pagerduty's: a target has none of its
// own). An alert already resolved stays resolved: PagerDuty ignores the
// acknowledge. As Notify does, a failure worth retrying (429, 5xx, the
// network) stops there, and another is about that one alert, so the rest
// are still sent; the errors are joined, and none carries the routing key.
func (n *Notifier) Acknowledge(ctx context.Context, t routing.Target, fingerprints []string) error {
	if n.key == "" {
		return errors.New("acknowledge pagerduty alerts: no routing key configured")
	}
	var errs []error
	for i, fp := range fingerprints {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, fmt.Errorf("acknowledge pagerduty alerts: %w", err))...)
		}
		ev := &pd.V2Event{RoutingKey: n.key, Action: actionAcknowledge, DedupKey: DedupKey(t.Key(), fp)}
		retry, err := n.send(ctx, ev)
		if err != nil {
			err = n.redact(fmt.Errorf("acknowledge pagerduty alert %d of %d: %w", i+1, len(fingerprints), err))
			if retry {
				return errors.Join(append(errs, err)...)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// fingerprint is the alert's, computed as Alertmanager does when the
// message left it out.
func fingerprint(a template.Alert) string {
	if a.Fingerprint != "" {
		return a.Fingerprint
	}
	return alert.Fingerprint(a.Labels)
}

// PerMessage is 1: an Events API v2 event carries one alert, so the
// dispatcher sends (and settles) a notification event by event.
func (n *Notifier) PerMessage() int { return 1 }

// DedupKey is the dedup_key of an alert's events on one target: the
// SHA-256, in hex, of the target's key and the alert's fingerprint. The
// fingerprint (its label set, as Alertmanager computes it) is the same
// while the alert fires and when it resolves, so the resolve closes the
// trigger's PagerDuty alert; the target key keeps two pagerduty targets
// (two receivers, or two integrations of one) from sharing PagerDuty
// alerts. It is a hash so that its length is fixed (PagerDuty allows 255)
// and no label value is shown in it. Renaming the target changes the key:
// an alert firing across such a rename is resolved by hand.
func DedupKey(targetKey, fingerprint string) string {
	h := sha256.Sum256([]byte("alertmedic\x00" + targetKey + "\x00" + fingerprint))
	return hex.EncodeToString(h[:])
}

// link is an entry of the event's links.
type link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// event maps one alert to an Events API v2 event, after Alertmanager's
// notify/pagerduty, with the alert's own labels where Alertmanager has the
// group's.
func (n *Notifier) event(nt *notifiers.Notification, a template.Alert) (*pd.V2Event, error) {
	fp := fingerprint(a)
	action := actionTrigger
	if a.Status == alert.StatusResolved {
		action = actionResolve
	}

	// The template sees this one alert: a description ranging over the
	// group would describe others, and an event is one alert.
	one := *nt
	one.Alerts = template.Alerts{a}
	summary, err := notifiers.Render(notifiers.TemplateFor(nt, notifiers.SettingSummary, n.conf.Summary), &one)
	if err != nil {
		return nil, fmt.Errorf("render pagerduty summary: %w", err)
	}
	summary = strings.TrimSpace(summary)
	if summary == "" {
		// PagerDuty refuses an event without a summary.
		summary = "alert " + fp
		if name := a.Labels["alertname"]; name != "" {
			summary = name
		}
	}

	severity, ok := n.conf.Severity[a.Labels["severity"]]
	if !ok {
		severity = fallbackSeverity
	}
	if s, ok := nt.Target.Settings[SettingSeverity]; ok {
		severity = s
	}

	source := a.Labels["instance"]
	if source == "" {
		source = DefaultClient
	}

	details := map[string]any{
		"labels":      a.Labels,
		"annotations": a.Annotations,
		"startsAt":    a.StartsAt.UTC().Format(time.RFC3339Nano),
	}
	if action == actionResolve && !a.EndsAt.IsZero() {
		details["endsAt"] = a.EndsAt.UTC().Format(time.RFC3339Nano)
	}
	if tried := nt.Tried[fp]; tried != "" {
		// The page was held while remediation tried: what it did.
		details["remediation"] = tried
	}

	var links []any
	if u := a.Annotations["runbook_url"]; u != "" {
		links = append(links, link{Href: u, Text: "Runbook"})
	}
	if a.GeneratorURL != "" {
		links = append(links, link{Href: a.GeneratorURL, Text: "Source"})
	}
	if n.conf.AlertPageURL != "" {
		links = append(links, link{Href: n.conf.AlertPageURL + url.PathEscape(fp), Text: "alertmedic"})
	}

	// The Alertmanager that sent the alert, as Alertmanager's own
	// integration links back; the generator URL is a link already.
	clientURL := n.conf.ClientURL
	if clientURL == "" {
		clientURL = nt.ExternalURL
	}
	if clientURL == "" {
		clientURL = a.GeneratorURL
	}

	ev := &pd.V2Event{
		RoutingKey: n.key,
		Action:     action,
		DedupKey:   DedupKey(nt.Target.Key(), fp),
		Links:      links,
		Client:     n.conf.Client,
		ClientURL:  clientURL,
		Payload: &pd.V2Payload{
			Summary:   truncate(summary, maxSummaryRunes),
			Source:    source,
			Severity:  severity,
			Component: a.Labels["job"],
			Class:     a.Labels["alertname"],
			Details:   details,
		},
	}
	if !a.StartsAt.IsZero() {
		ev.Payload.Timestamp = a.StartsAt.UTC().Format(time.RFC3339Nano)
	}
	if err := fit(ev, details, a.Labels, a.Annotations); err != nil {
		return nil, err
	}
	return ev, nil
}

// truncate cuts s to at most limit characters, the last being "…" when it
// cut. It counts runes, as PagerDuty counts characters, and cuts on a rune
// boundary so the result stays valid UTF-8 (invalid bytes already in s are
// replaced, so that they do not get the event refused either).
func truncate(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	k := 0
	for i := range s {
		if k == limit-1 {
			return s[:i] + "…"
		}
		k++
	}
	return s
}

// send posts one event with its own timeout and classifies the outcome as
// outbound.CheckResponse does: 2xx delivered; 429 and 5xx retried (429 and
// 503 honouring Retry-After); other statuses final; network errors retried.
func (n *Notifier) send(ctx context.Context, ev *pd.V2Event) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(n.conf.Timeout))
	defer cancel()
	x := &exchange{}
	_, err := n.client.ManageEventWithContext(context.WithValue(ctx, exchangeKey{}, x), ev)
	switch {
	case err == nil:
		return false, nil
	case x.err != nil:
		return true, x.err
	case x.status/100 == 2:
		// Accepted: only the answer's body was not what go-pagerduty
		// expected. Retrying would send the event again for nothing.
		return false, nil
	case x.status != 0:
		// Redacted before CheckResponse cuts it to 256 bytes: a cut through
		// the key would leave a part that redact no longer recognises.
		detail := errorDetail(x.body)
		if n.key != "" {
			detail = strings.ReplaceAll(detail, n.key, "<secret>")
		}
		resp := &http.Response{
			StatusCode: x.status,
			Header:     x.header,
			Body:       io.NopCloser(strings.NewReader(detail)),
		}
		return outbound.CheckResponse(resp)
	default:
		// No request went out (the event did not encode, the request could
		// not be built): sending it again would fail the same way.
		return false, err
	}
}

// errorDetail makes an error message of a failed answer's body: the Events
// API's status, message and errors when it sent its JSON error object, else
// the body as it came (CheckResponse quotes at most 256 bytes of it).
func errorDetail(body []byte) string {
	var e struct {
		Status  string   `json:"status"`
		Message string   `json:"message"`
		Errors  []string `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || (e.Status == "" && e.Message == "") {
		return string(body)
	}
	s := e.Status
	if e.Message != "" {
		if s != "" {
			s += ": "
		}
		s += e.Message
	}
	if len(e.Errors) > 0 {
		s += ": " + strings.Join(e.Errors, "; ")
	}
	return s
}

// redact takes the routing key out of an error's text. The key travels in
// the request body, which an Events API stand-in, a proxy or an error
// object may quote back; Secret keeps it out of logs only as long as it is
// not converted, and here it has been.
func (n *Notifier) redact(err error) error { return n.secrets.Scrub(err) }

// exchange records what go-pagerduty does not pass on: the status and
// headers (Retry-After) of the answer, the body of a failed one, and the
// transport error itself, which it flattens into a string with the URL in
// it. It travels in the request's context, so that concurrent Notify calls
// on one client each see their own.
type exchange struct {
	status int
	header http.Header
	body   []byte
	err    error
}

type exchangeKey struct{}

// doer is go-pagerduty's HTTP client: the one given to New, recording each
// request's exchange.
type doer struct{ client *http.Client }

func (d doer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.client.Do(req)
	x, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if x == nil {
		return resp, err
	}
	if err != nil {
		// RedactURL: a proxy's URL may carry credentials.
		x.err = outbound.RedactURL(err, outbound.Redacted)
		return nil, x.err
	}
	x.status, x.header = resp.StatusCode, resp.Header
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		x.body = b
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return resp, nil
}
