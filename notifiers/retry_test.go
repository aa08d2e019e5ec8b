package notifiers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

type scripted struct {
	answers []error
	retry   []bool
	calls   int
}

func (s *scripted) Notify(context.Context, *Notification) (bool, error) {
	i := s.calls
	s.calls++
	if i >= len(s.answers) {
		return false, nil
	}
	return s.retry[i], s.answers[i]
}

func TestRetrier(t *testing.T) {
	boom := errors.New("unexpected status code 500")
	var waited []time.Duration
	r := Retrier{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Sleep: func(_ context.Context, d time.Duration) error {
		waited = append(waited, d)
		return nil
	}}
	n := &Notification{Kind: KindAlerts, Target: Target{Receiver: "r", Name: "slack[0]"}}

	t.Run("retries then succeeds", func(t *testing.T) {
		waited = nil
		s := &scripted{answers: []error{boom, boom}, retry: []bool{true, true}}
		as, err := r.Deliver(context.Background(), s, n)
		if err != nil || s.calls != 3 || len(as) != 2 || len(waited) != 2 {
			t.Errorf("err %v calls %d attempts %d waits %v", err, s.calls, len(as), waited)
		}
		for i, w := range waited {
			if w <= 0 || w > 100*time.Millisecond<<i {
				t.Errorf("wait %d = %v, outside (0, %v]", i, w, 100*time.Millisecond<<i)
			}
		}
	})
	t.Run("honours Retry-After", func(t *testing.T) {
		waited = nil
		ra := &RetryAfterError{After: 2 * time.Second, Err: errors.New("unexpected status code 429")}
		s := &scripted{answers: []error{ra, ra}, retry: []bool{true, true}}
		if _, err := r.Deliver(context.Background(), s, n); err != nil {
			t.Fatal(err)
		}
		if len(waited) != 2 || waited[0] < 2*time.Second || waited[1] < 2*time.Second {
			t.Errorf("waits %v, want each at least the 2s Retry-After", waited)
		}
	})
	t.Run("final failure is not retried", func(t *testing.T) {
		s := &scripted{answers: []error{errors.New("unexpected status code 400: invalid_payload")}, retry: []bool{false}}
		as, err := r.Deliver(context.Background(), s, n)
		if err == nil || s.calls != 1 || len(as) != 1 {
			t.Fatalf("err %v calls %d", err, s.calls)
		}
		if want := "deliver alerts to r/slack[0]: attempt 1 failed for good: unexpected status code 400: invalid_payload"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		rd := r
		rd.Deadline = 50 * time.Millisecond
		rd.Sleep = nil // real sleeps: the deadline must end them
		s := &scripted{answers: []error{boom, boom, boom, boom, boom, boom, boom, boom}, retry: []bool{true, true, true, true, true, true, true, true}}
		start := time.Now()
		_, err := rd.Deliver(context.Background(), s, n)
		if err == nil || !strings.Contains(err.Error(), "gave up after") || time.Since(start) > time.Second {
			t.Errorf("err %v after %v", err, time.Since(start))
		}
	})
}
