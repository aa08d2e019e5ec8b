//go:build e2e

// Package e2e runs alertmedic behind a real Prometheus and a real
// Alertmanager, all on 127.0.0.1:
//
//	metrics target (httptest) <- Prometheus (rules/alert_rules.yml, shortened)
//	  -> Alertmanager (rules/alertmanager.yml, 1s grouping) -> alertmedic (Redis store)
//	  -> Slack / PagerDuty / orchestrator stand-ins (httptest)
//
// Run it with
//
//	go test -tags e2e -count=1 -v ./e2e/
//
// It needs prometheus (or the PROMETHEUS env var), prometheus-alertmanager or
// alertmanager (or ALERTMANAGER), and Redis at REDIS_URL (default
// redis://127.0.0.1:6379/15). Without them it skips, unless CI=true.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alertmedic/alertmedic/store/redis"
)

const (
	webhookToken = "e2e-webhook-token"
	stepTimeout  = 60 * time.Second
	// overall bounds every wait together, so the test ends within about 3
	// minutes whatever fails (run with -timeout 4m or more).
	overall = 170 * time.Second
)

// deadline is when every wait gives up; set at the start of the test.
var deadline time.Time

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (CI=true makes this a failure)", args...)
}

// moduleRoot is the directory above this package.
func moduleRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Dir(filepath.Dir(file))
}

func lookPath(t *testing.T, env string, names ...string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	skipOrFail(t, "none of %v installed (or set %s)", names, env)
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// logBuf collects a process's output.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startProc starts a process in its own process group; at the end the
// whole group is killed, and on failure the tail of its output is printed.
func startProc(t *testing.T, name, path string, args ...string) *logBuf {
	t.Helper()
	out := &logBuf{}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", name, cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("---- last lines of %s ----\n%s", name, tail(out.String(), 40))
		}
	})
	return out
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) bool {
	t.Helper()
	until := time.Now().Add(timeout)
	if !deadline.IsZero() && deadline.Before(until) {
		until = deadline
	}
	for time.Now().Before(until) {
		if cond() {
			return true
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Errorf("timed out waiting for %s (step bound %s, whole test bound %s)", what, timeout, overall)
	return false
}

func waitReady(t *testing.T, name, url string) {
	t.Helper()
	if !eventually(t, 30*time.Second, name+" ready at "+url, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}) {
		t.FailNow()
	}
}

// recorder keeps what a stand-in received.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	Method, Path, Body string
}

