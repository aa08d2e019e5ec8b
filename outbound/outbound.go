// Package outbound owns what every outbound call of alertmedic shares,
// notifications and remediation actions alike: how an HTTP answer is
// classified (delivered, worth retrying, final), how Retry-After is read,
// and how errors are kept free of secrets (the URL of a *url.Error, the
// strings a server may echo back). It imports only the standard library, so
// that any package making a call can use it.
package outbound

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxQuoted bounds how much of a failed answer's body CheckResponse quotes.
const maxQuoted = 256

// RetryAfterError is a failure the sender asked to be retried no earlier
// than After (HTTP 429 or 5xx with Retry-After).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter is the wait a *RetryAfterError in err's chain asks for.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

// CheckResponse classifies an HTTP answer as Alertmanager's Retrier does:
// 2xx delivered; 5xx and 429 worth retrying (as a *RetryAfterError when
// the answer has a Retry-After); any other status final. The error quotes
// at most 256 bytes of the body, never the request URL; a server may echo
// the request in it, which Secrets.Scrub takes out.
func CheckResponse(resp *http.Response) (retry bool, err error) {
	return check(resp, maxQuoted)
}

// CheckStatus is CheckResponse without the body: for a caller that cannot
// tell which part of the request an echo of it would give away.
func CheckStatus(resp *http.Response) (retry bool, err error) {
	return check(resp, 0)
}

func check(resp *http.Response, quote int64) (bool, error) {
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	msg := fmt.Sprintf("unexpected status code %d", resp.StatusCode)
	if quote > 0 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, quote))
		if b := strings.TrimSpace(string(body)); b != "" {
			msg += ": " + b
		}
	}
	err := errors.New(msg)
	retry := resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests
	if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok && retry {
		return true, &RetryAfterError{After: ra, Err: err}
	}
	return retry, err
}

// parseRetryAfter reads Retry-After as seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// Redacted is what RedactURL shows of a URL that may not be shown at all:
// webhook URLs (Slack's, Alertmanager-style generic webhooks) carry their
// secret in the path. It is quoted, as *url.Error quotes the URL it stands
// for: `Post "<redacted>": EOF`.
const Redacted = `"<redacted>"`

// RedactURL returns the *url.Error in err's chain (the client's own text,
// without what wrapped it, which may quote the URL too) with its URL
// replaced by shown: Redacted, or a form of the URL without its secret
// parts. It returns any other error as it is.
func RedactURL(err error, shown string) error {
	var e *url.Error
	if !errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("%s %s: %w", e.Op, shown, e.Err)
}
