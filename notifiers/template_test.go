package notifiers

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/routing"
)

// Execute renders what Alertmanager's ExecuteTextString and
// ExecuteHTMLString render, errors included, for Alertmanager's default
// templates, its functions, missing keys, values that need escaping and
// texts that define templates of their own.
func TestExecuteIsAlertmanagers(t *testing.T) {
	n := &Notification{Target: testTarget(), ExternalURL: "http://am:9093", Alerts: template.Alerts{
		{Status: "firing", Labels: template.KV{"alertname": "DiskFull", "severity": "critical", "instance": `<b>"db-1"</b>`},
			Annotations: template.KV{"summary": "disk <full> & 95%"}, StartsAt: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Fingerprint: "00aa"},
		{Status: "resolved", Labels: template.KV{"alertname": "DiskFull", "severity": "critical", "instance": "db-2"},
			StartsAt: time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC), EndsAt: time.Date(2026, 12, 1, 11, 30, 0, 0, time.UTC), Fingerprint: "00bb"},
	}}
	am, err := engine()
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{
		`{{ template "slack.default.title" . }}`,
		`{{ template "slack.default.text" . }}`,
		`{{ template "pagerduty.default.description" . }}`,
		`{{ template "email.default.subject" . }}`,
		`{{ template "email.default.html" . }}`,
		`{{ if eq .Status "resolved" }}RESOLVED{{ else }}{{ or .CommonLabels.severity "info" | toUpper }}{{ end }}: {{ .CommonLabels.alertname }}`,
		`{{ range .Alerts }}{{ .Labels.instance }} {{ .Annotations.summary }} {{ .StartsAt | since | humanizeDuration }}|{{ end }}`,
		`{{ .CommonLabels.nothere }}[{{ .GroupLabels.SortedPairs.Values | join "," }}]{{ title "disk full" }}`,
		`{{ routeLabels "team" }}-{{ .ExternalURL | urlUnescape }}`,
		`{{ define "x" }}own x{{ end }}{{ template "x" . }}`,
		`{{ template "x" . }}`, // the x above is the other text's own: not defined here
		`{{ nosuchfunc . }}`,
		`{{ .Status`,
		`{{ template "nosuch" . }}`,
	}
	for _, html := range []bool{false, true} {
		for _, text := range texts {
			var want string
			var werr error
			if html {
				want, werr = am.ExecuteHTMLString(text, Data(n))
			} else {
				want, werr = am.ExecuteTextString(text, Data(n))
			}
			for range 2 { // parsed, then from the cache
				got, err := Execute(text, Data(n), html)
				if got != want || (err == nil) != (werr == nil) || (err != nil && !strings.Contains(err.Error(), werr.Error())) {
					t.Errorf("html %v, %s:\ngot  %q, %v\nwant %q, %v", html, text, got, err, want, werr)
				}
			}
		}
	}
	if !strings.Contains(mustExecute(t, `{{ (index .Alerts 0).Labels.instance }}`, n, true), "&lt;b&gt;") {
		t.Error("HTML values are not escaped")
	}
}

func mustExecute(t *testing.T, text string, n *Notification, html bool) string {
	t.Helper()
	s, err := Execute(text, Data(n), html)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// One parsed text runs in many goroutines at once (go test -race).
func TestExecuteConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			n := &Notification{Target: testTarget(), Alerts: template.Alerts{{Status: "firing", Labels: template.KV{"alertname": "A" + strconv.Itoa(i)}}}}
			for range 50 {
				if got := mustExecute(t, `{{ .CommonLabels.alertname }}`, n, i%2 == 0); got != "A"+strconv.Itoa(i) {
					t.Errorf("got %q", got)
				}
			}
		})
	}
	wg.Wait()
}

// Past maxParsed texts, a text renders as Alertmanager does, uncached.
func TestExecutePastTheCap(t *testing.T) {
	n := &Notification{Target: testTarget(), Alerts: template.Alerts{{Status: "firing", Labels: template.KV{"alertname": "A"}}}}
	for i := range maxParsed + 10 {
		if got := mustExecute(t, "{{ .CommonLabels.alertname }}"+strconv.Itoa(i), n, false); got != "A"+strconv.Itoa(i) {
			t.Fatalf("text %d: %q", i, got)
		}
	}
	parsed.mu.Lock()
	kept := len(parsed.m)
	parsed.mu.Unlock()
	if kept > maxParsed {
		t.Errorf("%d texts kept", kept)
	}
}

// The allocations of one render, parsed once against Alertmanager's
// clone-and-parse per call: go test -bench Render -benchmem ./notifiers
func BenchmarkRender(b *testing.B) {
	n := &Notification{Target: testTarget(), Alerts: template.Alerts{{Status: "firing", Labels: template.KV{"alertname": "A", "severity": "critical"}, Annotations: template.KV{"summary": "s"}}}}
	text := `{{ if eq .Status "resolved" }}RESOLVED{{ else }}{{ or .CommonLabels.severity "info" | toUpper }}{{ end }}: {{ .CommonLabels.alertname }}`
	am, _ := engine()
	b.Run("alertmedic", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Execute(text, Data(n), false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("alertmanager", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := am.ExecuteTextString(text, Data(n)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func testTarget() routing.Target {
	return routing.Target{Receiver: "oncall", Integration: routing.Slack, Name: "slack[0]"}
}
