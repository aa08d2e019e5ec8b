package notifiers

import (
	"math/rand/v2"
	"time"

	"github.com/alertmedic/alertmedic/outbound"
)

// Retrier is the delivery retry policy every integration shares, as
// Alertmanager's retry stage keeps backoff outside the integrations, which
// only say whether a failure is temporary. The pipeline's dispatcher applies
// it: it reschedules a failed notification after Backoff instead of
// sleeping, so no worker waits for an integration.
type Retrier struct {
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// attempts (full jitter); defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one attempt; default 10s.
	AttemptTimeout time.Duration
	// Deadline bounds the whole delivery, retries included; default 5m.
	Deadline time.Duration
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
	return r
}

// Backoff is the wait after failed attempt number attempt (1 for the first):
// exponential with full jitter, which spreads replicas and targets that
// failed together, and never less than a Retry-After the sender gave.
func (r Retrier) Backoff(attempt int, err error) time.Duration {
	r = r.withDefaults()
	b := min(r.MaxBackoff, r.MinBackoff<<min(max(attempt-1, 0), 20))
	w := time.Duration(rand.Int64N(int64(b))) + time.Millisecond
	if after, ok := outbound.RetryAfter(err); ok && after > w {
		w = after
	}
	return w
}

// AttemptTimeoutOrDefault is the per-attempt bound in effect.
func (r Retrier) AttemptTimeoutOrDefault() time.Duration { return r.withDefaults().AttemptTimeout }

// DeadlineOrDefault is the whole-delivery bound in effect.
func (r Retrier) DeadlineOrDefault() time.Duration { return r.withDefaults().Deadline }
