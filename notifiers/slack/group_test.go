package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"golang.org/x/time/rate"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/store/memory"
)

// webAPI stands in for Slack's Web API as alertmedic calls it: form-encoded
// chat.postMessage and chat.update with a bot token, answered as Slack
// does. It keeps the messages posted, so that chat.update of a message it
// does not have (deleted, or never posted) answers message_not_found.
type webAPI struct {
	*httptest.Server
	mu       sync.Mutex
	calls    []apiCall
	ids      map[string]string     // channel as named → its ID
	messages map[string]url.Values // "<channel ID> <ts>" → the message's form
	posted   int
	// updateErr, when set, is chat.update's answer: {"ok":false,"error":...}.
	updateErr string
	// status, when set, is the HTTP status of every answer.
	status int
}

type apiCall struct {
	method string // chat.postMessage or chat.update
	form   url.Values
}

func newWebAPI(t *testing.T) *webAPI {
	t.Helper()
	s := &webAPI{ids: map[string]string{}, messages: map[string]url.Values{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *webAPI) serve(w http.ResponseWriter, r *http.Request) {
	answer := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(code string) { answer(map[string]any{"ok": false, "error": code}) }
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		http.Error(w, "want a form POST", http.StatusBadRequest)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, apiCall{method, r.PostForm})
	if s.status != 0 {
		w.WriteHeader(s.status)
		return
	}
	if r.PostForm.Get("token") != testToken {
		fail("invalid_auth")
		return
	}
	channel := r.PostForm.Get("channel")
	switch method {
	case "chat.postMessage":
		id, ok := s.ids[channel]
		if !ok {
			id = channel
			if strings.HasPrefix(channel, "#") {
				id = fmt.Sprintf("C%04d", len(s.ids)+1)
				s.ids[channel] = id
			}
		}
		s.posted++
		ts := fmt.Sprintf("1714557600.%06d", s.posted)
		s.messages[id+" "+ts] = r.PostForm
		answer(map[string]any{"ok": true, "channel": id, "ts": ts, "message": map[string]any{"ts": ts, "text": r.PostForm.Get("text")}})
	case "chat.update":
		ts := r.PostForm.Get("ts")
		switch {
		case s.updateErr != "":
			fail(s.updateErr)
		case s.messages[channel+" "+ts] == nil:
			// chat.update takes the channel's ID, as chat.postMessage answers it.
			fail("message_not_found")
		default:
			s.messages[channel+" "+ts] = r.PostForm
			answer(map[string]any{"ok": true, "channel": channel, "ts": ts, "text": r.PostForm.Get("text")})
		}
	default:
		fail("unknown_method")
	}
}

// calledWith returns the calls of one method, in order.
func (s *webAPI) calledWith(method string) []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []url.Values
	for _, c := range s.calls {
		if c.method == method {
			out = append(out, c.form)
		}
	}
	return out
}

func (s *webAPI) delete(channel, ts string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.messages, channel+" "+ts)
}

