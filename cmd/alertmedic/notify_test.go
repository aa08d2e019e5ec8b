package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stand-in records what an integration's server received.
type standIn struct {
	mu     sync.Mutex
	bodies []string
	status int
	srv    *httptest.Server
}

func newStandIn(t *testing.T) *standIn {
	s := &standIn{status: 200}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		code := s.status
		s.mu.Unlock()
		w.WriteHeader(code)
		if code == 400 {
			fmt.Fprint(w, "invalid_payload")
		} else if r.URL.Path == "/v2/enqueue" {
			fmt.Fprint(w, `{"status":"success","message":"Event processed","dedup_key":"x"}`)
		} else {
			fmt.Fprint(w, "ok")
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standIn) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// The shipped routing with real integrations pointed at local stand-ins:
// a critical alert reaches Slack and PagerDuty, its resolve closes the same
// PagerDuty incident, a Slack 400 becomes a dead letter, and no secret
// reaches the log or the API.
func TestIntegrationsEndToEnd(t *testing.T) {
	slackSrv, pdSrv := newStandIn(t), newStandIn(t)
	const slackPath, routingKey = "/services/T000/B000/s3cr3t-slack-path", "pd-routing-key-s3cr3t"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pd-key"), []byte(routingKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../config/example.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "alertmedic.yml")
	body := string(example) + fmt.Sprintf(`
integrations:
  slack:
    api_url: %s%s
  pagerduty:
    routing_key_file: pd-key
    url: %s/v2/enqueue
delivery:
  min_backoff: 10ms
  max_backoff: 50ms
`, slackSrv.srv.URL, slackPath, pdSrv.srv.URL)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	d := start(t, "--config.file="+cfg, "--log.level=debug")

	if code, b := post(t, d.url("/webhook"), fixture(t, "firing.json")); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	eventually(t, 5*time.Second, "slack and pagerduty", func() bool { return len(slackSrv.got()) == 1 && len(pdSrv.got()) == 1 })
	if s := slackSrv.got()[0]; !strings.Contains(s, `"CRITICAL: HighErrorRate"`) || !strings.Contains(s, "Runbook") {
		t.Errorf("slack message: %s", s)
	}
	var trig struct {
		Action   string `json:"event_action"`
		DedupKey string `json:"dedup_key"`
	}
	_ = json.Unmarshal([]byte(pdSrv.got()[0]), &trig)
	if trig.Action != "trigger" || trig.DedupKey == "" {
		t.Fatalf("pagerduty trigger: %s", pdSrv.got()[0])
	}

	if code, b := post(t, d.url("/webhook"), fixture(t, "resolved.json")); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	eventually(t, 5*time.Second, "the resolve", func() bool { return len(pdSrv.got()) == 2 && len(slackSrv.got()) == 2 })
	var res struct {
		Action   string `json:"event_action"`
		DedupKey string `json:"dedup_key"`
	}
	_ = json.Unmarshal([]byte(pdSrv.got()[1]), &res)
	if res.Action != "resolve" || res.DedupKey != trig.DedupKey {
		t.Errorf("pagerduty resolve %+v, want the trigger's dedup_key %s", res, trig.DedupKey)
	}

	// Slack refuses the next one: a dead letter, at once, with the reason.
	slackSrv.mu.Lock()
	slackSrv.status = 400
	slackSrv.mu.Unlock()
	if code, b := post(t, d.url("/webhook"), fixture(t, "unicode_multiline.json")); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	var failed struct {
		Deliveries []struct {
			Target, Error string
			Attempts      int
		} `json:"deliveries"`
	}
	eventually(t, 5*time.Second, "the dead letter", func() bool {
		_, b := get(t, d.url("/api/v1/deliveries/failed"))
		_ = json.Unmarshal([]byte(b), &failed)
		return len(failed.Deliveries) == 1
	})
	if f := failed.Deliveries[0]; !strings.Contains(f.Error, "400") || f.Attempts != 1 {
		t.Errorf("dead letter %+v: want the 400 reason and one attempt", f)
	}
	_, api := get(t, d.url("/api/v1/deliveries/failed?full=true"))
	_, metrics := get(t, d.url("/metrics"))
	if !strings.Contains(metrics, `alertmedic_notifications_dead_letters_total{integration="slack"} 1`) {
		t.Error("dead letter not counted")
	}
	for _, secret := range []string{"s3cr3t-slack-path", routingKey} {
		for what, text := range map[string]string{"log": d.log.String(), "API": api, "metrics": metrics} {
			if strings.Contains(text, secret) {
				t.Errorf("secret %q in the %s", secret, what)
			}
		}
	}
}

// Every integration configured with known secrets, driven through failures
// and successes: no secret in any log line, error or API answer.
func TestNoSecretAnywhere(t *testing.T) {
	slackSrv, pdSrv, hookSrv := newStandIn(t), newStandIn(t), newStandIn(t)
	slackSrv.status = 500 // fails first, then recovers below
	pdSrv.status = 400    // dead letter: its error text is served by the API
	closed := freePort(t) // the SMTP server is down
	secrets := map[string]string{
		"slack path":     "T0/B0/slack-s3cret-path",
		"routing key":    "pd-s3cret-routing-key",
		"smtp password":  "smtp-s3cret-password",
		"webhook token":  "hook-s3cret-bearer",
		"webhook path":   "hook-s3cret-path",
		"inbound token":  "inbound-s3cret-token",
		"admin password": "admin-s3cret-password",
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "smtp-pass"), []byte(secrets["smtp password"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "alertmedic.yml")
	body := fmt.Sprintf(`
web:
  auth:
    bearer_token: %s
  admin_auth:
    basic_auth: {username: admin, password: %s}
route:
  receiver: all
receivers:
  - name: all
    integrations:
      - type: slack
        settings: {channel: "#all"}
      - type: pagerduty
      - type: email
        settings: {to: oncall@example.com}
      - type: webhook
integrations:
  slack:
    api_url: %s/services/%s
  pagerduty:
    routing_key: %s
    url: %s/v2/enqueue
  email:
    smarthost: 127.0.0.1:%d
    from: alertmedic@example.com
    tls: none
    auth_username: alertmedic
    auth_password_file: smtp-pass
  webhook:
    url: %s/%s
    bearer_token: %s
delivery:
  min_backoff: 20ms
  max_backoff: 100ms
  attempt_timeout: 2s
  deadline: 1s
`, secrets["inbound token"], secrets["admin password"], slackSrv.srv.URL, secrets["slack path"], secrets["routing key"], pdSrv.srv.URL, closed,
		hookSrv.srv.URL, secrets["webhook path"], secrets["webhook token"])
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	d := start(t, "--config.file="+cfg, "--log.level=debug")
	auth := []string{"Authorization", "Bearer " + secrets["inbound token"]}
	if code, _ := post(t, d.url("/webhook"), fixture(t, "firing.json")); code != 401 {
		t.Fatalf("no credentials: %d", code)
	}
	if code, b := post(t, d.url("/webhook"), fixture(t, "firing.json"), auth...); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	eventually(t, 5*time.Second, "slack's first failure", func() bool { return len(slackSrv.got()) >= 1 })
	slackSrv.mu.Lock()
	slackSrv.status = 200
	slackSrv.mu.Unlock()
	var api string
	eventually(t, 10*time.Second, "pagerduty and email dead letters", func() bool {
		_, api = get(t, d.url("/api/v1/deliveries/failed?full=true"))
		return strings.Count(api, `"key"`) == 2
	})
	eventually(t, 5*time.Second, "slack and webhook delivered", func() bool {
		return len(slackSrv.got()) >= 2 && len(hookSrv.got()) == 1
	})
	if code, b := post(t, d.url("/-/reload"), nil, "Authorization", "Bearer "+secrets["inbound token"]); code != 401 {
		t.Errorf("reload with the webhook token: %d %s", code, b)
	}
	var texts = map[string]string{"deliveries API": api}
	for _, p := range []string{"/metrics", "/api/v1/health/detailed", "/api/v1/routes/test?alertname=X", "/api/v1/health"} {
		_, b := get(t, d.url(p))
		texts[p] = b
	}
	_, texts["failed reload"] = post(t, d.url("/-/reload"), nil, "Authorization", "Basic bad")
	d.stop(t, syscall.SIGTERM, 10*time.Second)
	texts["log"] = d.log.String()
	for what, text := range texts {
		for name, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s (%s) appears in the %s", name, secret, what)
			}
		}
	}
	if !strings.Contains(texts["log"], "notification failed for good") {
		t.Error("the failures did not happen: the test proves nothing")
	}
}
