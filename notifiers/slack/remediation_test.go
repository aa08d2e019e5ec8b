package slack

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/remediation"
	"github.com/alertmedic/alertmedic/secret"
	"github.com/alertmedic/alertmedic/store/memory"
)

// breakerNotice is the notice the engine's breaker sends (remediation's
// trip), for one target.
func breakerNotice(by string) *notifiers.Notification {
	return &notifiers.Notification{
		Key:  "notice:remediation:1714557600000000000:9f3c:critical-alerts/slack[0]",
		Kind: notifiers.KindRemediation, Target: target("#alerts"),
		Text: "remediation paused by " + by + ": 1 action in 10m: the fleet-wide limit remediation.max_actions. restart-api did not run for HighErrorRate; remediation stays paused until resumed (POST /api/v1/remediation/resume)",
		Facts: map[string]string{"action": "pause", "by": by, "replica": "r1", "rule": "restart-api",
			"reason": "breaker", "limit": "1 per 10m"},
	}
}

var remValueRE = regexp.MustCompile(`^rem:resume:[0-9a-f]{32}$`)

// The breaker's notice in app mode with a signing secret carries one
// Resume button whose value is opaque; its attachment is the notice's as
// before. Other notices, and every notice without a signing secret or
// through a webhook, are today's messages.
func TestResumeButton(t *testing.T) {
	api := newWebAPI(t)
	n, _ := appNotifier(t, api, func(c *Config) { c.SigningSecret = signingSecret })
	notify(t, n, breakerNotice(remediation.BreakerBy))
	post := api.calledWith("chat.postMessage")[0]
	els := elements(t, post)
	if len(els) != 1 || els[0]["action_id"] != ActionResume || els[0]["type"] != "button" ||
		els[0]["text"].(map[string]any)["text"] != "Resume" {
		t.Fatalf("elements = %v", els)
	}
	v := els[0]["value"].(string)
	if !remValueRE.MatchString(v) {
		t.Errorf("value %q is not rem:resume:<opaque id>", v)
	}
	for _, s := range []string{"HighErrorRate", "restart-api", "breaker", "alerts", "r1", signingSecret, testToken} {
		if strings.Contains(strings.TrimPrefix(v, "rem:resume:"), s) {
			t.Errorf("button value %q carries %q", v, s)
		}
	}
	if post.Get("text") != resumeText || sectionText(t, post) != resumeText {
		t.Errorf("text %q, section %q", post.Get("text"), sectionText(t, post))
	}

	// Without a signing secret: no blocks, no text, the same attachment.
	plain := newWebAPI(t)
	pn, _ := appNotifier(t, plain, nil)
	notify(t, pn, breakerNotice(remediation.BreakerBy))
	pp := plain.calledWith("chat.postMessage")[0]
	if pp.Has("blocks") || pp.Has("text") || pp.Get("attachments") != post.Get("attachments") {
		t.Errorf("without a signing secret: %v\nwith one, attachments %s", pp, post.Get("attachments"))
	}

	// A person's pause, or another notice: no button.
	for _, nt := range []*notifiers.Notification{breakerNotice("api"), {Key: "k", Kind: notifiers.KindRemediation,
		Target: target("#alerts"), Text: "remediation resumed by api", Facts: map[string]string{"action": "resume", "by": "api"}}} {
		notify(t, n, nt)
		posts := api.calledWith("chat.postMessage")
		if p := posts[len(posts)-1]; p.Has("blocks") || p.Has("text") {
			t.Errorf("%s: blocks %s", nt.Text, p.Get("blocks"))
		}
	}

	// A webhook sends the same body with or without a signing secret and
	// refs (which Load refuses, but New is not told).
	srv := newSlackServer(t, nil)
	refs := notifiers.StoreRefs(memory.New(memory.Options{}))
	for i, ss := range []string{"", signingSecret} {
		c := webhookConfig(srv.URL)
		c.SigningSecret = secret.Secret(ss)
		nn := New(c, srv.Client(), nil)
		if i == 1 {
			nn = New(c, srv.Client(), refs)
		}
		notify(t, nn, breakerNotice(remediation.BreakerBy))
	}
	if reqs := srv.requests(); len(reqs) != 2 || string(reqs[0].body) != string(reqs[1].body) || strings.Contains(string(reqs[1].body), "rem:resume") {
		t.Errorf("webhook bodies differ or carry a button: %d requests, %s", len(reqs), reqs[len(reqs)-1].body)
	}
}

// resumeFixture is a Notifier with buttons whose breaker notice is posted,
// its Interactions served over HTTP.
func resumeFixture(t *testing.T) (*clickFixture, string) {
	t.Helper()
	api := newWebAPI(t)
	n, _ := appNotifier(t, api, func(c *Config) { c.SigningSecret = signingSecret })
	n.now = func() time.Time { return clickTime }
	f := &clickFixture{n: n, api: api, actor: &fakeActor{}}
	f.srv = httptest.NewServer(n.Interactions(f.actor, zerolog.Nop()))
	t.Cleanup(f.srv.Close)
	notify(t, n, breakerNotice(remediation.BreakerBy))
	f.post = api.calledWith("chat.postMessage")[0]
	return f, elements(t, f.post)[0]["value"].(string)
}

