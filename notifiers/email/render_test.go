package email

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/alertmedic/alertmedic/notifiers"
)

var renderedDateRe = regexp.MustCompile(`(?m)^Date: .*$`)

// Render is the mail the relay receives from the real Notifier for the
// same notification, read back the same way (the Date aside: it is the
// clock's).
func TestRenderIsWhatIsSent(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    *notifiers.Notification
	}{
		{"alerts", alertsNotification()},
		{"flapping_started", flappingNotification()},
		{"digest", digestNotification()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &relay{requireAuth: true}
			c := config(t, startServer(t, r, serverOpts{}))
			if retry, err := New(c, nil).Notify(context.Background(), tc.n); err != nil || retry {
				t.Fatalf("Notify = %v, %v", retry, err)
			}
			msgs := r.messages()
			if len(msgs) != 1 {
				t.Fatalf("relay received %d messages, want 1", len(msgs))
			}
			want, err := readBack(msgs[0].Data, false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Render(c, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := renderedDateRe.ReplaceAll(got, nil), renderedDateRe.ReplaceAll(want, nil); !bytes.Equal(g, w) {
				t.Errorf("Render:\n%s\nsent:\n%s", got, want)
			}
			if bytes.Contains(got, []byte(testPass)) {
				t.Error("the rendering carries the password")
			}
		})
	}
}

// The log integration renders with no email block at all: the headers and
// text all the same, the sender shown as unknown.
func TestRenderUnconfigured(t *testing.T) {
	got, err := Render(Config{}, alertsNotification())
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	head, text, ok := strings.Cut(s, "\n\n")
	if !ok {
		t.Fatalf("no blank line after the headers:\n%s", s)
	}
	for _, want := range []string{
		"From: " + RenderedFrom + "\n",
		"To: <oncall@company.com>, \"Platform Team\" <platform@company.com>\n",
		"Subject: CRITICAL: HighErrorRate (1 firing, 1 resolved) - High error rate detected\n",
		"Message-ID: <",
		"Auto-Submitted: auto-generated\n",
	} {
		if !strings.Contains(head+"\n", want) {
			t.Errorf("headers lack %q:\n%s", want, head)
		}
	}
	for _, unwanted := range []string{"Content-Type", "Mime-Version", "MIME-Version"} {
		if strings.Contains(head, unwanted) {
			t.Errorf("headers hold %q:\n%s", unwanted, head)
		}
	}
	if !strings.HasPrefix(text, "Alert: High error rate detected\nDescription: Error rate is 7.5% (> 5% threshold) & rising\n") {
		t.Errorf("text part:\n%s", text)
	}
	if strings.Contains(text, "<html") || strings.Contains(text, "=\n") {
		t.Errorf("the text is not the decoded text part:\n%s", text)
	}
	if _, err := Render(Config{}, &notifiers.Notification{Kind: notifiers.KindAlerts, Alerts: alertsNotification().Alerts}); err == nil {
		t.Error("a target without settings.to rendered")
	}
}

// A page held for remediation says in its mail what was tried, as text
// and escaped in the HTML part.
func TestRenderSaysWhatWasTried(t *testing.T) {
	n := alertsNotification()
	fp := n.Alerts[0].Fingerprint
	n.Tried = map[string]string{fp: "rule scale-api at 2026-03-04T12:00:00Z: scaled api from 2 to 5 replicas; the alert was still <firing>"}
	got, err := Render(Config{From: "alertmedic@example.com"}, n)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte("Remediation tried first: rule scale-api at 2026-03-04T12:00:00Z: scaled api from 2 to 5 replicas; the alert was still <firing>")) {
		t.Errorf("the text part does not say what was tried:\n%s", got)
	}
	html, err := render(DefaultHTML, n, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html, "still &lt;firing&gt;") || strings.Contains(html, "<firing>") {
		t.Errorf("the HTML part does not escape it:\n%s", html)
	}
}
