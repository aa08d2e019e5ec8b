package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// One 3.8 MB request (100 alerts, a 3 MB groupKey) wrote 300 MB of log:
// the group key and the receiver were on every alert's line. Now the
// message's fields are logged once and every value is bounded, so the log
// a request makes stays well below its body, whatever its labels hold.
func TestLogIsBoundedByTheRequest(t *testing.T) {
	d := start(t) // the shipped example: every target renders into the log
	var msg map[string]any
	if err := json.Unmarshal(fixture(t, "group_50.json"), &msg); err != nil {
		t.Fatal(err)
	}
	var more map[string]any
	_ = json.Unmarshal(variant(fixture(t, "group_50.json"), 7), &more)
	alerts := append(msg["alerts"].([]any), more["alerts"].([]any)...)
	for _, a := range alerts {
		a := a.(map[string]any)
		a["annotations"].(map[string]any)["summary"] = strings.Repeat("s", 5000)
		a["labels"].(map[string]any)["severity"] = "critical"
		a["fingerprint"] = ""
	}
	msg["alerts"] = alerts
	msg["groupKey"] = strings.Repeat("g", 3<<20)
	msg["receiver"] = strings.Repeat("r", 100_000)
	body, _ := json.Marshal(msg)
	before := len(d.log.String())
	if code, answer := post(t, d.url("/webhook"), body); code != 200 || accepted(t, answer) != 100 {
		t.Fatalf("webhook: %d %s", code, answer)
	}
	eventually(t, 10*time.Second, "the alerts processed and delivered", func() bool {
		return d.log.count(`"message":"alert processed"`) == 100 &&
			metricSum(t, d, "alertmedic_notification_alerts_total", `outcome="delivered"`) >= 300
	})
	time.Sleep(200 * time.Millisecond)
	logged := len(d.log.String()) - before
	if logged > len(body)/4 {
		t.Errorf("a %d-byte request wrote %d bytes of log", len(body), logged)
	}
	d.log.mu.Lock()
	defer d.log.mu.Unlock()
	for _, l := range d.log.lines {
		if len(l) > 16<<10 {
			t.Errorf("a %d-byte log line: %.200s…", len(l), l)
		}
	}
	if got := strings.Count(strings.Join(d.log.lines, "\n"), `"message":"message processed"`); got != 1 {
		t.Errorf("%d message lines, want 1", got)
	}
	t.Logf("a %d-byte request wrote %d bytes of log", len(body), logged)
}

// A label with a newline, logged through --log.format=console, forged a
// second log line. Messages, field names and values are escaped.
func TestConsoleLogCannotBeForged(t *testing.T) {
	var buf strings.Builder
	l := newLogger(&buf, "info", "console")
	forged := "ok\n2026-12-01T00:00:00Z INF remediation paused by=admin"
	l.Info().Str("detail", forged).Str("k\nINF x", "v").Msg(forged)
	l.Error().Err(errors.New(forged)).Msg("failed")
	out := strings.TrimSuffix(buf.String(), "\n")
	if n := strings.Count(out, "\n"); n != 1 {
		t.Fatalf("two events wrote %d lines:\n%s", n+1, out)
	}
	if !strings.Contains(out, `ok\n2026`) {
		t.Errorf("the newline is not shown escaped:\n%s", out)
	}
}