// noticeClick is Slack's payload for a click on the notice's button: the
// message as Slack shows it (its text), in the channel and at the ts
// chat.postMessage answered.
func noticeClick(t *testing.T, f *clickFixture, trigger string, action map[string]any) string {
	t.Helper()
	action["block_id"] = "Rb1"
	action["action_ts"] = "1714572120.123456"
	b, err := json.Marshal(map[string]any{
		"type":       "block_actions",
		"team":       map[string]any{"id": "T0001", "domain": "company"},
		"user":       map[string]any{"id": "U123", "username": "alice", "name": "alice", "team_id": "T0001"},
		"container":  map[string]any{"type": "message", "message_ts": "1714557600.000001", "channel_id": "C0001"},
		"trigger_id": trigger,
		"channel":    map[string]any{"id": "C0001", "name": "alerts"},
		"message":    map[string]any{"type": "message", "ts": "1714557600.000001", "text": f.post.Get("text")},
		"actions":    []any{action},
	})
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{"payload": {string(b)}}.Encode()
}

func signed(body string) http.Header {
	h := http.Header{}
	sign(h, signingSecret, body, time.Now())
	return h
}

// A signed Resume: the actor is called once however often Slack sends the
// click, with no group, and the notice shows who resumed, without its
// button; its attachment is left as it is.
func TestResumeClick(t *testing.T) {
	f, value := resumeFixture(t)
	body := noticeClick(t, f, "1334.7384.resume", map[string]any{"action_id": "resume", "type": "button", "value": value})
	for i := range 3 {
		h := signed(body)
		if i > 0 {
			h.Set("X-Slack-Retry-Num", "1")
		}
		if code := f.send(t, body, h); code != http.StatusOK {
			t.Fatalf("send %d answered %d", i, code)
		}
	}
	clicks := f.actor.got()
	if len(clicks) != 1 {
		t.Fatalf("actor called %d times, want 1", len(clicks))
	}
	c := clicks[0]
	if c.Action != ActionResume || c.UserID != "U123" || c.UserName != "alice" || c.Channel != "C0001" || c.TS != "1714557600.000001" ||
		c.Remediation != strings.TrimPrefix(value, "rem:resume:") || !reflect.DeepEqual(c.Group, Group{}) {
		t.Errorf("click = %+v", c)
	}
	updates := f.api.calledWith("chat.update")
	if len(updates) != 1 {
		t.Fatalf("%d updates, want 1", len(updates))
	}
	u := updates[0]
	want := resumeText + "\nResumed by <@U123> at 14:02 UTC"
	if u.Get("channel") != "C0001" || u.Get("ts") != "1714557600.000001" || u.Get("text") != want || sectionText(t, u) != want {
		t.Errorf("update %s %s text %q section %q, want %q", u.Get("channel"), u.Get("ts"), u.Get("text"), sectionText(t, u), want)
	}
	if els := elements(t, u); len(els) != 0 {
		t.Errorf("the button stayed after the resume: %v", els)
	}
	if u.Has("attachments") {
		t.Errorf("the update replaced the attachments: %s", u.Get("attachments"))
	}
}

// A failed resume shows why, and keeps the button to try again; a notice
// that can no longer be updated gets the line in its thread.
func TestResumeClickFails(t *testing.T) {
	f, value := resumeFixture(t)
	f.actor.err = errors.New("resume remediation: store <down>")
	body := noticeClick(t, f, "t-1", map[string]any{"action_id": "resume", "type": "button", "value": value})
	f.send(t, body, signed(body))
	u := f.api.calledWith("chat.update")
	want := resumeText + "\nResume by <@U123> failed at 14:02 UTC: resume remediation: store &lt;down&gt;"
	if len(u) != 1 || u[0].Get("text") != want {
		t.Fatalf("updates %v, want one showing %q", u, want)
	}
	if els := elements(t, u[0]); len(els) != 1 || els[0]["value"] != value || els[0]["action_id"] != ActionResume {
		t.Errorf("elements after a failure: %v", els)
	}

	f.actor.err = nil
	f.api.set(func(s *webAPI) { s.updateErr = "edit_window_closed" })
	body = noticeClick(t, f, "t-2", map[string]any{"action_id": "resume", "type": "button", "value": value})
	f.send(t, body, signed(body))
	posts := f.api.calledWith("chat.postMessage")
	if len(posts) != 2 || posts[1].Get("thread_ts") != "1714557600.000001" || posts[1].Get("channel") != "C0001" ||
		posts[1].Get("text") != "Resumed by <@U123> at 14:02 UTC" {
		t.Errorf("posts %v, want a thread reply with the line", posts)
	}
}

