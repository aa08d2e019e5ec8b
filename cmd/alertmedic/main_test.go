package main

// These tests run the real binary, as a user or CI does: they build it once,
// start it on loopback ports and talk HTTP to it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "alertmedic-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "alertmedic")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build alertmedic: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// logBuf collects a daemon's log lines safely across goroutines.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

// count counts the lines holding every one of substrs.
func (l *logBuf) count(substrs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, s := range l.lines {
		for _, sub := range substrs {
			if !strings.Contains(s, sub) {
				continue next
			}
		}
		n++
	}
	return n
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

type daemon struct {
	cmd  *exec.Cmd
	addr string
	log  *logBuf
	done chan struct{}
	err  error
}

var listenRE = regexp.MustCompile(`"address":"([^"]+)".*"message":"listening"`)

func start(t *testing.T, args ...string) *daemon {
	t.Helper()
	d := &daemon{log: &logBuf{}, done: make(chan struct{})}
	d.cmd = exec.Command(binary, append([]string{"serve", "--web.listen-address=127.0.0.1:0"}, args...)...)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			d.log.add(line)
			if m := listenRE.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log)
		}
	})
	select {
	case d.addr = <-addr:
	case <-d.done:
		t.Fatalf("daemon exited before listening: %v\n%s", d.err, d.log)
	case <-time.After(15 * time.Second):
		t.Fatalf("daemon did not listen within 15s\n%s", d.log)
	}
	return d
}

func (d *daemon) url(p string) string { return "http://" + d.addr + p }

// stop sends sig and waits for the exit, failing after limit.
func (d *daemon) stop(t *testing.T, sig syscall.Signal, limit time.Duration) {
	t.Helper()
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(limit):
		t.Fatalf("daemon still running %s after %v", limit, sig)
	}
}

func post(t *testing.T, url string, body []byte, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func eventually(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "alertmanager", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	startsAtRE = regexp.MustCompile(`"startsAt":"[^"]+"`)
	instanceRE = regexp.MustCompile(`"instance":"[^"]+"`)
)

// variant makes payload i a new observation of a new alert: another instance
// label and another startsAt, as Alertmanager would send for another target.
func variant(b []byte, i int) []byte {
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second).Format(time.RFC3339)
	b = startsAtRE.ReplaceAll(b, []byte(`"startsAt":"`+ts+`"`))
	n := 0
	return instanceRE.ReplaceAllFunc(b, func([]byte) []byte {
		n++
		return []byte(fmt.Sprintf(`"instance":"host-%d-%d:9100"`, i, n))
	})
}

func accepted(t *testing.T, body string) int {
	t.Helper()
	var a struct {
		Accepted int `json:"accepted"`
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("webhook answer %q: %v", body, err)
	}
	return a.Accepted
}

