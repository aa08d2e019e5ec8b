package alert

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode: whatever arrives, Decode either returns a message that holds
// its promises or an *InvalidError; it never panics.
func FuzzDecode(f *testing.F) {
	// Seeds: what a real Alertmanager sent, and the malformed bodies whose
	// answers testdata/malformed/cases.tsv fixes; testdata/fuzz/FuzzDecode
	// holds what earlier fuzzing found.
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "alertmanager", "*.json"))
	bad, _ := filepath.Glob(filepath.Join("..", "testdata", "malformed", "*"))
	for _, p := range append(files, bad...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"},"startsAt":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":"4","alerts":[{}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Decode(body, Limits{MaxAlerts: 1000})
		if err != nil {
			if !IsInvalid(err) {
				t.Fatalf("error %v is not an InvalidError", err)
			}
			return
		}
		if m.Version != "4" || len(m.Alerts) == 0 || len(m.Alerts) > 1000 {
			t.Fatalf("accepted a message that breaks the contract: %+v", m)
		}
		for _, a := range m.Alerts {
			if a.Labels["alertname"] == "" || (a.Status != StatusFiring && a.Status != StatusResolved) || a.Fingerprint != Fingerprint(a.Labels) {
				t.Fatalf("accepted a bad alert: %+v", a)
			}
			if a.Status == StatusResolved && a.EndsAt.IsZero() {
				t.Fatalf("resolved alert without endsAt: %+v", a)
			}
		}
	})
}