// A Resume click that is not Slack's is refused; a value that is not a
// remediation button's is not acted on.
func TestResumeClickRefused(t *testing.T) {
	f, value := resumeFixture(t)
	body := noticeClick(t, f, "t-1", map[string]any{"action_id": "resume", "type": "button", "value": value})
	h := http.Header{}
	sign(h, "not-the-secret", body, time.Now())
	if code := f.send(t, body, h); code != http.StatusUnauthorized {
		t.Errorf("bad signature answered %d, want 401", code)
	}
	for name, v := range map[string]string{
		"another action": strings.Replace(value, "rem:resume:", "rem:approve:", 1),
		"a group's ref":  "slack:" + strings.Repeat("0", 32),
		"empty":          "",
	} {
		b := noticeClick(t, f, "t-"+name, map[string]any{"action_id": "resume", "type": "button", "value": v})
		if code := f.send(t, b, signed(b)); code != http.StatusBadRequest {
			t.Errorf("%s: answered %d, want 400", name, code)
		}
	}
	if n, u := len(f.actor.got()), len(f.api.calledWith("chat.update")); n != 0 || u != 0 {
		t.Errorf("actor called %d times, %d updates", n, u)
	}
}

// proposalNotice is a proposal's notice (a rule with approval), as the
// engine announces it; its text carries a label value with mrkdwn in it.
func proposalNotice() *notifiers.Notification {
	return &notifiers.Notification{
		Key:  "notice:remediation:1714557600000000000:7a1b:ops/slack[0]",
		Kind: notifiers.KindRemediation, Target: target("#ops"),
		Text: "Approval needed: rule scale-api would scale <api> to 5 replicas because HighLoad fired. Approve or deny by 14:17 UTC.",
		Facts: map[string]string{"action": "scale", "result": remediation.ResultProposed, "reason": remediation.ReasonApproval,
			"rule": "scale-api", "proposal": "0123456789abcdef01234567"},
	}
}

// A proposal's notice offers Approve and Deny with the proposal's ID; a
// click hands it to the actor and the message shows who answered, without
// the buttons; a failed answer keeps both.
func TestApprovalButtons(t *testing.T) {
	api := newWebAPI(t)
	n, _ := appNotifier(t, api, func(c *Config) { c.SigningSecret = signingSecret })
	n.now = func() time.Time { return clickTime }
	f := &clickFixture{n: n, api: api, actor: &fakeActor{}}
	f.srv = httptest.NewServer(n.Interactions(f.actor, zerolog.Nop()))
	t.Cleanup(f.srv.Close)
	notify(t, n, proposalNotice())
	f.post = api.calledWith("chat.postMessage")[0]
	els := elements(t, f.post)
	if len(els) != 2 || els[0]["action_id"] != ActionApprove || els[0]["value"] != "rem:approve:0123456789abcdef01234567" ||
		els[1]["action_id"] != ActionDeny || els[1]["value"] != "rem:deny:0123456789abcdef01234567" {
		t.Fatalf("elements = %v", els)
	}
	if s := sectionText(t, f.post); !strings.Contains(s, "would scale &lt;api&gt; to 5 replicas") {
		t.Errorf("section %q does not show the label escaped", s)
	}

	f.actor.err = errors.New("not an approver of this rule")
	body := noticeClick(t, f, "t-1", map[string]any{"action_id": "approve", "type": "button", "value": els[0]["value"]})
	f.send(t, body, signed(body))
	u := f.api.calledWith("chat.update")
	if len(u) != 1 || !strings.HasSuffix(u[0].Get("text"), "\nApprove by <@U123> failed at 14:02 UTC: not an approver of this rule") {
		t.Fatalf("updates %v", u)
	}
	if els := elements(t, u[0]); len(els) != 2 {
		t.Errorf("after a failure the buttons are %v, want both", els)
	}

	f.actor.err = nil
	body = noticeClick(t, f, "t-2", map[string]any{"action_id": "deny", "type": "button", "value": els[1]["value"]})
	f.send(t, body, signed(body))
	clicks := f.actor.got()
	if len(clicks) != 2 || clicks[1].Action != ActionDeny || clicks[1].Remediation != "0123456789abcdef01234567" || clicks[1].UserID != "U123" {
		t.Fatalf("clicks %+v", clicks)
	}
	u = f.api.calledWith("chat.update")
	if len(u) != 2 || !strings.HasSuffix(u[1].Get("text"), "\nDenied by <@U123> at 14:02 UTC") || len(elements(t, u[1])) != 0 {
		t.Errorf("update after the denial: %v", u[len(u)-1])
	}

	// Other notices, and a proposal's without a signing secret: no buttons.
	plain := newWebAPI(t)
	pn, _ := appNotifier(t, plain, nil)
	notify(t, pn, proposalNotice())
	if p := plain.calledWith("chat.postMessage")[0]; p.Has("blocks") {
		t.Errorf("without a signing secret: blocks %s", p.Get("blocks"))
	}
	ran := proposalNotice()
	ran.Facts["result"] = remediation.ResultRan
	notify(t, n, ran)
	if posts := api.calledWith("chat.postMessage"); posts[len(posts)-1].Has("blocks") {
		t.Errorf("a notice of a run got buttons: %s", posts[len(posts)-1].Get("blocks"))
	}
}
