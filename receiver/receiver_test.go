package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/store/memory"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "alertmanager", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type harness struct {
	srv   *httptest.Server
	store *memory.Store
	reg   *prometheus.Registry
	rcv   *Receiver
	logs  *lockedBuffer
}

// lockedBuffer collects the log: the server's goroutines write the access
// log after the answer has gone out, so writes overlap the next request's
// and the test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newHarness(t *testing.T, st Store, s Settings) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry(), logs: &lockedBuffer{}}
	if st == nil {
		h.store = memory.New(memory.Options{Capacity: 100})
		st = h.store
	}
	if s.MaxRequestBytes == 0 {
		s.MaxRequestBytes = 4 << 20
	}
	if s.MaxAlerts == 0 {
		s.MaxAlerts = 1000
	}
	if s.RequestTimeout == 0 {
		s.RequestTimeout = time.Second
	}
	if s.DedupWindow == 0 {
		s.DedupWindow = time.Minute
	}
	h.rcv = New(Options{
		Logger: zerolog.New(h.logs), Registerer: h.reg, Gatherer: h.reg,
		Store: st, StoreType: "memory", Capacity: 100, Version: "test", Settings: s,
		Reload: func(context.Context) error { return errors.New("bad file") },
	})
	h.srv = httptest.NewServer(h.rcv.Handler())
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) post(t *testing.T, path, ctype string, body []byte, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func errorOf(t *testing.T, body string) string {
	t.Helper()
	var e errBody
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("error body %q is not {\"error\": ...}", body)
	}
	return e.Error
}

func TestWebhookAcceptsRealPayloads(t *testing.T) {
	h := newHarness(t, nil, Settings{})
	total := 0
	for _, f := range []string{"firing.json", "resolved.json", "partial_resolved.json", "group_50.json", "unicode_multiline.json", "v035_firing.json", "business_warning_basic_auth.json"} {
		code, body := h.post(t, "/webhook", "application/json", fixture(t, f))
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", f, code, body)
		}
		var a webhookAnswer
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatal(err)
		}
		total += a.Accepted
	}
	depth, _ := h.store.Depth(context.Background())
	// firing.json and v035_firing.json are the same observation: deduplicated.
	if depth != 6 || total != 1+1+3+50+1+0+1 {
		t.Errorf("depth %d accepted %d", depth, total)
	}
	if got := testutil.ToFloat64(h.rcv.m.duplicates); got != 1 {
		t.Errorf("duplicates metric = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.rcv.m.requests.WithLabelValues("200")); got != 7 {
		t.Errorf("200s counted %v", got)
	}
	// The unicode text survives the queue unchanged.
	es, _ := h.store.Dequeue(context.Background(), 0, "t", 10, 0)
	var found bool
	for _, e := range es {
		for _, a := range e.Message.Alerts {
			if strings.Contains(a.Annotations["summary"], "負荷") {
				found = true
			}
		}
	}
	if !found {
		t.Error("unicode summary lost on the way to the queue")
	}
}

func TestWebhookRejects(t *testing.T) {
	firing := fixture(t, "firing.json")
	big := append([]byte(`{"version":"4","pad":"`), bytes.Repeat([]byte("x"), 9000)...)
	big = append(big, `"}`...)
	cases := []struct {
		name, ctype string
		body        []byte
		code        int
		want        string
	}{
		{"no content type", "", firing, 415, "content type must be application/json, got none"},
		{"wrong content type", "text/plain", firing, 415, "content type must be application/json, got text/plain"},
		{"not JSON", "application/json", []byte("<xml/>"), 400, "body is not a valid JSON webhook message: invalid character '<' looking for beginning of value at byte 1"},
		{"version 3", "application/json", bytes.Replace(firing, []byte(`"version":"4"`), []byte(`"version":"3"`), 1), 400, `version "3" is not supported; alertmedic accepts Alertmanager's webhook version "4"`},
		{"no alerts", "application/json", []byte(`{"version":"4","alerts":[]}`), 400, "alerts is empty; a webhook message must carry at least one alert"},
		{"bad timestamp", "application/json", bytes.Replace(firing, []byte(`"startsAt":"2026`), []byte(`"startsAt":"x2026`), 1), 400, `is not an RFC 3339 timestamp`},
		{"over the byte limit", "application/json", big, 413, "body is larger than the limit of 8 KiB (web.max_request_bytes)"},
		{"over the alert limit", "application/json", fixture(t, "partial_resolved.json"), 413, "message carries 3 alerts, more than the limit of 2"},
	}
	h := newHarness(t, nil, Settings{MaxRequestBytes: 8 << 10, MaxAlerts: 2})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := h.post(t, "/webhook", tc.ctype, tc.body)
			if code != tc.code {
				t.Errorf("status %d, want %d (%s)", code, tc.code, body)
			}
			if msg := errorOf(t, body); !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
		})
	}
	// Still serving, and nothing was queued.
	if code, _ := h.post(t, "/webhook", "application/json", firing); code != 200 {
		t.Errorf("server stopped serving after bad input: %d", code)
	}
	if d, _ := h.store.Depth(context.Background()); d != 1 {
		t.Errorf("depth %d, want 1", d)
	}
}

