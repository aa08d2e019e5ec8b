package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/notifiers"
	"github.com/alertmedic/alertmedic/outbound"
	"github.com/alertmedic/alertmedic/routing"
	"github.com/alertmedic/alertmedic/secret"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const (
	// The path carries a token, as many webhook URLs do.
	secretPath  = "/hooks/T0ken-in-the-path-9f8e7d6c5b4a"
	bearerToken = "bearer-S3cret-token-0a1b2c3d4e5f"
)

var t0 = time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)

func target() routing.Target {
	return routing.Target{Receiver: "automation", Integration: "webhook", Name: "webhook[0]"}
}

func alertsNotification() *notifiers.Notification {
	return &notifiers.Notification{
		Key:         "alerts:0f3c:automation/webhook[0]",
		Kind:        notifiers.KindAlerts,
		Target:      target(),
		GroupKey:    `{}/{severity="critical"}:{alertname="HighErrorRate"}`,
		ExternalURL: "http://alertmanager.company.com:9093",
		Alerts: template.Alerts{
			{
				Status: alert.StatusFiring,
				Labels: template.KV{"alertname": "HighErrorRate", "severity": "critical", "team": "platform", "instance": "api-1:8000"},
				Annotations: template.KV{
					"summary":     "High error rate detected",
					"description": "Error rate is 7.5% for the last 5 minutes",
					"runbook_url": "https://docs.company.com/runbooks/high-error-rate",
				},
				StartsAt:     t0,
				GeneratorURL: "http://prometheus.company.com:9090/graph?g0.expr=rate%28http_requests_total%5B5m%5D%29",
				Fingerprint:  "a1b2c3d4e5f60718",
			},
			{
				Status:      alert.StatusResolved,
				Labels:      template.KV{"alertname": "HighErrorRate", "severity": "critical", "team": "platform", "instance": "api-2:8000"},
				Annotations: template.KV{"summary": "High error rate detected"},
				StartsAt:    t0.Add(-10 * time.Minute),
				EndsAt:      t0,
				Fingerprint: "b1b2c3d4e5f60718",
			},
		},
	}
}

func flappingNotification() *notifiers.Notification {
	return &notifiers.Notification{
		Key:    "flap:9e1d:started:1705314600000000000:automation/webhook[0]",
		Kind:   notifiers.KindFlappingStarted,
		Target: target(),
		Text:   `alert ExternalAPIFailure {alertname="ExternalAPIFailure", api="bright_data"} is flapping: 6 changes in 10m0s.`,
		Facts:  map[string]string{"alertname": "ExternalAPIFailure", "changes": "6", "window": "10m0s", "percent": "60.0", "method": "changes"},
		Alerts: template.Alerts{{Status: alert.StatusFiring, Labels: template.KV{"alertname": "ExternalAPIFailure", "api": "bright_data"}}},
	}
}

func digestNotification() *notifiers.Notification {
	return &notifiers.Notification{
		Key:    "digest:automation/webhook[0]:1705381200000000000",
		Kind:   notifiers.KindDigest,
		Target: target(),
		Alerts: template.Alerts{{
			Status:      alert.StatusFiring,
			Labels:      template.KV{"alertname": "LowCacheHitRate", "severity": "warning"},
			Annotations: template.KV{"summary": "Cache hit rate is low"},
			StartsAt:    t0,
			Fingerprint: "d1b2c3d4e5f60718",
		}},
	}
}

// request is what the test endpoint received.
type request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// endpoint records requests and answers with reply.
type endpoint struct {
	mu    sync.Mutex
	reqs  []request
	reply func(w http.ResponseWriter, r *http.Request)
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	e.reqs = append(e.reqs, request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	e.mu.Unlock()
	if e.reply != nil {
		e.reply(w, r)
	}
}

func (e *endpoint) requests() []request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]request(nil), e.reqs...)
}

func serve(t *testing.T, e *endpoint) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func config(srv *httptest.Server) Config {
	return Config{URL: secret.Secret(srv.URL + secretPath), BearerToken: bearerToken}
}

