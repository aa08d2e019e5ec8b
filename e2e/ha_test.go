//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// haOverall bounds every wait of TestHAPair together (the test itself
// should take well under a minute).
const haOverall = 110 * time.Second

// TestHAPair runs two real Alertmanagers clustered as an HA pair, each
// forwarding to its own alertmedic replica; both replicas share one Redis key
// prefix. Prometheus sends every alert to both Alertmanagers, and both
// Alertmanagers deliver it (--cluster.peer-timeout is 0s, so the second
// member does not wait for the first one's notification log to arrive by
// gossip): the shared store must turn the two deliveries into one
// notification per target and one remediation.
//
//	target <- Prometheus -> Alertmanager A -> alertmedic A \
//	                     -> Alertmanager B -> alertmedic B -+-> Redis (one prefix)
//	                        (A <-gossip-> B)                 \-> Slack / PagerDuty / orchestrator stand-ins
func TestHAPair(t *testing.T) {
	start := time.Now()
	deadline = start.Add(haOverall)
	t.Cleanup(func() { deadline = time.Time{} })
	root := moduleRoot(t)
	promBin := lookPath(t, "PROMETHEUS", "prometheus")
	amBin := lookPath(t, "ALERTMANAGER", "prometheus-alertmanager", "alertmanager")

	redisURL, prefix := e2eRedis(t, "ha")
	dir := t.TempDir()

	bin := buildAlertmedic(t, root, dir, start)

	// Stand-ins, shared by both replicas: whatever either sends is counted.
	si := startStandIns(t)
	slackRec, pdRec, orchRec := &si.slack, &si.pd, &si.orch
	mailbox, smtpAddr := startSMTP(t)

	tg := &target{}
	tg.activeExtractions.Store(5)
	targetSrv := httptest.NewServer(tg)
	t.Cleanup(targetSrv.Close)

	// Two alertmedic replicas: the same config (one Redis prefix) but for
	// global.replica_id.
	base := alertmedicConfig(t, root, redisURL, prefix, si.slackURL, si.pdURL, si.orchURL, smtpAddr)
	names := []string{"a", "b"}
	amdURLs := make([]string, len(names))
	for i, n := range names {
		port := freePort(t)
		amdURLs[i] = fmt.Sprintf("http://127.0.0.1:%d", port)
		cfg := write(t, filepath.Join(dir, "alertmedic-"+n+".yml"), withReplicaID(t, base, "e2e-ha-"+n))
		if out, err := exec.Command(bin, "check-config", cfg).CombinedOutput(); err != nil {
			t.Fatalf("alertmedic check-config: %v\n%s\n---- config ----\n%s", err, out, mustRead(t, cfg))
		}
		startProc(t, "alertmedic-"+n, bin, "--config.file="+cfg, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--log.level=debug")
	}
	for i, n := range names {
		waitReady(t, "alertmedic-"+n, amdURLs[i]+"/-/ready")
	}

	// Two Alertmanagers, peered with each other, each pointed at its own
	// replica.
	tokenFile := write(t, filepath.Join(dir, "alertmedic-token"), webhookToken)
	amSrc := mustRead(t, filepath.Join(root, "rules", "alertmanager.yml"))
	webPorts := []int{freePort(t), freePort(t)}
	clusterPorts := []int{freePort(t), freePort(t)}
	for i, n := range names {
		cfg := write(t, filepath.Join(dir, "am-"+n+".yml"), testAlertmanagerConfig(t, amSrc, amdURLs[i]+"/webhook", tokenFile))
		peer := clusterPorts[1-i]
		startProc(t, "alertmanager-"+n, amBin,
			"--config.file="+cfg,
			"--storage.path="+filepath.Join(dir, "am-"+n),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", webPorts[i]),
			fmt.Sprintf("--cluster.listen-address=127.0.0.1:%d", clusterPorts[i]),
			fmt.Sprintf("--cluster.advertise-address=127.0.0.1:%d", clusterPorts[i]),
			fmt.Sprintf("--cluster.peer=127.0.0.1:%d", peer),
			"--cluster.settle-timeout=2s",
			// The second member normally waits peer-timeout for the first
			// one's notification to show in the gossiped log, and then
			// does not send: with no wait both send, which is what
			// alertmedic has to cope with (a slow gossip, a partition).
			"--cluster.peer-timeout=0s",
		)
	}
	for i, n := range names {
		waitReady(t, "alertmanager-"+n, fmt.Sprintf("http://127.0.0.1:%d/-/ready", webPorts[i]))
	}
	// Gossip: each member sees two peers.
	for i, n := range names {
		url := fmt.Sprintf("http://127.0.0.1:%d/api/v2/status", webPorts[i])
		if !eventually(t, 20*time.Second, "alertmanager-"+n+" cluster with 2 peers", func() bool {
			var st struct {
				Cluster struct {
					Status string            `json:"status"`
					Peers  []json.RawMessage `json:"peers"`
				} `json:"cluster"`
			}
			return getJSON(url, &st) == nil && st.Cluster.Status == "ready" && len(st.Cluster.Peers) == 2
		}) {
			t.FailNow()
		}
	}

	// Prometheus, sending to both Alertmanagers.
	promPort := freePort(t)
	rulesFile := write(t, filepath.Join(dir, "alert_rules.yml"), shortenRules(mustRead(t, filepath.Join(root, "rules", "alert_rules.yml"))))
	promCfg := write(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:%d", "127.0.0.1:%d"]
scrape_configs:
  - job_name: api
    static_configs:
      - targets: [%q]
`, rulesFile, webPorts[0], webPorts[1], strings.TrimPrefix(targetSrv.URL, "http://")))
	startProc(t, "prometheus", promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort))
	waitReady(t, "prometheus", fmt.Sprintf("http://127.0.0.1:%d/-/ready", promPort))
	t.Logf("all processes up after %s", time.Since(start).Round(time.Millisecond))

	// Drive both alerts at once.
	tg.activeExtractions.Store(25)
	tg.errorsOn.Store(true)

	// Held for the scale's verdict (hold_for_remediation, a 5s window):
	// it goes out once, from whichever replica judges it.
	eventually(t, stepTimeout, "Slack #alerts-warning ExtractionServiceOverloaded, after the verdict", func() bool {
		return slackRec.slackCount("#alerts-warning", "ExtractionServiceOverloaded", "Remediation tried") > 0
	})
	eventually(t, stepTimeout, "POST /scale at the orchestrator", func() bool { return len(orchRec.all()) > 0 })
	eventually(t, stepTimeout, "Slack #alerts-critical HighErrorRate", func() bool {
		return slackRec.slackCount("#alerts-critical", "HighErrorRate") > 0
	})
	eventually(t, stepTimeout, "PagerDuty trigger for HighErrorRate", func() bool {
		for _, e := range pdRec.pagerduty() {
			if e.EventAction == "trigger" && strings.Contains(e.raw, "HighErrorRate") {
				return true
			}
		}
		return false
	})
	// Both Alertmanagers must have delivered to their replica, or the test
	// says nothing about the shared store.
	for i, n := range names {
		eventually(t, 15*time.Second, "alertmedic-"+n+" receiving a webhook from alertmanager-"+n, func() bool {
			return metricSum(amdURLs[i], "alertmedic_webhook_requests_total", `code="200"`) > 0
		})
	}
	t.Logf("first deliveries after %s; waiting for resends", time.Since(start).Round(time.Millisecond))
	// Resends (both members' group_interval of 1s, Prometheus re-sending
	// firing alerts) would show within this.
	time.Sleep(6 * time.Second)

	// Exactly one of each.
	if n := slackRec.slackCount("#alerts-warning", "ExtractionServiceOverloaded"); n != 1 {
		t.Errorf("%d #alerts-warning messages for ExtractionServiceOverloaded, want 1", n)
	}
	if n := slackRec.slackCount("#alerts-critical", "HighErrorRate"); n != 1 {
		t.Errorf("%d #alerts-critical messages for HighErrorRate, want 1", n)
	}
	if n := slackRec.slackCount("#ops-alerts", "company-extraction-api"); n != 2 {
		t.Errorf("%d remediation notices naming company-extraction-api in #ops-alerts, want 2 (the scale, its verdict)", n)
	}
	checkOneScale(t, orchRec)
	triggers := 0
	for _, e := range pdRec.pagerduty() {
		if e.EventAction == "trigger" && strings.Contains(e.raw, "HighErrorRate") {
			triggers++
		}
	}
	if triggers != 1 {
		t.Errorf("%d PagerDuty triggers for HighErrorRate, want 1", triggers)
	}
	emails := 0
	for _, m := range mailbox.all() {
		if strings.Contains(m.data, "HighErrorRate") {
			emails++
		}
	}
	if emails > 1 {
		t.Errorf("%d emails about HighErrorRate, want at most 1", emails)
	}

	// The shared store did the deduplicating: the replicas together
	// received more alerts than they queued.
	var received, dups float64
	for i, n := range names {
		r := metricSum(amdURLs[i], "alertmedic_alerts_received_total", "")
		d := metricSum(amdURLs[i], "alertmedic_alerts_duplicate_total", "")
		w := metricSum(amdURLs[i], "alertmedic_webhook_requests_total", `code="200"`)
		t.Logf("alertmedic-%s: %v webhooks, %v alerts received, %v duplicates", n, w, r, d)
		received += r
		dups += d
	}
	if dups == 0 {
		t.Errorf("no duplicate alerts at either replica (%v received): the HA pair did not both deliver", received)
	}
	var rems struct {
		Records []struct {
			Rule, Action, Result, Replica string
			StatusCode                    int `json:"status_code"`
		} `json:"records"`
	}
	if err := getJSON(amdURLs[0]+"/api/v1/remediations", &rems); err != nil {
		t.Error(err)
	} else {
		ran := 0
		for _, r := range rems.Records {
			if r.Rule == "scale-extraction" && r.Result == "ran" {
				ran++
			}
		}
		if ran != 1 {
			t.Errorf("/api/v1/remediations: %d scale-extraction records ran, want 1: %+v", ran, rems.Records)
		}
	}

	if t.Failed() {
		for _, m := range slackRec.slack() {
			t.Logf("slack: %s", m.raw)
		}
		for _, e := range pdRec.pagerduty() {
			t.Logf("pagerduty: %s", e.raw)
		}
	}
	t.Logf("slack messages %d, pagerduty events %d, orchestrator calls %d, emails %d; done in %s",
		len(slackRec.all()), len(pdRec.all()), len(orchRec.all()), len(mailbox.all()), time.Since(start).Round(time.Millisecond))
}

// withReplicaID sets global.replica_id in an alertmedic config.
func withReplicaID(t *testing.T, cfg, id string) string {
	t.Helper()
	order, body := topSections(cfg)
	if _, ok := body["global"]; !ok {
		order = append([]string{"global"}, order...)
	}
	body["global"] = "global:\n  replica_id: " + id + "\n\n"
	var out strings.Builder
	for _, k := range order {
		out.WriteString(body[k])
		if !strings.HasSuffix(body[k], "\n") {
			out.WriteString("\n")
		}
	}
	return out.String()
}

// testAlertmanagerConfig is rules/alertmanager.yml pointed at webhookURL,
// with the token file and 1s grouping.
func testAlertmanagerConfig(t *testing.T, src, webhookURL, tokenFile string) string {
	t.Helper()
	for old, repl := range map[string]string{
		"http://127.0.0.1:9095/webhook":      webhookURL,
		"/etc/alertmanager/alertmedic-token": tokenFile,
		"group_wait: 10s":                    "group_wait: 1s",
		"group_interval: 1m":                 "group_interval: 1s",
	} {
		if !strings.Contains(src, old) {
			t.Fatalf("rules/alertmanager.yml no longer contains %q", old)
		}
		src = strings.ReplaceAll(src, old, repl)
	}
	return src
}

// metricSum adds up the samples of a metric at base/metrics whose labels
// contain match (every sample when match is empty); -1 if unreadable.
func metricSum(base, name, match string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if match != "" && !strings.Contains(rest, match) {
			continue
		}
		f := strings.Fields(rest)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}
