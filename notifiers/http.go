package notifiers

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
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

// Secrets are the strings no error an integration returns may carry.
type Secrets []string

// String redacts, so that printing a Secrets never prints one.
func (s Secrets) String() string { return fmt.Sprintf("<%d secrets>", len(s)) }

// GoString is String, for %#v.
func (s Secrets) GoString() string { return s.String() }

// NewSecrets collects values, skipping empty ones, and for each that is an
// absolute URL also its path, query and password: servers quote those more
// often than a whole URL. They are kept longest first, so that a secret
// containing another is replaced whole.
func NewSecrets(values ...string) Secrets {
	var out Secrets
	add := func(v string) {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	for _, v := range values {
		add(v)
		if u, err := url.Parse(v); err == nil && u.Scheme != "" && u.Host != "" {
			if len(u.Path) > 1 {
				add(u.Path)
			}
			add(u.RawQuery)
			if p, ok := u.User.Password(); ok {
				add(p)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// Scrub takes every secret out of err's text, even when a server echoed a
// request back in the body that CheckResponse quotes and its 256-byte cut
// left only the start of a secret at the end. The error is rebuilt rather
// than wrapped (the original, still reachable through Unwrap, would carry
// the secret); a Retry-After survives.
func (s Secrets) Scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, sec := range s {
		clean = strings.ReplaceAll(clean, sec, "<secret>")
		for k := len(sec) - 1; k >= 4; k-- {
			if strings.HasSuffix(clean, sec[:k]) {
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