func (r *recorder) add(req *http.Request) recorded {
	b, _ := io.ReadAll(req.Body)
	rec := recorded{Method: req.Method, Path: req.URL.Path, Body: string(b)}
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	return rec
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

// slackMsg is the part of an incoming-webhook message the test reads.
type slackMsg struct {
	Channel     string `json:"channel"`
	Text        string `json:"text"`
	Attachments []struct {
		Title string `json:"title"`
		Text  string `json:"text"`
	} `json:"attachments"`
	raw string
}

func (r *recorder) slack() []slackMsg {
	var out []slackMsg
	for _, rec := range r.all() {
		var m slackMsg
		_ = json.Unmarshal([]byte(rec.Body), &m)
		m.raw = rec.Body
		out = append(out, m)
	}
	return out
}

// slackCount counts messages to channel whose body contains every substr.
func (r *recorder) slackCount(channel string, substrs ...string) int {
	n := 0
	for _, m := range r.slack() {
		if m.Channel != channel {
			continue
		}
		ok := true
		for _, s := range substrs {
			ok = ok && strings.Contains(m.raw, s)
		}
		if ok {
			n++
		}
	}
	return n
}

type pdEvent struct {
	RoutingKey  string `json:"routing_key"`
	EventAction string `json:"event_action"`
	DedupKey    string `json:"dedup_key"`
	Payload     struct {
		Summary string `json:"summary"`
	} `json:"payload"`
	raw string
}

func (r *recorder) pagerduty() []pdEvent {
	var out []pdEvent
	for _, rec := range r.all() {
		var e pdEvent
		_ = json.Unmarshal([]byte(rec.Body), &e)
		e.raw = rec.Body
		out = append(out, e)
	}
	return out
}

// target is the scraped service: its values are set by the test.
type target struct {
	activeExtractions atomic.Int64
	errorsOn          atomic.Bool
	flap              atomic.Int64
	ok, errs          atomic.Int64
}

func (tg *target) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	// Every scrape adds 10 requests, 5 of them 5xx while errors are on
	// (a 33% ratio), none when they are off: the total keeps growing.
	tg.ok.Add(10)
	if tg.errorsOn.Load() {
		tg.errs.Add(5)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# TYPE active_extractions gauge\nactive_extractions %d\n", tg.activeExtractions.Load())
	fmt.Fprintf(w, "# TYPE http_requests_total counter\n")
	fmt.Fprintf(w, "http_requests_total{status_code=\"200\",endpoint=\"/api/v1/company\"} %d\n", tg.ok.Load())
	fmt.Fprintf(w, "http_requests_total{status_code=\"500\",endpoint=\"/api/v1/company\"} %d\n", tg.errs.Load())
	fmt.Fprintf(w, "# TYPE e2e_flap gauge\ne2e_flap %d\n", tg.flap.Load())
}

// shortenRules makes rules/alert_rules.yml usable in a test of seconds:
// every `for:` becomes 0s, every group `interval:` 1s, and every range
// window ([5m], [10m], [15m], [30m], [1h]) becomes [10s]. Nothing else
// (expressions, labels, annotations) changes.
func shortenRules(src string) string {
	src = regexp.MustCompile(`(?m)^(\s+)for: \S+`).ReplaceAllString(src, "${1}for: 0s")
	src = regexp.MustCompile(`(?m)^(\s+)interval: \S+.*$`).ReplaceAllString(src, "${1}interval: 1s")
	src = regexp.MustCompile(`\[\d+[smhd]\]`).ReplaceAllString(src, "[10s]")
	return src
}

// extraRules is a test-only rule on the target's e2e_flap gauge, to drive
// flap detection.
const extraRules = `groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: E2EFlap
        expr: e2e_flap > 0
        labels:
          severity: warning
          team: platform
        annotations:
          summary: "e2e flapping metric is on"
          description: "test-only"
          runbook_url: "https://example.invalid/e2e"
`

// topSections splits a YAML document into its top-level keys, each with its
// lines (comments before a key stay with the key before it).
func topSections(src string) (order []string, body map[string]string) {
	body = map[string]string{}
	key := ""
	re := regexp.MustCompile(`^([a-z_]+):`)
	for _, line := range strings.SplitAfter(src, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			key = m[1]
			order = append(order, key)
		}
		body[key] += line
	}
	return order, body
}

