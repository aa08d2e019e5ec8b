package log

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/notifiers/pagerduty"
	"github.com/alertmedic/alertmedic/routing"
)

func notification(integration string) *notifiers.Notification {
	return &notifiers.Notification{
		Key:    "e:1:oncall/" + integration + "[0]",
		Kind:   notifiers.KindAlerts,
		Target: routing.Target{Receiver: "oncall", Integration: integration, Name: integration + "[0]", Settings: map[string]string{"channel": "#ops", "api_url": "https://hooks.example.com/s3cret"}},
		Alerts: template.Alerts{{Status: "firing", Labels: template.KV{"alertname": "HighErrorRate", "severity": "critical"}, Fingerprint: "a1"}},
	}
}

// lines runs one Notify and returns its log lines, decoded.
func lines(t *testing.T, render map[string]Render, nt *notifiers.Notification) ([]map[string]any, string) {
	t.Helper()
	var buf bytes.Buffer
	if retry, err := New(zerolog.New(&buf), render).Notify(context.Background(), nt); retry || err != nil {
		t.Fatalf("Notify = %v, %v; the log never fails", retry, err)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, l)
		}
		out = append(out, m)
	}
	return out, buf.String()
}

func TestNotifyLogsTheRenderedBody(t *testing.T) {
	body := `{"channel":"#ops","attachments":[{"title":"CRITICAL: HighErrorRate"}]}`
	render := map[string]Render{
		routing.Slack: func(*notifiers.Notification) ([]byte, error) { return []byte(body), nil },
		// The real one, configured: the key must not be logged.
		routing.PagerDuty: func(nt *notifiers.Notification) ([]byte, error) {
			return pagerduty.Render(pagerduty.Config{RoutingKey: "pd-s3cret-key"}, nt)
		},
		routing.Email:   func(*notifiers.Notification) ([]byte, error) { return nil, errors.New("build mail: no recipient") },
		routing.Webhook: func(*notifiers.Notification) ([]byte, error) { return nil, nil },
	}
	for _, tc := range []struct {
		integration string
		check       func(t *testing.T, line map[string]any)
	}{
		{routing.Slack, func(t *testing.T, l map[string]any) {
			if l["body"] != body {
				t.Errorf("body %v, want %s", l["body"], body)
			}
		}},
		{routing.PagerDuty, func(t *testing.T, l map[string]any) {
			b, _ := l["body"].(string)
			var ev map[string]any
			if err := json.Unmarshal([]byte(b), &ev); err != nil || ev["routing_key"] != pagerduty.RenderedKey || ev["event_action"] != "trigger" {
				t.Errorf("body %q (%v), want the trigger event without its key", b, err)
			}
		}},
		{routing.Email, func(t *testing.T, l map[string]any) {
			if l["render_error"] != "build mail: no recipient" || l["body"] != nil {
				t.Errorf("render_error %v, body %v", l["render_error"], l["body"])
			}
		}},
		{routing.Webhook, func(t *testing.T, l map[string]any) {
			if l["sends_nothing"] != true || l["body"] != nil {
				t.Errorf("sends_nothing %v, body %v", l["sends_nothing"], l["body"])
			}
		}},
		{routing.Log, func(t *testing.T, l map[string]any) {
			if _, ok := l["body"]; ok {
				t.Errorf("a body for an integration without a renderer: %v", l["body"])
			}
		}},
	} {
		t.Run(tc.integration, func(t *testing.T) {
			ls, raw := lines(t, render, notification(tc.integration))
			if len(ls) != 2 || ls[0]["message"] != "would notify" || ls[1]["message"] != "would notify alert" {
				t.Fatalf("lines:\n%s", raw)
			}
			if ls[0]["integration"] != tc.integration {
				t.Errorf("integration %v, want %s", ls[0]["integration"], tc.integration)
			}
			tc.check(t, ls[0])
			for _, s := range []string{"pd-s3cret-key", "s3cret"} {
				if strings.Contains(raw, s) {
					t.Errorf("the log carries %q:\n%s", s, raw)
				}
			}
		})
	}
}

// A body of any size and content keeps its line under 16 KiB, as the
// JSON log writes it, and says how long it was.
func TestBodyIsBounded(t *testing.T) {
	for name, body := range map[string]string{
		"plain":    strings.Repeat("a", 1<<20),
		"quotes":   strings.Repeat(`"`, 1<<20),
		"control":  strings.Repeat("\x01", 1<<20),
		"newlines": strings.Repeat("é\n", 1<<19),
	} {
		t.Run(name, func(t *testing.T) {
			render := map[string]Render{routing.Slack: func(*notifiers.Notification) ([]byte, error) { return []byte(body), nil }}
			ls, raw := lines(t, render, notification(routing.Slack))
			first, _, _ := strings.Cut(raw, "\n")
			if len(first) > 16<<10 {
				t.Errorf("a %d-byte line", len(first))
			}
			b, _ := ls[0]["body"].(string)
			marker := "…[cut: " + strconv.Itoa(len(body)) + " bytes]"
			if !strings.HasSuffix(b, marker) || !strings.HasPrefix(body, strings.TrimSuffix(b, marker)) || !utf8.ValidString(b) {
				t.Errorf("body %.80q… is not the body's start and the cut marker", b)
			}
		})
	}
	if got := bound("short", MaxBody); got != "short" {
		t.Errorf("bound cut a short body: %q", got)
	}
}
