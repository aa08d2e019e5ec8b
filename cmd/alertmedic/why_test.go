package main

import (
	"strings"
	"testing"
	"time"
)

// alert why, against the daemon: a captured critical alert's story names
// its request, its routes and each target's delivery; by labels or by
// fingerprint alike. An unknown alert exits 1; an unreachable daemon 2.
func TestAlertWhy(t *testing.T) {
	d := start(t)
	if code, body := post(t, d.url("/webhook"), fixture(t, "firing.json")); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var out string
	eventually(t, 10*time.Second, "three deliveries in the story", func() bool {
		code, o, _ := runCLI(t, "alert", "why", "--url", "http://"+d.addr, "alertname=HighErrorRate", "instance=api-1.prod.example.internal:8080")
		out = o
		return code == 0 && strings.Count(o, "  delivered ") == 3
	})
	for _, want := range []string{
		`alert {alertname="HighErrorRate", instance="api-1.prod.example.internal:8080", job="api", severity="critical", team="platform"} (fingerprint e36375c7e363df0c)`,
		"  received: firing, in request ",
		" from http://127.0.0.1:19093\n",
		"  routed: route.routes[0] -> oncall; route.routes[2] -> critical-alerts\n",
		"  notify oncall/pagerduty[0]: bypass_mute_matchers: never muted by quiet-hours\n",
		"  delivered oncall/pagerduty[0]: delivered at attempt 1; dedup_key ",
		"  delivered oncall/email[1]: delivered at attempt 1\n",
		"  delivered critical-alerts/slack[0]: delivered at attempt 1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the story has no %q:\n%s", want, out)
		}
	}
	code, byFP, _ := runCLI(t, "alert", "why", "--url", "http://"+d.addr, "e36375c7e363df0c")
	if code != 0 || byFP != out {
		t.Errorf("by fingerprint (%d):\n%s\nby labels:\n%s", code, byFP, out)
	}
	if code, _, errOut := runCLI(t, "alert", "why", "--url", "http://"+d.addr, "alertname=NoSuchAlert"); code != 1 || !strings.Contains(errOut, "no alert alertmedic knows matches") {
		t.Errorf("unknown alert: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "alert", "why", "--url", "http://127.0.0.1:1", "0123456789abcdef"); code != 2 || !strings.Contains(errOut, "ask http://127.0.0.1:1") {
		t.Errorf("no daemon: %d %s", code, errOut)
	}
}