func (s *webAPI) set(f func(s *webAPI)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// appNotifier is a Notifier in app mode on api, its refs in a memory store.
func appNotifier(t *testing.T, api *webAPI, edit func(*Config)) (*Notifier, notifiers.Refs) {
	t.Helper()
	c := tokenConfig(api.URL)
	if edit != nil {
		edit(&c)
	}
	refs := notifiers.StoreRefs(memory.New(memory.Options{}))
	return New(loaded(t, c), api.Client(), refs), refs
}

// groupNote is notification number i of an Alertmanager group.
func groupNote(i int, settings map[string]string, as ...template.Alert) *notifiers.Notification {
	tg := target("#alerts")
	for k, v := range settings {
		tg.Settings[k] = v
	}
	return &notifiers.Notification{Key: fmt.Sprintf("e:%d", i), Kind: notifiers.KindAlerts, Target: tg,
		GroupKey: `{}:{alertname="HighErrorRate"}`, ExternalURL: "http://alertmanager:9093", Alerts: as}
}

func notify(t *testing.T, n *Notifier, nt *notifiers.Notification) {
	t.Helper()
	if retry, err := n.Notify(context.Background(), nt); err != nil || retry {
		t.Fatalf("Notify = %v, %v; want false, nil", retry, err)
	}
}

func attachments(t *testing.T, form url.Values) []map[string]any {
	t.Helper()
	var as []map[string]any
	if err := json.Unmarshal([]byte(form.Get("attachments")), &as); err != nil {
		t.Fatalf("attachments are not JSON: %v\n%s", err, form.Get("attachments"))
	}
	return as
}

var (
	errorRate = mkAlert(alert.StatusFiring, "HighErrorRate", "critical", map[string]string{"summary": "5xx above 5%"}, t0)
	latency   = mkAlert(alert.StatusFiring, "HighLatency", "warning", map[string]string{"summary": "p99 above 2s"}, t0.Add(time.Minute))
)

func resolved(a template.Alert) template.Alert {
	a.Status, a.EndsAt = alert.StatusResolved, a.StartsAt.Add(15*time.Minute)
	return a
}

// A group's later notifications update its first message, which shows the
// whole group as it now is.
func TestGroupUpdatesItsMessage(t *testing.T) {
	api := newWebAPI(t)
	n, refs := appNotifier(t, api, nil)
	notify(t, n, groupNote(1, nil, errorRate, latency))
	notify(t, n, groupNote(2, nil, resolved(errorRate), latency))

	posts, updates := api.calledWith("chat.postMessage"), api.calledWith("chat.update")
	if len(posts) != 1 || len(updates) != 1 {
		t.Fatalf("%d posts and %d updates, want 1 and 1", len(posts), len(updates))
	}
	if got := posts[0].Get("text"); got != "2 firing" {
		t.Errorf("first message's text = %q, want %q", got, "2 firing")
	}
	u := updates[0]
	if u.Get("channel") != "C0001" || u.Get("ts") != "1714557600.000001" {
		t.Errorf("update of %s %s, want the message posted (C0001 1714557600.000001)", u.Get("channel"), u.Get("ts"))
	}
	if got := u.Get("text"); got != "1 firing, 1 resolved" {
		t.Errorf("updated text = %q, want %q", got, "1 firing, 1 resolved")
	}
	// Firing first; the resolved one green, as a resolved notification's.
	as := attachments(t, u)
	if len(as) != 2 || as[0]["title"] != "WARNING: HighLatency" || as[1]["title"] != "RESOLVED: HighErrorRate" || as[1]["color"] != "good" {
		t.Errorf("updated attachments: %v", as)
	}
	// No blocks without buttons; an update says so, or Slack keeps the old ones.
	if posts[0].Has("blocks") || u.Get("blocks") != "[]" {
		t.Errorf("blocks: posted %q, updated %q; want none and []", posts[0].Get("blocks"), u.Get("blocks"))
	}
	if posts[0].Get("username") != "" || u.Has("thread_ts") {
		t.Errorf("unexpected form: %v %v", posts[0], u)
	}

	// The ref: the message, the group, both alerts merged.
	raw, err := refs.Ref(context.Background(), notifiers.RefKey("slack", target("").Key(), groupNote(0, nil).GroupKey))
	if err != nil || raw == nil {
		t.Fatalf("ref: %q, %v", raw, err)
	}
	g := decodeRef(raw)
	if g.Channel != "C0001" || g.TS != "1714557600.000001" || g.TargetKey != "critical-alerts/slack[0]" ||
		g.ExternalURL != "http://alertmanager:9093" || len(g.Alerts) != 2 || g.Alerts[1].Status != alert.StatusResolved {
		t.Errorf("ref = %+v", g)
	}

	// A notification tried again updates again; it posts nothing.
	notify(t, n, groupNote(2, nil, resolved(errorRate), latency))
	if p, u := len(api.calledWith("chat.postMessage")), len(api.calledWith("chat.update")); p != 1 || u != 2 {
		t.Errorf("after a retry: %d posts and %d updates, want 1 and 2", p, u)
	}
}

func TestGroupThreadReplies(t *testing.T) {
	api := newWebAPI(t)
	n, _ := appNotifier(t, api, func(c *Config) { c.Username = "alertmedic" })
	on := map[string]string{SettingThreadReplies: "true"}
	notify(t, n, groupNote(1, on, errorRate, latency))
	notify(t, n, groupNote(2, on, resolved(errorRate), latency))
	// Alertmanager's repeat: nothing changed, and the reply reminds.
	notify(t, n, groupNote(3, on, resolved(errorRate), latency))

	posts := api.calledWith("chat.postMessage")
	if len(posts) != 3 || len(api.calledWith("chat.update")) != 2 {
		t.Fatalf("%d posts and %d updates, want 3 (the message and two replies) and 2", len(posts), len(api.calledWith("chat.update")))
	}
	for i, want := range []string{"1 firing, 1 resolved: HighErrorRate resolved", "1 firing, 1 resolved: still firing"} {
		r := posts[i+1]
		if r.Get("thread_ts") != "1714557600.000001" || r.Get("channel") != "C0001" || r.Get("text") != want || r.Has("attachments") {
			t.Errorf("reply %d: thread_ts %q channel %q text %q attachments %q; want the message's thread and %q",
				i, r.Get("thread_ts"), r.Get("channel"), r.Get("text"), r.Get("attachments"), want)
		}
		if r.Get("username") != "alertmedic" {
			t.Errorf("reply %d posted as %q", i, r.Get("username"))
		}
	}
	if posts[0].Has("thread_ts") {
		t.Error("the first message is in a thread")
	}
}

// A message that can no longer be updated is posted anew, and the group's
// later updates go to the new one.
func TestGroupMessageGone(t *testing.T) {
	for _, code := range []string{"message_not_found", "cant_update_message", "edit_window_closed"} {
		t.Run(code, func(t *testing.T) {
			api := newWebAPI(t)
			n, _ := appNotifier(t, api, nil)
			on := map[string]string{SettingThreadReplies: "true"}
			notify(t, n, groupNote(1, on, errorRate, latency))
			if code == "message_not_found" {
				api.delete("C0001", "1714557600.000001") // as a user deleting it does
			} else {
				api.set(func(s *webAPI) { s.updateErr = code })
			}
			notify(t, n, groupNote(2, on, resolved(errorRate), latency))
			api.set(func(s *webAPI) { s.updateErr = "" })
			notify(t, n, groupNote(3, on, resolved(errorRate), resolved(latency)))

			posts, updates := api.calledWith("chat.postMessage"), api.calledWith("chat.update")
			// The new message notifies; the reply goes with the update after it.
			if len(posts) != 3 || len(updates) != 2 {
				t.Fatalf("%d posts and %d updates, want 3 and 2", len(posts), len(updates))
			}
			if posts[1].Has("thread_ts") || posts[1].Get("text") != "1 firing, 1 resolved" {
				t.Errorf("new message: thread_ts %q text %q", posts[1].Get("thread_ts"), posts[1].Get("text"))
			}
			if ts := updates[1].Get("ts"); ts != "1714557600.000002" {
				t.Errorf("the next update went to %s, want the new message 1714557600.000002", ts)
			}
			if r := posts[2]; r.Get("thread_ts") != "1714557600.000002" || r.Get("text") != "2 resolved: HighLatency resolved" {
				t.Errorf("reply: thread_ts %q text %q", r.Get("thread_ts"), r.Get("text"))
			}
		})
	}
}

// Other answers to chat.update fail the notification, retried as any call.
func TestGroupUpdateFails(t *testing.T) {
	cases := []struct {
		name      string
		set       func(*webAPI)
		wantRetry bool
		wantErr   string
	}{
		{"channel not found", func(s *webAPI) { s.updateErr = "channel_not_found" }, false, "update message: channel_not_found"},
		{"transient", func(s *webAPI) { s.updateErr = "internal_error" }, true, "update message: internal_error"},
		{"500", func(s *webAPI) { s.status = 500 }, true, "update message: unexpected status code 500"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := newWebAPI(t)
			n, _ := appNotifier(t, api, nil)
			notify(t, n, groupNote(1, nil, errorRate))
			api.set(tc.set)
			retry, err := n.Notify(context.Background(), groupNote(2, nil, resolved(errorRate)))
			if retry != tc.wantRetry || fmt.Sprint(err) != tc.wantErr {
				t.Errorf("Notify = %v, %v; want %v, %s", retry, err, tc.wantRetry, tc.wantErr)
			}
			if len(api.calledWith("chat.postMessage")) != 1 {
				t.Error("posted a new message for an error that does not say the message is gone")
			}
		})
	}
}

