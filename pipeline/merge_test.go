package pipeline

import (
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/store"
)

func TestMergeKeepsAGroupOnlyWhenItIsOne(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	note := func(fp, group, ext string) *notifiers.Notification {
		return &notifiers.Notification{Key: fp, Kind: notifiers.KindAlerts, GroupKey: group, ExternalURL: ext,
			Alerts: template.Alerts{{Status: "firing", Fingerprint: fp, StartsAt: at}}}
	}
	items := []store.Item{{ID: "a", Since: at}, {ID: "b", Since: at.Add(time.Second)}}

	same := merge(items, []*notifiers.Notification{note("a", "g1", "http://am"), note("b", "g1", "http://am")})
	if same.GroupKey != "g1" || same.ExternalURL != "http://am" || len(same.Alerts) != 2 {
		t.Errorf("one group: %+v", same)
	}
	mixed := merge(items, []*notifiers.Notification{note("a", "g1", "http://am"), note("b", "g2", "http://am")})
	if mixed.GroupKey != "" || mixed.ExternalURL != "http://am" || len(mixed.Alerts) != 2 {
		t.Errorf("two groups: got group %q, external URL %q, %d alerts; want no group", mixed.GroupKey, mixed.ExternalURL, len(mixed.Alerts))
	}
	twoAMs := merge(items, []*notifiers.Notification{note("a", "g1", "http://am1"), note("b", "g1", "http://am2")})
	if twoAMs.ExternalURL != "" {
		t.Errorf("two Alertmanagers: external URL %q, want none", twoAMs.ExternalURL)
	}
}
