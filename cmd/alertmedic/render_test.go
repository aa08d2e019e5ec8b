package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// alertmedic template render, on a captured payload: the shipped example's
// oncall receiver shows its PagerDuty event and its mail; a configuration
// file's webhook shows its JSON; an unknown receiver is exit 1.
func TestTemplateRender(t *testing.T) {
	firing := filepath.Join("..", "..", "testdata", "alertmanager", "firing.json")
	code, out, errOut := runCLI(t, "template", "render", "--receiver", "oncall", firing)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"oncall/pagerduty[0] (pagerduty)\n",
		`"routing_key": "<routing key>"`,
		`"class": "HighErrorRate"`,
		"oncall/email[1] (email)\n",
		"To: <oncall@company.com>\n",
		"Subject: CRITICAL: HighErrorRate - High HTTP 5xx error rate on api-1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	cfg := writeConfig(t, `
route:
  receiver: hooks
receivers:
  - name: hooks
    integrations:
      - type: webhook
        name: automation
integrations:
  webhook:
    url: http://127.0.0.1:1/s3cret-path
    bearer_token: s3cret-token
`)
	code, out, errOut = runCLI(t, "template", "render", "--config.file", cfg, "--receiver=hooks", firing)
	if code != 0 {
		t.Fatalf("webhook: exit %d: %s", code, errOut)
	}
	head, body, _ := strings.Cut(out, "\n")
	var msg struct {
		Receiver string `json:"receiver"`
		Alerts   []struct {
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if head != "hooks/automation (webhook)" || json.Unmarshal([]byte(body), &msg) != nil || msg.Receiver != "hooks" || len(msg.Alerts) != 1 || msg.Alerts[0].Labels["alertname"] != "HighErrorRate" {
		t.Errorf("webhook output:\n%s", out)
	}
	if strings.Contains(out+errOut, "s3cret") {
		t.Errorf("a credential in the output:\n%s%s", out, errOut)
	}

	code, out, errOut = runCLI(t, "template", "render", "--receiver", "nobody", firing)
	if code != 1 || out != "" || !strings.Contains(errOut, `receiver "nobody" is not in the configuration (receivers: ops, default, critical-alerts, warning-alerts, business-alerts, oncall)`) {
		t.Errorf("unknown receiver: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "template", "render", "--receiver", "oncall", filepath.Join("..", "..", "testdata", "malformed", "no_alerts.json"))
	if code != 1 || !strings.Contains(errOut, "read payload: alerts is empty") {
		t.Errorf("payload without alerts: exit %d, %s", code, errOut)
	}
}