// update_message "false": a message per notification, as without refs.
func TestGroupUpdateMessageOff(t *testing.T) {
	api := newWebAPI(t)
	n, refs := appNotifier(t, api, nil)
	off := map[string]string{SettingUpdateMessage: "false", SettingThreadReplies: "true"}
	notify(t, n, groupNote(1, off, errorRate))
	notify(t, n, groupNote(2, off, resolved(errorRate)))
	if p, u := len(api.calledWith("chat.postMessage")), len(api.calledWith("chat.update")); p != 2 || u != 0 {
		t.Errorf("%d posts and %d updates, want 2 and 0", p, u)
	}
	// Without buttons the ref is not needed, so none is kept.
	if raw, _ := refs.Ref(context.Background(), notifiers.RefKey("slack", target("").Key(), groupNote(0, nil).GroupKey)); raw != nil {
		t.Errorf("a ref was kept: %s", raw)
	}
}

// Without a group key, refs or a token, every notification is a message of
// its own, exactly as before.
func TestUnfollowedAsBefore(t *testing.T) {
	t.Run("no group key", func(t *testing.T) {
		api := newWebAPI(t)
		n, _ := appNotifier(t, api, nil)
		for i := range 2 {
			nt := groupNote(i, nil, errorRate)
			nt.GroupKey = ""
			notify(t, n, nt)
		}
		if p, u := len(api.calledWith("chat.postMessage")), len(api.calledWith("chat.update")); p != 2 || u != 0 {
			t.Errorf("%d posts and %d updates, want 2 and 0", p, u)
		}
	})
	t.Run("nil refs", func(t *testing.T) {
		api := newWebAPI(t)
		n := New(loaded(t, tokenConfig(api.URL)), api.Client(), nil)
		notify(t, n, groupNote(1, nil, errorRate))
		notify(t, n, groupNote(2, nil, resolved(errorRate)))
		posts := api.calledWith("chat.postMessage")
		if len(posts) != 2 || len(api.calledWith("chat.update")) != 0 || posts[0].Has("text") {
			t.Errorf("posts %v, updates %d", posts, len(api.calledWith("chat.update")))
		}
	})
	t.Run("webhook", func(t *testing.T) {
		// The same bodies as a Notifier without refs sends, and no ref.
		srv := newSlackServer(t, nil)
		c := loaded(t, webhookConfig(srv.URL))
		refs := notifiers.StoreRefs(memory.New(memory.Options{}))
		on := map[string]string{SettingThreadReplies: "true"}
		notes := []*notifiers.Notification{groupNote(1, on, errorRate), groupNote(2, on, resolved(errorRate))}
		for _, nt := range notes {
			notify(t, New(c, srv.Client(), refs), nt)
			notify(t, New(c, srv.Client(), nil), nt)
		}
		reqs := srv.requests()
		if len(reqs) != 4 {
			t.Fatalf("%d requests, want 4", len(reqs))
		}
		for i := 0; i < 4; i += 2 {
			if reqs[i].path != webhookPath || !bytes.Equal(reqs[i].body, reqs[i+1].body) {
				t.Errorf("with refs: %s %s\nwithout: %s", reqs[i].path, reqs[i].body, reqs[i+1].body)
			}
		}
		if raw, _ := refs.Ref(context.Background(), notifiers.RefKey("slack", target("").Key(), notes[0].GroupKey)); raw != nil {
			t.Errorf("a ref was kept: %s", raw)
		}
	})
}

