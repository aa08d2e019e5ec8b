package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// heldConfig is the shipped example acting for real (dry_run off) against
// the stand-ins, on the shared Redis store, with a verify window of a few
// seconds: the warning route holds the scaled alert's Slack message.
func heldConfig(t *testing.T, prefix, replica, orch, slack string) string {
	t.Helper()
	example, err := os.ReadFile("../../config/example.yml")
	if err != nil {
		t.Fatal(err)
	}
	body := string(example)
	for _, r := range [][2]string{
		{"  dry_run: true\n", "  dry_run: false\n"},
		{"http://127.0.0.1:8081", orch},
		{"      verify: {within: 10m}\n", "      verify: {within: 3s}\n"},
		{"store:\n  type: memory\n", fmt.Sprintf("store:\n  type: redis\n  redis:\n    url: %s\n    key_prefix: %s\n    claim_idle: 1s\n", redisURL(), prefix)},
		{"global:\n", "global:\n  replica_id: " + replica + "\n"},
	} {
		if !strings.Contains(body, r[0]) {
			t.Fatalf("the example has no %q", r[0])
		}
		body = strings.Replace(body, r[0], r[1], 1)
	}
	body += fmt.Sprintf("\nintegrations:\n  slack:\n    api_url: %s/services/x\n", slack)
	return writeConfig(t, body)
}

// Two replicas on Redis; the one that holds the page (it took the alert,
// scaled and waits for the verdict) is SIGKILLed. The scale did not help
// (the alert stays firing), so the page goes out, once, from the replica
// that is left, saying what was tried, within the window plus a minute.
func TestHeldPageSurvivesSIGKILLRedis(t *testing.T) {
	_, prefix := redisPrefix(t)
	var mu sync.Mutex
	var scales int
	orch := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if r.Method == http.MethodGet {
			fmt.Fprint(w, `{"replicas":2}`)
			return
		}
		mu.Lock()
		scales++
		mu.Unlock()
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer orch.Close()
	slack := newStandIn(t)
	a := start(t, "--config.file="+heldConfig(t, prefix, "replica-a", orch.URL, slack.srv.URL))
	b := start(t, "--config.file="+heldConfig(t, prefix, "replica-b", orch.URL, slack.srv.URL))

	sent := time.Now()
	if code, body := post(t, a.url("/webhook"), overloaded("firing")); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	warning := func() []string {
		var out []string
		for _, s := range slack.got() {
			if strings.Contains(s, "#alerts-warning") {
				out = append(out, s)
			}
		}
		return out
	}
	// a scaled and waits for the verdict: the ops notice comes after the
	// wait is in the store. The page is held meanwhile.
	eventually(t, 10*time.Second, "the scale's notice", func() bool {
		for _, s := range slack.got() {
			if strings.Contains(s, "#ops-alerts") && strings.Contains(s, "scaled company-extraction-api from 2 to 5 replicas") {
				return true
			}
		}
		return false
	})
	if w := warning(); len(w) != 0 {
		t.Fatalf("the held page went out before the verdict: %q", w)
	}
	a.stop(t, syscall.SIGKILL, 5*time.Second)

	// The window is 3s; nothing may be held past it plus a minute.
	limit := 3*time.Second + time.Minute
	eventually(t, time.Until(sent.Add(limit+2*time.Second)), "the held page", func() bool { return len(warning()) > 0 })
	took := time.Since(sent)
	t.Logf("the held page went out %v after the alert", took.Round(100*time.Millisecond))
	if took > limit {
		t.Errorf("the page went out %v after the alert, past the window plus a minute", took.Round(time.Second))
	}
	w := warning()
	if !strings.Contains(w[0], "Remediation tried") ||
		!strings.Contains(w[0], "scaled company-extraction-api from 2 to 5 replicas; the alert was still firing at the end of the 3s window") {
		t.Errorf("the page does not say what was tried: %s", w[0])
	}
	time.Sleep(2 * time.Second)
	if w := warning(); len(w) != 1 {
		t.Errorf("%d pages to #alerts-warning, want 1: %q", len(w), w)
	}
	mu.Lock()
	if scales != 1 {
		t.Errorf("%d scale calls, want 1", scales)
	}
	mu.Unlock()
	if !strings.Contains(b.log.String(), `"outcome":"ineffective"`) && !strings.Contains(b.log.String(), "ineffective") {
		t.Errorf("the replica left did not judge the scale:\n%s", b.log)
	}
}
