package notifiers

import (
	"errors"
	"testing"
	"time"

	"github.com/alertmedic/alertmedic/outbound"
)

func TestRetrierBackoff(t *testing.T) {
	r := Retrier{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	boom := errors.New("unexpected status code 500")
	t.Run("exponential with jitter, capped", func(t *testing.T) {
		for attempt := 1; attempt <= 8; attempt++ {
			limit := min(time.Second, 100*time.Millisecond<<(attempt-1)) + time.Millisecond
			for i := 0; i < 50; i++ {
				if w := r.Backoff(attempt, boom); w <= 0 || w > limit {
					t.Fatalf("attempt %d: wait %v outside (0, %v]", attempt, w, limit)
				}
			}
		}
	})
	t.Run("honours Retry-After", func(t *testing.T) {
		ra := &outbound.RetryAfterError{After: 2 * time.Second, Err: errors.New("unexpected status code 429")}
		for attempt := 1; attempt <= 3; attempt++ {
			if w := r.Backoff(attempt, ra); w < 2*time.Second {
				t.Errorf("attempt %d: wait %v, want at least the 2s Retry-After", attempt, w)
			}
		}
	})
	t.Run("defaults", func(t *testing.T) {
		var z Retrier
		if z.AttemptTimeoutOrDefault() != 10*time.Second || z.DeadlineOrDefault() != 5*time.Minute {
			t.Errorf("defaults %v %v", z.AttemptTimeoutOrDefault(), z.DeadlineOrDefault())
		}
		if w := z.Backoff(1, boom); w > 501*time.Millisecond {
			t.Errorf("first default backoff %v above 500ms", w)
		}
	})
}
