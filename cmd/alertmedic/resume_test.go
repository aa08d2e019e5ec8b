package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// cacheAlert is a firing alert named name, of its own group.
func cacheAlert(name string) []byte {
	return []byte(fmt.Sprintf(`{"version":"4","status":"firing","receiver":"alertmedic","groupKey":"{}:{alertname=\"%s\"}","alerts":[{"status":"firing","labels":{"alertname":%q,"severity":"warning"},"annotations":{"summary":"cold cache"},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z"}]}`,
		name, name, time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)))
}

var resumeValueRE = regexp.MustCompile(`"value":"(rem:resume:[0-9a-f]{32})"`)

// resumeButton is the value of the Resume button the stand-in was sent,
// and the ts its message was answered.
func (s *webAPI) resumeButton() (value, ts string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.posts {
		if m := resumeValueRE.FindStringSubmatch(p.Get("blocks")); m != nil {
			return m[1], fmt.Sprintf("1700000000.%06d", i+1)
		}
	}
	return "", ""
}

// resumeClick posts Slack's payload for a click on Resume, signed with
// secret.
func resumeClick(t *testing.T, endpoint, value, ts, trigger, secret string) int {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "team": map[string]any{"id": "T0PROC"},
		"user":       map[string]any{"id": "U0BOB", "username": "bob", "name": "bob"},
		"trigger_id": trigger,
		"channel":    map[string]any{"id": "C0PROC"},
		"container":  map[string]any{"type": "message", "message_ts": ts, "channel_id": "C0PROC"},
		"message":    map[string]any{"type": "message", "ts": ts, "text": "Remediation paused itself"},
		"actions":    []map[string]any{{"action_id": "resume", "block_id": "r", "value": value, "type": "button", "action_ts": "1700000300.000001"}},
	})
	return signedPost(t, endpoint, payload, time.Now(), secret)
}

// The breaker through the daemon: two alerts, two rules, max_actions 1 per
// 10m: the second action trips it, and its notice reaches Slack with a
// Resume button. A badly signed click does nothing; a signed one (sent
// twice, as Slack may) resumes once, by slack:bob, announces it, and the
// notice shows who resumed.
func TestSlackResumeClick(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	orch := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		mu.Unlock()
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer orch.Close()
	api := &webAPI{}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	cfg := writeConfig(t, fmt.Sprintf(`
integrations:
  slack:
    token: xoxb-process-token
    signing_secret: %s
    api_base_url: %s/api/
route:
  receiver: ops
receivers:
  - name: ops
    integrations:
      - type: slack
        settings: {channel: "#ops"}
remediation:
  dry_run: false
  orchestrator_url: %s
  api_base_url: %s
  notify_receiver: ops
  max_actions: {count: 1, per: 10m}
  rules:
    - name: warm-a
      matchers: ['alertname="ColdCacheA"']
      action: cache_warm
      params: {companies: "Apple"}
    - name: warm-b
      matchers: ['alertname="ColdCacheB"']
      action: cache_warm
      params: {companies: "Tesla"}
`, clickSecret, srv.URL, orch.URL, orch.URL))
	d := start(t, "--config.file="+cfg)

	for _, name := range []string{"ColdCacheA", "ColdCacheB"} {
		if code, b := post(t, d.url("/webhook"), cacheAlert(name)); code != http.StatusOK {
			t.Fatalf("webhook %s: %d %s", name, code, b)
		}
		if name == "ColdCacheA" {
			eventually(t, 10*time.Second, "the first action", func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 1 })
		}
	}
	var value, ts string
	eventually(t, 20*time.Second, "the breaker's notice with a Resume button", func() bool {
		value, ts = api.resumeButton()
		return value != ""
	})
	paused := func() bool {
		_, b := get(t, d.url("/api/v1/remediations?limit=50"))
		var a struct {
			Paused bool `json:"paused"`
		}
		if err := json.Unmarshal([]byte(b), &a); err != nil {
			t.Fatalf("remediations: %v: %s", err, b)
		}
		return a.Paused
	}
	if !paused() {
		t.Fatal("the breaker's notice went out, but remediation is not paused")
	}
	mu.Lock()
	if len(calls) != 1 {
		t.Errorf("orchestrator calls %q, want the first action's only", calls)
	}
	mu.Unlock()

	endpoint := d.url("/api/v1/slack/interactions")
	if code := resumeClick(t, endpoint, value, ts, "5555.proc.resume", "a wrong secret"); code != http.StatusUnauthorized {
		t.Errorf("badly signed click: %d, want 401", code)
	}
	time.Sleep(300 * time.Millisecond)
	if !paused() {
		t.Fatal("a badly signed click resumed remediation")
	}
	for i := 0; i < 2; i++ {
		if code := resumeClick(t, endpoint, value, ts, "5555.proc.resume", clickSecret); code != http.StatusOK {
			t.Fatalf("click %d: %d, want 200", i+1, code)
		}
	}
	eventually(t, 10*time.Second, "remediation resumed", func() bool { return !paused() })
	resumedBy := func() (updates, notices int) {
		api.mu.Lock()
		defer api.mu.Unlock()
		for _, u := range api.updates {
			if u.Get("ts") == ts && strings.Contains(u.Get("text"), "Resumed by <@U0BOB>") {
				updates++
			}
		}
		for _, p := range api.posts {
			if strings.Contains(p.Get("attachments"), "remediation resumed by slack:bob") {
				notices++
			}
		}
		return updates, notices
	}
	eventually(t, 10*time.Second, "the notice updated and the resume announced", func() bool {
		u, n := resumedBy()
		return u == 1 && n == 1
	})
	time.Sleep(time.Second) // a second resume, were there one, is announced
	if u, n := resumedBy(); u != 1 || n != 1 {
		t.Errorf("%d updates saying who resumed and %d resume notices, want 1 and 1", u, n)
	}
	_, audit := get(t, d.url("/api/v1/remediations?limit=50"))
	if !strings.Contains(audit, "remediation resumed by slack:bob") {
		t.Errorf("the resume is not audited: %s", audit)
	}
	if strings.Contains(d.log.String(), clickSecret) {
		t.Error("the log holds the signing secret")
	}
}
