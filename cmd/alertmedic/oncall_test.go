package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertmedic/alertmedic/notifiers/slack/slacktest"
)

const clickSecret = "process-test-signing-secret"

// webAPI stands in for Slack's Web API (form-encoded chat.postMessage and
// chat.update) and PagerDuty's Events API v2 (JSON events) at once.
type webAPI struct {
	mu      sync.Mutex
	posts   []url.Values
	updates []url.Values
	events  []map[string]any
}

func (s *webAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/v2/enqueue":
		b, _ := io.ReadAll(r.Body)
		var ev map[string]any
		_ = json.Unmarshal(b, &ev)
		s.events = append(s.events, ev)
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"status":"success","dedup_key":%q}`, ev["dedup_key"])
	case "/api/chat.postMessage":
		_ = r.ParseForm()
		s.posts = append(s.posts, r.PostForm)
		fmt.Fprintf(w, `{"ok":true,"channel":"C0PROC","ts":"1700000000.%06d"}`, len(s.posts))
	case "/api/chat.update":
		_ = r.ParseForm()
		s.updates = append(s.updates, r.PostForm)
		fmt.Fprintf(w, `{"ok":true,"channel":"C0PROC","ts":%q}`, r.PostForm.Get("ts"))
	default:
		fmt.Fprint(w, `{"ok":false,"error":"unknown_method"}`)
	}
}

func (s *webAPI) eventsOf(action string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, ev := range s.events {
		if ev["event_action"] == action {
			out = append(out, ev)
		}
	}
	return out
}

var ackValueRE = regexp.MustCompile(`"action_id":"acknowledge"[^}]*?"value":"([^"]+)"|"value":"([^"]+)"[^}]*?"action_id":"acknowledge"`)

func (s *webAPI) ackButton() (value, ts string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.posts {
		for _, field := range []string{"blocks", "attachments"} {
			if m := ackValueRE.FindStringSubmatch(p.Get(field)); m != nil {
				return m[1] + m[2], fmt.Sprintf("1700000000.%06d", i+1)
			}
		}
	}
	return "", ""
}

func click(t *testing.T, endpoint, value, ts string, at time.Time, secret string) int {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "team": map[string]any{"id": "T0PROC"},
		"user":       map[string]any{"id": "U0BOB", "username": "bob", "name": "bob"},
		"trigger_id": "2222.3333.proc",
		"channel":    map[string]any{"id": "C0PROC"},
		"container":  map[string]any{"type": "message", "message_ts": ts, "channel_id": "C0PROC"},
		"actions":    []map[string]any{{"action_id": "acknowledge", "block_id": "b", "value": value, "type": "button", "action_ts": "1700000200.000001"}},
	})
	return signedPost(t, endpoint, payload, at, secret)
}

// signedPost posts a Slack interaction payload as Slack does: form field
// payload, signed v0 with secret at the instant at.
func signedPost(t *testing.T, endpoint string, payload []byte, at time.Time, secret string) int {
	t.Helper()
	body := "payload=" + url.QueryEscape(string(payload))
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	slacktest.Sign(req.Header, secret, body, at)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A signed Acknowledge click on a group's Slack message acknowledges, once,
// the PagerDuty alert the group paged (same dedup_key, same routing key)
// and updates that message; a replayed click acts once; a badly signed or
// stale click gets 401 and does nothing.
func TestSlackAcknowledgeClick(t *testing.T) {
	api := &webAPI{}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	cfg := writeConfig(t, fmt.Sprintf(`
integrations:
  slack:
    token: xoxb-process-token
    signing_secret: %s
    api_base_url: %s/api/
  pagerduty:
    routing_key: process-routing-key
    url: %s/v2/enqueue
route:
  receiver: oncall
receivers:
  - name: oncall
    integrations:
      - type: slack
        settings: {channel: "#oncall"}
      - type: pagerduty
`, clickSecret, srv.URL, srv.URL))
	d := start(t, "--config.file="+cfg)

	resp, err := http.Post(d.url("/webhook"), "application/json", bytes.NewReader(alertPayload(7, "firing")))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %v %v", err, resp)
	}
	resp.Body.Close()

	var value, ts string
	until := time.Now().Add(20 * time.Second)
	for time.Now().Before(until) && (value == "" || len(api.eventsOf("trigger")) == 0) {
		time.Sleep(100 * time.Millisecond)
		value, ts = api.ackButton()
	}
	triggers := api.eventsOf("trigger")
	if value == "" || len(triggers) != 1 {
		t.Fatalf("no Acknowledge button (%q) or not one trigger (%d)", value, len(triggers))
	}

	endpoint := d.url("/api/v1/slack/interactions")
	now := time.Now()
	if code := click(t, endpoint, value, ts, now, "a wrong secret"); code != http.StatusUnauthorized {
		t.Errorf("badly signed click: %d, want 401", code)
	}
	if code := click(t, endpoint, value, ts, now.Add(-6*time.Minute), clickSecret); code != http.StatusUnauthorized {
		t.Errorf("stale click: %d, want 401", code)
	}
	for i := 0; i < 3; i++ { // the click, and Slack sending it again
		if code := click(t, endpoint, value, ts, now, clickSecret); code != http.StatusOK {
			t.Fatalf("click %d: %d, want 200", i+1, code)
		}
	}

	until = time.Now().Add(10 * time.Second)
	for time.Now().Before(until) && len(api.eventsOf("acknowledge")) == 0 {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // a second acknowledge, were there one, arrives
	acks := api.eventsOf("acknowledge")
	if len(acks) != 1 {
		t.Fatalf("acknowledge events: %d, want 1", len(acks))
	}
	if acks[0]["dedup_key"] != triggers[0]["dedup_key"] || acks[0]["routing_key"] != "process-routing-key" {
		t.Errorf("acknowledge %v does not match the trigger %v", acks[0], triggers[0])
	}
	api.mu.Lock()
	var updated int
	for _, u := range api.updates {
		if u.Get("ts") == ts && strings.Contains(u.Encode(), url.QueryEscape("Acknowledged by <@U0BOB>")) {
			updated++
		}
	}
	api.mu.Unlock()
	if updated != 1 {
		t.Errorf("message updates saying it was acknowledged: %d, want 1", updated)
	}
	if strings.Contains(d.log.String(), clickSecret) || strings.Contains(d.log.String(), "process-routing-key") {
		t.Error("the log holds a secret")
	}
}
