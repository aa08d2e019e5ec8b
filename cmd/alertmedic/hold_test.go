package main

import (
	"encoding/json"
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

// exampleWith is the shipped example with each old text replaced by its
// new one (once); a text the example no longer has fails the test.
func exampleWith(t *testing.T, repl ...[2]string) string {
	t.Helper()
	example, err := os.ReadFile("../../config/example.yml")
	if err != nil {
		t.Fatal(err)
	}
	body := string(example)
	for _, r := range repl {
		if !strings.Contains(body, r[0]) {
			t.Fatalf("the example has no %q", r[0])
		}
		body = strings.Replace(body, r[0], r[1], 1)
	}
	return body
}

// heldConfig is the shipped example acting for real (dry_run off) against
// the stand-ins, on the shared Redis store, with a verify window of a few
// seconds: the warning route holds the scaled alert's Slack message.
func heldConfig(t *testing.T, prefix, replica, orch, slack string) string {
	t.Helper()
	body := exampleWith(t,
		[2]string{"  dry_run: true\n", "  dry_run: false\n"},
		[2]string{"http://127.0.0.1:8081", orch},
		[2]string{"      verify: {within: 10m}\n", "      verify: {within: 3s}\n"},
		[2]string{"store:\n  type: memory\n", fmt.Sprintf("store:\n  type: redis\n  redis:\n    url: %s\n    key_prefix: %s\n    claim_idle: 1s\n", redisURL(), prefix)},
		[2]string{"global:\n", "global:\n  replica_id: " + replica + "\n"})
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

// A rule with approval, through the daemon: the scale is proposed, not
// run; POST /api/v1/remediations/{id}/approve needs the admin credentials,
// runs it once, and a second answer is refused.
func TestApprovalThroughAPI(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	orch := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		mu.Unlock()
		fmt.Fprint(w, `{"replicas":2}`)
	}))
	defer orch.Close()
	body := exampleWith(t,
		[2]string{"  dry_run: true\n", "  dry_run: false\n"},
		[2]string{"http://127.0.0.1:8081", orch.URL},
		[2]string{"      # approval: {timeout: 15m, approvers: [U0123ABCD]}\n", "      approval: {timeout: 15m, approvers: [U0123ABCD]}\n"},
		[2]string{"\nweb:\n", "\nweb:\n  admin_auth:\n    basic_auth: {username: admin, password: admin-pass}\n"})
	d := start(t, "--config.file="+writeConfig(t, body))
	if code, b := post(t, d.url("/webhook"), overloaded("firing")); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	var id string
	eventually(t, 5*time.Second, "the proposal in the audit", func() bool {
		_, audit := get(t, d.url("/api/v1/remediations"))
		var a struct {
			Records []struct{ Result, Proposal string }
		}
		_ = json.Unmarshal([]byte(audit), &a)
		for _, r := range a.Records {
			if r.Result == "proposed" {
				id = r.Proposal
				return true
			}
		}
		return false
	})
	mu.Lock()
	if len(calls) != 0 {
		t.Errorf("the orchestrator was called before the approval: %q", calls)
	}
	mu.Unlock()
	approve := d.url("/api/v1/remediations/" + id + "/approve")
	if code, _ := post(t, approve, nil); code != http.StatusUnauthorized {
		t.Errorf("approve without credentials: %d", code)
	}
	req, _ := http.NewRequest(http.MethodPost, approve, nil)
	req.SetBasicAuth("admin", "admin-pass")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("approve: %v %v", resp, err)
	}
	resp.Body.Close()
	eventually(t, 5*time.Second, "the approved scale", func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 2 })
	req, _ = http.NewRequest(http.MethodPost, d.url("/api/v1/remediations/"+id+"/deny"), nil)
	req.SetBasicAuth("admin", "admin-pass")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusConflict {
		t.Errorf("a second answer: %v %v", resp, err)
	}
	resp.Body.Close()
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	if want := "[GET /services/company-extraction-api POST /scale]"; fmt.Sprint(calls) != want {
		t.Errorf("orchestrator got %v, want %s", calls, want)
	}
	mu.Unlock()
	_, audit := get(t, d.url("/api/v1/remediations"))
	if !strings.Contains(audit, `"approved_by":"admin@127.0.0.1"`) || strings.Contains(audit, "admin-pass") {
		t.Errorf("audit: %s", audit)
	}
}
