package outbound

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSecretsScrub(t *testing.T) {
	s := NewSecrets("https://user:pw-123456@hooks.example.com/services/T0/B0/XYZ?token=q-987654", "", "tok-abcdef")
	for _, want := range []string{"/services/T0/B0/XYZ", "token=q-987654", "pw-123456", "tok-abcdef"} {
		found := false
		for _, v := range s {
			found = found || v == want
		}
		if !found {
			t.Errorf("NewSecrets has no %q: %q", want, []string(s))
		}
	}
	for i := 1; i < len(s); i++ {
		if len(s[i]) > len(s[i-1]) {
			t.Fatalf("not longest first: %q", []string(s))
		}
	}
	if got := fmt.Sprint(s); strings.Contains(got, "tok-abcdef") {
		t.Errorf("printing Secrets printed one: %s", got)
	}

	err := &RetryAfterError{After: 2 * time.Second, Err: errors.New("POST /services/T0/B0/XYZ: 500 echo tok-abc")}
	clean := s.Scrub(err)
	if msg := clean.Error(); strings.Contains(msg, "/services/T0/B0/XYZ") || strings.Contains(msg, "tok-abc") {
		t.Errorf("scrubbed error still carries a secret or its cut start: %s", msg)
	}
	var ra *RetryAfterError
	if !errors.As(clean, &ra) || ra.After != 2*time.Second {
		t.Errorf("Retry-After lost: %#v", clean)
	}
	plain := errors.New("connection refused")
	if s.Scrub(plain) != plain || s.Scrub(nil) != nil { //nolint:errorlint // the very same error value must come back
		t.Error("an error without secrets must come back as it was")
	}
}