func TestNotifyGolden(t *testing.T) {
	cases := []struct {
		name      string
		n         *notifiers.Notification
		maxAlerts int
	}{
		{"alerts", alertsNotification(), 0},
		{"alerts_truncated", alertsNotification(), 1},
		{"flapping_started", flappingNotification(), 0},
		{"digest", digestNotification(), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := &endpoint{}
			srv := serve(t, e)
			c := config(srv)
			c.MaxAlerts = tc.maxAlerts
			retry, err := New(c, nil).Notify(context.Background(), tc.n)
			if err != nil || retry {
				t.Fatalf("Notify = %v, %v; want delivered", retry, err)
			}
			reqs := e.requests()
			if len(reqs) != 1 {
				t.Fatalf("endpoint received %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.Path != secretPath {
				t.Errorf("request %s %s, want POST %s", r.Method, r.Path, secretPath)
			}
			for h, want := range map[string]string{
				"Authorization":   "Bearer " + bearerToken,
				"Content-Type":    "application/json",
				"User-Agent":      "alertmedic",
				"Idempotency-Key": tc.n.Key,
			} {
				if got := r.Header.Get(h); got != want {
					t.Errorf("header %s = %q, want %q", h, got, want)
				}
			}
			var indented bytes.Buffer
			if err := json.Indent(&indented, r.Body, "", "  "); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, r.Body)
			}
			indented.WriteByte('\n')
			golden(t, tc.name+".json.golden", indented.Bytes())

			// What an Alertmanager webhook receiver decodes.
			var m Message
			if err := json.Unmarshal(r.Body, &m); err != nil {
				t.Fatal(err)
			}
			if m.Version != "4" || m.GroupKey == "" || m.Receiver != "automation" {
				t.Errorf("version %q groupKey %q receiver %q", m.Version, m.GroupKey, m.Receiver)
			}
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// assertNoSecret is the secret-leak check every failure goes through.
func assertNoSecret(t *testing.T, err error, srvURL string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{srvURL + secretPath, secretPath, bearerToken, bearerToken[:12], secretPath[:12]} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error carries a secret (%q): %v", s, err)
		}
	}
}

