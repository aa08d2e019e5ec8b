package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/secret"
	"github.com/alertmedic/alertmedic/store/memory"

	"github.com/alertmedic/alertmedic/notifiers/slack/slacktest"
)

const signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// fakeActor records the clicks it is given and answers with line, err.
type fakeActor struct {
	mu     sync.Mutex
	clicks []Click
	line   string
	err    error
}

func (a *fakeActor) Act(_ context.Context, c Click) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.clicks = append(a.clicks, c)
	return a.line, a.err
}

func (a *fakeActor) got() []Click {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Click(nil), a.clicks...)
}

// clickFixture is a Notifier with buttons, the group's first message
// posted, and its Interactions served over HTTP.
type clickFixture struct {
	n     *Notifier
	api   *webAPI
	actor *fakeActor
	srv   *httptest.Server
	post  url.Values // the group's first message
}

var clickTime = time.Date(2024, 5, 1, 14, 2, 0, 0, time.UTC)

func newClickFixture(t *testing.T, edit func(*Config)) *clickFixture {
	t.Helper()
	api := newWebAPI(t)
	n, _ := appNotifier(t, api, func(c *Config) {
		c.SigningSecret = signingSecret
		if edit != nil {
			edit(c)
		}
	})
	n.now = func() time.Time { return clickTime }
	f := &clickFixture{n: n, api: api, actor: &fakeActor{}}
	h := n.Interactions(f.actor, zerolog.Nop())
	if h == nil {
		t.Fatal("Interactions is nil with a token, refs and a signing secret")
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	notify(t, n, groupNote(1, nil, errorRate, latency))
	f.post = api.calledWith("chat.postMessage")[0]
	return f
}

// elements are the buttons and menus of a posted message's actions block.
func elements(t *testing.T, form url.Values) []map[string]any {
	t.Helper()
	var blocks []struct {
		Type     string           `json:"type"`
		Elements []map[string]any `json:"elements"`
	}
	if err := json.Unmarshal([]byte(form.Get("blocks")), &blocks); err != nil {
		t.Fatalf("blocks are not JSON: %v\n%s", err, form.Get("blocks"))
	}
	var out []map[string]any
	for _, b := range blocks {
		if b.Type == "actions" {
			out = append(out, b.Elements...)
		}
	}
	return out
}

// sectionText is the text of a message's first block.
func sectionText(t *testing.T, form url.Values) string {
	t.Helper()
	var blocks []struct {
		Type string `json:"type"`
		Text struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"text"`
	}
	if err := json.Unmarshal([]byte(form.Get("blocks")), &blocks); err != nil || len(blocks) == 0 || blocks[0].Type != "section" {
		t.Fatalf("no section block: %v %s", err, form.Get("blocks"))
	}
	return blocks[0].Text.Text
}

// clickBody is the form Slack posts for a click on a block action, as in
// https://docs.slack.dev/reference/interaction-payloads/block_actions-payload.
func clickBody(t *testing.T, trigger string, action map[string]any) string {
	t.Helper()
	action["block_id"] = "Xa1b"
	action["action_ts"] = "1714572120.123456"
	payload := map[string]any{
		"type":         "block_actions",
		"team":         map[string]any{"id": "T0001", "domain": "company"},
		"user":         map[string]any{"id": "U123", "username": "alice", "name": "alice", "team_id": "T0001"},
		"api_app_id":   "A0001",
		"token":        "verification-token-unused",
		"container":    map[string]any{"type": "message", "message_ts": "1714557600.000001", "channel_id": "C0001", "is_ephemeral": false},
		"trigger_id":   trigger,
		"channel":      map[string]any{"id": "C0001", "name": "alerts"},
		"message":      map[string]any{"type": "message", "ts": "1714557600.000001", "text": "2 firing"},
		"response_url": "https://hooks.slack.com/actions/T0001/1/XXXX",
		"actions":      []any{action},
	}
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{"payload": {string(b)}}.Encode()
}

// sign sets Slack's v0 signature of body at ts.
func sign(h http.Header, key, body string, ts time.Time) { slacktest.Sign(h, key, body, ts) }

func (f *clickFixture) send(t *testing.T, body string, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	// What the click set going in the background is done.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.n.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

func (f *clickFixture) click(t *testing.T, trigger string, action map[string]any) int {
	t.Helper()
	body := clickBody(t, trigger, action)
	h := http.Header{}
	sign(h, signingSecret, body, time.Now())
	return f.send(t, body, h)
}

func TestButtons(t *testing.T) {
	f := newClickFixture(t, nil)
	els := elements(t, f.post)
	if len(els) != 2 || els[0]["action_id"] != "acknowledge" || els[1]["action_id"] != "silence" ||
		els[0]["type"] != "button" || els[1]["type"] != "button" {
		t.Fatalf("elements = %v", els)
	}
	if text := els[1]["text"].(map[string]any)["text"]; text != "Silence 1h" {
		t.Errorf("silence button reads %q", text)
	}
	key := notifiers.RefKey("slack", target("").Key(), groupNote(0, nil).GroupKey)
	for _, e := range els {
		if e["value"] != key {
			t.Errorf("button %v: value %q, want the ref key %q", e["action_id"], e["value"], key)
		}
	}
	// The values carry no label value (nor anything of the group).
	for _, e := range els {
		v := fmt.Sprint(e["value"])
		for _, label := range []string{"HighErrorRate", "HighLatency", "critical", "warning", "alertname", "alerts", signingSecret, testToken} {
			if strings.Contains(v, label) {
				t.Errorf("button value %q carries %q", v, label)
			}
		}
	}
	if got := sectionText(t, f.post); got != "2 firing" {
		t.Errorf("section text %q", got)
	}
	// The runbook stays a link in each alert's attachment.
	if as := attachments(t, f.post); len(as) != 2 {
		t.Errorf("attachments: %v", as)
	}

	// Several durations: a menu, one option per duration.
	f = newClickFixture(t, func(c *Config) {
		c.SilenceDurations = []model.Duration{model.Duration(time.Hour), model.Duration(4 * time.Hour)}
	})
	els = elements(t, f.post)
	if len(els) != 2 || els[1]["type"] != "static_select" || els[1]["action_id"] != "silence" {
		t.Fatalf("elements = %v", els)
	}
	opts := els[1]["options"].([]any)
	if len(opts) != 2 || opts[1].(map[string]any)["value"] != key+"/4h" || opts[1].(map[string]any)["text"].(map[string]any)["text"] != "4h" {
		t.Errorf("options = %v", opts)
	}

	// Once every alert is resolved, nothing is left to acknowledge.
	notify(t, f.n, groupNote(2, nil, resolved(errorRate), resolved(latency)))
	u := f.api.calledWith("chat.update")[0]
	if els := elements(t, u); len(els) != 0 || sectionText(t, u) != "2 resolved" {
		t.Errorf("resolved group: elements %v, text %q", els, sectionText(t, u))
	}
}

// A signed click: the actor is called once, with what the ref knows, and
// the message is updated once to show the actor's line, which later
// updates of the group keep.
func TestClick(t *testing.T) {
	f := newClickFixture(t, nil)
	f.actor.line = "Acknowledged by <@U123> at 14:02 UTC (PagerDuty: 1 incident)"
	key := elements(t, f.post)[0]["value"].(string)
	if code := f.click(t, "13345224609.738474920.8088930838d88f008e0", map[string]any{
		"action_id": "acknowledge", "type": "button", "value": key, "text": map[string]any{"type": "plain_text", "text": "Acknowledge"},
	}); code != http.StatusOK {
		t.Fatalf("click answered %d, want 200", code)
	}
	clicks := f.actor.got()
	if len(clicks) != 1 {
		t.Fatalf("actor called %d times, want 1", len(clicks))
	}
	c := clicks[0]
	if c.Action != ActionAcknowledge || c.UserID != "U123" || c.UserName != "alice" || c.TeamID != "T0001" ||
		c.Channel != "C0001" || c.TS != "1714557600.000001" || c.Group.Key != groupNote(0, nil).GroupKey ||
		c.Group.Target.Key() != "critical-alerts/slack[0]" || c.Group.ExternalURL != "http://alertmanager:9093" || len(c.Group.Alerts) != 2 {
		t.Errorf("click = %+v", c)
	}
	updates := f.api.calledWith("chat.update")
	if len(updates) != 1 {
		t.Fatalf("%d updates, want 1", len(updates))
	}
	u := updates[0]
	want := "2 firing\n" + f.actor.line
	if u.Get("channel") != "C0001" || u.Get("ts") != "1714557600.000001" || u.Get("text") != want || sectionText(t, u) != want {
		t.Errorf("update: %s %s text %q section %q; want %q", u.Get("channel"), u.Get("ts"), u.Get("text"), sectionText(t, u), want)
	}
	if len(elements(t, u)) != 2 {
		t.Error("the buttons went with the update while alerts fire")
	}

	// The group's next update keeps the line.
	notify(t, f.n, groupNote(2, nil, resolved(errorRate), latency))
	updates = f.api.calledWith("chat.update")
	if got := updates[len(updates)-1].Get("text"); got != "1 firing, 1 resolved\n"+f.actor.line {
		t.Errorf("later update's text %q lost the line", got)
	}
}

func TestClickDefaultAndFailureLines(t *testing.T) {
	cases := []struct {
		name   string
		action map[string]any
		err    error // the actor's
		want   string
		dur    time.Duration
	}{
		{"acknowledge, no line", map[string]any{"action_id": "acknowledge", "type": "button"},
			nil, "Acknowledged by <@U123> at 14:02 UTC", 0},
		{"silence from the menu", map[string]any{"action_id": "silence", "type": "static_select",
			"selected_option": map[string]any{"text": map[string]any{"type": "plain_text", "text": "4h"}, "value": "{key}/4h"}},
			nil, "Silenced for 4h by <@U123> until 18:02 UTC", 4 * time.Hour},
		{"actor fails", map[string]any{"action_id": "silence", "type": "static_select",
			"selected_option": map[string]any{"value": "{key}/1h"}},
			errors.New("create silence: alertmanager answered 503 <html>"),
			"Silence for 1h by <@U123> failed at 14:02 UTC: create silence: alertmanager answered 503 &lt;html&gt;", time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newClickFixture(t, func(c *Config) {
				c.SilenceDurations = []model.Duration{model.Duration(time.Hour), model.Duration(4 * time.Hour)}
			})
			f.actor.err = tc.err
			key := elements(t, f.post)[0]["value"].(string)
			if so, ok := tc.action["selected_option"].(map[string]any); ok {
				so["value"] = strings.ReplaceAll(so["value"].(string), "{key}", key)
			} else {
				tc.action["value"] = key
			}
			if code := f.click(t, "trigger-1", tc.action); code != http.StatusOK {
				t.Fatalf("click answered %d", code)
			}
			if c := f.actor.got(); len(c) != 1 || c[0].Duration != tc.dur {
				t.Fatalf("clicks %+v, want one of %s", c, tc.dur)
			}
			u := f.api.calledWith("chat.update")
			if len(u) != 1 || u[0].Get("text") != "2 firing\n"+tc.want {
				t.Fatalf("updates %v, want one showing %q", u, tc.want)
			}
		})
	}
}

// Slack sends a click again when it had no answer in time, with
// X-Slack-Retry-Num: it is acted on once.
func TestClickReplayed(t *testing.T) {
	f := newClickFixture(t, nil)
	key := elements(t, f.post)[0]["value"].(string)
	body := clickBody(t, "13345224609.738474920.8088930838d88f008e0", map[string]any{"action_id": "acknowledge", "type": "button", "value": key})
	for i := range 3 {
		h := http.Header{}
		if i > 0 {
			h.Set("X-Slack-Retry-Num", strconv.Itoa(i))
			h.Set("X-Slack-Retry-Reason", "http_timeout")
		}
		sign(h, signingSecret, body, time.Now())
		if code := f.send(t, body, h); code != http.StatusOK {
			t.Fatalf("send %d answered %d, want 200", i, code)
		}
	}
	if n := len(f.actor.got()); n != 1 {
		t.Errorf("actor called %d times, want 1", n)
	}
	if n := len(f.api.calledWith("chat.update")); n != 1 {
		t.Errorf("%d updates, want 1", n)
	}
	// Another click (its own trigger_id) is acted on.
	f.click(t, "another-trigger", map[string]any{"action_id": "acknowledge", "type": "button", "value": key})
	if n := len(f.actor.got()); n != 2 {
		t.Errorf("actor called %d times after a second click, want 2", n)
	}
}

// A request that is not Slack's is refused before anything is read from
// it: nothing is acted on, nothing updated.
func TestClickRefused(t *testing.T) {
	f := newClickFixture(t, nil)
	key := elements(t, f.post)[0]["value"].(string)
	body := clickBody(t, "trigger-1", map[string]any{"action_id": "acknowledge", "type": "button", "value": key})
	cases := []struct {
		name   string
		header func(h http.Header)
		body   string
		want   int
	}{
		{"wrong secret", func(h http.Header) { sign(h, "not-the-secret", body, time.Now()) }, body, 401},
		{"body changed", func(h http.Header) { sign(h, signingSecret, body, time.Now()) }, body + "&x=1", 401},
		{"stale timestamp", func(h http.Header) { sign(h, signingSecret, body, time.Now().Add(-6*time.Minute)) }, body, 401},
		{"timestamp ahead", func(h http.Header) { sign(h, signingSecret, body, time.Now().Add(6*time.Minute)) }, body, 401},
		{"no headers", func(http.Header) {}, body, 401},
		{"no signature", func(h http.Header) {
			sign(h, signingSecret, body, time.Now())
			h.Del("X-Slack-Signature")
		}, body, 401},
		{"no timestamp", func(h http.Header) {
			sign(h, signingSecret, body, time.Now())
			h.Del("X-Slack-Request-Timestamp")
		}, body, 401},
		{"signature not v0", func(h http.Header) {
			sign(h, signingSecret, body, time.Now())
			h.Set("X-Slack-Signature", "v1="+strings.TrimPrefix(h.Get("X-Slack-Signature"), "v0="))
		}, body, 401},
		{"signature not hex", func(h http.Header) {
			sign(h, signingSecret, body, time.Now())
			h.Set("X-Slack-Signature", "v0=zz")
		}, body, 401},
		{"too large", func(h http.Header) {}, body + "&pad=" + strings.Repeat("x", maxInteractionBytes), 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			tc.header(h)
			if code := f.send(t, tc.body, h); code != tc.want {
				t.Errorf("answered %d, want %d", code, tc.want)
			}
		})
	}
	if n := len(f.actor.got()); n != 0 {
		t.Errorf("actor called %d times", n)
	}
	if n := len(f.api.calledWith("chat.update")); n != 0 {
		t.Errorf("%d updates", n)
	}

	// Signed, but not a click of ours: answered, nothing done.
	for name, action := range map[string]map[string]any{
		"unknown action": {"action_id": "runbook", "type": "button", "value": "x"},
		"not a ref":      {"action_id": "acknowledge", "type": "button", "value": "HighErrorRate"},
		"duration not offered": {"action_id": "silence", "type": "static_select",
			"selected_option": map[string]any{"value": key + "/999h"}},
	} {
		want := http.StatusBadRequest
		if name == "unknown action" {
			want = http.StatusOK
		}
		if code := f.click(t, "t-"+name, action); code != want {
			t.Errorf("%s: answered %d, want %d", name, code, want)
		}
	}
	// A ref that expired: nothing to act on.
	if code := f.click(t, "t-expired", map[string]any{"action_id": "acknowledge", "type": "button", "value": "slack:" + strings.Repeat("0", 32)}); code != http.StatusOK {
		t.Errorf("expired: answered %d", code)
	}
	if n := len(f.actor.got()); n != 0 {
		t.Errorf("actor called %d times", n)
	}
}

func TestInteractionsNil(t *testing.T) {
	refs := notifiers.StoreRefs(memory.New(memory.Options{}))
	actor := &fakeActor{}
	withSecret := func(c Config) Config { c.SigningSecret = signingSecret; return c }
	cases := []struct {
		name  string
		n     *Notifier
		actor Actor
	}{
		{"no signing secret", New(loaded(t, tokenConfig("http://127.0.0.1:1")), nil, refs), actor},
		{"webhook", New(Config{APIURL: "http://127.0.0.1:1/hook", SigningSecret: signingSecret}, nil, refs), actor},
		{"no refs", New(loaded(t, withSecret(tokenConfig("http://127.0.0.1:1"))), nil, nil), actor},
		{"no actor", New(loaded(t, withSecret(tokenConfig("http://127.0.0.1:1"))), nil, refs), nil},
	}
	for _, tc := range cases {
		if h := tc.n.Interactions(tc.actor, zerolog.Nop()); h != nil {
			t.Errorf("%s: Interactions = %v, want nil", tc.name, h)
		}
	}
	// Without buttons, no blocks either.
	api := newWebAPI(t)
	n, _ := appNotifier(t, api, nil)
	notify(t, n, groupNote(1, nil, errorRate))
	if p := api.calledWith("chat.postMessage")[0]; p.Has("blocks") {
		t.Errorf("blocks without a signing secret: %s", p.Get("blocks"))
	}
}

// update_message "false" with buttons: each notification its own message,
// and a click shows its outcome in the latest.
func TestClickUpdateMessageOff(t *testing.T) {
	api := newWebAPI(t)
	n, _ := appNotifier(t, api, func(c *Config) { c.SigningSecret = signingSecret })
	actor := &fakeActor{}
	srv := httptest.NewServer(n.Interactions(actor, zerolog.Nop()))
	defer srv.Close()
	f := &clickFixture{n: n, api: api, actor: actor, srv: srv}
	off := map[string]string{SettingUpdateMessage: "false"}
	notify(t, n, groupNote(1, off, errorRate))
	notify(t, n, groupNote(2, off, errorRate, latency))
	posts := api.calledWith("chat.postMessage")
	if len(posts) != 2 || posts[1].Get("text") != "2 firing" {
		t.Fatalf("posts %v", posts)
	}
	key := elements(t, posts[1])[0]["value"].(string)
	f.click(t, "trigger-1", map[string]any{"action_id": "acknowledge", "type": "button", "value": key})
	u := api.calledWith("chat.update")
	if len(actor.got()) != 1 || len(u) != 1 || u[0].Get("ts") != "1714557600.000002" || !strings.Contains(u[0].Get("text"), "Acknowledged by <@U123>") {
		t.Errorf("clicks %d, updates %v", len(actor.got()), u)
	}
}

// The signing secret never shows, wherever the token does not.
func TestSigningSecretRedacted(t *testing.T) {
	c := Config{Token: "xoxb-1", SigningSecret: secret.Secret(signingSecret)}
	if errs := c.Load(""); len(errs) > 0 {
		t.Fatal(errs)
	}
	n := New(c, nil, nil)
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", c, c, c), fmt.Sprintf("%v %+v %#v", n, n, n)} {
		if strings.Contains(s, signingSecret) {
			t.Errorf("%s leaks the signing secret", s)
		}
	}
	err := n.scrub(fmt.Errorf("echo: %s", signingSecret))
	if strings.Contains(err.Error(), signingSecret) {
		t.Errorf("scrub kept the signing secret: %v", err)
	}
}
