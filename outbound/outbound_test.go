package outbound

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		header    http.Header
		body      string
		wantRetry bool
		wantErr   string // CheckResponse's; CheckStatus's is its text before ": "
		wantAfter time.Duration
	}{
		{name: "200", status: 200, body: "ok"},
		{name: "204", status: 204},
		{name: "400 is final", status: 400, body: " bad request \n", wantErr: "unexpected status code 400: bad request"},
		{name: "404 with Retry-After is still final", status: 404, header: http.Header{"Retry-After": {"5"}}, wantErr: "unexpected status code 404"},
		{name: "429 without Retry-After", status: 429, wantRetry: true, wantErr: "unexpected status code 429"},
		{name: "429 with Retry-After", status: 429, header: http.Header{"Retry-After": {"7"}}, body: "slow down", wantRetry: true, wantErr: "unexpected status code 429: slow down", wantAfter: 7 * time.Second},
		{name: "503 with Retry-After", status: 503, header: http.Header{"Retry-After": {" 30 "}}, wantRetry: true, wantErr: "unexpected status code 503", wantAfter: 30 * time.Second},
		{name: "500 with a bad Retry-After", status: 500, header: http.Header{"Retry-After": {"soon"}}, wantRetry: true, wantErr: "unexpected status code 500"},
		{name: "body cut at 256 bytes", status: 502, body: strings.Repeat("x", 300), wantRetry: true, wantErr: "unexpected status code 502: " + strings.Repeat("x", 256)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range []struct {
				name    string
				check   func(*http.Response) (bool, error)
				wantErr string
			}{
				{"CheckResponse", CheckResponse, tc.wantErr},
				{"CheckStatus", CheckStatus, strings.SplitN(tc.wantErr, ": ", 2)[0]},
			} {
				resp := &http.Response{StatusCode: tc.status, Header: tc.header, Body: io.NopCloser(strings.NewReader(tc.body))}
				retry, err := f.check(resp)
				if retry != tc.wantRetry {
					t.Errorf("%s: retry %v, want %v", f.name, retry, tc.wantRetry)
				}
				if (err == nil) != (f.wantErr == "") || (err != nil && err.Error() != f.wantErr) {
					t.Fatalf("%s: error %v, want %q", f.name, err, f.wantErr)
				}
				after, ok := RetryAfter(err)
				if ok != (tc.wantAfter > 0) || after != tc.wantAfter {
					t.Errorf("%s: RetryAfter %v %v, want %v", f.name, after, ok, tc.wantAfter)
				}
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{"-1", 0, false},
		{"Fri, 06 Mar 2026 12:00:45 GMT", 45 * time.Second, true},
		{"Fri, 06 Mar 2026 11:00:00 GMT", 0, true}, // past: at once
		{"tomorrow", 0, false},
	} {
		if got, ok := parseRetryAfter(tc.in, now); got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// The URL of a failed call leaves the error; only what the caller shows of
// it stays, and the cause stays reachable.
func TestRedactURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there any more
	const secretPart = "/services/T0/B0/XYZ?token=q-987654"
	_, err := http.Post(srv.URL+secretPart, "application/json", nil)
	if err == nil {
		t.Fatal("post to a closed server succeeded")
	}
	for _, tc := range []struct{ shown, prefix string }{
		{Redacted, `Post "<redacted>": `},
		{srv.URL + "/services", "Post " + srv.URL + "/services: "},
	} {
		red := RedactURL(errors.Join(errors.New("wrapper quoting "+secretPart), err), tc.shown)
		if msg := red.Error(); strings.Contains(msg, "XYZ") || strings.Contains(msg, "q-987654") || !strings.HasPrefix(msg, tc.prefix) {
			t.Errorf("redacted to %q, want it to start %q and hold no secret", msg, tc.prefix)
		}
		if !errors.Is(red, errors.Unwrap(err)) {
			t.Errorf("the cause is no longer reachable: %v", red)
		}
	}
	plain := errors.New("no URL in here")
	if RedactURL(plain, Redacted) != plain { //nolint:errorlint // the very same error value must come back
		t.Error("an error without a *url.Error must come back as it was")
	}
}
