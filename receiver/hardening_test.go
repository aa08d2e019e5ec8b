package receiver

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/alertmedic/alertmedic/api"
)

// auditRecorder is the remediation API, noting who paused and resumed.
type auditRecorder struct {
	mu sync.Mutex
	by []string
}

func (a *auditRecorder) Audit(context.Context, int) ([]api.RemediationRecord, error) {
	return []api.RemediationRecord{}, nil
}
func (a *auditRecorder) Paused(context.Context) (bool, error) { return false, nil }
func (a *auditRecorder) Pause(_ context.Context, by string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.by = append(a.by, by)
	return nil
}
func (a *auditRecorder) Resume(ctx context.Context, by string) error { return a.Pause(ctx, by) }

// Answer knows one proposal, which may be answered once.
func (a *auditRecorder) Answer(ctx context.Context, id string, approve bool, by string) (api.RemediationRecord, error) {
	if id != strings.Repeat("ab", 12) {
		return api.RemediationRecord{}, ErrNoProposal
	}
	if a.last() != "" {
		return api.RemediationRecord{}, fmt.Errorf("%w: approved by %s", ErrAnswered, a.last())
	}
	_ = a.Pause(ctx, by)
	return api.RemediationRecord{Proposal: id, Result: map[bool]string{true: "approved", false: "denied"}[approve], ApprovedBy: by}, nil
}

// A proposal is answered over HTTP with the admin credentials only, once;
// a malformed or unknown ID is refused.
func TestAnswerProposal(t *testing.T) {
	h := newHarness(t, nil, Settings{AdminAuth: Credentials{Username: "alice", Password: "pw"}})
	rec := &auditRecorder{}
	h.rcv.o.Remediation = rec
	id := strings.Repeat("ab", 12)
	admin := []string{"Authorization", "Basic YWxpY2U6cHc="}
	for _, tc := range []struct {
		path string
		hdr  []string
		code int
		want string
	}{
		{"/api/v1/remediations/" + id + "/approve", nil, 401, ""},
		{"/api/v1/remediations/" + id + "/approve", []string{"Authorization", "Basic YWxpY2U6d3Jvbmc="}, 401, ""},
		{"/api/v1/remediations/not-an-id/approve", admin, 400, "24 hexadecimal digits"},
		{"/api/v1/remediations/" + strings.Repeat("cd", 12) + "/deny", admin, 404, "no such proposal"},
		{"/api/v1/remediations/" + id + "/deny", admin, 200, `"proposal":"` + id + `","approved_by":"alice@127.0.0.1"`},
		{"/api/v1/remediations/" + id + "/approve", admin, 409, "answered already"},
	} {
		code, body := h.post(t, tc.path, "", nil, tc.hdr...)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("POST %s: %d %s, want %d with %q", tc.path, code, body, tc.code, tc.want)
		}
	}
}

func (a *auditRecorder) last() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.by) == 0 {
		return ""
	}
	return a.by[len(a.by)-1]
}

// The audit's "by" was whatever X-Forwarded-For or a basic-auth header
// said. Now it is the identity the configured credentials proved and the
// peer's address, or what a trusted proxy says the client's is.
func TestAuditIdentityCannotBeSpoofed(t *testing.T) {
	cases := []struct {
		name     string
		settings Settings
		hdr      []string
		want     string
	}{
		{"no auth, no proxy: the headers are not believed", Settings{},
			[]string{"X-Forwarded-For", "10.66.66.66", "X-Real-IP", "10.66.66.67", "Authorization", "Basic bWFsbG9yeTp4"}, "127.0.0.1"},
		{"bearer token: the holder of the token", Settings{AdminAuth: Credentials{BearerToken: "adm"}},
			[]string{"Authorization", "Bearer adm", "X-Forwarded-For", "10.66.66.66"}, "bearer token@127.0.0.1"},
		{"basic auth: the user it proved", Settings{AdminAuth: Credentials{Username: "alice", Password: "pw"}},
			[]string{"Authorization", "Basic YWxpY2U6cHc=", "X-Forwarded-For", "10.66.66.66"}, "alice@127.0.0.1"},
		{"a trusted proxy: the nearest hop it does not trust", Settings{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.1.0.0/16")}},
			[]string{"X-Forwarded-For", "6.6.6.6, 10.66.66.66, 10.1.2.3"}, "10.66.66.66"},
		{"a trusted proxy with X-Real-IP only", Settings{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
			[]string{"X-Real-IP", "192.0.2.7"}, "192.0.2.7"},
		{"a proxy that is not this peer", Settings{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
			[]string{"X-Forwarded-For", "10.66.66.66"}, "127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil, tc.settings)
			rec := &auditRecorder{}
			h.rcv.o.Remediation = rec
			if code, body := h.post(t, "/api/v1/remediation/pause", "", nil, tc.hdr...); code != 200 {
				t.Fatalf("pause: %d %s", code, body)
			}
			if got := rec.last(); got != tc.want {
				t.Errorf("paused by %q, want %q", got, tc.want)
			}
			time.Sleep(50 * time.Millisecond) // the access log is written after the answer
			if want := `"remote":"` + strings.TrimPrefix(tc.want[strings.LastIndex(tc.want, "@")+1:], "@") + `"`; !strings.Contains(h.logs.String(), want) {
				t.Errorf("access log has no %s:\n%s", want, h.logs.String())
			}
		})
	}
}

// Six 3.9 MB bodies at once took the resident set from 31 to 393 MB.
// web.max_inflight_bytes bounds the bytes being read: past it a webhook is
// answered 503 with Retry-After (Alertmanager retries), never 413, and a
// body that fits beside the others goes through.
func TestWebhookInflightBudget(t *testing.T) {
	h := newHarness(t, nil, Settings{MaxRequestBytes: 1 << 20, MaxInflightBytes: 3 << 19})
	// A slow sender holds 1,000,000 bytes of the 1.5 MiB budget.
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{\"version\":")
	deadline := time.Now().Add(5 * time.Second)
	for h.rcv.inflight.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slow body never counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, body := h.post(t, "/webhook", "application/json", fixture(t, "firing.json")); code != 200 {
		t.Fatalf("a small body beside it: %d %s", code, body)
	}
	big := make([]byte, 800_000)
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/webhook", strings.NewReader(string(big)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("an 800 kB body past the budget: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if n := testutil.ToFloat64(h.rcv.m.busy); n != 1 {
		t.Errorf("alertmedic_webhook_inflight_limited_total = %v, want 1", n)
	}
	// The slow sender finishes (with a body that is not valid: 400), and
	// its bytes are given back.
	fmt.Fprint(conn, strings.Repeat(" ", 1000000-len(`{"version":`)))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.Contains(line, "400") {
		t.Fatalf("the slow body's answer: %q", line)
	}
	if n := h.rcv.inflight.Load(); n != 0 {
		t.Fatalf("%d bytes still counted in flight", n)
	}
	resp, err = http.DefaultClient.Post(h.srv.URL+"/webhook", "application/json", strings.NewReader(string(big)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 503 {
		t.Fatal("the budget was not given back")
	}
}