func TestWebhookAuth(t *testing.T) {
	firing := fixture(t, "firing.json")
	t.Run("bearer", func(t *testing.T) {
		h := newHarness(t, nil, Settings{Auth: Credentials{BearerToken: "s3cret-token"}})
		for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "Basic czNjcmV0LXRva2Vu"}, {"Authorization", "Bearer s3cret-token2"}} {
			code, body := h.post(t, "/webhook", "application/json", firing, hdr...)
			if code != 401 || errorOf(t, body) != "missing or wrong credentials" {
				t.Errorf("%v: %d %s", hdr, code, body)
			}
		}
		if code, body := h.post(t, "/webhook", "application/json", firing, "Authorization", "Bearer s3cret-token"); code != 200 {
			t.Errorf("right token refused: %d %s", code, body)
		}
		if strings.Contains(h.logs.String(), "s3cret-token") {
			t.Error("token in the log")
		}
	})
	t.Run("basic", func(t *testing.T) {
		h := newHarness(t, nil, Settings{Auth: Credentials{Username: "am", Password: "pw"}})
		req := func(u, p string) int {
			r, _ := http.NewRequest("POST", h.srv.URL+"/webhook", bytes.NewReader(firing))
			r.Header.Set("Content-Type", "application/json")
			r.SetBasicAuth(u, p)
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if c := req("am", "wrong"); c != 401 {
			t.Errorf("wrong password: %d", c)
		}
		if c := req("other", "pw"); c != 401 {
			t.Errorf("wrong user: %d", c)
		}
		if c := req("am", "pw"); c != 200 {
			t.Errorf("right credentials: %d", c)
		}
	})
	t.Run("reload needs admin credentials", func(t *testing.T) {
		h := newHarness(t, nil, Settings{Auth: Credentials{BearerToken: "hook"}, AdminAuth: Credentials{BearerToken: "admin"}})
		if code, _ := h.post(t, "/-/reload", "", nil, "Authorization", "Bearer hook"); code != 401 {
			t.Errorf("webhook token opened reload: %d", code)
		}
		code, body := h.post(t, "/-/reload", "", nil, "Authorization", "Bearer admin")
		if code != 500 || errorOf(t, body) != "reload failed, the previous configuration stays in force: bad file" {
			t.Errorf("reload: %d %s", code, body)
		}
	})
}

func TestWebhookDeduplicates(t *testing.T) {
	h := newHarness(t, nil, Settings{})
	firing := fixture(t, "firing.json")
	for i := 0; i < 3; i++ {
		if code, body := h.post(t, "/webhook", "application/json", firing); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
	}
	code, body := h.post(t, "/webhook", "application/json", fixture(t, "resolved.json"))
	if code != 200 || !strings.Contains(body, `"accepted":1`) {
		t.Errorf("resolve of a seen alert: %d %s", code, body)
	}
	if d, _ := h.store.Depth(context.Background()); d != 2 {
		t.Errorf("depth %d, want 2 (one firing, one resolved)", d)
	}
	if got := testutil.ToFloat64(h.rcv.m.duplicates); got != 2 {
		t.Errorf("duplicates = %v, want 2", got)
	}
}

// brokenStore fails like an unreachable Redis does.
type brokenStore struct{ err error }

func (b brokenStore) Enqueue(context.Context, *alert.Entry, time.Duration) (alert.EnqueueResult, error) {
	return alert.EnqueueResult{}, b.err
}
func (b brokenStore) Depth(context.Context) (int64, error) { return 0, b.err }
func (b brokenStore) Ping(context.Context) error           { return b.err }

