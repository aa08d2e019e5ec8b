package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/outbound"
	"github.com/alertmedic/alertmedic/routing"
	"github.com/alertmedic/alertmedic/secret"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the requests sent")

const (
	webhookPath = "/services/T000/B000/XXXX"
	testToken   = "xoxb-test-token"
)

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func mkAlert(status, name, severity string, ann map[string]string, startsAt time.Time) template.Alert {
	labels := template.KV{"alertname": name}
	if severity != "" {
		labels["severity"] = severity
	}
	a := template.Alert{Status: status, Labels: labels, Annotations: template.KV{}, StartsAt: startsAt}
	for k, v := range ann {
		a.Annotations[k] = v
	}
	if status == alert.StatusResolved {
		a.EndsAt = startsAt.Add(15 * time.Minute)
	}
	a.Fingerprint = alert.Fingerprint(a.Labels)
	return a
}

func target(channel string) routing.Target {
	t := routing.Target{Receiver: "critical-alerts", Integration: "slack", Name: "slack[0]"}
	if channel != "" {
		t.Settings = map[string]string{"channel": channel}
	}
	return t
}

// slackServer stands in for Slack: it keeps the requests it got and answers
// with its handler, or as Slack does when the handler is nil.
type slackServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

type request struct {
	method, path, contentType string
	body                      []byte
}

