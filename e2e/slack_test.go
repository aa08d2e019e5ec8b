//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertmedic/alertmedic/notifiers/slack/slacktest"
)

const signingSecret = "e2e-slack-signing-secret"

// slackAPI is a stand-in for Slack's Web API as a bot token uses it:
// form-encoded chat.postMessage and chat.update, each answered with the
// message's channel and ts.
type slackAPI struct {
	mu      sync.Mutex
	posts   []url.Values
	updates []url.Values
	n       int
}

func (s *slackAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch strings.TrimPrefix(r.URL.Path, "/api/") {
	case "chat.postMessage":
		s.n++
		s.posts = append(s.posts, r.PostForm)
		fmt.Fprintf(w, `{"ok":true,"channel":"C0E2E","ts":"1700000000.%06d"}`, s.n)
	case "chat.update":
		s.updates = append(s.updates, r.PostForm)
		fmt.Fprintf(w, `{"ok":true,"channel":"C0E2E","ts":%q}`, r.PostForm.Get("ts"))
	default:
		fmt.Fprint(w, `{"ok":false,"error":"unknown_method"}`)
	}
}

func (s *slackAPI) snapshot() (posts, updates []url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.posts...), append([]url.Values(nil), s.updates...)
}

// buttonValue finds the value of the element with action_id id anywhere in
// a message's form (blocks, or blocks within attachments).
func buttonValue(form url.Values, id string) string {
	var walk func(v any) string
	walk = func(v any) string {
		switch x := v.(type) {
		case map[string]any:
			if x["action_id"] == id {
				if s, ok := x["value"].(string); ok {
					return s
				}
				if opts, ok := x["options"].([]any); ok && len(opts) > 0 {
					if o, ok := opts[0].(map[string]any); ok {
						s, _ := o["value"].(string)
						return s
					}
				}
			}
			for _, e := range x {
				if s := walk(e); s != "" {
					return s
				}
			}
		case []any:
			for _, e := range x {
				if s := walk(e); s != "" {
					return s
				}
			}
		}
		return ""
	}
	for _, field := range []string{"blocks", "attachments"} {
		var v any
		if json.Unmarshal([]byte(form.Get(field)), &v) == nil {
			if s := walk(v); s != "" {
				return s
			}
		}
	}
	return ""
}

// signedClick is a block_actions payload as Slack posts it, signed with
// the app's signing secret (v0: HMAC-SHA256 of "v0:{timestamp}:{body}").
func signedClick(t *testing.T, target, actionID, value, ts string) *http.Request {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"type":       "block_actions",
		"team":       map[string]any{"id": "T0E2E", "domain": "e2e"},
		"user":       map[string]any{"id": "U0ALICE", "username": "alice", "name": "alice"},
		"trigger_id": "1111.2222.e2e",
		"channel":    map[string]any{"id": "C0E2E", "name": "oncall"},
		"container":  map[string]any{"type": "message", "message_ts": ts, "channel_id": "C0E2E"},
		"message":    map[string]any{"ts": ts},
		"actions": []map[string]any{{
			"action_id": actionID, "block_id": "buttons", "value": value, "type": "button", "action_ts": "1700000100.000001",
		}},
	})
	body := "payload=" + url.QueryEscape(string(payload))
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	slacktest.Sign(req.Header, signingSecret, body, time.Now())
	return req
}

type amSilence struct {
	ID     string `json:"id"`
	Status struct {
		State string `json:"state"`
	} `json:"status"`
	CreatedBy string `json:"createdBy"`
	Comment   string `json:"comment"`
	Matchers  []struct {
		Name    string `json:"name"`
		Value   string `json:"value"`
		IsRegex bool   `json:"isRegex"`
		IsEqual *bool  `json:"isEqual"`
	} `json:"matchers"`
}

