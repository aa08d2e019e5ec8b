package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/notifiers"
)

// Render is what the Events API receives from the real Notifier for the
// same notification, the routing key aside.
func TestRenderIsWhatIsSent(t *testing.T) {
	bare := template.Alert{
		Status:      "firing",
		Labels:      template.KV{"alertname": "Watchdog"},
		Annotations: template.KV{},
		StartsAt:    t0.Add(2 * time.Minute),
		Fingerprint: "00000000000000bb",
	}
	digest := notification(notifiers.KindDigest, firing(), bare)
	digest.Target.Settings = map[string]string{"severity": "critical"}
	for _, tc := range []struct {
		name string
		n    *notifiers.Notification
	}{
		{"trigger", notification(notifiers.KindAlerts, firing())},
		{"resolve", notification(notifiers.KindAlerts, resolved(firing()))},
		{"two_alerts", notification(notifiers.KindAlerts, firing(), bare)},
		{"digest", digest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newEventsAPI(t)
			n := newNotifier(t, api.srv.URL, nil)
			if retry, err := n.Notify(context.Background(), tc.n); err != nil || retry {
				t.Fatalf("Notify = %v, %v", retry, err)
			}
			var want []byte
			for _, b := range api.sent() {
				want = append(want, bytes.ReplaceAll(b, []byte(testKey), []byte(RenderedKey))...)
				want = append(want, '\n')
			}
			got, err := Render(n.conf, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Render:\n%s\nsent:\n%s", got, want)
			}
			if bytes.Contains(got, []byte(testKey)) {
				t.Error("the routing key is in the rendering")
			}
			for _, line := range strings.Split(strings.TrimSuffix(string(got), "\n"), "\n") {
				var ev map[string]any
				if err := json.Unmarshal([]byte(line), &ev); err != nil {
					t.Fatalf("a line is not JSON: %v: %s", err, line)
				}
				if ev["routing_key"] != RenderedKey {
					t.Errorf("routing_key %v, want %q", ev["routing_key"], RenderedKey)
				}
			}
		})
	}
}

// Without a routing key (the log integration's case) the events are the
// same, and notices render nothing, as nothing is sent for them.
func TestRenderUnconfigured(t *testing.T) {
	nt := notification(notifiers.KindAlerts, firing())
	got, err := Render(Config{}, nt)
	if err != nil {
		t.Fatal(err)
	}
	c := Config{RoutingKey: testKey}
	if errs := c.Load(""); len(errs) > 0 {
		t.Fatal(errs)
	}
	want, err := Render(c, nt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("unconfigured:\n%s\nconfigured:\n%s", got, want)
	}
	for _, kind := range []string{notifiers.KindFlappingStarted, notifiers.KindFlappingStopped, notifiers.KindRemediation} {
		if b, err := Render(Config{}, notification(kind, firing())); err != nil || len(b) != 0 {
			t.Errorf("%s: Render = %q, %v; want nothing", kind, b, err)
		}
	}
}
