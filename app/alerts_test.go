package app

import (
	"context"
	"strings"
	"testing"

	"github.com/alertmedic/alertmedic/api"
	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/notifiers/email"
	"github.com/alertmedic/alertmedic/notifiers/pagerduty"
	"github.com/alertmedic/alertmedic/routing"
	"github.com/alertmedic/alertmedic/store/memory"
)

// A delivered event says what its integration keeps of it: PagerDuty's
// dedup_key, the Slack group message, the mail's Message-ID and its
// thread's per recipient.
func TestDeliveryFacts(t *testing.T) {
	cfg, err := config.Parse(config.Example, "")
	if err != nil {
		t.Fatal(err)
	}
	tree, err := CompileRoutes(cfg)
	if err != nil {
		t.Fatal(err)
	}
	refs := notifiers.StoreRefs(memory.New(memory.Options{}))
	ctx := context.Background()
	const group = `{}:{alertname="HighErrorRate"}`
	for key, val := range map[string]string{
		notifiers.RefKey("email", "oncall/email[1]", group, "oncall@company.com"): `{"id":"<root-1@alertmedic>","subject":"s"}`,
		notifiers.RefKey("slack", "critical-alerts/slack[0]", group):              `{"channel":"C0CRIT","ts":"1714557600.000100"}`,
	} {
		if _, err := refs.UpdateRef(ctx, key, 0, func([]byte) ([]byte, error) { return []byte(val), nil }); err != nil {
			t.Fatal(err)
		}
	}
	tl := api.Timeline{Fingerprint: "e36375c7e363df0c", GroupKey: group, Events: []api.TimelineEvent{
		{Stage: api.StageDelivered, Target: "oncall/pagerduty[0]", Detail: "delivered at attempt 1"},
		{Stage: api.StageDelivered, Target: "oncall/email[1]", Detail: "delivered at attempt 1", Messages: []string{"0a1b2c-0"}},
		{Stage: api.StageDelivered, Target: "critical-alerts/slack[0]", Detail: "delivered at attempt 1"},
		{Stage: api.StageNotify, Target: "oncall/pagerduty[0]"},
	}}
	from := "Alertmedic <alerts@company.com>"
	alertsAPI{refs: refs, tree: func() *routing.Tree { return tree }, emailFrom: func() string { return from }}.deliveryFacts(ctx, &tl)
	want := []string{
		"delivered at attempt 1; dedup_key " + pagerduty.DedupKey("oncall/pagerduty[0]", "e36375c7e363df0c"),
		"delivered at attempt 1; Message-ID <" + email.MessageID("0a1b2c-0", from) + ">; to oncall@company.com in the thread of Message-ID <root-1@alertmedic>",
		"delivered at attempt 1; the group's message 1714557600.000100 in C0CRIT",
		"",
	}
	for i, e := range tl.Events {
		if e.Detail != want[i] {
			t.Errorf("event %d: %q, want %q", i, e.Detail, want[i])
		}
	}
	if !strings.HasPrefix(tl.Events[0].Detail, "delivered") {
		t.Fail()
	}
}
