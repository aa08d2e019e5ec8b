// Package slack is the Slack integration: it posts one message per
// notification, one attachment per alert, through an incoming webhook or
// through chat.postMessage with a bot token. With a token (app mode) it
// follows an Alertmanager group up: the group's first message is updated
// with chat.update as the group changes (its ref, in the store, says which
// message that is), and with a signing secret it carries Acknowledge and
// Silence buttons whose clicks Interactions serves (and the notice that
// the fleet-wide breaker paused remediation carries Resume). It owns its
// configuration block (integrations.slack), the message layout and the
// classification of Slack's answers into retry or give up; backoff is the
// pipeline's.
package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/outbound"
)

// Notifier posts notifications to Slack. It is safe for concurrent use.
type Notifier struct {
	cfg    Config
	client *http.Client
	// refs keep each group's message (nil: every notification is a new
	// message).
	refs notifiers.Refs
	// secrets are the strings no error may carry: the webhook URL, its
	// path, the token and the signing secret.
	secrets outbound.Secrets
	limits  *limits
	now     func() time.Time
	// clicks counts the clicks being acted on in the background (Drain).
	clicks sync.WaitGroup
}

// New returns a Notifier for a loaded Config. client carries the proxy and
// TLS settings; nil means a plain client. Timeouts come from the Config.
// refs keep, in app mode, the message of each alert group so that its later
// notifications update it; nil refs post every notification as a new
// message, and put no buttons on it.
func New(c Config, client *http.Client, refs notifiers.Refs) *Notifier {
	c.defaults()
	if client == nil {
		client = &http.Client{}
	}
	// A webhook's secret is its path too: servers quote a path more often
	// than a whole URL (NewSecrets adds it).
	return &Notifier{
		cfg: c, client: client, refs: refs,
		secrets: outbound.NewSecrets(string(c.APIURL), string(c.Token), string(c.SigningSecret)),
		limits:  newLimits(), now: time.Now,
	}
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

// Notify posts nt as one message, or, for a group followed up in app mode,
// updates the group's message (see notifyGroup). It says to retry on
// network errors, 429 (with Retry-After as a *outbound.RetryAfterError) and
// 5xx, and not on other answers, which a retry would not change.
func (n *Notifier) Notify(ctx context.Context, nt *notifiers.Notification) (bool, error) {
	msg, err := n.message(nt)
	if err != nil {
		return false, err
	}
	if n.cfg.Token == "" {
		ctx, cancel := context.WithTimeout(ctx, time.Duration(n.cfg.Timeout))
		defer cancel()
		s := n.session()
		err = slack.PostWebhookCustomHTTPContext(ctx, string(n.cfg.APIURL), s.client, msg)
		retry, err := classify(err, s.rec.resp)
		if err != nil {
			return retry, n.scrub(fmt.Errorf("post webhook: %w", err))
		}
		return false, nil
	}
	if msg.Channel == "" {
		return false, errors.New("post message: no channel: set settings.channel on the target (the Web API has no default)")
	}
	if n.followed(nt) {
		return n.notifyGroup(ctx, nt, msg)
	}
	_, _, retry, err := n.session().post(ctx, msg.Channel, msg.Channel, n.options(msg, false)...)
	if err != nil {
		return retry, n.scrub(fmt.Errorf("post message: %w", err))
	}
	return false, nil
}

// session is one conversation with Slack (a Notify, or the outcome of a
// click): a client of its own, so that its recorder sees its answers only.
type session struct {
	n      *Notifier
	client *http.Client
	rec    *recorder
	api    *slack.Client
}

func (n *Notifier) session() *session {
	rec := &recorder{next: n.client.Transport}
	if rec.next == nil {
		rec.next = http.DefaultTransport
	}
	client := *n.client
	client.Transport = rec
	s := &session{n: n, client: &client, rec: rec}
	if n.cfg.Token != "" {
		s.api = slack.New(string(n.cfg.Token), slack.OptionAPIURL(n.cfg.APIBaseURL), slack.OptionHTTPClient(&client))
	}
	return s
}

// post calls chat.postMessage once the channel's rate allows, waiting no
// longer than ctx does, and returns the channel's ID and the message's ts.
// limitKey is the channel as the target names it ("#alerts"), so that a
// message and its thread replies (posted to the ID Slack answered) share
// one limit.
func (s *session) post(ctx context.Context, limitKey, channel string, opts ...slack.MsgOption) (string, string, bool, error) {
	if err := s.n.limits.post(limitKey).Wait(ctx); err != nil {
		return "", "", true, fmt.Errorf("wait for the rate limit: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.n.cfg.Timeout))
	defer cancel()
	s.rec.resp = nil
	ch, ts, err := s.api.PostMessageContext(ctx, channel, opts...)
	retry, err := classify(err, s.rec.resp)
	return ch, ts, retry, err
}

// update calls chat.update once the method's rate allows.
func (s *session) update(ctx context.Context, channel, ts string, opts ...slack.MsgOption) (bool, error) {
	if err := s.n.limits.update.Wait(ctx); err != nil {
		return true, fmt.Errorf("wait for the rate limit: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.n.cfg.Timeout))
	defer cancel()
	s.rec.resp = nil
	_, _, _, err := s.api.UpdateMessageContext(ctx, channel, ts, opts...)
	return classify(err, s.rec.resp)
}

// options turns a message into chat.postMessage or chat.update form
// values. An update always sends blocks, empty when there are none: Slack
// keeps a message's blocks when an update leaves them out.
func (n *Notifier) options(msg *slack.WebhookMessage, update bool) []slack.MsgOption {
	opts := []slack.MsgOption{slack.MsgOptionAttachments(msg.Attachments...)}
	if msg.Text != "" {
		opts = append(opts, slack.MsgOptionText(msg.Text, false))
	}
	switch {
	case msg.Blocks != nil:
		opts = append(opts, slack.MsgOptionBlocks(msg.Blocks.BlockSet...))
	case update:
		opts = append(opts, slack.MsgOptionBlocks())
	}
	if msg.ThreadTimestamp != "" {
		opts = append(opts, slack.MsgOptionTS(msg.ThreadTimestamp))
	}
	// chat.update keeps the poster's name and icon.
	if !update && msg.Username != "" {
		opts = append(opts, slack.MsgOptionUsername(msg.Username))
	}
	if !update && msg.IconEmoji != "" {
		opts = append(opts, slack.MsgOptionIconEmoji(msg.IconEmoji))
	}
	return opts
}

// Slack's rates for the methods alertmedic calls
// (https://api.slack.com/docs/rate-limits): chat.postMessage about
// one message a second per channel, short bursts allowed; chat.update is a
// tier 3 method, 50 a minute per workspace. Each replica keeps its own
// limiters: the store's per-target limit (delivery.rate_limits) is the
// shared one; these keep the calls one notification makes (an update and a
// reply, a repost) and the clicks within what Slack takes, so they wait
// rather than get 429s.
const (
	postEvery   = time.Second
	postBurst   = 3
	updateEvery = time.Minute / 50
	updateBurst = 5
)

type limits struct {
	mu     sync.Mutex
	posts  map[string]*rate.Limiter
	update *rate.Limiter
}

func newLimits() *limits {
	return &limits{posts: map[string]*rate.Limiter{}, update: rate.NewLimiter(rate.Every(updateEvery), updateBurst)}
}

// post is the limiter of one channel. The channels are the configuration's,
// so the map stays small.
func (l *limits) post(channel string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.posts[channel]
	if lim == nil {
		lim = rate.NewLimiter(rate.Every(postEvery), postBurst)
		l.posts[channel] = lim
	}
	return lim
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
