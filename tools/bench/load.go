package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// pool holds n distinct request bodies of one payload, generated before any
// measurement so that their cost is not measured. The daemon drops an alert
// observation it has already seen (same labels, status and startsAt), so
// replaying one body would measure the dedup fast path; every body therefore
// carries observations of its own (see vary). Bodies have one length and
// live in one flat array: no per-body pointers for the garbage collector to
// scan.
type pool struct {
	name   string
	alerts int
	size   int
	n      int
	buf    []byte
}

func (p *pool) body(i int) []byte { return p.buf[i*p.size : (i+1)*p.size] }

// How bodies are made distinct; the choice decides what the daemon's
// workers do with them, so the results say which was used.
const (
	// varyLabel adds a label bench_seq, unique per body, to every alert:
	// every alert is a new alert with a history of its own, as in a large
	// fleet. This is the default.
	varyLabel = "label"
	// varyStartsAt gives every body its own startsAt: the same 1 or 50
	// alerts start a new episode on every request, so their histories stay
	// at pipeline.history_max and every record trims one; the worst case
	// for the history, not a fleet anyone runs.
	varyStartsAt = "startsAt"
)

// tsLayout is fixed-width (always nine fractional digits) so that every body
// has the same length; Go's RFC 3339 parser accepts it.
const tsLayout = "2006-01-02T15:04:05.000000000Z"

// seqLayout is the label inserted by varyLabel; fixed-width for the same
// reason.
const seqLayout = `"bench_seq":"%09d",`

// readPayload reads the captured payload at path, as bytes and decoded.
func readPayload(path string) ([]byte, ceilingMessage, error) {
	var probe ceilingMessage
	tmpl, err := os.ReadFile(path)
	if err != nil {
		return nil, probe, fmt.Errorf("read payload: %w", err)
	}
	if err := json.Unmarshal(tmpl, &probe); err != nil {
		return nil, probe, fmt.Errorf("decode payload %s: %w", path, err)
	}
	return tmpl, probe, nil
}

// newPool makes the bodies from the captured payload at path. With
// varyStartsAt body i has startsAt base + i µs on all its alerts (a group
// that fired together); with varyLabel it has bench_seq i on all its alerts
// and keeps the captured timestamps.
func newPool(name, path, vary string, budget, maxN int, base time.Time) (*pool, error) {
	tmpl, probe, err := readPayload(path)
	if err != nil {
		return nil, err
	}
	// Split the template at the slots to fill: segs[0] slot segs[1] slot ...
	// A startsAt slot replaces the captured value; a label slot is inserted
	// at the start of each labels object.
	key := []byte(`"startsAt":"`)
	slotLen := len(tsLayout)
	if vary == varyLabel {
		key = []byte(`"labels":{`)
		slotLen = len(fmt.Sprintf(seqLayout, 0))
	}
	var segs [][]byte
	rest := tmpl
	for {
		i := bytes.Index(rest, key)
		if i < 0 {
			break
		}
		i += len(key)
		j := 0
		if vary == varyStartsAt {
			if j = bytes.IndexByte(rest[i:], '"'); j < 0 {
				return nil, fmt.Errorf("payload %s: unterminated startsAt", path)
			}
		}
		segs = append(segs, rest[:i])
		rest = rest[i+j:]
	}
	segs = append(segs, rest)
	if len(segs)-1 != len(probe.Alerts) {
		return nil, fmt.Errorf("payload %s: found %d %s for %d alerts", path, len(segs)-1, key, len(probe.Alerts))
	}
	size := sumLen(segs) + slotLen*(len(segs)-1)
	n := min(budget/size, maxN)
	if n < 1 {
		return nil, fmt.Errorf("payload %s: -pool-mb too small for one body of %d bytes", path, size)
	}
	p := &pool{name: name, alerts: len(probe.Alerts), size: size, n: n, buf: make([]byte, n*size)}
	slot := make([]byte, 0, slotLen)
	for i := range n {
		if vary == varyLabel {
			slot = fmt.Appendf(slot[:0], seqLayout, i)
		} else {
			slot = base.Add(time.Duration(i)*time.Microsecond).AppendFormat(slot[:0], tsLayout)
		}
		b := p.buf[i*size : i*size]
		for k, s := range segs {
			if k > 0 {
				b = append(b, slot...)
			}
			b = append(b, s...)
		}
		if len(b) != size {
			return nil, fmt.Errorf("payload %s: body %d has %d bytes, want %d", path, i, len(b), size)
		}
	}
	// The rewrite must leave valid messages that differ where intended;
	// check the two ends of the pool.
	for _, i := range []int{0, n - 1} {
		var m ceilingMessage
		if err := json.Unmarshal(p.body(i), &m); err != nil {
			return nil, fmt.Errorf("payload %s: generated body %d does not decode: %w", path, i, err)
		}
		if len(m.Alerts) != len(probe.Alerts) {
			return nil, fmt.Errorf("payload %s: generated body %d has %d alerts", path, i, len(m.Alerts))
		}
		a := m.Alerts[len(m.Alerts)-1]
		if vary == varyLabel {
			if want := fmt.Sprintf("%09d", i); a.Labels["bench_seq"] != want || len(a.Labels) != len(probe.Alerts[len(m.Alerts)-1].Labels)+1 {
				return nil, fmt.Errorf("payload %s: generated body %d has labels %v, want bench_seq %s added", path, i, a.Labels, want)
			}
		} else if want := base.Add(time.Duration(i) * time.Microsecond); !a.StartsAt.Equal(want) {
			return nil, fmt.Errorf("payload %s: generated body %d has startsAt %s, want %s", path, i, a.StartsAt, want)
		}
	}
	return p, nil
}

