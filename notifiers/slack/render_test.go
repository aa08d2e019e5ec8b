package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
)

// Render is the body the incoming webhook receives from the real Notifier
// for the same notification, and carries neither the URL nor the token.
func TestRenderIsWhatIsSent(t *testing.T) {
	runbook := map[string]string{"summary": "Error rate above 5%", "runbook_url": "https://runbooks.example.com/high-error-rate"}
	for _, tc := range []struct {
		name string
		n    *notifiers.Notification
	}{
		{"alerts", &notifiers.Notification{
			Kind: notifiers.KindAlerts, Target: target("#alerts-critical"),
			Alerts: template.Alerts{
				mkAlert(alert.StatusFiring, "HighErrorRate", "critical", runbook, t0),
				mkAlert(alert.StatusResolved, "HighLatency", "warning", nil, t0),
			},
		}},
		{"digest", &notifiers.Notification{
			Kind: notifiers.KindDigest, Target: target("#business-metrics"),
			Alerts: template.Alerts{mkAlert(alert.StatusFiring, "LowConversionRate", "warning", nil, t0)},
		}},
		{"flapping started", &notifiers.Notification{
			Kind: notifiers.KindFlappingStarted, Target: target("#ops-alerts"),
			Text:  "HighErrorRate is flapping: 7 changes in 10m0s.",
			Facts: map[string]string{"alertname": "HighErrorRate", "changes": "7"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSlackServer(t, nil)
			c := loaded(t, webhookConfig(srv.URL))
			if retry, err := New(c, nil, nil).Notify(context.Background(), tc.n); err != nil || retry {
				t.Fatalf("Notify = %v, %v", retry, err)
			}
			reqs := srv.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			got, err := Render(c, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, reqs[0].body) {
				t.Errorf("Render:\n%s\nsent:\n%s", got, reqs[0].body)
			}
			if bytes.Contains(got, []byte(webhookPath)) {
				t.Error("the rendering carries the webhook path")
			}
			// Without credentials (the log integration's case), the same.
			if b, err := Render(Config{}, tc.n); err != nil || !bytes.Equal(b, got) {
				t.Errorf("unconfigured: %s, %v", b, err)
			}
		})
	}
}

// With a token the rendering is the same message, channel included, for
// chat.postMessage, and carries no token.
func TestRenderToken(t *testing.T) {
	nt := &notifiers.Notification{
		Kind: notifiers.KindAlerts, Target: target("#alerts-critical"),
		Alerts: template.Alerts{mkAlert(alert.StatusFiring, "HighErrorRate", "critical", nil, t0)},
	}
	got, err := Render(loaded(t, tokenConfig("http://127.0.0.1:1")), nt)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Channel     string `json:"channel"`
		Attachments []struct {
			Title string `json:"title"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(got, &m); err != nil || m.Channel != "#alerts-critical" || len(m.Attachments) != 1 || m.Attachments[0].Title != "CRITICAL: HighErrorRate" {
		t.Errorf("Render = %s (%v)", got, err)
	}
	if bytes.Contains(got, []byte(testToken)) {
		t.Error("the rendering carries the token")
	}
}

// A page held for remediation carries what was tried as a field of its
// alert, and only of its alert.
func TestRenderSaysWhatWasTried(t *testing.T) {
	a := mkAlert(alert.StatusFiring, "ExtractionServiceOverloaded", "critical", nil, t0)
	b := mkAlert(alert.StatusFiring, "HighLatency", "warning", nil, t0)
	n := &notifiers.Notification{Kind: notifiers.KindAlerts, Target: target("#alerts-critical"), Alerts: template.Alerts{a, b},
		Tried: map[string]string{a.Fingerprint: "rule scale-extraction did not act (paused): remediation was paused by alice"}}
	raw, err := Render(Config{}, n)
	if err != nil {
		t.Fatal(err)
	}
	var msg struct {
		Attachments []struct {
			Title  string `json:"title"`
			Fields []struct{ Title, Value string }
		} `json:"attachments"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatalf("%v in %s", err, raw)
	}
	var tried []string
	for _, att := range msg.Attachments {
		for _, f := range att.Fields {
			if f.Title == "Remediation tried" {
				tried = append(tried, att.Title+": "+f.Value)
			}
		}
	}
	if len(tried) != 1 || !strings.Contains(tried[0], "ExtractionServiceOverloaded") || !strings.HasSuffix(tried[0], ": rule scale-extraction did not act (paused): remediation was paused by alice") {
		t.Errorf("fields %q in %s", tried, raw)
	}
}

// With web.external_url, each alert links to its timeline on the page;
// without it, nothing is added.
func TestRenderLinksTheTimeline(t *testing.T) {
	a := mkAlert(alert.StatusFiring, "HighErrorRate", "critical", nil, t0)
	n := &notifiers.Notification{Kind: notifiers.KindAlerts, Target: target("#alerts-critical"), Alerts: template.Alerts{a}}
	raw, err := Render(Config{AlertPageURL: "https://alertmedic.example.com/alerts/"}, n)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"timeline","text":"Timeline","type":"button","url":"https://alertmedic.example.com/alerts/` + a.Fingerprint + `"}`; !strings.Contains(string(raw), want) {
		t.Errorf("no timeline link %s in %s", want, raw)
	}
	raw, _ = Render(Config{}, n)
	if strings.Contains(string(raw), "timeline") {
		t.Errorf("a link without web.external_url: %s", raw)
	}
}