func TestWebhookTemporaryFaults(t *testing.T) {
	firing := fixture(t, "firing.json")
	t.Run("store down", func(t *testing.T) {
		h := newHarness(t, brokenStore{alert.Unavailable("enqueue", errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"))}, Settings{})
		code, body := h.post(t, "/webhook", "application/json", firing)
		if code != 503 || errorOf(t, body) != "store unavailable; retry later" {
			t.Errorf("%d %s", code, body)
		}
		for _, p := range []string{"/-/ready", "/api/v1/health", "/api/v1/health/detailed"} {
			resp, err := http.Get(h.srv.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 503 {
				t.Errorf("%s = %d while the store is down, want 503", p, resp.StatusCode)
			}
		}
		resp, _ := http.Get(h.srv.URL + "/-/healthy")
		if resp.StatusCode != 200 {
			t.Errorf("/-/healthy = %d: the process is alive", resp.StatusCode)
		}
	})
	t.Run("queue full", func(t *testing.T) {
		st := memory.New(memory.Options{Capacity: 1})
		h := newHarness(t, st, Settings{})
		if code, _ := h.post(t, "/webhook", "application/json", firing); code != 200 {
			t.Fatal(code)
		}
		code, body := h.post(t, "/webhook", "application/json", fixture(t, "group_50.json"))
		if code != 503 || errorOf(t, body) != "queue is full; retry later" {
			t.Errorf("%d %s", code, body)
		}
		// Nothing of the refused message was remembered: once there is room
		// the retry is accepted whole.
		es, _ := st.Dequeue(context.Background(), 0, "c", 1, 0)
		_ = st.Ack(context.Background(), 0, es[0].Receipt)
		code, body = h.post(t, "/webhook", "application/json", fixture(t, "group_50.json"))
		if code != 200 || !strings.Contains(body, `"accepted":50`) {
			t.Errorf("retry after room: %d %s", code, body)
		}
	})
}

func TestHealthEndpoints(t *testing.T) {
	h := newHarness(t, nil, Settings{})
	h.post(t, "/webhook", "application/json", fixture(t, "group_50.json"))
	get := func(p string) (int, map[string]any) {
		resp, err := http.Get(h.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	code, m := get("/api/v1/health")
	if code != 200 || m["status"] != "healthy" || m["version"] != "test" || m["uptime"] != "0m" {
		t.Errorf("health: %d %v", code, m)
	}
	if _, err := time.Parse(time.RFC3339, m["timestamp"].(string)); err != nil {
		t.Errorf("timestamp: %v", err)
	}
	code, m = get("/api/v1/health/detailed")
	q, _ := m["queue"].(map[string]any)
	st, _ := m["services"].(map[string]any)["store"].(map[string]any)
	if code != 200 || q["depth"] != 1.0 || q["capacity"] != 100.0 || st["status"] != "healthy" || st["type"] != "memory" {
		t.Errorf("detailed: %d %v", code, m)
	}
	if res, _ := m["resources"].(map[string]any); res["goroutines"] == nil || res["heap_in_use"] == nil {
		t.Errorf("resources missing: %v", m["resources"])
	}
	resp, _ := http.Get(h.srv.URL + "/metrics")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"alertmedic_webhook_requests_total{code=\"200\"} 1", "alertmedic_alerts_received_total{status=\"firing\"} 50", "alertmedic_alerts_duplicate_total 0"} {
		if !strings.Contains(string(b), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if code, body := h.post(t, "/nope", "", nil); code != 404 || errorOf(t, body) != "no such endpoint: /nope" {
		t.Errorf("404: %d %s", code, body)
	}
	resp, _ = http.Get(h.srv.URL + "/webhook")
	if resp.StatusCode != 405 {
		t.Errorf("GET /webhook = %d, want 405", resp.StatusCode)
	}
}

func TestFormatUptime(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                    "0m",
		90 * time.Second:                     "2m",
		3*time.Hour + 4*time.Minute:          "3h 4m",
		(2*24+14)*time.Hour + 23*time.Minute: "2d 14h 23m",
	} {
		if got := formatUptime(d); got != want {
			t.Errorf("formatUptime(%v) = %q, want %q", d, got, want)
		}
	}
}

// With auth configured, nothing that changes state answers without
// credentials; read-only APIs are protected when read_auth is set, probes
// never are.
func TestAuthEverywhere(t *testing.T) {
	h := newHarness(t, nil, Settings{
		MaxRequestBytes: 1024,
		Auth:            Credentials{BearerToken: "hook"},
		AdminAuth:       Credentials{Username: "admin", Password: "pw"},
		ReadAuth:        Credentials{BearerToken: "reader"},
	})
	for _, p := range []string{"/webhook", "/-/reload", "/api/v1/remediation/pause", "/api/v1/remediation/resume"} {
		if code, _ := h.post(t, p, "application/json", []byte("{}")); code != 401 {
			t.Errorf("POST %s without credentials: %d, want 401", p, code)
		}
	}
	get := func(p string, hdr ...string) int {
		req, _ := http.NewRequest("GET", h.srv.URL+p, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/api/v1/deliveries/failed", "/api/v1/remediations", "/api/v1/routes/test?alertname=A", "/api/v1/health/detailed", "/metrics", "/debug/pprof/", "/debug/pprof/heap"} {
		if code := get(p); code != 401 {
			t.Errorf("GET %s without credentials: %d, want 401", p, code)
		}
		if code := get(p, "Authorization", "Bearer reader"); code == 401 {
			t.Errorf("GET %s with the read token: 401", p)
		}
	}
	for _, p := range []string{"/-/healthy", "/-/ready", "/api/v1/health"} {
		if code := get(p); code != 200 {
			t.Errorf("probe %s: %d, want 200 without credentials", p, code)
		}
	}
}

// Unconfigured, the JSON API answers empty pages of the shape configured
// ones have.
func TestUnconfiguredAnswers(t *testing.T) {
	h := newHarness(t, nil, Settings{})
	for p, want := range map[string]string{
		"/api/v1/deliveries/failed": `{"deliveries":[],"total":0}`,
		"/api/v1/remediations":      `{"paused":false,"records":[]}`,
	} {
		resp, err := http.Get(h.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Errorf("GET %s: %d %s, want 200 %s", p, resp.StatusCode, b, want)
		}
	}
}