func TestNotifyAnswers(t *testing.T) {
	status := func(code int, body string, header ...string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
		}
	}
	cases := []struct {
		name           string
		reply          func(http.ResponseWriter, *http.Request)
		timeout        time.Duration
		wantErr        string // exact; empty: delivered
		wantRetry      bool
		wantRetryAfter time.Duration
	}{
		{name: "200", reply: status(200, "ok")},
		{name: "204", reply: status(204, "")},
		{
			name:           "429 with Retry-After",
			reply:          status(429, "slow down", "Retry-After", "7"),
			wantErr:        "post to webhook: unexpected status code 429: slow down",
			wantRetry:      true,
			wantRetryAfter: 7 * time.Second,
		},
		{
			name:      "429 without Retry-After",
			reply:     status(429, ""),
			wantErr:   "post to webhook: unexpected status code 429",
			wantRetry: true,
		},
		{
			name:      "500",
			reply:     status(500, "database is down"),
			wantErr:   "post to webhook: unexpected status code 500: database is down",
			wantRetry: true,
		},
		{
			name:           "503 with Retry-After",
			reply:          status(503, "", "Retry-After", "30"),
			wantErr:        "post to webhook: unexpected status code 503",
			wantRetry:      true,
			wantRetryAfter: 30 * time.Second,
		},
		{
			name:    "400",
			reply:   status(400, `{"error":"bad payload"}`),
			wantErr: `post to webhook: unexpected status code 400: {"error":"bad payload"}`,
		},
		{
			name:    "401",
			reply:   status(401, "unauthorized"),
			wantErr: "post to webhook: unexpected status code 401: unauthorized",
		},
		{
			name:    "404",
			reply:   status(404, ""),
			wantErr: "post to webhook: unexpected status code 404",
		},
		{
			// A careless endpoint quotes the request back.
			name: "400 echoing the URL and the token",
			reply: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(400)
				fmt.Fprintf(w, "bad request to %s with %s", r.URL.Path, r.Header.Get("Authorization"))
			},
			wantErr: "post to webhook: unexpected status code 400: bad request to <secret> with Bearer <secret>",
		},
		{
			// ... and cut short at 256 bytes in the middle of the token.
			name: "500 echoing the token at the end of a long body",
			reply: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(500)
				_, _ = io.WriteString(w, strings.Repeat("x", 256-len("Bearer ")-10)+r.Header.Get("Authorization"))
			},
			wantErr:   "post to webhook: unexpected status code 500: " + strings.Repeat("x", 256-len("Bearer ")-10) + "Bearer <secret>",
			wantRetry: true,
		},
		{
			name: "timeout",
			reply: func(_ http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			},
			timeout:   100 * time.Millisecond,
			wantErr:   `post to webhook: Post "<redacted>": webhook timeout (100ms) reached`,
			wantRetry: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, &endpoint{reply: tc.reply})
			c := config(srv)
			c.Timeout = model.Duration(tc.timeout)
			retry, err := New(c, nil).Notify(context.Background(), alertsNotification())
			assertNoSecret(t, err, srv.URL)
			if tc.wantErr == "" {
				if err != nil || retry {
					t.Fatalf("Notify = %v, %v; want delivered", retry, err)
				}
				return
			}
			if err == nil {
				t.Fatal("Notify succeeded, want an error")
			}
			if err.Error() != tc.wantErr {
				t.Errorf("error:\n%s\nwant:\n%s", err, tc.wantErr)
			}
			if retry != tc.wantRetry {
				t.Errorf("retry = %v, want %v", retry, tc.wantRetry)
			}
			var ra *outbound.RetryAfterError
			if got := errors.As(err, &ra); got != (tc.wantRetryAfter > 0) || (got && ra.After != tc.wantRetryAfter) {
				t.Errorf("RetryAfterError = %v (%+v), want after %v", got, ra, tc.wantRetryAfter)
			}
		})
	}
}

func TestNotifyNetworkErrors(t *testing.T) {
	// A server that is gone: its URL refuses connections.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	cases := []struct {
		name    string
		config  Config
		ctx     func() context.Context
		wantErr string // a part of the error
	}{
		{
			name:    "connection refused",
			config:  Config{URL: secret.Secret(gone.URL + secretPath), BearerToken: bearerToken},
			wantErr: "connection refused",
		},
		{
			name:   "canceled",
			config: Config{URL: secret.Secret(gone.URL + secretPath), BearerToken: bearerToken},
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			wantErr: `post to webhook: Post "<redacted>": context canceled`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx()
			}
			retry, err := New(tc.config, nil).Notify(ctx, alertsNotification())
			if err == nil {
				t.Fatal("Notify succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
			if !retry {
				t.Error("retry = false, want true: the network may work next time")
			}
			assertNoSecret(t, err, gone.URL)
		})
	}
}

func TestNotifyNotConfigured(t *testing.T) {
	retry, err := New(Config{BearerToken: bearerToken}, nil).Notify(context.Background(), alertsNotification())
	if err == nil || err.Error() != "webhook is not configured: set url in integrations.webhook" || retry {
		t.Errorf("Notify = %v, %v", retry, err)
	}
}

// TestPrintsNoSecret: a Config or Notifier reaching a log line shows
// <secret>, not the URL or the token.
func TestPrintsNoSecret(t *testing.T) {
	c := Config{URL: "https://hooks.example.com" + secretPath, BearerToken: bearerToken}
	n := New(c, nil)
	for _, s := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%+v", n), fmt.Sprintf("%#v", n), fmt.Sprintf("%v", *n)} {
		if strings.Contains(s, secretPath) || strings.Contains(s, bearerToken) {
			t.Errorf("printed %q carries a secret", s)
		}
	}
}
