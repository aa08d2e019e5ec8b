package notifiers

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

// RetryAfterError is a failure the sender asked to be retried no earlier
// than After (HTTP 429 or 503 with Retry-After).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// CheckResponse classifies an HTTP answer as Alertmanager's Retrier does:
// 2xx delivered; 5xx and 429 worth retrying (429 and 503 honouring
// Retry-After); any other status final. The error quotes at most 256 bytes
// of the body, never the request URL.
func CheckResponse(resp *http.Response) (retry bool, err error) {
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	msg := fmt.Sprintf("unexpected status code %d", resp.StatusCode)
	if b := strings.TrimSpace(string(body)); b != "" {
		msg += ": " + b
	}
	err = errors.New(msg)
	retry = resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests
	if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok && retry {
		return true, &RetryAfterError{After: ra, Err: err}
	}
	return retry, err
}

// retryAfter reads Retry-After as seconds or as an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
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

// RedactURL strips the URL from a *url.Error: webhook URLs (Slack's,
// Alertmanager-style generic webhooks) carry their secret in the path.
func RedactURL(err error) error {
	var e *url.Error
	if !errors.As(err, &e) {
		return err
	}
	e.URL = "<redacted>"
	return e
}

// Scrub takes every secret out of err's text, even when a server echoed a
// request back in the body that CheckResponse quotes and its 256-byte cut
// left only the start of a secret at the end. The error is rebuilt rather
// than wrapped (the original, still reachable through Unwrap, would carry
// the secret); a Retry-After survives. secrets should run longest first, so
// that a secret containing another is replaced whole.
func Scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		if s == "" {
			continue
		}
		clean = strings.ReplaceAll(clean, s, "<secret>")
		for k := len(s) - 1; k >= 4; k-- {
			if strings.HasSuffix(clean, s[:k]) {
				clean = clean[:len(clean)-k] + "<secret>"
				break
			}
		}
	}
	if clean == msg {
		return err
	}
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return &RetryAfterError{After: ra.After, Err: errors.New(clean)}
	}
	return errors.New(clean)
}