// The calls wait for Slack's rate rather than send: one that would wait
// past its context is not sent, and is retried.
func TestGroupRateLimited(t *testing.T) {
	api := newWebAPI(t)
	n, _ := appNotifier(t, api, nil)
	notify(t, n, groupNote(1, nil, errorRate))
	n.limits.update = rate.NewLimiter(rate.Every(time.Hour), 1)
	n.limits.update.Allow() // spent
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	retry, err := n.Notify(ctx, groupNote(2, nil, resolved(errorRate)))
	if !retry || err == nil || !strings.HasPrefix(err.Error(), "update message: wait for the rate limit: ") {
		t.Errorf("Notify = %v, %v; want a retry of the rate limit's wait", retry, err)
	}
	if u := len(api.calledWith("chat.update")); u != 0 {
		t.Errorf("%d updates sent past the limit", u)
	}

	// chat.postMessage, per channel: another channel is not held up.
	n.limits.post("#alerts").SetBurst(0)
	nt := groupNote(3, nil, errorRate)
	nt.GroupKey = ""
	if retry, err := n.Notify(ctx, nt); !retry || err == nil || !strings.Contains(err.Error(), "wait for the rate limit") {
		t.Errorf("Notify = %v, %v; want a retry of the rate limit's wait", retry, err)
	}
	nt.Target.Settings["channel"] = "#other"
	notify(t, n, nt)
}

