package webhook

import (
	"bytes"
	"context"
	"testing"

	"github.com/alertmedic/alertmedic/notifiers"
)

// Render is the body the endpoint receives from the real Notifier for the
// same notification, and carries neither the URL nor the token.
func TestRenderIsWhatIsSent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		n         *notifiers.Notification
		maxAlerts int
	}{
		{"alerts", alertsNotification(), 0},
		{"alerts_truncated", alertsNotification(), 1},
		{"flapping_started", flappingNotification(), 0},
		{"digest", digestNotification(), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &endpoint{}
			c := config(serve(t, e))
			c.MaxAlerts = tc.maxAlerts
			if retry, err := New(c, nil).Notify(context.Background(), tc.n); err != nil || retry {
				t.Fatalf("Notify = %v, %v", retry, err)
			}
			reqs := e.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			got, err := Render(c, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, reqs[0].Body) {
				t.Errorf("Render:\n%s\nsent:\n%s", got, reqs[0].Body)
			}
			for _, s := range []string{secretPath, bearerToken} {
				if bytes.Contains(got, []byte(s)) {
					t.Errorf("the rendering carries %q", s)
				}
			}
			// Without credentials (the log integration's case), the same.
			unconfigured := Config{MaxAlerts: tc.maxAlerts}
			if b, err := Render(unconfigured, tc.n); err != nil || !bytes.Equal(b, got) {
				t.Errorf("unconfigured: %s, %v", b, err)
			}
		})
	}
}