func sumLen(bs [][]byte) int {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	return n
}

// newClient makes keep-alive connections to 127.0.0.1 only: no proxy from
// the environment, no compression, at most conns connections.
func newClient(conns int) (*http.Client, *http.Transport) {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	// A request that takes longer than this is a hung server: the scenario
	// must still end near its deadline.
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, tr
}

// post sends one body and reads the whole answer, so the connection goes
// back to the pool.
func post(ctx context.Context, c *http.Client, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "alertmedic-bench")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// counts is what came back: 200s, other statuses by code, transport errors.
type counts struct {
	ok       int
	non2xx   map[int]int
	errs     int
	firstErr string
}

func (c *counts) add(code int, err error) {
	switch {
	case err != nil:
		c.errs++
		if c.firstErr == "" {
			c.firstErr = err.Error()
		}
	case code == http.StatusOK:
		c.ok++
	default:
		if c.non2xx == nil {
			c.non2xx = map[int]int{}
		}
		c.non2xx[code]++
	}
}

func (c *counts) merge(o counts) {
	c.ok += o.ok
	c.errs += o.errs
	if c.firstErr == "" {
		c.firstErr = o.firstErr
	}
	for k, v := range o.non2xx {
		if c.non2xx == nil {
			c.non2xx = map[int]int{}
		}
		c.non2xx[k] += v
	}
}

func (c *counts) bad() int {
	n := 0
	for _, v := range c.non2xx {
		n += v
	}
	return n
}

// closedResult is the maximum-rate scenario.
type closedResult struct {
	counts
	window    time.Duration // measured time
	rate      float64       // 200s per second over window
	exhausted bool          // the body pool ran out before the deadline
}