// metric reads one counter (summed over its series) off a /metrics page.
func metric(t *testing.T, base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum := 0.0
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? ([0-9.e+]+)$`)
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		sum += v
	}
	return sum
}

// TestSlackSilenceClick: an alert raised in a real Alertmanager reaches
// Slack (app mode) through alertmedic; a signed Silence click, sent twice
// as Slack does when it gets no answer in time, creates exactly one
// silence in that Alertmanager whose matchers are the alert's labels, and
// Alertmanager stops sending the alert.
func TestSlackSilenceClick(t *testing.T) {
	start := time.Now()
	deadline = start.Add(overall)
	root := moduleRoot(t)
	amBin := lookPath(t, "ALERTMANAGER", "prometheus-alertmanager", "alertmanager")
	dir := t.TempDir()
	bin := buildAlertmedic(t, root, dir, start)

	api := &slackAPI{}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)

	amdPort, amPort := freePort(t), freePort(t)
	amdURL := fmt.Sprintf("http://127.0.0.1:%d", amdPort)
	amURL := fmt.Sprintf("http://127.0.0.1:%d", amPort)

	cfg := write(t, filepath.Join(dir, "alertmedic.yml"), fmt.Sprintf(`web:
  auth:
    bearer_token: %s
webhook:
  dedup_window: 1s
integrations:
  slack:
    token: xoxb-e2e-token
    signing_secret: %s
    api_base_url: %s/api/
route:
  receiver: oncall
receivers:
  - name: oncall
    integrations:
      - type: slack
        settings: {channel: "#oncall"}
`, webhookToken, signingSecret, apiSrv.URL))
	if out, err := exec.Command(bin, "check-config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("alertmedic check-config: %v\n%s", err, out)
	}
	startProc(t, "alertmedic", bin, "--config.file="+cfg, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", amdPort), "--log.level=debug")
	waitReady(t, "alertmedic", amdURL+"/-/ready")

	// Alertmanager resends the group every 2s until it is silenced.
	amCfg := write(t, filepath.Join(dir, "am.yml"), fmt.Sprintf(`route:
  receiver: alertmedic
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: alertmedic
    webhook_configs:
      - url: %s/webhook
        send_resolved: true
        http_config:
          authorization:
            credentials: %s
`, amdURL, webhookToken))
	startProc(t, "alertmanager", amBin, "--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "am"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", amPort), "--cluster.listen-address=", "--web.external-url="+amURL)
	waitReady(t, "alertmanager", amURL+"/-/ready")

	labels := map[string]string{"alertname": "E2ESilenceMe", "severity": "critical", "instance": "api-1:8080"}
	alerts, _ := json.Marshal([]map[string]any{{
		"labels": labels, "annotations": map[string]string{"summary": "raised by the e2e test"},
		"startsAt": time.Now().UTC().Format(time.RFC3339), "endsAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	}})
	resp, err := http.Post(amURL+"/api/v2/alerts", "application/json", bytes.NewReader(alerts))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("raise the alert in Alertmanager: %v %v", err, resp)
	}
	resp.Body.Close()

	var value, ts string
	if !eventually(t, stepTimeout, "the alert's Slack message with a Silence button", func() bool {
		posts, _ := api.snapshot()
		for i, p := range posts {
			if v := buttonValue(p, "silence"); v != "" && p.Get("channel") == "#oncall" {
				value, ts = v, fmt.Sprintf("1700000000.%06d", i+1)
				return true
			}
		}
		return false
	}) {
		t.FailNow()
	}
	for _, lv := range labels {
		if strings.Contains(value, lv) {
			t.Errorf("the button's value %q carries the label value %q", value, lv)
		}
	}
	// Alertmanager keeps sending while the alert is not silenced.
	if !eventually(t, stepTimeout, "Alertmanager resending the group", func() bool {
		return metric(t, amURL, "alertmanager_notifications_total") >= 2
	}) {
		t.FailNow()
	}

	// The click, then the same click again, as Slack retries it.
	for i := 0; i < 2; i++ {
		req := signedClick(t, amdURL+"/api/v1/slack/interactions", "silence", value, ts)
		if i == 1 {
			req.Header.Set("X-Slack-Retry-Num", "1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("click %d: status %d, want 200", i+1, resp.StatusCode)
		}
	}
	// A click signed with another secret does nothing.
	forged := signedClick(t, amdURL+"/api/v1/slack/interactions", "silence", value, ts)
	forged.Header.Set("X-Slack-Signature", "v0="+strings.Repeat("0", 64))
	if resp, err := http.DefaultClient.Do(forged); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged click: %v %v, want 401", err, resp)
	} else {
		resp.Body.Close()
	}

	var silences []amSilence
	if !eventually(t, stepTimeout, "the silence in Alertmanager", func() bool {
		silences = nil
		return getJSON(amURL+"/api/v2/silences", &silences) == nil && len(silences) > 0
	}) {
		t.FailNow()
	}
	time.Sleep(2 * time.Second) // a second silence, were there one, has time to show
	silences = nil
	if err := getJSON(amURL+"/api/v2/silences", &silences); err != nil || len(silences) != 1 {
		t.Fatalf("silences: %v %+v, want exactly one", err, silences)
	}
	s := silences[0]
	got := map[string]string{}
	for _, m := range s.Matchers {
		if m.IsRegex || (m.IsEqual != nil && !*m.IsEqual) {
			t.Errorf("matcher %+v is not an equality", m)
		}
		got[m.Name] = m.Value
	}
	if fmt.Sprint(got) != fmt.Sprint(labels) || s.Status.State != "active" || s.CreatedBy != "slack:alice" || !strings.Contains(s.Comment, "C0E2E") {
		t.Errorf("silence: %+v, want matchers %v, active, by slack:alice, linking the message", s, labels)
	}

	// The message says so.
	if !eventually(t, stepTimeout, "the message updated with the silence", func() bool {
		_, updates := api.snapshot()
		for _, u := range updates {
			if u.Get("ts") == ts && strings.Contains(u.Encode(), url.QueryEscape(s.ID)) {
				return true
			}
		}
		return false
	}) {
		_, updates := api.snapshot()
		t.Logf("updates: %v", updates)
	}

	// Alertmanager stops sending the alert: its notifications stop growing
	// over three repeat intervals.
	var before float64
	if !eventually(t, stepTimeout, "the alert suppressed in Alertmanager", func() bool {
		var as []struct {
			Status struct {
				State      string   `json:"state"`
				SilencedBy []string `json:"silencedBy"`
			} `json:"status"`
		}
		if getJSON(amURL+"/api/v2/alerts?filter=alertname%3D%22E2ESilenceMe%22", &as) != nil || len(as) != 1 {
			return false
		}
		return as[0].Status.State == "suppressed" && len(as[0].Status.SilencedBy) == 1 && as[0].Status.SilencedBy[0] == s.ID
	}) {
		t.FailNow()
	}
	time.Sleep(3 * time.Second) // a notification already in flight lands
	before = metric(t, amURL, "alertmanager_notifications_total")
	time.Sleep(6 * time.Second)
	if after := metric(t, amURL, "alertmanager_notifications_total"); after != before {
		t.Errorf("Alertmanager kept sending after the silence: notifications %v -> %v", before, after)
	}
}
