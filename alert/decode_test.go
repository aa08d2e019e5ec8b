package alert

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The fixtures were sent by a real Alertmanager (testdata/alertmanager/README.md).
func TestDecodeRealPayloads(t *testing.T) {
	cases := []struct {
		file             string
		firing, resolved int
		truncated        uint64
		reason           string
		routeLabels      int
		checkFirstAlert  func(t *testing.T, m *Message)
	}{
		{file: "firing.json", firing: 1},
		{file: "resolved.json", resolved: 1},
		{file: "partial_resolved.json", firing: 2, resolved: 1},
		{file: "group_50.json", firing: 50},
		{file: "group_50_truncated.json", firing: 5, truncated: 45},
		{file: "business_warning_basic_auth.json", firing: 1},
		{file: "unicode_multiline.json", firing: 1, checkFirstAlert: func(t *testing.T, m *Message) {
			d := m.Alerts[0].Annotations["description"]
			if !strings.Contains(d, "\n") || !strings.ContainsAny(d, "<>&") {
				t.Errorf("description lost its lines or its escaped characters: %q", d)
			}
			var nonASCII bool
			for _, v := range m.Alerts[0].Labels {
				for _, r := range v {
					nonASCII = nonASCII || r > 127
				}
			}
			if !nonASCII {
				t.Errorf("labels lost their non-ASCII text: %v", m.Alerts[0].Labels)
			}
		}},
		{file: "v035_firing.json", firing: 1, reason: "first notification", routeLabels: 2},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "testdata", "alertmanager", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Decode(b, Limits{MaxAlerts: 1000})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			var firing, resolved int
			for _, a := range m.Alerts {
				switch a.Status {
				case StatusFiring:
					firing++
					if !a.EndsAt.IsZero() {
						t.Errorf("firing alert %s: endsAt %v, want zero (Alertmanager sends 0001-01-01)", a.Fingerprint, a.EndsAt)
					}
				case StatusResolved:
					resolved++
					if !a.EndsAt.After(a.StartsAt) {
						t.Errorf("resolved alert %s: endsAt %v not after startsAt %v", a.Fingerprint, a.EndsAt, a.StartsAt)
					}
				}
				if a.StartsAt.IsZero() || a.Labels["alertname"] == "" {
					t.Errorf("alert %v lost startsAt or alertname", a)
				}
			}
			if firing != tc.firing || resolved != tc.resolved {
				t.Errorf("got %d firing, %d resolved; want %d, %d", firing, resolved, tc.firing, tc.resolved)
			}
			if m.TruncatedAlerts != tc.truncated {
				t.Errorf("truncatedAlerts = %d, want %d", m.TruncatedAlerts, tc.truncated)
			}
			if m.NotificationReason != tc.reason || len(m.RouteLabels) != tc.routeLabels {
				t.Errorf("notification_reason %q routeLabels %v; want %q and %d labels", m.NotificationReason, m.RouteLabels, tc.reason, tc.routeLabels)
			}
			if m.GroupKey == "" || m.Receiver == "" || m.Version != "4" {
				t.Errorf("envelope incomplete: %+v", m)
			}
			if tc.checkFirstAlert != nil {
				tc.checkFirstAlert(t, m)
			}
		})
	}
}

// Alertmanager computes the fingerprint from the labels; so must we, and the
// captured payloads carry Alertmanager's own value to compare with.
func TestFingerprintMatchesAlertmanager(t *testing.T) {
	for _, f := range []string{"firing.json", "group_50.json", "unicode_multiline.json"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "alertmanager", f))
		if err != nil {
			t.Fatal(err)
		}
		var w wireMessage
		if err := jsonUnmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		for _, a := range w.Alerts {
			if got := Fingerprint(a.Labels); got != a.Fingerprint {
				t.Errorf("%s: Fingerprint(%v) = %s, Alertmanager said %s", f, a.Labels, got, a.Fingerprint)
			}
		}
	}
}

