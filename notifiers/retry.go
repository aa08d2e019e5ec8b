package notifiers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Retrier delivers one notification, retrying what is worth retrying, as
// Alertmanager's retry stage does: backoff lives here, outside the
// integrations, which only say whether a failure is temporary.
type Retrier struct {
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// attempts (full jitter); defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one attempt; default 10s.
	AttemptTimeout time.Duration
	// Deadline bounds the whole delivery, retries included; default 5m.
	Deadline time.Duration
	// Sleep waits between attempts; tests replace it. It returns early with
	// ctx's error when ctx ends.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (r Retrier) withDefaults() Retrier {
	if r.MinBackoff <= 0 {
		r.MinBackoff = 500 * time.Millisecond
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = 30 * time.Second
	}
	if r.AttemptTimeout <= 0 {
		r.AttemptTimeout = 10 * time.Second
	}
	if r.Deadline <= 0 {
		r.Deadline = 5 * time.Minute
	}
	if r.Sleep == nil {
		r.Sleep = sleep
	}
	return r
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Attempt is what one try did, for logs and dead letters.
type Attempt struct {
	Err   error
	Retry bool
	Wait  time.Duration // before the next attempt
}

// Deliver sends n through nf until it succeeds, fails for good, or the
// deadline passes. It reports every attempt; the error wraps the last one
// with the attempt count.
func (r Retrier) Deliver(ctx context.Context, nf Notifier, n *Notification) ([]Attempt, error) {
	r = r.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, r.Deadline)
	defer cancel()
	var attempts []Attempt
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return attempts, fmt.Errorf("deliver %s to %s: gave up after %d attempts: %w", n.Kind, n.Target.Key(), len(attempts), lastErr(attempts, err))
		}
		actx, acancel := context.WithTimeout(ctx, r.AttemptTimeout)
		retry, err := nf.Notify(actx, n)
		acancel()
		if err == nil {
			return attempts, nil
		}
		a := Attempt{Err: err, Retry: retry}
		if !retry {
			attempts = append(attempts, a)
			return attempts, fmt.Errorf("deliver %s to %s: attempt %d failed for good: %w", n.Kind, n.Target.Key(), len(attempts), err)
		}
		// Full jitter spreads replicas and targets that failed together.
		backoff := min(r.MaxBackoff, r.MinBackoff<<min(i, 20))
		a.Wait = time.Duration(rand.Int64N(int64(backoff)) + 1)
		var ra *RetryAfterError
		if errors.As(err, &ra) && ra.After > a.Wait {
			a.Wait = ra.After
		}
		attempts = append(attempts, a)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < a.Wait {
			return attempts, fmt.Errorf("deliver %s to %s: gave up after %d attempts, the next would pass the deadline: %w", n.Kind, n.Target.Key(), len(attempts), err)
		}
		if err := r.Sleep(ctx, a.Wait); err != nil {
			return attempts, fmt.Errorf("deliver %s to %s: gave up after %d attempts: %w", n.Kind, n.Target.Key(), len(attempts), lastErr(attempts, err))
		}
	}
}

func lastErr(as []Attempt, err error) error {
	if len(as) > 0 {
		return as[len(as)-1].Err
	}
	return err
}

// DeadlineOrDefault is the whole-delivery bound in effect.
func (r Retrier) DeadlineOrDefault() time.Duration { return r.withDefaults().Deadline }

// AttemptTimeoutOrDefault is the per-attempt bound in effect.
func (r Retrier) AttemptTimeoutOrDefault() time.Duration { return r.withDefaults().AttemptTimeout }

// Backoffs are the minimum and maximum backoff in effect.
func (r Retrier) Backoffs() (time.Duration, time.Duration) {
	r = r.withDefaults()
	return r.MinBackoff, r.MaxBackoff
}