func newSlackServer(t *testing.T, h http.HandlerFunc) *slackServer {
	t.Helper()
	s := &slackServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, request{r.Method, r.URL.Path, r.Header.Get("Content-Type"), b})
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		switch {
		case h != nil:
			h(w, r)
		case strings.HasSuffix(r.URL.Path, "/chat.postMessage"):
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true,"channel":"C0123","ts":"1714557600.000100"}`)
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *slackServer) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

func webhookConfig(base string) Config {
	return Config{APIURL: secret.Secret(base + webhookPath)}
}

func tokenConfig(base string) Config {
	return Config{Token: testToken, APIBaseURL: base + "/api/"}
}

// closedAddr is a 127.0.0.1 port that nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func loaded(t *testing.T, c Config) Config {
	t.Helper()
	if errs := c.Load(""); len(errs) > 0 {
		t.Fatalf("Load: %v", errs)
	}
	return c
}

func TestMessages(t *testing.T) {
	runbook := map[string]string{
		"summary":     "Error rate above 5% on company-extraction-api",
		"description": "5xx responses are 7.2% of requests over the last 5 minutes.",
		"runbook_url": "https://runbooks.example.com/high-error-rate",
	}
	var storm template.Alerts
	for i := range 25 {
		storm = append(storm, mkAlert(alert.StatusFiring, fmt.Sprintf("Storm%02d", i), "warning",
			map[string]string{"summary": fmt.Sprintf("instance %d down", i)}, t0.Add(time.Duration(i)*time.Second)))
	}
	flapFacts := map[string]string{
		"flap_key": "a1b2c3d4", "alertname": "HighErrorRate", "changes": "7",
		"window": "10m0s", "percent": "58.3", "method": "transitions",
	}
	cases := []struct {
		name   string
		golden string
		n      notifiers.Notification
	}{
		{"firing critical alert with runbook", "firing_critical_runbook", notifiers.Notification{
			Kind: notifiers.KindAlerts, Target: target("#alerts-critical"),
			Alerts: template.Alerts{mkAlert(alert.StatusFiring, "HighErrorRate", "critical", runbook, t0)},
		}},
		{"resolved alert", "resolved", notifiers.Notification{
			Kind: notifiers.KindAlerts, Target: target("#alerts-critical"),
			Alerts: template.Alerts{mkAlert(alert.StatusResolved, "HighErrorRate", "critical", runbook, t0)},
		}},
		{"group of three", "group_of_3", notifiers.Notification{
			Kind: notifiers.KindAlerts, Target: target("#alerts-general"),
			Alerts: template.Alerts{
				mkAlert(alert.StatusFiring, "HighErrorRate", "critical", runbook, t0),
				mkAlert(alert.StatusFiring, "HighLatency", "warning", map[string]string{"summary": "p99 above 2s"}, t0.Add(time.Minute)),
				// No severity, no annotations: the fallbacks.
				mkAlert(alert.StatusFiring, "LowCacheHitRate", "", nil, t0.Add(2*time.Minute)),
			},
		}},
		{"25 alerts show 20 and a count", "storm_25", notifiers.Notification{
			Kind: notifiers.KindAlerts, Target: target("#alerts-warning"), Alerts: storm,
		}},
		{"flapping started", "flapping_started", notifiers.Notification{
			Kind: notifiers.KindFlappingStarted, Target: target("#ops-alerts"),
			Text:   "HighErrorRate is flapping: 7 changes in 10m0s. Its notifications are held back until it is stable for 15m0s.",
			Facts:  flapFacts,
			Alerts: template.Alerts{mkAlert(alert.StatusFiring, "HighErrorRate", "critical", nil, time.Time{})},
		}},
		{"flapping stopped", "flapping_stopped", notifiers.Notification{
			Kind: notifiers.KindFlappingStopped, Target: target("#ops-alerts"),
			Text:  "HighErrorRate stopped flapping: stable for 15m0s. Its current state follows.",
			Facts: flapFacts,
		}},
		{"digest", "digest", notifiers.Notification{
			Kind: notifiers.KindDigest, Target: target("#business-metrics"),
			Alerts: template.Alerts{
				mkAlert(alert.StatusFiring, "LowConversionRate", "warning", map[string]string{"summary": "Conversion below 2%"}, t0),
				mkAlert(alert.StatusResolved, "SlowSignups", "info", map[string]string{"summary": "Signups slow"}, t0.Add(time.Hour)),
			},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSlackServer(t, nil)
			golden := filepath.Join("testdata", tc.golden+".golden")

			// The webhook's JSON body is the golden file, indented for review.
			c := webhookConfig(srv.URL)
			c.Username, c.IconEmoji = "alertmedic", ":rotating_light:"
			if retry, err := New(loaded(t, c), srv.Client(), nil).Notify(context.Background(), &tc.n); err != nil || retry {
				t.Fatalf("webhook: Notify = %v, %v; want false, nil", retry, err)
			}
			reqs := srv.requests()
			if len(reqs) != 1 {
				t.Fatalf("webhook: got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != http.MethodPost || r.path != webhookPath || r.contentType != "application/json" {
				t.Errorf("webhook: got %s %s (%s), want POST %s (application/json)", r.method, r.path, r.contentType, webhookPath)
			}
			var got bytes.Buffer
			if err := json.Indent(&got, r.body, "", "  "); err != nil {
				t.Fatalf("webhook body is not JSON: %v\n%s", err, r.body)
			}
			got.WriteByte('\n')
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./notifiers/slack -update)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("webhook body differs from %s:\n%s", golden, got.Bytes())
			}

			// The Web API gets the same message as form values.
			c = tokenConfig(srv.URL)
			c.Username, c.IconEmoji = "alertmedic", ":rotating_light:"
			if retry, err := New(loaded(t, c), srv.Client(), nil).Notify(context.Background(), &tc.n); err != nil || retry {
				t.Fatalf("token: Notify = %v, %v; want false, nil", retry, err)
			}
			reqs = srv.requests()
			if len(reqs) != 2 {
				t.Fatalf("token: got %d requests in all, want 2", len(reqs))
			}
			r = reqs[1]
			if r.method != http.MethodPost || r.path != "/api/chat.postMessage" || r.contentType != "application/x-www-form-urlencoded" {
				t.Errorf("token: got %s %s (%s), want POST /api/chat.postMessage (form)", r.method, r.path, r.contentType)
			}
			form, err := url.ParseQuery(string(r.body))
			if err != nil {
				t.Fatal(err)
			}
			var wantMsg struct {
				Channel     string          `json:"channel"`
				Text        string          `json:"text"`
				Username    string          `json:"username"`
				IconEmoji   string          `json:"icon_emoji"`
				Attachments json.RawMessage `json:"attachments"`
			}
			if err := json.Unmarshal(want, &wantMsg); err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct{ key, want string }{
				{"token", testToken},
				{"channel", wantMsg.Channel},
				{"text", wantMsg.Text},
				{"username", wantMsg.Username},
				{"icon_emoji", wantMsg.IconEmoji},
			} {
				if got := form.Get(f.key); got != f.want {
					t.Errorf("token: form %s = %q, want %q", f.key, got, f.want)
				}
			}
			var gotAtt, wantAtt bytes.Buffer
			if err := json.Compact(&gotAtt, []byte(form.Get("attachments"))); err != nil {
				t.Fatalf("token: attachments are not JSON: %v", err)
			}
			if err := json.Compact(&wantAtt, wantMsg.Attachments); err != nil {
				t.Fatal(err)
			}
			if gotAtt.String() != wantAtt.String() {
				t.Errorf("token: attachments differ from %s:\n got %s\nwant %s", golden, gotAtt.String(), wantAtt.String())
			}
		})
	}
}

// TestNotifyOutcomes maps each of Slack's answers to retry or not.
func TestNotifyOutcomes(t *testing.T) {
	status := func(code int, body string, header ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
		}
	}
	apiAnswer := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body)
		}
	}
	hang := func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	firing := notifiers.Notification{Kind: notifiers.KindAlerts, Target: target("#alerts"),
		Alerts: template.Alerts{mkAlert(alert.StatusFiring, "HighErrorRate", "critical", nil, t0)}}
	resolved := firing
	resolved.Alerts = template.Alerts{mkAlert(alert.StatusResolved, "HighErrorRate", "critical", nil, t0)}
	noChannel := firing
	noChannel.Target = target("")

	cases := []struct {
		name      string
		token     bool
		handler   http.HandlerFunc
		closed    bool // point at a closed port instead of the server
		redirect  bool // the server redirects to a closed port
		config    func(*Config)
		n         *notifiers.Notification
		wantRetry bool
		wantErr   string // "" for success; {addr} is the closed port
		wantAfter time.Duration
		wantCalls int
	}{
		{name: "webhook 200", wantCalls: 1},
		{name: "webhook 204 is delivered too", handler: status(204, ""), wantCalls: 1},
		{name: "webhook 429 with Retry-After", handler: status(429, "rate_limited", "Retry-After", "2"),
			wantRetry: true, wantErr: "post webhook: unexpected status code 429: rate_limited", wantAfter: 2 * time.Second, wantCalls: 1},
		{name: "webhook 429 without Retry-After", handler: status(429, "rate_limited"),
			wantRetry: true, wantErr: "post webhook: unexpected status code 429: rate_limited", wantCalls: 1},
		{name: "webhook 500", handler: status(500, "internal error"),
			wantRetry: true, wantErr: "post webhook: unexpected status code 500: internal error", wantCalls: 1},
		{name: "webhook 503 with Retry-After", handler: status(503, "", "Retry-After", "7"),
			wantRetry: true, wantErr: "post webhook: unexpected status code 503", wantAfter: 7 * time.Second, wantCalls: 1},
		{name: "webhook 400", handler: status(400, "invalid_payload"),
			wantErr: "post webhook: unexpected status code 400: invalid_payload", wantCalls: 1},
		{name: "webhook 404", handler: status(404, "channel_not_found"),
			wantErr: "post webhook: unexpected status code 404: channel_not_found", wantCalls: 1},
		{name: "webhook 410", handler: status(410, "channel_is_archived"),
			wantErr: "post webhook: unexpected status code 410: channel_is_archived", wantCalls: 1},
		{name: "webhook timeout", handler: hang, config: func(c *Config) { c.Timeout = model.Duration(50 * time.Millisecond) },
			wantRetry: true, wantErr: `post webhook: Post "<redacted>": context deadline exceeded`, wantCalls: 1},
		{name: "webhook redirected to a closed port", redirect: true,
			wantRetry: true, wantErr: `post webhook: Post "<redacted>": dial tcp {addr}: connect: connection refused`, wantCalls: 1},
		{name: "webhook connection refused", closed: true,
			wantRetry: true, wantErr: `post webhook: Post "<redacted>": dial tcp {addr}: connect: connection refused`},
		{name: "template fails on this alert", n: &resolved,
			config:  func(c *Config) { c.Title = `{{ (index .Alerts.Firing 0).Labels.alertname }}` },
			wantErr: "build message: title: render template: template: :1:4: executing \"\" at <index .Alerts.Firing 0>: error calling index: reflect: slice index out of range"},
		{name: "no alerts", n: &notifiers.Notification{Kind: notifiers.KindAlerts, Target: target("#alerts")},
			wantErr: "build message: notification has no alerts"},

		{name: "token ok", token: true, wantCalls: 1},
		{name: "token ok false", token: true, handler: apiAnswer(`{"ok":false,"error":"channel_not_found"}`),
			wantErr: "post message: channel_not_found", wantCalls: 1},
		{name: "token ok false, transient", token: true, handler: apiAnswer(`{"ok":false,"error":"internal_error"}`),
			wantRetry: true, wantErr: "post message: internal_error", wantCalls: 1},
		{name: "token answer not JSON", token: true, handler: status(200, "<html>captive portal</html>"),
			wantErr: "post message: invalid character '<' looking for beginning of value", wantCalls: 1},
		{name: "token 429 with Retry-After", token: true, handler: status(429, "", "Retry-After", "2"),
			wantRetry: true, wantErr: "post message: unexpected status code 429", wantAfter: 2 * time.Second, wantCalls: 1},
		{name: "token 500", token: true, handler: status(500, "<html>oops</html>"),
			wantRetry: true, wantErr: "post message: unexpected status code 500: <html>oops</html>", wantCalls: 1},
		{name: "token 400", token: true, handler: status(400, "bad request"),
			wantErr: "post message: unexpected status code 400: bad request", wantCalls: 1},
		{name: "token without a channel", token: true, n: &noChannel,
			wantErr: "post message: no channel: set settings.channel on the target (the Web API has no default)"},
		{name: "token connection refused", token: true, closed: true,
			wantRetry: true, wantErr: `post message: Post "<redacted>": dial tcp {addr}: connect: connection refused`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := closedAddr(t)
			h := tc.handler
			if tc.redirect {
				h = func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, "http://"+addr+r.URL.Path, http.StatusTemporaryRedirect)
				}
			}
			srv := newSlackServer(t, h)
			base := srv.URL
			if tc.closed {
				base = "http://" + addr
			}
			c := webhookConfig(base)
			if tc.token {
				c = tokenConfig(base)
			}
			if tc.config != nil {
				tc.config(&c)
			}
			n := tc.n
			if n == nil {
				n = &firing
			}
			retry, err := New(loaded(t, c), srv.Client(), nil).Notify(context.Background(), n)
			if retry != tc.wantRetry {
				t.Errorf("retry = %v, want %v", retry, tc.wantRetry)
			}
			wantErr := strings.ReplaceAll(tc.wantErr, "{addr}", addr)
			if gotErr := fmt.Sprint(err); (err == nil) != (wantErr == "") || (err != nil && gotErr != wantErr) {
				t.Errorf("err = %v\nwant %q", err, wantErr)
			}
			var ra *outbound.RetryAfterError
			if errors.As(err, &ra) != (tc.wantAfter != 0) || (ra != nil && ra.After != tc.wantAfter) {
				t.Errorf("RetryAfterError = %+v, want After %s", ra, tc.wantAfter)
			}
			if got := len(srv.requests()); got != tc.wantCalls {
				t.Errorf("server got %d requests, want %d", got, tc.wantCalls)
			}
		})
	}
}

// TestNoSecretLeaks drives every outcome with a secret webhook URL and
// token and looks for them in everything Notify and New hand back.
func TestNoSecretLeaks(t *testing.T) {
	const (
		secretPath  = "/services/T0SECRET/B0SECRET/wh-SECRET-c0ffee"
		secretToken = "xoxb-1-SECRET-deadbeef"
	)
	// echoCut quotes the request so that the secret straddles the 256
	// bytes CheckResponse quotes.
	echoCut := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			s := r.URL.Path
			if i := bytes.Index(b, []byte(secretToken)); i >= 0 {
				s = string(b[i:])
			}
			w.WriteHeader(code)
			_, _ = io.WriteString(w, strings.Repeat("x", 256-20)+s)
		}
	}
	handlers := map[string]http.HandlerFunc{
		"success": nil,
		"429": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
		},
		"500": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) },
		"400 echoing the request": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.WriteHeader(400)
			_, _ = fmt.Fprintf(w, "no such hook %s; token %s", r.URL, b)
		},
		"404 echoing the request, cut": echoCut(404),
		"503 echoing the request, cut": echoCut(503),
		"redirect to a closed port":    nil, // set below
		"ok false": func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, `{"ok":false,"error":"invalid_auth"}`)
		},
		"timeout":                        func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
		"connection refused":             nil, // no server
		"invalid JSON answer with token": func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, secretToken) },
	}
	addr := closedAddr(t)
	handlers["redirect to a closed port"] = func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+addr+r.URL.Path+"?token="+secretToken, http.StatusTemporaryRedirect)
	}
	for name, h := range handlers {
		for _, token := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/token=%v", name, token), func(t *testing.T) {
				srv := newSlackServer(t, h)
				base := srv.URL
				if name == "connection refused" {
					base = "http://" + addr
				}
				c := Config{APIURL: secret.Secret(base + secretPath)}
				secrets := []string{string(c.APIURL), secretPath, "SECRET"}
				if token {
					c = Config{Token: secretToken, APIBaseURL: base + "/api/"}
					secrets = []string{secretToken, "SECRET"}
				}
				c.Timeout = model.Duration(50 * time.Millisecond)
				c = loaded(t, c)
				n := New(c, srv.Client(), nil)
				nt := &notifiers.Notification{Kind: notifiers.KindAlerts, Target: target("#alerts"),
					Alerts: template.Alerts{mkAlert(alert.StatusFiring, "HighErrorRate", "critical", nil, t0)}}
				retry, err := n.Notify(context.Background(), nt)

				// A webhook takes any 200 as delivered.
				succeeds := name == "success" || !token && (name == "ok false" || name == "invalid JSON answer with token")
				if succeeds && err != nil {
					t.Fatalf("Notify: %v", err)
				}
				if !succeeds && err == nil {
					t.Fatalf("Notify succeeded; the case must fail to test its error")
				}
				// Everything handed back, and each error in the chain.
				shown := []string{fmt.Sprint(retry), fmt.Sprintf("%v %+v %#v %s", n, n, n, n)}
				for e := err; e != nil; e = errors.Unwrap(e) {
					shown = append(shown, e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e))
				}
				cfgJSON, _ := json.Marshal(c)
				cfgYAML, _ := yaml.Marshal(c)
				shown = append(shown, fmt.Sprintf("%v %+v", c, c), string(cfgJSON), string(cfgYAML))
				for _, s := range shown {
					for _, secret := range secrets {
						if strings.Contains(s, secret) {
							t.Errorf("%q leaks %q", s, secret)
						}
					}
				}
				if got := len(srv.requests()); name != "connection refused" && got != 1 {
					t.Errorf("server got %d requests, want 1", got)
				}
			})
		}
	}
}

func TestNotifyConcurrent(t *testing.T) {
	// Each call records its own answer: one caller's 500 must not be read
	// as another's outcome.
	srv := newSlackServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if bytes.Contains(b, []byte("Fail")) {
			w.WriteHeader(500)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	n := New(loaded(t, webhookConfig(srv.URL)), srv.Client(), nil)
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Go(func() {
			name := "Pass" + strconv.Itoa(i)
			if i%2 == 1 {
				name = "Fail" + strconv.Itoa(i)
			}
			_, errs[i] = n.Notify(context.Background(), &notifiers.Notification{Kind: notifiers.KindAlerts,
				Alerts: template.Alerts{mkAlert(alert.StatusFiring, name, "warning", nil, t0)}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (i%2 == 1) != (err != nil) {
			t.Errorf("call %d: err = %v", i, err)
		}
	}
}
