// Package slack is the Slack integration: it posts one message per
// notification, one attachment per alert,
// through an incoming webhook or through chat.postMessage with a bot token.
// It owns its configuration block (integrations.slack), the message layout
// and the classification of Slack's answers into retry or give up; backoff
// is the pipeline's.
package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/slack-go/slack"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/outbound"
)

// Notifier posts notifications to Slack. It is safe for concurrent use.
type Notifier struct {
	cfg    Config
	client *http.Client
	// secrets are the strings no error may carry: the webhook URL, its
	// path and the token.
	secrets outbound.Secrets
}

// New returns a Notifier for a loaded Config. client carries the proxy and
// TLS settings; nil means a plain client. Timeouts come from the Config.
func New(c Config, client *http.Client) *Notifier {
	c.defaults()
	if client == nil {
		client = &http.Client{}
	}
	// A webhook's secret is its path too: servers quote a path more often
	// than a whole URL (NewSecrets adds it).
	return &Notifier{cfg: c, client: client, secrets: outbound.NewSecrets(string(c.APIURL), string(c.Token))}
}

// String names the Notifier without its credentials: fmt would otherwise
// print the unexported fields, secrets included.
func (n *Notifier) String() string {
	if n.cfg.Token != "" {
		return "slack (chat.postMessage)"
	}
	return "slack (incoming webhook)"
}

// GoString is String, for %#v.
func (n *Notifier) GoString() string { return n.String() }

// Notify posts nt as one message. It says to retry on network errors, 429
// (with Retry-After as a *outbound.RetryAfterError) and 5xx, and not on
// other answers, which a retry would not change.
func (n *Notifier) Notify(ctx context.Context, nt *notifiers.Notification) (bool, error) {
	msg, err := n.message(nt)
	if err != nil {
		return false, err
	}
	op := "post webhook"
	if n.cfg.Token != "" {
		op = "post message"
		if msg.Channel == "" {
			return false, errors.New("post message: no channel: set settings.channel on the target (the Web API has no default)")
		}
	}

	ctx, cancel := context.WithTimeout(ctx, time.Duration(n.cfg.Timeout))
	defer cancel()
	// A client per call, so the recorder sees this call's answer only.
	rec := &recorder{next: n.client.Transport}
	if rec.next == nil {
		rec.next = http.DefaultTransport
	}
	client := *n.client
	client.Transport = rec

	if n.cfg.Token != "" {
		api := slack.New(string(n.cfg.Token), slack.OptionAPIURL(n.cfg.APIBaseURL), slack.OptionHTTPClient(&client))
		opts := []slack.MsgOption{slack.MsgOptionAttachments(msg.Attachments...)}
		if msg.Text != "" {
			opts = append(opts, slack.MsgOptionText(msg.Text, false))
		}
		if msg.Username != "" {
			opts = append(opts, slack.MsgOptionUsername(msg.Username))
		}
		if msg.IconEmoji != "" {
			opts = append(opts, slack.MsgOptionIconEmoji(msg.IconEmoji))
		}
		_, _, err = api.PostMessageContext(ctx, msg.Channel, opts...)
	} else {
		err = slack.PostWebhookCustomHTTPContext(ctx, string(n.cfg.APIURL), &client, msg)
	}
	retry, err := classify(err, rec.resp)
	if err != nil {
		return retry, n.scrub(fmt.Errorf("%s: %w", op, err))
	}
	return false, nil
}

// transientErrors are the Web API's "ok": false answers that a later try
// may not get.
var transientErrors = map[string]bool{
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
	"ratelimited":         true,
}

// classify turns slack-go's outcome into the contract's. The HTTP answer
// decides through outbound.CheckResponse, so Slack retries exactly as the
// other integrations do (503 with Retry-After included) and the error quotes
// Slack's reason ("channel_not_found"), which slack-go's StatusCodeError
// drops.
func classify(err error, resp *http.Response) (bool, error) {
	if err == nil {
		return false, nil
	}
	// Checked first: after a redirect the recorder holds the 3xx, but the
	// call failed on the network. slack-go's wrapper quotes the URL in its
	// own text, so the redacted client error replaces it rather than wraps.
	var ue *url.Error
	if errors.As(err, &ue) {
		return true, outbound.RedactURL(ue, outbound.Redacted)
	}
	if resp != nil && resp.StatusCode/100 != 2 {
		return outbound.CheckResponse(resp)
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return transientErrors[se.Err], se
	}
	// slack-go wants 200; any 2xx means Slack took the message.
	var sc slack.StatusCodeError
	if errors.As(err, &sc) && sc.Code/100 == 2 {
		return false, nil
	}
	// Left: an answer slack-go could not read. Slack took the request, so
	// a retry risks posting twice.
	return false, err
}

// scrub keeps the webhook URL and the token out of an error even when a
// server echoes the request back in the body that CheckResponse quotes.
func (n *Notifier) scrub(err error) error { return n.secrets.Scrub(err) }

// recorder keeps the status, headers and first bytes of the body of the
// answer to a call, which slack-go reads and discards.
type recorder struct {
	next http.RoundTripper
	resp *http.Response
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rec := &http.Response{StatusCode: resp.StatusCode, Status: resp.Status, Header: resp.Header.Clone(), Body: http.NoBody}
	if resp.StatusCode/100 != 2 {
		// As much as CheckResponse quotes; the rest stays for slack-go.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		rec.Body = io.NopCloser(bytes.NewReader(b))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
	}
	r.resp = rec
	return resp, nil
}