func TestObservationKey(t *testing.T) {
	b, _ := os.ReadFile(filepath.Join("..", "testdata", "alertmanager", "firing.json"))
	m, err := Decode(b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a := m.Alerts[0]
	resent := a
	resent.EndsAt = a.StartsAt.Add(time.Hour) // a firing resend moves endsAt
	if ObservationKey(a) != ObservationKey(resent) {
		t.Error("a firing resend with a new endsAt must be the same observation")
	}
	resolved := a
	resolved.Status, resolved.EndsAt = StatusResolved, a.StartsAt.Add(time.Minute)
	if ObservationKey(a) == ObservationKey(resolved) {
		t.Error("the resolve of an alert must be a new observation")
	}
	refired := a
	refired.StartsAt = a.StartsAt.Add(time.Hour)
	if ObservationKey(a) == ObservationKey(refired) {
		t.Error("a re-fire with a new startsAt must be a new observation")
	}
}

const okAlert = `{"status":"firing","labels":{"alertname":"A"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z"}`

func msg(alerts string) string {
	return `{"version":"4","status":"firing","receiver":"r","groupKey":"{}:{}","alerts":[` + alerts + `]}`
}

func TestDecodeRejects(t *testing.T) {
	cases := []struct {
		name, body, want string
		tooLarge         bool
	}{
		{name: "empty body", body: ``, want: "body is not a valid JSON webhook message: body is empty"},
		{name: "not JSON", body: `hello`, want: "body is not a valid JSON webhook message: invalid character 'h' looking for beginning of value at byte 1"},
		{name: "truncated JSON", body: `{"version":"4","alerts":[`, want: "body is not a valid JSON webhook message: body ends in the middle of the JSON"},
		{name: "JSON array", body: `[1,2]`, want: "body is not a valid JSON webhook message: the message must be a JSON object, not JSON array"},
		{name: "trailing data", body: msg(okAlert) + `{}`, want: "body is not a valid JSON webhook message: unexpected data after the message"},
		{name: "version missing", body: `{"alerts":[` + okAlert + `]}`, want: `version is missing; alertmedic accepts Alertmanager's webhook version "4"`},
		{name: "version 3", body: `{"version":"3","alerts":[` + okAlert + `]}`, want: `version "3" is not supported; alertmedic accepts Alertmanager's webhook version "4"`},
		{name: "version as number", body: `{"version":4,"alerts":[` + okAlert + `]}`, want: "body is not a valid JSON webhook message: field version must be a string, not JSON number"},
		{name: "alerts an object", body: `{"version":"4","alerts":{}}`, want: "body is not a valid JSON webhook message: field alerts must be a list, not JSON object"},
		{name: "no alerts", body: msg(``), want: "alerts is empty; a webhook message must carry at least one alert"},
		{name: "alerts null", body: `{"version":"4","alerts":null}`, want: "alerts is empty; a webhook message must carry at least one alert"},
		{name: "bad top status", body: `{"version":"4","status":"burning","alerts":[` + okAlert + `]}`, want: `status "burning" must be "firing" or "resolved"`},
		{name: "no labels", body: msg(`{"status":"firing","startsAt":"2026-01-01T00:00:00Z"}`), want: "alerts[0]: labels are missing; every alert needs at least an alertname label"},
		{name: "no alertname", body: msg(okAlert + `,{"status":"firing","labels":{"job":"x"},"startsAt":"2026-01-01T00:00:00Z"}`), want: "alerts[1]: label alertname is missing"},
		{name: "bad alert status", body: msg(`{"status":"pending","labels":{"alertname":"A"},"startsAt":"2026-01-01T00:00:00Z"}`), want: `alerts[0]: alert "A": status "pending" must be "firing" or "resolved"`},
		{name: "no startsAt", body: msg(`{"status":"firing","labels":{"alertname":"A"}}`), want: `alerts[0]: alert "A": startsAt is missing`},
		{name: "bad startsAt", body: msg(`{"status":"firing","labels":{"alertname":"A"},"startsAt":"yesterday"}`), want: `alerts[0]: alert "A": startsAt "yesterday" is not an RFC 3339 timestamp`},
		{name: "bad endsAt", body: msg(`{"status":"resolved","labels":{"alertname":"A"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-13-01T00:00:00Z"}`), want: `alerts[0]: alert "A": endsAt "2026-13-01T00:00:00Z" is not an RFC 3339 timestamp`},
		{name: "resolved without endsAt", body: msg(`{"status":"resolved","labels":{"alertname":"A"},"startsAt":"2026-01-01T00:00:00Z"}`), want: `alerts[0]: alert "A": resolved alert has no endsAt`},
		{name: "labels not strings", body: msg(`{"status":"firing","labels":{"alertname":1},"startsAt":"2026-01-01T00:00:00Z"}`), want: "body is not a valid JSON webhook message: field alerts.labels must be a string, not JSON number"},
		{name: "too many alerts", body: msg(okAlert + "," + okAlert + "," + okAlert), tooLarge: true,
			want: "message carries 3 alerts, more than the limit of 2 (set max_alerts in Alertmanager's webhook_config, or raise web.max_alerts)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.body), Limits{MaxAlerts: 2})
			if err == nil {
				t.Fatal("Decode accepted it")
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tc.want)
			}
			var ie *InvalidError
			if !errors.As(err, &ie) || !IsInvalid(err) {
				t.Fatalf("error is %T, want *InvalidError", err)
			}
			if ie.TooLarge != tc.tooLarge {
				t.Errorf("TooLarge = %v, want %v", ie.TooLarge, tc.tooLarge)
			}
		})
	}
}

func TestDecodeToleratesUnknownFields(t *testing.T) {
	body := `{"version":"4","status":"firing","futureField":{"x":[1,2]},"alerts":[{"status":"firing","labels":{"alertname":"A"},"startsAt":"2026-01-01T00:00:00Z","newAlertField":true}]}`
	m, err := Decode([]byte(body), Limits{})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if m.Alerts[0].Fingerprint != Fingerprint(m.Alerts[0].Labels) {
		t.Error("fingerprint not computed")
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
