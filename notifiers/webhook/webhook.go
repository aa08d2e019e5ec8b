// Package webhook is the generic webhook integration: it POSTs each
// notification as Alertmanager's webhook message (version 4), so that
// alertmedic can be chained in front of anything that takes Alertmanager's
// webhooks, plus an "alertmedic" object for alertmedic's own notices. It
// owns its configuration block (integrations.webhook), the message and the
// classification of answers into retry (network errors, 429, 5xx) or give
// up (other statuses); backoff is the pipeline's.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/outbound"
)

// Version is Alertmanager's webhook message version this package speaks.
const Version = "4"

// Message is the body of every POST: Alertmanager's webhook message with
// its field names and order, built from notifiers.Data, plus Alertmedic
// for notices and digests. A receiver written for Alertmanager reads it
// unchanged and ignores the extra object.
type Message struct {
	Version           string          `json:"version"`
	GroupKey          string          `json:"groupKey"`
	Status            string          `json:"status"`
	Receiver          string          `json:"receiver"`
	Alerts            template.Alerts `json:"alerts"`
	GroupLabels       template.KV     `json:"groupLabels"`
	CommonLabels      template.KV     `json:"commonLabels"`
	CommonAnnotations template.KV     `json:"commonAnnotations"`
	ExternalURL       string          `json:"externalURL"`
	TruncatedAlerts   uint64          `json:"truncatedAlerts"`
	// Alertmedic is absent for plain alerts, so that those messages are
	// exactly what Alertmanager would have sent.
	Alertmedic *Notice `json:"alertmedic,omitempty"`
}

// Notice says what alertmedic itself has to say: a flapping notice's text
// and figures, or that the alerts are a digest held during a mute.
type Notice struct {
	Kind  string            `json:"kind"`
	Text  string            `json:"text,omitempty"`
	Facts map[string]string `json:"facts,omitempty"`
}

// NewMessage builds the message for nt, keeping the first maxAlerts alerts
// (0: all). The common labels and status are those of the alerts kept, as
// in Alertmanager.
func NewMessage(nt *notifiers.Notification, maxAlerts int) *Message {
	kept := *nt
	var truncated uint64
	if maxAlerts > 0 && len(nt.Alerts) > maxAlerts {
		kept.Alerts = nt.Alerts[:maxAlerts]
		truncated = uint64(len(nt.Alerts) - maxAlerts)
	}
	d := notifiers.Data(&kept)
	m := &Message{
		Version: Version,
		// Alertmanager always sends a group key and receivers use it to
		// tell groups apart; alertmedic's notices and digests have none,
		// so their notification key (stable across retries) stands in.
		GroupKey:          nt.GroupKey,
		Status:            d.Status,
		Receiver:          d.Receiver,
		GroupLabels:       d.GroupLabels,
		CommonLabels:      d.CommonLabels,
		CommonAnnotations: d.CommonAnnotations,
		ExternalURL:       d.ExternalURL,
		TruncatedAlerts:   truncated + uint64(max(nt.More, 0)),
	}
	if m.GroupKey == "" {
		m.GroupKey = nt.Key
	}
	// [] and {} rather than null, as Alertmanager sends: receivers range
	// over them. A copy, so the notification is left as it was.
	m.Alerts = make(template.Alerts, len(d.Alerts))
	for i, a := range d.Alerts {
		if a.Labels == nil {
			a.Labels = template.KV{}
		}
		if a.Annotations == nil {
			a.Annotations = template.KV{}
		}
		m.Alerts[i] = a
	}
	switch nt.Kind {
	case notifiers.KindAlerts, "":
	case notifiers.KindDigest:
		text := fmt.Sprintf("%d alerts held during quiet hours", len(nt.Alerts))
		if len(nt.Alerts) == 1 {
			text = "1 alert held during quiet hours"
		}
		if nt.Text != "" {
			text = nt.Text
		}
		m.Alertmedic = &Notice{Kind: nt.Kind, Text: text, Facts: nt.Facts}
	default:
		m.Alertmedic = &Notice{Kind: nt.Kind, Text: nt.Text, Facts: nt.Facts}
	}
	return m
}

var _ notifiers.Notifier = (*Notifier)(nil)

// Notifier posts notifications to the configured endpoint. It is safe for
// concurrent use.
type Notifier struct {
	cfg    Config
	client *http.Client
	// secrets are the strings no error may carry: the URL, its parts and
	// the bearer token.
	secrets outbound.Secrets
}

// New returns a Notifier for a loaded Config. client carries the proxy and
// TLS settings; nil means a plain client. Timeouts come from the Config.
func New(c Config, client *http.Client) *Notifier {
	c.setDefaults()
	if client == nil {
		client = &http.Client{}
	}
	// Servers quote a path, a query or a password more often than a whole
	// URL, and any of them may be the token: NewSecrets adds them.
	return &Notifier{cfg: c, client: client, secrets: outbound.NewSecrets(string(c.URL), string(c.BearerToken))}
}

// PerMessage is max_alerts: the dispatcher splits a longer notification
// into several POSTs rather than drop what is past the cap.
func (n *Notifier) PerMessage() int { return n.cfg.MaxAlerts }

// String describes the Notifier without its URL: fmt would print
// unexported fields as they are, Secret or not.
func (n Notifier) String() string { return "webhook" }

// GoString is String, for %#v.
func (n Notifier) GoString() string { return n.String() }

// Notify posts nt as one message. It says to retry on network errors, 429
// (with Retry-After as a *outbound.RetryAfterError) and 5xx, and not on
// other answers, which a retry would not change.
func (n *Notifier) Notify(ctx context.Context, nt *notifiers.Notification) (bool, error) {
	if n.cfg.URL == "" {
		return false, errors.New("webhook is not configured: set url in integrations.webhook")
	}
	body, err := json.Marshal(NewMessage(nt, n.cfg.MaxAlerts))
	if err != nil {
		return false, fmt.Errorf("encode message: %w", err)
	}

	timeout := time.Duration(n.cfg.Timeout)
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("webhook timeout (%s) reached", n.cfg.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, string(n.cfg.URL), bytes.NewReader(body))
	if err != nil {
		// Not wrapped: url.Parse's error quotes the URL.
		return false, errors.New("build request: url is not a valid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "alertmedic")
	if nt.Key != "" {
		// A retry after a lost answer posts the same key again, so the
		// endpoint can drop the duplicate.
		req.Header.Set("Idempotency-Key", nt.Key)
	}
	if n.cfg.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+string(n.cfg.BearerToken))
	}

	resp, err := n.client.Do(req)
	if err != nil {
		// Redacted before wrapping: RedactURL returns the client's own
		// error, not what wraps it.
		err = outbound.RedactURL(err, outbound.Redacted)
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w: %w", err, cause)
		}
		return true, n.scrub(fmt.Errorf("post to webhook: %w", err))
	}
	defer func() {
		// Drained so the connection is reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	retry, err := outbound.CheckResponse(resp)
	if err != nil {
		return retry, n.scrub(fmt.Errorf("post to webhook: %w", err))
	}
	return false, nil
}

// scrub keeps the URL and the token out of an error even when a server
// echoes the request back in the body that CheckResponse quotes.
func (n *Notifier) scrub(err error) error { return n.secrets.Scrub(err) }