// alertmedicConfig is config/example.yml with its routing (time_intervals,
// route, receivers, notices, flapping, remediation rules) kept as is, and
// web, store, pipeline, integrations, delivery and remediation's endpoints
// replaced for the test.
func alertmedicConfig(t *testing.T, root, redisURL, prefix, slackURL, pdURL, orchURL, smtpAddr string) string {
	b, err := os.ReadFile(filepath.Join(root, "config", "example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	order, body := topSections(string(b))
	body["web"] = fmt.Sprintf("web:\n  auth:\n    bearer_token: %s\n", webhookToken)
	body["store"] = fmt.Sprintf("store:\n  type: redis\n  redis:\n    url: %s\n    key_prefix: %s\n", redisURL, prefix)
	body["pipeline"] = "pipeline:\n  workers: 4\n  check_interval: 1s\n"
	body["integrations"] = fmt.Sprintf("integrations:\n  slack:\n    api_url: %s\n  pagerduty:\n    routing_key: e2e-key\n    url: %s/v2/enqueue\n  email:\n    smarthost: %s\n    from: alerts@company.com\n    tls: none\n", slackURL, pdURL, smtpAddr)
	body["delivery"] = "delivery:\n  min_backoff: 100ms\n  max_backoff: 1s\n  rate_limits:\n    slack: {per_second: 0}\n"
	rem := body["remediation"]
	if rem == "" {
		t.Fatal("config/example.yml has no remediation section")
	}
	rem = regexp.MustCompile(`(?m)^  dry_run: true`).ReplaceAllString(rem, "  dry_run: false")
	rem = regexp.MustCompile(`(?m)^  orchestrator_url: .*$`).ReplaceAllString(rem, "  orchestrator_url: "+orchURL)
	rem = regexp.MustCompile(`(?m)^  api_base_url: .*$`).ReplaceAllString(rem, "  api_base_url: "+orchURL)
	// The warning route holds the scaled alert's message for the scale's
	// verdict (hold_for_remediation): a window of seconds, not minutes.
	rem = regexp.MustCompile(`(?m)^      verify: \{within: 10m\}$`).ReplaceAllString(rem, "      verify: {within: 5s}")
	body["remediation"] = rem
	for _, k := range []string{"integrations", "delivery", "web", "store", "pipeline"} {
		found := false
		for _, o := range order {
			found = found || o == k
		}
		if !found {
			order = append(order, k)
		}
	}
	var out strings.Builder
	for _, k := range order {
		out.WriteString(body[k])
		if !strings.HasSuffix(body[k], "\n") {
			out.WriteString("\n")
		}
	}
	return out.String()
}

func write(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func TestEndToEnd(t *testing.T) {
	start := time.Now()
	deadline = start.Add(overall)
	root := moduleRoot(t)
	promBin := lookPath(t, "PROMETHEUS", "prometheus")
	amBin := lookPath(t, "ALERTMANAGER", "prometheus-alertmanager", "alertmanager")

	// Redis, under a prefix of this run alone, purged at the end.
	redisURL, prefix := e2eRedis(t, "single")

	dir := t.TempDir()

	// Build alertmedic.
	bin := buildAlertmedic(t, root, dir, start)

	// Stand-ins.
	si := startStandIns(t)
	slackRec, pdRec, orchRec := &si.slack, &si.pd, &si.orch

	tg := &target{}
	tg.activeExtractions.Store(5)
	targetSrv := httptest.NewServer(tg)
	t.Cleanup(targetSrv.Close)

	// alertmedic.
	amdPort := freePort(t)
	amdURL := fmt.Sprintf("http://127.0.0.1:%d", amdPort)
	mailbox, smtpAddr := startSMTP(t)
	cfg := write(t, filepath.Join(dir, "alertmedic.yml"), alertmedicConfig(t, root, redisURL, prefix, si.slackURL, si.pdURL, si.orchURL, smtpAddr))
	if out, err := exec.Command(bin, "check-config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("alertmedic check-config: %v\n%s\n---- config ----\n%s", err, out, mustRead(t, cfg))
	}
	startProc(t, "alertmedic", bin, "--config.file="+cfg, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", amdPort), "--log.level=debug")
	waitReady(t, "alertmedic", amdURL+"/-/ready")

	// Alertmanager: rules/alertmanager.yml pointed at alertmedic, 1s grouping.
	amPort := freePort(t)
	amSrc := mustRead(t, filepath.Join(root, "rules", "alertmanager.yml"))
	tokenFile := write(t, filepath.Join(dir, "alertmedic-token"), webhookToken)
	for old, repl := range map[string]string{
		"http://127.0.0.1:9095/webhook":      amdURL + "/webhook",
		"/etc/alertmanager/alertmedic-token": tokenFile,
		"group_wait: 10s":                    "group_wait: 1s",
		"group_interval: 1m":                 "group_interval: 1s",
	} {
		if !strings.Contains(amSrc, old) {
			t.Fatalf("rules/alertmanager.yml no longer contains %q", old)
		}
		amSrc = strings.ReplaceAll(amSrc, old, repl)
	}
	amCfg := write(t, filepath.Join(dir, "am.yml"), amSrc)
	startProc(t, "alertmanager", amBin, "--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "am"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", amPort), "--cluster.listen-address=")
	waitReady(t, "alertmanager", fmt.Sprintf("http://127.0.0.1:%d/-/ready", amPort))

	// Prometheus: the shortened rules (see shortenRules) plus the test-only
	// E2EFlap rule, 1s scrape and evaluation.
	promPort := freePort(t)
	rulesFile := write(t, filepath.Join(dir, "alert_rules.yml"), shortenRules(mustRead(t, filepath.Join(root, "rules", "alert_rules.yml"))))
	extraFile := write(t, filepath.Join(dir, "e2e_rules.yml"), extraRules)
	promCfg := write(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q, %q]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:%d"]
scrape_configs:
  - job_name: api
    static_configs:
      - targets: [%q]
`, rulesFile, extraFile, amPort, strings.TrimPrefix(targetSrv.URL, "http://")))
	startProc(t, "prometheus", promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort))
	waitReady(t, "prometheus", fmt.Sprintf("http://127.0.0.1:%d/-/ready", promPort))
	t.Logf("all processes up after %s", time.Since(start).Round(time.Millisecond))

	// Drive: overload and errors at once (the alerts are independent).
	tg.activeExtractions.Store(25)
	tg.errorsOn.Store(true)

	// 1. ExtractionServiceOverloaded: one scale call; its #alerts-warning
	// message is held for the scale's verdict (the example's
	// hold_for_remediation) and, the alert still firing when the 5s window
	// ends, goes out saying what was tried.
	eventually(t, stepTimeout, "POST /scale at the orchestrator", func() bool { return len(orchRec.all()) > 0 })
	eventually(t, stepTimeout, "Slack #alerts-warning ExtractionServiceOverloaded, after the verdict", func() bool {
		return slackRec.slackCount("#alerts-warning", "ExtractionServiceOverloaded", "Remediation tried", "the alert was still firing at the end of the 5s window") > 0
	})

	// 2. HighErrorRate: #alerts-critical, a PagerDuty trigger and an email
	// to the on-call address (the shipped critical route).
	eventually(t, stepTimeout, "an email to oncall@company.com about HighErrorRate", func() bool {
		for _, m := range mailbox.all() {
			if len(m.to) == 1 && m.to[0] == "oncall@company.com" && m.from == "alerts@company.com" && strings.Contains(m.data, "HighErrorRate") {
				return true
			}
		}
		return false
	})
	eventually(t, stepTimeout, "Slack #alerts-critical HighErrorRate", func() bool {
		return slackRec.slackCount("#alerts-critical", "HighErrorRate") > 0
	})
	var trigger pdEvent
	eventually(t, stepTimeout, "PagerDuty trigger for HighErrorRate", func() bool {
		for _, e := range pdRec.pagerduty() {
			if e.EventAction == "trigger" && strings.Contains(e.raw, "HighErrorRate") {
				trigger = e
				return true
			}
		}
		return false
	})
	if trigger.DedupKey == "" && trigger.EventAction != "" {
		t.Errorf("PagerDuty trigger without dedup_key: %s", trigger.raw)
	}
	if trigger.RoutingKey != "" && trigger.RoutingKey != "e2e-key" {
		t.Errorf("PagerDuty routing_key %q, want e2e-key", trigger.RoutingKey)
	}

	// Stop the errors (totals keep growing): the ratio falls to 0 within the
	// shortened 10s window, and the alert resolves.
	tg.errorsOn.Store(false)
	t.Logf("errors stopped after %s", time.Since(start).Round(time.Millisecond))
	if trigger.DedupKey != "" {
		eventually(t, stepTimeout, "PagerDuty resolve with dedup_key "+trigger.DedupKey, func() bool {
			for _, e := range pdRec.pagerduty() {
				if e.EventAction == "resolve" && e.DedupKey == trigger.DedupKey {
					return true
				}
			}
			return false
		})
		eventually(t, stepTimeout, "Slack #alerts-critical RESOLVED: HighErrorRate", func() bool {
			return slackRec.slackCount("#alerts-critical", "RESOLVED", "HighErrorRate") > 0
		})
	}

	// 3. Flapping: e2e_flap flips every 2s, for up to 40s, until the notice.
	flapNotice := func() int { return slackRec.slackCount("#ops-alerts", "E2EFlap", "is flapping") }
	flapStart := time.Now()
	for i := 0; time.Since(flapStart) < 40*time.Second && time.Now().Before(deadline) && flapNotice() == 0; i++ {
		tg.flap.Store(int64(1 - i%2))
		time.Sleep(2 * time.Second)
	}
	tg.flap.Store(0)
	if flapNotice() == 0 {
		t.Errorf("no flapping notice for E2EFlap in #ops-alerts after %s", time.Since(flapStart).Round(time.Second))
	}
	time.Sleep(4 * time.Second) // anything more would show by now

	// Final checks.
	checkOneScale(t, orchRec)
	if n := flapNotice(); n != 1 {
		t.Errorf("%d flapping notices for E2EFlap, want 1", n)
	}
	// No storm: at most the changes before detection (threshold 5: up to 6
	// observations) reach #alerts-warning.
	if n := slackRec.slackCount("#alerts-warning", "E2EFlap"); n > 6 {
		t.Errorf("%d #alerts-warning messages for E2EFlap: flapping did not hold them back", n)
	} else {
		t.Logf("#alerts-warning messages for E2EFlap before it was held back: %d", n)
	}
	// The scale's notice, and its verdict's.
	if n := slackRec.slackCount("#ops-alerts", "company-extraction-api"); n != 2 {
		t.Errorf("%d remediation notices naming company-extraction-api in #ops-alerts, want 2 (the scale, the verdict)", n)
	}
	if n := slackRec.slackCount("#ops-alerts", "ineffective: ExtractionServiceOverloaded was still firing"); n != 1 {
		t.Errorf("%d verdicts in #ops-alerts, want 1 ineffective", n)
	}
	if n := slackRec.slackCount("#alerts-warning", "ExtractionServiceOverloaded"); n != 1 {
		t.Errorf("%d #alerts-warning messages for ExtractionServiceOverloaded, want 1", n)
	}

	// alertmedic's own API.
	var rems struct {
		Records []struct {
			Rule, Action, Result string
			StatusCode           int `json:"status_code"`
		} `json:"records"`
	}
	if err := getJSON(amdURL+"/api/v1/remediations", &rems); err != nil {
		t.Error(err)
	} else {
		ran := 0
		for _, r := range rems.Records {
			if r.Rule == "scale-extraction" && r.Result == "ran" && r.StatusCode == 200 {
				ran++
			}
		}
		if ran != 1 {
			t.Errorf("/api/v1/remediations: %d scale-extraction records ran with 200, want 1: %+v", ran, rems.Records)
		}
	}
	var failed struct {
		Deliveries []json.RawMessage `json:"deliveries"`
	}
	if err := getJSON(amdURL+"/api/v1/deliveries/failed", &failed); err != nil {
		t.Error(err)
	} else if len(failed.Deliveries) != 0 {
		t.Errorf("/api/v1/deliveries/failed lists %d dead letters: %s", len(failed.Deliveries), failed.Deliveries)
	}

	for _, m := range slackRec.slack() {
		title, text := "", m.Text
		if len(m.Attachments) > 0 {
			title, text = m.Attachments[0].Title, m.Attachments[0].Text
		}
		t.Logf("slack %s: %q %q (%d attachments)", m.Channel, title, text, len(m.Attachments))
	}
	if t.Failed() {
		for _, m := range slackRec.slack() {
			t.Logf("slack: %s", m.raw)
		}
		for _, e := range pdRec.pagerduty() {
			t.Logf("pagerduty: %s", e.raw)
		}
	}
	t.Logf("slack messages %d, pagerduty events %d, orchestrator calls %d; done in %s",
		len(slackRec.all()), len(pdRec.all()), len(orchRec.all()), time.Since(start).Round(time.Millisecond))
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// buildAlertmedic builds the daemon into dir and returns its path.
func buildAlertmedic(t *testing.T, root, dir string, start time.Time) string {
	t.Helper()
	bin := filepath.Join(dir, "alertmedic")
	build := exec.Command("go", "build", "-o", bin, "./cmd/alertmedic")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built alertmedic in %s", time.Since(start).Round(time.Millisecond))
	return bin
}

// checkOneScale: the shipped rule verifies, so its scale first reads the
// replicas it could go back to, then scales; one of each, however often
// the alert came and whichever replica acted.
func checkOneScale(t *testing.T, orch *recorder) {
	t.Helper()
	scales := orch.all()
	if len(scales) != 2 {
		t.Errorf("orchestrator got %d requests, want exactly 2 (the read, the scale): %+v", len(scales), scales)
		return
	}
	if g, s := scales[0], scales[1]; g.Method != "GET" || g.Path != "/services/company-extraction-api" ||
		s.Method != "POST" || s.Path != "/scale" || strings.TrimSpace(s.Body) != `{"service":"company-extraction-api","replicas":5}` {
		t.Errorf("orchestrator requests %+v; want GET /services/company-extraction-api, then POST /scale {\"service\":\"company-extraction-api\",\"replicas\":5}", scales)
	}
}

// standIns are the Slack, PagerDuty and orchestrator stand-ins; each
// records what it gets, whichever replica sent it.
type standIns struct {
	slack, pd, orch          recorder
	slackURL, pdURL, orchURL string
}

func startStandIns(t *testing.T) *standIns {
	si := &standIns{}
	slackSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		si.slack.add(r)
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(slackSrv.Close)
	pdSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := si.pd.add(r)
		var e pdEvent
		_ = json.Unmarshal([]byte(rec.Body), &e)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "success", "message": "Event processed", "dedup_key": e.DedupKey})
	}))
	t.Cleanup(pdSrv.Close)
	orchSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		si.orch.add(r)
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet { // the replicas a verified scale can go back to
			_, _ = io.WriteString(w, `{"replicas":2}`)
			return
		}
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(orchSrv.Close)
	si.slackURL, si.pdURL, si.orchURL = slackSrv.URL, pdSrv.URL, orchSrv.URL
	return si
}

// e2eRedis opens Redis (skipping without it, failing in CI) and registers
// the purge of a fresh key prefix, alertmedic-e2e-<tag>-<random>; called
// before any process starts, its cleanup runs after they are all killed.
func e2eRedis(t *testing.T, tag string) (url, prefix string) {
	t.Helper()
	url = os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/15"
	}
	rc, err := redis.NewClient(redis.ClientOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rc.Ping(ctx).Err(); err != nil {
		rc.Close()
		skipOrFail(t, "redis at %s is unreachable: %v", url, err)
	}
	rb := make([]byte, 6)
	_, _ = rand.Read(rb)
	prefix = "alertmedic-e2e-" + tag + "-" + hex.EncodeToString(rb)
	st, err := redis.New(ctx, redis.Options{Client: rc, Prefix: prefix, ClaimIdle: time.Second})
	if err != nil {
		rc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := st.Purge(ctx); err != nil {
			t.Errorf("purge %s keys: %v", prefix, err)
		}
		st.Close()
	})
	return url, prefix
}
