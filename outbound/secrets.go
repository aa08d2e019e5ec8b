package outbound

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Secrets are the strings no error an outbound call returns may carry.
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
	if after, ok := RetryAfter(err); ok {
		return &RetryAfterError{After: after, Err: errors.New(clean)}
	}
	return errors.New(clean)
}