// The quick start from the README: the embedded example, a real payload, the
// log shows it processed, SIGTERM stops it cleanly.
func TestQuickStart(t *testing.T) {
	d := start(t)
	if !strings.Contains(d.log.String(), "embedded example configuration") {
		t.Error("no word in the log that the embedded example is in use")
	}
	code, body := post(t, d.url("/webhook"), fixture(t, "partial_resolved.json"))
	if code != 200 || accepted(t, body) != 3 {
		t.Fatalf("webhook: %d %s", code, body)
	}
	eventually(t, 5*time.Second, "3 alerts processed", func() bool { return d.log.count(`"message":"alert processed"`) == 3 })
	if d.log.count(`"message":"alert processed"`, `"status":"resolved"`) != 1 {
		t.Errorf("the resolved alert of the group was not processed as resolved")
	}
	// Routed by the shipped example: the warning group
	// is one message to #alerts-warning, rendered into the log.
	eventually(t, 5*time.Second, "the routed notification", func() bool {
		return d.log.count(`"message":"would notify"`, `"settings.channel":"#alerts-warning"`, `"alerts":3`) == 1
	})
	// The line carries the Slack message itself, as the webhook would get it.
	if d.log.count(`"message":"would notify"`, `"body":"{\"channel\":\"#alerts-warning\",\"attachments\":[`) != 1 {
		t.Errorf("the would-notify line does not carry the rendered Slack message:\n%s", d.log)
	}
	for _, p := range []string{"/-/healthy", "/-/ready", "/api/v1/health"} {
		if code, body := get(t, d.url(p)); code != 200 {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	_, metrics := get(t, d.url("/metrics"))
	for _, m := range []string{`alertmedic_build_info{`, `alertmedic_alerts_processed_total{status="resolved"} 1`, `alertmedic_config_last_reload_successful 1`, `alertmedic_queue_depth 0`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	d.stop(t, syscall.SIGTERM, 10*time.Second)
	if d.err != nil {
		t.Errorf("exit after SIGTERM: %v", d.err)
	}
	if d.log.count(`"message":"stopped"`) != 1 {
		t.Error("no clean stop in the log")
	}
	// Several workers: none may take an entry another is processing.
	if n := d.log.count(`"message":"would notify"`); n != 1 {
		t.Errorf("%d notifications for one message, want 1", n)
	}
	if d.log.count("already processed") != 0 {
		t.Error("an entry was handed to two workers")
	}
}

// SIGTERM with a full memory queue: the daemon stops taking webhooks and
// processes everything it accepted before it exits.
func TestShutdownDrainsMemoryQueue(t *testing.T) {
	cfg := writeConfig(t, `
store:
  type: memory
pipeline:
  workers: 1
`)
	d := start(t, "--config.file="+cfg)
	total := 0
	for i := 0; i < 200; i++ {
		code, body := post(t, d.url("/webhook"), variant(fixture(t, "group_50.json"), i))
		if code != 200 {
			t.Fatalf("webhook: %d %s", code, body)
		}
		total += accepted(t, body)
	}
	d.stop(t, syscall.SIGTERM, 20*time.Second)
	if got := d.log.count(`"message":"alert processed"`); got != total {
		t.Errorf("%d alerts processed before exit, %d accepted", got, total)
	}
	if d.log.count(`"left":0`) != 1 {
		t.Errorf("drain did not report an empty queue")
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "alertmedic.yml")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestReload(t *testing.T) {
	cfg := writeConfig(t, "webhook:\n  dedup_window: 1m\n")
	d := start(t, "--config.file="+cfg)
	metric := func() string {
		_, m := get(t, d.url("/metrics"))
		for _, l := range strings.Split(m, "\n") {
			if strings.HasPrefix(l, "alertmedic_config_last_reload_successful ") {
				return strings.TrimPrefix(l, "alertmedic_config_last_reload_successful ")
			}
		}
		return "missing"
	}

	// A bad file on SIGHUP: refused, logged, the old one keeps running.
	if err := os.WriteFile(cfg, []byte("webhook:\n  dedup_windw: 1m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 5*time.Second, "reload failure", func() bool { return metric() == "0" })
	if d.log.count("webhook.dedup_windw: unknown field (did you mean dedup_window?) (line 2)") == 0 {
		t.Errorf("the refused reload's reason is not in the log")
	}
	if code, body := post(t, d.url("/webhook"), fixture(t, "firing.json")); code != 200 {
		t.Fatalf("not serving on the old config: %d %s", code, body)
	}

	// A good file through the API: applied at once (auth now required).
	if err := os.WriteFile(cfg, []byte("web:\n  auth:\n    bearer_token: reload-token-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := post(t, d.url("/-/reload"), nil); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	if metric() != "1" {
		t.Error("reload success not reported")
	}
	if code, _ := post(t, d.url("/webhook"), fixture(t, "resolved.json")); code != 401 {
		t.Errorf("new auth not enforced: %d", code)
	}
	if code, _ := post(t, d.url("/webhook"), fixture(t, "resolved.json"), "Authorization", "Bearer reload-token-value"); code != 200 {
		t.Errorf("new token refused: %d", code)
	}
	// A change that needs a restart is refused whole.
	if err := os.WriteFile(cfg, []byte("web:\n  auth:\n    bearer_token: reload-token-value\nstore:\n  type: redis\n  redis:\n    url: redis://127.0.0.1:1/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := post(t, d.url("/-/reload"), nil, "Authorization", "Bearer reload-token-value")
	if code != 500 || !strings.Contains(body, "store cannot change on reload; restart alertmedic to apply it") {
		t.Errorf("store change on reload: %d %s", code, body)
	}
	if strings.Contains(d.log.String(), "reload-token-value") {
		t.Error("a secret reached the log")
	}
}

func TestCheckConfig(t *testing.T) {
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		cmd := exec.Command(binary, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, out.String()
	}
	code, out := run("check-config", "../../config/example.yml")
	if code != 0 || !strings.Contains(out, "SUCCESS") {
		t.Errorf("example: %d %s", code, out)
	}
	code, out = run("check-config", "../../config/example.yml", "../../config/testdata/bad_values.yml")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"web.max_alerts: must be greater than 0, got 0",
		`store.type: must be "memory" or "redis", got "postgres"`,
		"pipeline.workers: must be greater than 0, got -1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, _ := run("check-config", "/nonexistent.yml"); code == 0 {
		t.Error("a missing file passed")
	}
}

var _ = context.Background

const quietRoutes = `
time_intervals:
  - name: quiet-hours
    time_intervals:
      - times: [{start_time: "23:00", end_time: "24:00"}, {start_time: "00:00", end_time: "08:00"}]
route:
  receiver: team
receivers:
  - name: team
    integrations:
      - type: email
        settings: {to: team@example.com}
        mute_time_intervals: [quiet-hours]
        mute_action: defer
        bypass_mute_matchers: ['severity="critical"']
      - type: slack
        settings: {channel: "#team"}
`

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}

func TestRoutesTest(t *testing.T) {
	// The shipped example's routing.
	code, out, _ := runCLI(t, "routes", "test", "--at", "2026-11-26T23:30:00Z", "alertname=HighErrorRate", "severity=critical", "team=business", "--verify.receivers=oncall,business-alerts")
	for _, want := range []string{
		`matched route.routes[0] {severity="critical"} (continue) -> receiver "oncall"`,
		"oncall/pagerduty[0] (pagerduty): notify (bypass_mute_matchers match",
		`business-alerts/slack[0] (slack channel=#business-metrics): notify`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	if code, _, errOut := runCLI(t, "routes", "test", "alertname=X", "--verify.receivers=oncall"); code != 1 || !strings.Contains(errOut, "WRONG: notified receivers [default], want [oncall]") {
		t.Errorf("verify mismatch: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "routes", "test", "--at", "tonight", "alertname=X"); code != 2 || !strings.Contains(errOut, "is not an RFC 3339 time") {
		t.Errorf("bad --at: exit %d, %s", code, errOut)
	}

	// Quiet hours: muted and deferred at 23:30, notified at 08:00.
	cfg := writeConfig(t, quietRoutes)
	_, out, _ = runCLI(t, "routes", "test", "--config.file="+cfg, "--at", "2026-11-26T23:30:00Z", "alertname=DiskFull", "severity=warning")
	if !strings.Contains(out, `team/email[0] (email to=team@example.com): muted by time interval "quiet-hours", deferred until 2026-11-27T08:00:00Z`) {
		t.Errorf("23:30:\n%s", out)
	}
	_, out, _ = runCLI(t, "routes", "test", "--config.file="+cfg, "--at", "2026-11-27T08:00:00Z", "alertname=DiskFull", "severity=warning")
	if strings.Contains(out, "muted") {
		t.Errorf("08:00 is not quiet:\n%s", out)
	}

	// The same answer from the API.
	d := start(t, "--config.file="+cfg)
	code, body := get(t, d.url("/api/v1/routes/test?alertname=DiskFull&severity=warning&at=2026-11-26T23:30:00Z"))
	var ans struct {
		Targets []struct {
			Name    string    `json:"name"`
			Action  string    `json:"action"`
			MutedBy string    `json:"muted_by"`
			Until   time.Time `json:"until"`
		} `json:"targets"`
		Notified []string `json:"notified_receivers"`
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil || code != 200 {
		t.Fatalf("%d %s %v", code, body, err)
	}
	if len(ans.Targets) != 2 || ans.Targets[0].Action != "defer" || ans.Targets[0].MutedBy != "quiet-hours" ||
		!ans.Targets[0].Until.Equal(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)) || ans.Targets[1].Action != "notify" {
		t.Errorf("API answer: %s", body)
	}
	if code, body := get(t, d.url("/api/v1/routes/test?at=2026-11-26T23:30:00Z")); code != 400 || !strings.Contains(body, "give the alert's labels") {
		t.Errorf("no labels: %d %s", code, body)
	}
}
