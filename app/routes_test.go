package app

import (
	"strings"
	"testing"
	"time"

	"github.com/alertmedic/alertmedic/config"
)

// The routes test explains a hold: which target holds, for which rule,
// and for how long at most; and says so when nothing would be held.
func TestRouteTestExplainsHold(t *testing.T) {
	yml := strings.Replace(string(config.Example), "      - type: pagerduty\n", "      - type: pagerduty\n        hold_for_remediation: true\n", 1)
	at := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	route := func(yml string, labels ...string) string {
		t.Helper()
		cfg, err := config.Parse([]byte(yml), "")
		if err != nil {
			t.Fatal(err)
		}
		tree, err := CompileRoutes(cfg)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := ParseLabels(labels)
		if err != nil {
			t.Fatal(err)
		}
		ans, err := RouteTest(cfg, tree, kv, at)
		if err != nil {
			t.Fatal(err)
		}
		var acts []string
		for _, tg := range ans.Targets {
			acts = append(acts, tg.Receiver+"/"+tg.Name+"="+tg.Action+":"+tg.HeldFor)
		}
		return strings.Join(acts, " ") + "\n" + ans.Explanation
	}

	// The shipped remediation is a dry run: nothing is held.
	got := route(yml, "alertname=ExtractionServiceOverloaded", "severity=critical")
	if !strings.Contains(got, "oncall/pagerduty[0]=notify:") ||
		!strings.Contains(got, "hold_for_remediation: no enabled remediation rule that verifies (and is not a dry run) acts on this alert, so nothing is held\n") {
		t.Errorf("dry run:\n%s", got)
	}

	live := strings.Replace(yml, "  dry_run: true\n", "  dry_run: false\n", 1)
	got = route(live, "alertname=ExtractionServiceOverloaded", "severity=critical")
	if !strings.Contains(got, "oncall/pagerduty[0]=hold:scale-extraction oncall/email[1]=notify:") ||
		!strings.Contains(got, "  oncall/pagerduty[0] (pagerduty): notify (bypass_mute_matchers match: never muted by quiet-hours), hold_for_remediation\n") ||
		!strings.Contains(got, `hold_for_remediation: rule "scale-extraction" acts on this alert when it fires and verifies within 10m; the pages to oncall/pagerduty[0] wait for its verdict`) ||
		!strings.Contains(got, "and sent 11m after the alert arrives at the latest\n") {
		t.Errorf("live:\n%s", got)
	}
	// Another critical alert: no rule acts on it.
	if got := route(live, "alertname=Other", "severity=critical"); !strings.Contains(got, "oncall/pagerduty[0]=notify:") || !strings.Contains(got, "so nothing is held") {
		t.Errorf("another alert:\n%s", got)
	}
}
