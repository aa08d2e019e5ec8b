package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func alertPayload(i int, status string) []byte {
	ends := "0001-01-01T00:00:00Z"
	if status == "resolved" {
		ends = "2026-11-26T12:05:00Z"
	}
	return []byte(fmt.Sprintf(`{"version":"4","status":%q,"receiver":"alertmedic","groupKey":"{}:{alertname=\"KillTest\"}","alerts":[{"status":%q,"labels":{"alertname":"KillTest","severity":"warning","instance":"host-%d"},"annotations":{"summary":"alert-%d"},"startsAt":"2026-11-26T12:00:00Z","endsAt":%q}]}`, status, status, i, i, ends))
}

var summaryRE = regexp.MustCompile(`alert-(\d+)`)

// slackRecorder is a Slack stand-in that can hold one request open until
// the test says so.
type slackRecorder struct {
	mu       sync.Mutex
	answered []map[string]bool // alerts per message, answered 200 in time
	n        int
	holdAt   int
	held     chan struct{}
	release  chan struct{}
	late     bool // set once the daemon is killed: answers no longer count as delivered before
}

func (s *slackRecorder) handler(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.n++
	hold := s.n == s.holdAt
	s.mu.Unlock()
	if hold {
		close(s.held)
		<-s.release
	}
	alerts := map[string]bool{}
	for _, m := range summaryRE.FindAllStringSubmatch(string(b), -1) {
		alerts[m[1]] = true
	}
	s.mu.Lock()
	if !hold || !s.late {
		s.answered = append(s.answered, alerts)
	}
	s.mu.Unlock()
	fmt.Fprint(w, "ok")
}

// With Redis, a daemon killed with SIGKILL while a Slack request is in
// flight: after a restart every accepted alert reaches Slack, and no alert
// whose message Slack had answered before the kill is sent again.
func TestSIGKILLDuringDeliveryRedis(t *testing.T) {
	_, prefix := redisPrefix(t)
	rec := &slackRecorder{holdAt: 3, held: make(chan struct{}), release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(rec.handler))
	defer srv.Close()
	cfg := writeConfig(t, fmt.Sprintf(`
global:
  replica_id: kill-test
store:
  type: redis
  redis:
    url: %s
    key_prefix: %s
    claim_idle: 1s
route:
  receiver: team
receivers:
  - name: team
    integrations:
      - type: slack
        settings: {channel: "#team"}
integrations:
  slack:
    api_url: %s/services/T/B/secret
    max_attachments: 99   # every alert visible in the message, for the count below
delivery:
  attempt_timeout: 2s
  min_backoff: 50ms
  max_backoff: 200ms
`, redisURL(), prefix, srv.URL))
	a := start(t, "--config.file="+cfg)
	const total = 30
	for i := 0; i < total; i++ {
		if code, body := post(t, a.url("/webhook"), alertPayload(i, "firing")); code != 200 {
			t.Fatalf("webhook %d: %d %s", i, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-rec.held:
	case <-time.After(10 * time.Second):
		t.Fatal("no third Slack request")
	}
	// Every alert is accepted (200) and the third Slack request is in
	// flight: kill.
	a.stop(t, syscall.SIGKILL, 5*time.Second)
	rec.mu.Lock()
	rec.late = true
	before := map[string]bool{}
	for _, m := range rec.answered {
		for k := range m {
			before[k] = true
		}
	}
	rec.mu.Unlock()
	close(rec.release)

	b := start(t, "--config.file="+cfg)
	defer func() {
		rec.mu.Lock()
		t.Logf("slack requests %d, answered messages %d: %v", rec.n, len(rec.answered), rec.answered)
		rec.mu.Unlock()
	}()
	eventually(t, 30*time.Second, "every alert delivered", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		got := map[string]bool{}
		for _, m := range rec.answered {
			for k := range m {
				got[k] = true
			}
		}
		return len(got) >= total
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	count := map[string]int{}
	for _, m := range rec.answered {
		for k := range m {
			count[k]++
		}
	}
	for k := range before {
		if count[k] != 1 {
			t.Errorf("alert %s was delivered before the kill and %d times in all", k, count[k])
		}
	}
	if len(before) == 0 || len(before) == total {
		t.Errorf("%d alerts delivered before the kill: the kill must fall in the middle", len(before))
	}
	_ = b
	_ = json.Marshal
}

// Real time, real HTTP: Slack answering 429 with Retry-After: 2 twice, then
// ok; then Slack answering 500 for 30 seconds.
func TestSlackRetriesRealTime(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	var delivered []string
	mode := "429"
	var failUntil time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		switch {
		case mode == "429" && len(times) <= 2:
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		case mode == "500" && time.Now().Before(failUntil):
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		delivered = append(delivered, string(b))
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	cfg := writeConfig(t, fmt.Sprintf(`
route:
  receiver: team
receivers:
  - name: team
    integrations:
      - type: slack
        settings: {channel: "#team"}
integrations:
  slack:
    api_url: %s/services/T/B/x
delivery:
  min_backoff: 200ms
  max_backoff: 5s
`, srv.URL))
	d := start(t, "--config.file="+cfg)
	if code, b := post(t, d.url("/webhook"), alertPayload(1, "firing")); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	eventually(t, 15*time.Second, "delivery after two 429s", func() bool { mu.Lock(); defer mu.Unlock(); return len(delivered) == 1 })
	mu.Lock()
	if len(times) != 3 {
		t.Errorf("%d requests, want 3", len(times))
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < 2*time.Second {
			t.Errorf("request %d came %v after a 429 with Retry-After: 2", i+1, gap)
		}
	}
	mode, failUntil, times = "500", time.Now().Add(30*time.Second), nil
	mu.Unlock()

	if code, b := post(t, d.url("/webhook"), alertPayload(2, "firing")); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	eventually(t, 50*time.Second, "delivery after 30 s of 500s", func() bool { mu.Lock(); defer mu.Unlock(); return len(delivered) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if n := len(times); n < 4 || !times[n-1].After(failUntil) {
		t.Errorf("%d requests; the last at %v, want retries until after the outage ended at %v", n, times[len(times)-1], failUntil)
	}
	if !strings.Contains(delivered[1], "alert-2") {
		t.Errorf("second delivery: %s", delivered[1])
	}
	time.Sleep(500 * time.Millisecond)
	if len(delivered) != 2 {
		t.Errorf("delivered %d times, want exactly once each", len(delivered))
	}
}