// closedLoop keeps conc requests in flight for warmup+dur: each worker sends
// its next body as soon as the previous answer is read, which finds the
// highest rate the server sustains. Only answers that arrive after the
// warm-up and by the deadline count.
func closedLoop(ctx context.Context, url string, p *pool, conc int, warmup, dur time.Duration) closedResult {
	c, tr := newClient(conc)
	defer tr.CloseIdleConnections()
	var next atomic.Int64
	start := time.Now()
	from, end := start.Add(warmup), start.Add(warmup+dur)
	var (
		mu        sync.Mutex
		total     counts
		lastDone  time.Time
		exhausted atomic.Bool
		wg        sync.WaitGroup
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine counts
			var last time.Time
			for ctx.Err() == nil && time.Now().Before(end) {
				i := int(next.Add(1) - 1)
				if i >= p.n {
					exhausted.Store(true)
					break
				}
				code, err := post(ctx, c, url, p.body(i))
				done := time.Now()
				if err != nil && ctx.Err() != nil {
					break
				}
				if done.After(from) && !done.After(end) {
					mine.add(code, err)
					last = done
				}
				if err != nil {
					// Back off so a refusing server does not turn the loop
					// into a busy spin; the error is still counted.
					time.Sleep(10 * time.Millisecond)
				}
			}
			mu.Lock()
			total.merge(mine)
			if last.After(lastDone) {
				lastDone = last
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := closedResult{counts: total, exhausted: exhausted.Load()}
	r.window = dur
	if r.exhausted || ctx.Err() != nil {
		// Stopped early: the rate is over the time actually measured.
		r.window = max(lastDone.Sub(from), 0)
	}
	if r.window > 0 {
		r.rate = float64(r.ok) / r.window.Seconds()
	}
	return r
}

// openResult is the fixed-rate scenario.
type openResult struct {
	counts
	achieved float64 // answers per second over the measured window
	p50, p99 time.Duration
	max      time.Duration
}

// openLoop sends rate requests per second for warmup+dur whatever the server
// does, and measures each from the time it was scheduled, not from when a
// connection became free: a stalled server then shows in the latency of
// every request that had to wait (no coordinated omission).
func openLoop(ctx context.Context, url string, p *pool, rate, conns int, warmup, dur time.Duration) openResult {
	r, _ := openLoopSends(ctx, url, p, rate, conns, warmup, dur)
	return r
}

// openSends is what openLoop knew of every request it sent: request i (body
// i) was scheduled at start + i*interval and answered codes[i] or errs[i];
// the first skip were the warm-up.
type openSends struct {
	start     time.Time
	interval  time.Duration
	skip      int
	scheduled int
	codes     []int
	errs      []error
}

func (s openSends) sched(i int) time.Time { return s.start.Add(time.Duration(i) * s.interval) }

// openLoopSends is openLoop that also returns each request's schedule and
// answer, for the end-to-end scenario, which matches them with deliveries.
func openLoopSends(ctx context.Context, url string, p *pool, rate, conns int, warmup, dur time.Duration) (openResult, openSends) {
	interval := time.Second / time.Duration(rate)
	total := int((warmup + dur) / interval)
	skip := int(warmup / interval)
	total = min(total, p.n)
	c, tr := newClient(conns)
	defer tr.CloseIdleConnections()

	type job struct {
		i     int
		sched time.Time
	}
	// Buffered for the whole run: the scheduler never waits for a worker,
	// so the schedule holds even when every connection is busy.
	jobs := make(chan job, total)
	lat := make([]time.Duration, total)
	codes := make([]int, total)
	errs := make([]error, total)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if ctx.Err() != nil {
					errs[j.i] = ctx.Err()
					continue
				}
				codes[j.i], errs[j.i] = post(ctx, c, url, p.body(j.i))
				lat[j.i] = time.Since(j.sched)
			}
		}()
	}
	start := time.Now().Add(10 * time.Millisecond)
	scheduled := 0
	for i := 0; i < total && ctx.Err() == nil; i++ {
		t := start.Add(time.Duration(i) * interval)
		if d := time.Until(t); d > 0 {
			time.Sleep(d)
		}
		jobs <- job{i: i, sched: t}
		scheduled++
	}
	close(jobs)
	wg.Wait()
	end := time.Now()

	r := openResult{}
	var ls []time.Duration
	for i := skip; i < scheduled; i++ {
		r.add(codes[i], errs[i])
		if errs[i] == nil {
			ls = append(ls, lat[i])
		}
	}
	if w := end.Sub(start.Add(warmup)); w > 0 {
		r.achieved = float64(len(ls)) / max(w.Seconds(), dur.Seconds())
	}
	if len(ls) > 0 {
		slices.Sort(ls)
		r.p50 = percentile(ls, 0.50)
		r.p99 = percentile(ls, 0.99)
		r.max = ls[len(ls)-1]
	}
	return r, openSends{start: start, interval: interval, skip: skip, scheduled: scheduled, codes: codes, errs: errs}
}

// percentile is the nearest-rank percentile of sorted samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
