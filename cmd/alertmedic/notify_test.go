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
	_, api := get(t, d.url("/api/v1/deliveries/failed"))
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
