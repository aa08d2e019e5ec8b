package app

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/routing"
)

func payload(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func example(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse(config.Example, "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Captured Alertmanager payloads through the shipped example: every
// integration of the receiver is named and shows the message it would
// send, credentials or not.
func TestTemplateRender(t *testing.T) {
	for _, tc := range []struct {
		name, receiver, payload string
		want                    []string
	}{
		{"oncall pages and mails", "oncall", "alertmanager/firing.json", []string{
			"oncall/pagerduty[0] (pagerduty)\n{\n  \"routing_key\": \"<routing key>\",\n  \"event_action\": \"trigger\",",
			`"summary": "High HTTP 5xx error rate on api-1"`,
			`"class": "HighErrorRate"`,
			"\n\noncall/email[1] (email)\n",
			"From: <from>\nTo: <oncall@company.com>\n",
			"Subject: CRITICAL: HighErrorRate - High HTTP 5xx error rate on api-1\n",
			"\n\nAlert: High HTTP 5xx error rate on api-1\n",
		}},
		{"slack", "critical-alerts", "alertmanager/firing.json", []string{
			"critical-alerts/slack[0] (slack)\n{\n",
			`"channel": "#alerts-critical"`,
			`"title": "CRITICAL: HighErrorRate"`,
		}},
		{"a group of three", "warning-alerts", "alertmanager/partial_resolved.json", []string{
			"warning-alerts/slack[0] (slack)\n",
			`"channel": "#alerts-warning"`,
			"BackendUnhealthy",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			if err := TemplateRender(&out, example(t), tc.receiver, payload(t, tc.payload)); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// The PagerDuty events are one per alert, each a JSON document; a routing
// key in the configuration is never shown.
func TestTemplateRenderHidesCredentials(t *testing.T) {
	cfg := example(t)
	cfg.Integrations.PagerDuty.RoutingKey = "pd-s3cret-routing-key"
	cfg.Integrations.Slack.APIURL = "https://hooks.slack.com/services/T0/B0/s3cret-path"
	var out strings.Builder
	if err := TemplateRender(&out, cfg, "oncall", payload(t, "alertmanager/partial_resolved.json")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "s3cret") {
		t.Errorf("a credential in the output:\n%s", out.String())
	}
	if n := strings.Count(out.String(), `"routing_key": "<routing key>"`); n != 3 {
		t.Errorf("%d PagerDuty events for 3 alerts:\n%s", n, out.String())
	}
}

func TestTemplateRenderErrors(t *testing.T) {
	cfg := example(t)
	for _, tc := range []struct {
		name, receiver, payload, want string
	}{
		{"unknown receiver", "nobody", "alertmanager/firing.json", `receiver "nobody" is not in the configuration (receivers: ops, default, critical-alerts, warning-alerts, business-alerts, oncall)`},
		{"not a webhook message", "oncall", "malformed/not_json.txt", "read payload: body is not a valid JSON webhook message"},
		{"no alerts", "oncall", "malformed/no_alerts.json", "read payload: alerts is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			err := TemplateRender(&out, cfg, tc.receiver, payload(t, tc.payload))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// The log integration renders only for the integrations without
// credentials: the others send.
func TestLogRenderers(t *testing.T) {
	cfg := example(t)
	if got := len(logRenderers(cfg.Integrations)); got != 4 {
		t.Errorf("%d renderers for the example, want 4", got)
	}
	cfg.Integrations.PagerDuty.RoutingKey = "k"
	r := logRenderers(cfg.Integrations)
	if _, ok := r[routing.PagerDuty]; ok || len(r) != 3 {
		t.Errorf("renderers %v: pagerduty has credentials", slices.Sorted(maps.Keys(r)))
	}
}
