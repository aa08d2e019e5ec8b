package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// sendResult is what a retrying sender saw. counts holds each body's final
// answer: a 200, another status it gave up on at once, or a transport error
// still failing after sendErrRetries retries.
type sendResult struct {
	counts
	ok          []bool // body i was answered 200
	retries503  int    // 503s answered, each sent again after its Retry-After
	retriedErrs int    // transport errors sent again
	maxRetryAft time.Duration
	first       time.Time // the first request went out
	last200     time.Time // the last 200 arrived
}

// sendErrRetries bounds the retries of a body whose request failed on the
// way (no answer): the daemon deduplicates a body it took already, so
// sending it again is safe, but a daemon that is gone should not be hammered.
const sendErrRetries = 20

// noRetryAfter is the wait before resending a 503 without a Retry-After.
const noRetryAfter = 100 * time.Millisecond

// postRA is post that also returns the answer's Retry-After (seconds, as
// alertmedic sends it), 0 when there is none.
func postRA(ctx context.Context, c *http.Client, url string, body []byte) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "alertmedic-bench")
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var ra time.Duration
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, perr := strconv.Atoi(s); perr == nil && n >= 0 {
			ra = time.Duration(n) * time.Second
		}
	}
	return resp.StatusCode, ra, err
}

// sendRetrying posts body(0) .. body(n-1) over conns keep-alive
// connections, each sending its next body when the previous one is done, as
// fast as the daemon takes them. A 503 (queue or store full) is sent again
// after its Retry-After, or noRetryAfter without one, until it is answered
// 200, as Alertmanager does; a transport error is sent again after
// noRetryAfter, at most sendErrRetries times; any other answer is final.
// It stops early when ctx is done.
func sendRetrying(ctx context.Context, url string, n int, body func(int) []byte, conns int) sendResult {
	// The client's own timeout (10s) bounds a hung request; the daemon
	// answers a big body well within it.
	c, tr := newClient(conns)
	defer tr.CloseIdleConnections()
	res := sendResult{ok: make([]bool, n)}
	var (
		next atomic.Int64
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	res.first = time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine counts
			var r503, rerr int
			var maxRA time.Duration
			var last time.Time
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				errs := 0
				for {
					code, ra, err := postRA(ctx, c, url, body(i))
					wait := time.Duration(0)
					switch {
					case err != nil && ctx.Err() != nil:
					case err != nil && errs < sendErrRetries:
						errs++
						rerr++
						wait = noRetryAfter
					case err == nil && code == http.StatusServiceUnavailable:
						r503++
						if ra <= 0 {
							ra = noRetryAfter
						}
						maxRA = max(maxRA, ra)
						wait = ra
					}
					if wait == 0 {
						mine.add(code, err)
						if err == nil && code == http.StatusOK {
							res.ok[i] = true // each index has one writer
							last = time.Now()
						}
						break
					}
					select {
					case <-ctx.Done():
					case <-time.After(wait):
					}
					if ctx.Err() != nil {
						mine.add(0, ctx.Err())
						break
					}
				}
			}
			mu.Lock()
			res.merge(mine)
			res.retries503 += r503
			res.retriedErrs += rerr
			res.maxRetryAft = max(res.maxRetryAft, maxRA)
			if last.After(res.last200) {
				res.last200 = last
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return res
}

// sentAlerts is how many alerts the bodies answered 200 carried.
func (r sendResult) sentAlerts(alertsIn func(int) int) int {
	n := 0
	for i, ok := range r.ok {
		if ok {
			n += alertsIn(i)
		}
	}
	return n
}

// ingestTime is from the first request to the last 200.
func (r sendResult) ingestTime() time.Duration {
	if r.last200.IsZero() {
		return 0
	}
	return r.last200.Sub(r.first)
}