func TestGroupMerge(t *testing.T) {
	g := &groupRef{}
	nt := groupNote(1, nil, errorRate, latency)
	if got := g.merge(nt); fmt.Sprint(got) != "[HighErrorRate firing HighLatency firing]" {
		t.Errorf("changes = %v", got)
	}
	// A late retry of an older observation does not bring it back.
	if got := g.merge(groupNote(2, nil, resolved(errorRate))); fmt.Sprint(got) != "[HighErrorRate resolved]" {
		t.Errorf("changes = %v", got)
	}
	if got := g.merge(groupNote(1, nil, errorRate)); len(got) != 0 || g.Alerts[1].Status != alert.StatusResolved {
		t.Errorf("an older observation won: changes %v, alerts %v", got, g.Alerts)
	}
	// It fires again: a later start.
	again := errorRate
	again.StartsAt = t0.Add(time.Hour)
	if got := g.merge(groupNote(3, nil, again)); fmt.Sprint(got) != "[HighErrorRate firing]" || g.Alerts[0].Status != alert.StatusFiring {
		t.Errorf("changes %v, alerts %v", got, g.Alerts)
	}

	// The cap: 100 kept, firing first, the rest counted.
	var storm template.Alerts
	for i := range 130 {
		status := alert.StatusFiring
		if i%2 == 0 {
			status = alert.StatusResolved
		}
		storm = append(storm, mkAlert(status, fmt.Sprintf("Storm%03d", i), "warning",
			map[string]string{"description": strings.Repeat("x", 5000)}, t0.Add(time.Duration(i)*time.Second)))
	}
	g = &groupRef{}
	changes := g.merge(groupNote(1, nil, storm...))
	if len(g.Alerts) != maxRefAlerts || g.More != 30 || g.Alerts[64].Status != alert.StatusFiring || len(changes) != 130 {
		t.Errorf("%d alerts kept, %d more, %d changes", len(g.Alerts), g.More, len(changes))
	}
	if d := g.Alerts[0].Annotations["description"]; len(d) > maxAnnotationLen {
		t.Errorf("annotation kept at %d bytes", len(d))
	}
	if got := summarize(g.Alerts, g.More); got != "65 firing, 35 resolved, 30 more" {
		t.Errorf("summary = %q", got)
	}
	if got := g.reply(changes); !strings.HasSuffix(got, ": Storm000 resolved, Storm001 firing, Storm002 resolved, Storm003 firing, Storm004 resolved, and 125 more") {
		t.Errorf("reply = %q", got)
	}
	if got := listChanges([]string{"A resolved", "B firing", "A resolved"}); got != "A resolved ×2, B firing" {
		t.Errorf("listChanges = %q", got)
	}
}

// The ref's size is bounded whatever the group: 100 alerts with long
// annotations, ten lines.
func TestGroupRefBounded(t *testing.T) {
	g := &groupRef{}
	var as template.Alerts
	for i := range 300 {
		as = append(as, mkAlert(alert.StatusFiring, fmt.Sprintf("A%d", i), "warning",
			map[string]string{"summary": strings.Repeat("s", 10000), "description": strings.Repeat("d", 10000)}, t0))
	}
	g.merge(groupNote(1, nil, as...))
	for range 50 {
		g.addLine(strings.Repeat("l", 1000))
	}
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 400<<10 || len(g.Lines) != maxRefLines || len(g.Lines[0]) > maxLineLen {
		t.Errorf("ref of %d bytes, %d lines", len(b), len(g.Lines))
	}
}
