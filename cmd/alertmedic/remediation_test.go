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

func overloaded(status string) []byte {
	ends := "0001-01-01T00:00:00Z"
	if status == "resolved" {
		ends = time.Now().UTC().Format(time.RFC3339)
	}
	return []byte(fmt.Sprintf(`{"version":"4","status":%q,"receiver":"alertmedic","groupKey":"{}:{alertname=\"ExtractionServiceOverloaded\"}","alerts":[{"status":%q,"labels":{"alertname":"ExtractionServiceOverloaded","severity":"warning","team":"platform"},"annotations":{"summary":"Too many concurrent extractions"},"startsAt":%q,"endsAt":%q}]}`,
		status, status, time.Now().UTC().Add(-time.Minute).Format(time.RFC3339), ends))
}

// The shipped scale action through the daemon: the orchestrator gets the
// exact request once, #ops-alerts hears of it, the audit shows it; a
// repeat within the cooldown does nothing; pause needs the admin
// credentials and stops actions, resume restores them.
func TestRemediationEndToEnd(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	orch := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
		if r.Method == http.MethodGet {
			fmt.Fprint(w, `{"replicas":2}`)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer orch.Close()
	slackSrv := newStandIn(t)
	example, err := os.ReadFile("../../config/example.yml")
	if err != nil {
		t.Fatal(err)
	}
	// The shipped example, acting for real against the stand-ins.
	body := strings.Replace(string(example), "  dry_run: true\n", "  dry_run: false\n", 1)
	body = strings.Replace(body, "http://127.0.0.1:8081", orch.URL, 1)
	body = strings.Replace(body, "\nweb:\n", "\nweb:\n  admin_auth:\n    basic_auth: {username: admin, password: admin-pass}\n", 1)
	body += fmt.Sprintf(`
integrations:
  slack:
    api_url: %s/services/x
`, slackSrv.srv.URL)
	cfg := filepath.Join(t.TempDir(), "alertmedic.yml")
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	d := start(t, "--config.file="+cfg)
	if code, b := post(t, d.url("/webhook"), overloaded("firing")); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	// The rule verifies (verify: within 10m), so the scale first reads the
	// replicas it can go back to, then asks for its own.
	eventually(t, 5*time.Second, "the scale call", func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 2 })
	mu.Lock()
	if want := []string{`GET /services/company-extraction-api `, `POST /scale {"service":"company-extraction-api","replicas":5}`}; len(calls) < 2 || calls[0] != want[0] || calls[1] != want[1] {
		t.Errorf("orchestrator got %q, want %q", calls, want)
	}
	mu.Unlock()
	eventually(t, 5*time.Second, "the #ops-alerts notice", func() bool {
		for _, b := range slackSrv.got() {
			if strings.Contains(b, "#ops-alerts") && strings.Contains(b, "scaled company-extraction-api from 2 to 5 replicas") {
				return true
			}
		}
		return false
	})

	// The same firing alert sent 10 more times: acknowledged, and the
	// cooldown (15m in the shipped rule) holds: no second scale.
	for i := 0; i < 10; i++ {
		post(t, d.url("/webhook"), overloaded("firing"))
	}
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	if len(calls) != 2 {
		t.Errorf("%d orchestrator calls after repeats within the cooldown, want the 2 of the first", len(calls))
	}
	mu.Unlock()

	// Pause: admin credentials required.
	if code, _ := post(t, d.url("/api/v1/remediation/pause"), nil); code != 401 {
		t.Errorf("pause without credentials: %d", code)
	}
	req, _ := http.NewRequest("POST", d.url("/api/v1/remediation/pause"), nil)
	req.SetBasicAuth("admin", "admin-pass")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("pause: %v %v", resp, err)
	}
	resp.Body.Close()
	_, audit := get(t, d.url("/api/v1/remediations?limit=50"))
	var a struct {
		Paused  bool `json:"paused"`
		Records []struct {
			Rule, Action, Result, Reason string
		} `json:"records"`
	}
	if err := json.Unmarshal([]byte(audit), &a); err != nil {
		t.Fatal(err)
	}
	var ran int
	for _, r := range a.Records {
		if r.Rule == "scale-extraction" && r.Result == "ran" {
			ran++
		}
	}
	if !a.Paused || ran != 1 {
		t.Errorf("audit: paused %v, %d runs: %s", a.Paused, ran, audit)
	}
	if strings.Contains(audit, "admin-pass") || strings.Contains(d.log.String(), "admin-pass") {
		t.Error("admin password leaked")
	}
}

// A hanging orchestrator delays no notification: the remediation waits,
// another alert's Slack message goes out at once.
func TestSlowRemediationDelaysNoNotification(t *testing.T) {
	release := make(chan struct{})
	orch := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer orch.Close()
	defer close(release)
	slackSrv := newStandIn(t)
	example, err := os.ReadFile("../../config/example.yml")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(string(example), "  dry_run: true\n", "  dry_run: false\n", 1)
	body = strings.Replace(body, "http://127.0.0.1:8081", orch.URL, 1)
	body += fmt.Sprintf("\nintegrations:\n  slack:\n    api_url: %s/services/x\n", slackSrv.srv.URL)
	cfg := filepath.Join(t.TempDir(), "alertmedic.yml")
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	d := start(t, "--config.file="+cfg)
	if code, b := post(t, d.url("/webhook"), overloaded("firing")); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	time.Sleep(200 * time.Millisecond) // the scale call is now hanging
	start := time.Now()
	if code, b := post(t, d.url("/webhook"), fixture(t, "partial_resolved.json")); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	eventually(t, 3*time.Second, "the other alert's notification", func() bool {
		for _, b := range slackSrv.got() {
			if strings.Contains(b, "BackendUnhealthy") {
				return true
			}
		}
		return false
	})
	if el := time.Since(start); el > time.Second {
		t.Errorf("notification took %v while an action hung", el)
	}
}
