package app

import (
	"testing"

	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/secret"
)

func TestAlertmanagerFor(t *testing.T) {
	configured := config.AlertmanagerConfig{URL: "http://am.internal:9093", HTTPConfig: config.HTTPAuth{BearerToken: secret.Secret("tok")}}
	if am := alertmanagerFor(configured, "http://elsewhere:9093"); am == nil || am.URL != "http://am.internal:9093" || am.BearerToken != "tok" {
		t.Errorf("configured: %+v", am)
	}
	// The alert's own Alertmanager gets no credentials.
	if am := alertmanagerFor(config.AlertmanagerConfig{}, "https://am.example:9093/"); am == nil || am.URL != "https://am.example:9093/" || am.BearerToken != "" || am.Username != "" {
		t.Errorf("from externalURL: %+v", am)
	}
	for _, bad := range []string{"", "file:///etc/passwd", "gopher://x", "http://user:pw@am:9093", "not a url"} {
		if am := alertmanagerFor(config.AlertmanagerConfig{}, bad); am != nil {
			t.Errorf("%q: got %+v, want none", bad, am)
		}
	}
}
