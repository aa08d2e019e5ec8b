package slack

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/routing"
	"github.com/alertmedic/alertmedic/secret"
)

// A receiver's integration entry may override the integration's templates
// for its target alone.
func TestTargetTemplateOverride(t *testing.T) {
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	c := Config{APIURL: secret.Secret(srv.URL + "/hook")}
	if errs := c.Load(""); len(errs) > 0 {
		t.Fatal(errs)
	}
	n := New(c, nil, nil)
	nt := &notifiers.Notification{Kind: notifiers.KindAlerts,
		Target: routing.Target{Receiver: "r", Name: "slack[0]", Integration: "slack", Settings: map[string]string{
			"channel": "#x", "title": "Custom: {{ .CommonLabels.alertname }}", "text": "on {{ .CommonLabels.instance }}"}},
		Alerts: template.Alerts{{Status: "firing", Labels: template.KV{"alertname": "Disk", "instance": "db-1"}, StartsAt: time.Unix(0, 0)}}}
	if _, err := n.Notify(context.Background(), nt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, `"title":"Custom: Disk"`) || !strings.Contains(body, `"text":"on db-1"`) {
		t.Errorf("body %s", body)
	}
	// Without the override, the integration's default.
	nt.Target.Settings = map[string]string{"channel": "#x"}
	if _, err := n.Notify(context.Background(), nt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, `"title":"INFO: Disk"`) {
		t.Errorf("default title lost: %s", body)
	}
}
