package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The memory scenario asks whether the daemon's memory is bounded by its
// retention: it sends -mem-alerts distinct alerts (50-alert bodies, -vary
// label, so every alert is a new one with a history of its own) to a daemon
// whose dedup window and history retention are -mem-window, reads its
// resident set and live heap once the queue is empty, waits for the window
// to pass, sends a few new alerts (the memory store sweeps what expired on
// writes) and reads them again. The live heap is read right after a
// garbage collection the bench asks for (GET /debug/pprof/heap?gc=1), so
// the verdict does not depend on when the daemon last collected; RSS is
// read as the kernel reports it, after Go's background scavenger had
// memSettle to return freed pages.

// memGoalRSS is the target: resident set below this at -mem-alerts alerts.
const memGoalRSS = 150 << 20

// memReleased is the share of what the alerts added to the live heap
// (peak minus the idle daemon's) that must be gone after the retention.
const memReleased = 0.75

// memRSSReleased is the share of what the alerts added to the resident set
// that must have been returned to the OS memSettle after the collection.
const memRSSReleased = 0.5

// memSettle is how long after the collection the resident set is read.
const memSettle = 30 * time.Second

// memTriggers is how many new 1-alert bodies are sent after the window to
// make the memory store sweep.
const memTriggers = 5

type memRow struct {
	target string
	kind   string
	failed string

	alerts, requests int
	sendTime         time.Duration
	drainTime        time.Duration
	bad              counts
	drained          bool

	// live is go_memstats_heap_alloc_bytes right after a forced GC: the
	// bytes the daemon still references.
	idleRSS, idleLive   float64
	peakRSS, peakLive   float64
	afterRSS, afterLive float64
	afterDepth          float64
	// afterSizes: what the memory store still held after the retention
	// (alertmedic_store_size by kind; the Redis store exports none).
	afterSizes          map[string]float64
	processed, received float64
	waited              time.Duration
	shutdown            time.Duration
	logIssues           int
}

func (b *bench) runMemory(ctx context.Context, one, fifty *pool) ([]*memRow, error) {
	if b.o.memAlerts == 0 || !b.o.scenarios[scMemRetention] {
		return nil, nil
	}
	requests := (b.o.memAlerts + fifty.alerts - 1) / fifty.alerts
	if requests > fifty.n {
		b.notef("memory: the 50-alert pool holds %d bodies, %d needed; sending %d", fifty.n, requests, fifty.n)
		requests = fifty.n
	}
	var rows []*memRow
	for _, t := range storeTargets {
		if !b.selected(t) {
			continue
		}
		r := &memRow{target: t.name, kind: t.kind}
		rows = append(rows, r)
		if err := b.checkConfig(ctx, t.kind, "", b.o.memWindow); err != nil {
			if ctx.Err() != nil {
				return rows, ctx.Err()
			}
			first, _, _ := strings.Cut(err.Error(), "\n")
			fmt.Fprintf(b.log, "bench: %v\n", err)
			r.failed = first
			b.notef("memory: %s", first)
			continue
		}
		if err := b.memScenario(ctx, r, one, fifty, requests); err != nil {
			if ctx.Err() != nil {
				return rows, ctx.Err()
			}
			r.failed = b.scenarioFailed(err)
		}
	}
	return rows, nil
}

func (b *bench) memScenario(ctx context.Context, r *memRow, one, fifty *pool, requests int) error {
	label := fmt.Sprintf("%s / memory after %s alerts", r.kind, thousands(float64(requests*fifty.alerts)))
	b.settle(ctx, label, r.kind)
	srv, err := b.startTarget(ctx, r.kind, label, "", b.o.memWindow)
	if err != nil {
		return err
	}
	defer srv.stop(shutdownTimeout + 15*time.Second)
	lctx, cancel := srv.context(ctx)
	defer cancel()
	pid := srv.cmd.Process.Pid
	base := "http://" + srv.addr
	// read scrapes /metrics and VmRSS; with gc, it first has the daemon
	// collect (the heap profile's gc=1), so heap_alloc is the live heap.
	read := func(gc bool) (rss, live float64, m map[string]float64, err error) {
		if gc {
			if err := forceGC(lctx, base); err != nil {
				return 0, 0, nil, fmt.Errorf("%s: %w", label, err)
			}
		}
		m, err = scrape(lctx, base+"/metrics")
		if err != nil {
			return 0, 0, nil, fmt.Errorf("%s: read /metrics: %w", label, err)
		}
		rss, err = vmRSS(pid)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("%s: %w", label, err)
		}
		return rss, m["go_memstats_heap_alloc_bytes"], m, nil
	}
	if r.idleRSS, r.idleLive, _, err = read(true); err != nil {
		return err
	}

	fmt.Fprintf(b.log, "bench: %s: sending %d bodies of %d alerts, window %s ...\n", label, requests, fifty.alerts, b.o.memWindow)
	t0 := time.Now()
	r.bad = sendAll(lctx, base+"/webhook", fifty, requests, b.o.concurrency)
	r.sendTime = time.Since(t0)
	r.requests, r.alerts = requests, r.bad.ok*fifty.alerts
	lastWrite := time.Now()

	// Wait for the workers: queue empty and every accepted alert processed.
	deadline := time.Now().Add(60 * time.Second)
	var m map[string]float64
	for {
		if r.peakRSS, _, m, err = read(false); err != nil {
			return err
		}
		if m["alertmedic_queue_depth"] == 0 && m["alertmedic_alerts_processed_total"] >= m["alertmedic_alerts_received_total"] {
			r.drained = true
			break
		}
		if time.Now().After(deadline) {
			b.notef("%s: the queue still held %.0f entries after 60s; the peak is read then", label, m["alertmedic_queue_depth"])
			break
		}
		select {
		case <-lctx.Done():
			return fmt.Errorf("%s: %s exited or was stopped while draining (%s)\nlast lines of %s:\n%s", label, srv.name, srv.exitStatus(), srv.logPath, tail(srv.logPath, 20))
		case <-time.After(200 * time.Millisecond):
		}
	}
	r.drainTime = time.Since(t0)
	r.processed, r.received = m["alertmedic_alerts_processed_total"], m["alertmedic_alerts_received_total"]
	// The resident set just read is the peak; the live heap is what the
	// alerts hold once the garbage of taking them in is collected.
	if _, r.peakLive, _, err = read(true); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "bench: %s: sent in %s, drained after %s: RSS %s, live heap %s\n", label, r.sendTime.Round(time.Millisecond), r.drainTime.Round(time.Millisecond), mib(r.peakRSS), mib(r.peakLive))

	// The dedup keys expire a window after their enqueue, the histories a
	// window after their last record (at most the drain): wait past both.
	until := time.Now().Add(b.o.memWindow + 5*time.Second)
	if d := lastWrite.Add(b.o.memWindow + 5*time.Second); d.After(until) {
		until = d
	}
	fmt.Fprintf(b.log, "bench: %s: waiting %s for the retention, then %d new alerts and %s ...\n", label, time.Until(until).Round(time.Second), memTriggers, memSettle)
	select {
	case <-lctx.Done():
		return fmt.Errorf("%s: %s exited or was stopped while waiting (%s)\nlast lines of %s:\n%s", label, srv.name, srv.exitStatus(), srv.logPath, tail(srv.logPath, 20))
	case <-time.After(time.Until(until)):
	}
	c, tr := newClient(1)
	for i := range min(memTriggers, one.n) {
		code, err := post(lctx, c, base+"/webhook", one.body(i))
		r.bad.add(code, err)
	}
	tr.CloseIdleConnections()
	// Let the workers take the trigger alerts, then collect and read the
	// live heap; the resident set memSettle later, once the scavenger ran.
	select {
	case <-lctx.Done():
		return fmt.Errorf("%s: %s exited or was stopped while settling (%s)\nlast lines of %s:\n%s", label, srv.name, srv.exitStatus(), srv.logPath, tail(srv.logPath, 20))
	case <-time.After(2 * time.Second):
	}
	if _, r.afterLive, m, err = read(true); err != nil {
		return err
	}
	r.afterDepth = m["alertmedic_queue_depth"]
	for _, k := range []string{"values", "dedup_keys"} {
		if v, ok := m[fmt.Sprintf(`alertmedic_store_size{kind=%q}`, k)]; ok {
			if r.afterSizes == nil {
				r.afterSizes = map[string]float64{}
			}
			r.afterSizes[k] = v
		}
	}
	select {
	case <-lctx.Done():
		return fmt.Errorf("%s: %s exited or was stopped while settling (%s)\nlast lines of %s:\n%s", label, srv.name, srv.exitStatus(), srv.logPath, tail(srv.logPath, 20))
	case <-time.After(memSettle):
	}
	if r.afterRSS, _, _, err = read(false); err != nil {
		return err
	}
	r.waited = time.Since(t0)
	fmt.Fprintf(b.log, "bench: %s: after the retention: live heap %s, RSS %s (%s in all)", label, mib(r.afterLive), mib(r.afterRSS), r.waited.Round(time.Second))
	if r.afterSizes != nil {
		fmt.Fprintf(b.log, "; the store still holds %.0f values, %.0f dedup keys", r.afterSizes["values"], r.afterSizes["dedup_keys"])
	}
	fmt.Fprintln(b.log)

	var st daemonStats
	err = b.stopDaemon(ctx, label, r.kind, srv, &st)
	r.shutdown, r.logIssues = st.shutdown, st.logIssues
	return err
}

// sendAll posts bodies 0..n-1 of p over conns keep-alive connections, each
// sending its next body when the previous answer arrived: as fast as the
// daemon takes them.
func sendAll(ctx context.Context, url string, p *pool, n, conns int) counts {
	c, tr := newClient(conns)
	defer tr.CloseIdleConnections()
	var next atomic.Int64
	var mu sync.Mutex
	var all counts
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine counts
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					break
				}
				code, err := post(ctx, c, url, p.body(i))
				mine.add(code, err)
			}
			mu.Lock()
			all.merge(mine)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all
}

// vmRSS reads a process's resident set size from /proc/<pid>/status.
func vmRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read VmRSS: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseFloat(f[0], 64)
				if err == nil {
					return kb * 1024, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// heapProfiles, when set (-heap-profile), is the directory where forceGC
// saves each heap profile it asks for, numbered in order.
var heapProfiles string

var heapProfileSeq atomic.Int32

// forceGC has the daemon run a garbage collection: its heap profile with
// gc=1 collects before it is written (the profile itself is discarded
// unless -heap-profile names a directory for it).
func forceGC(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/heap?gc=1", nil)
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("force a GC: %w", err)
	}
	defer resp.Body.Close()
	w := io.Discard
	if heapProfiles != "" && resp.StatusCode == http.StatusOK {
		f, err := os.Create(filepath.Join(heapProfiles, fmt.Sprintf("heap-%02d.pb.gz", heapProfileSeq.Add(1))))
		if err != nil {
			return fmt.Errorf("save the heap profile: %w", err)
		}
		defer f.Close()
		w = f
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("force a GC: read the heap profile: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("force a GC: GET /debug/pprof/heap?gc=1: %s", resp.Status)
	}
	return nil
}

func mib(f float64) string { return strconv.FormatFloat(f/(1<<20), 'f', 1, 64) + " MiB" }

// memNothingToGive: growth under this is noise, not alerts held (the
// Redis daemon keeps alerts in Redis, not in its heap).
const memNothingToGive = 16 << 20

func memVerdict(r *memRow) string {
	if r.failed != "" {
		return "not run: " + r.failed
	}
	var miss []string
	if r.peakRSS >= memGoalRSS {
		miss = append(miss, fmt.Sprintf("RSS %s ≥ %s", mib(r.peakRSS), mib(memGoalRSS)))
	}
	if added := r.peakLive - r.idleLive; added >= memNothingToGive {
		if left := r.afterLive - r.idleLive; left > (1-memReleased)*added {
			miss = append(miss, fmt.Sprintf("live heap kept %.0f %% of what the alerts added", 100*left/added))
		}
	}
	if added := r.peakRSS - r.idleRSS; added >= memNothingToGive {
		if left := r.afterRSS - r.idleRSS; left > (1-memRSSReleased)*added {
			miss = append(miss, fmt.Sprintf("RSS kept %.0f %% of what the alerts added", 100*left/added))
		}
	}
	if !r.drained {
		miss = append(miss, "queue not drained")
	}
	if n := r.bad.bad() + r.bad.errs; n > 0 {
		miss = append(miss, fmt.Sprintf("%d non-2xx/errors", n))
	}
	return verdictCell(miss, "PASS")
}

func memSettings(o options) string {
	return fmt.Sprintf("each store on a freshly started daemon with webhook.dedup_window and pipeline.history_retention %s (Redis: store.redis.key_ttl left at its default, 7d), no route; %d alerts as 50-alert bodies (-vary label: every alert new) over %d keep-alive connections as fast as the daemon takes them; *peak RSS* once the queue is empty and every alert processed; *after retention*: %d new alerts sent %s after the drain, the live heap 2s later, the RSS %s after that; *live heap* is go_memstats_heap_alloc_bytes right after GET /debug/pprof/heap?gc=1 (a forced GC), RSS the daemon's VmRSS",
		o.memWindow, o.memAlerts, o.concurrency, memTriggers, o.memWindow+5*time.Second, memSettle)
}

func memTable(w io.Writer, rows []*memRow) {
	fmt.Fprintln(w, "| target | alerts | idle RSS / live heap | peak RSS | peak live heap | live heap after retention | RSS after retention | target | vs target |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|---|---|")
	goal := fmt.Sprintf("RSS < %s; back down: live heap by %.0f %%, RSS by %.0f %% of what the alerts added", mib(memGoalRSS), 100*memReleased, 100*memRSSReleased)
	for _, r := range rows {
		if r.failed != "" {
			fmt.Fprintf(w, "| %s | | | | | | | %s | %s |\n", r.target, goal, memVerdict(r))
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s / %s | %s | %s | %s | %s | %s | %s |\n",
			r.target, thousands(float64(r.alerts)), mib(r.idleRSS), mib(r.idleLive), mib(r.peakRSS), mib(r.peakLive), mib(r.afterLive), mib(r.afterRSS), goal, memVerdict(r))
	}
}

func memDetails(w io.Writer, rows []*memRow) {
	for _, r := range rows {
		if r.failed != "" {
			continue
		}
		held := ""
		if r.afterSizes != nil {
			held = fmt.Sprintf(", the store then still held %s values and %s dedup keys", thousands(r.afterSizes["values"]), thousands(r.afterSizes["dedup_keys"]))
		}
		fmt.Fprintf(w, "- %s: %d requests sent in %s (%s non-2xx/errors), queue empty and %s of %s alerts processed after %s; last reading %s after the first request, queue depth then %.0f%s; shutdown %s.\n",
			r.target, r.requests, r.sendTime.Round(time.Millisecond), thousands(float64(r.bad.bad()+r.bad.errs)), thousands(r.processed), thousands(r.received), r.drainTime.Round(time.Millisecond), r.waited.Round(time.Second), r.afterDepth, held, r.shutdown.Round(time.Millisecond))
	}
}

func memIntro(o options, rows []*memRow) string {
	if o.memAlerts == 0 || len(rows) == 0 {
		return ""
	}
	var missed []string
	for _, r := range rows {
		v := memVerdict(r)
		if v == "PASS" {
			continue
		}
		why := strings.TrimPrefix(strings.TrimPrefix(v, "MISS: "), "not run: ")
		if r.afterSizes != nil && r.failed == "" {
			why += fmt.Sprintf(" (after the retention the memory store still held %s values and %s dedup keys: what it keeps past pipeline.history_retention and webhook.dedup_window is what stays live)", thousands(r.afterSizes["values"]), thousands(r.afterSizes["dedup_keys"]))
		}
		missed = append(missed, r.target+": "+why)
	}
	analysis := "In this run every store met it."
	if len(missed) > 0 {
		analysis = "Missed in this run by " + strings.Join(missed, "; ") + "."
	}
	return fmt.Sprintf(`
**Memory** (the first memory table, its retention part): the daemon's resident memory after %s
distinct alerts, and again after their retention ran out. The daemon runs
with `+"`webhook.dedup_window`"+` and `+"`pipeline.history_retention`"+` of %s
(Redis keeps its default `+"`store.redis.key_ttl`"+` of 7d: one as short as the
window expired the idle queue stream under the workers in a trial run),
so the scenario stays short, and
no route, so nothing is delivered. The bench sends the alerts as 50-alert
bodies, every alert a new one, as fast as the daemon takes them, waits until
`+"`alertmedic_queue_depth`"+` is 0 and every alert processed, and reads the
daemon's VmRSS from /proc/<pid>/status (*peak RSS*). It then asks the
daemon for a garbage collection (`+"`GET /debug/pprof/heap?gc=1`"+`, the heap
profile's own switch) and reads `+"`go_memstats_heap_alloc_bytes`"+` from
/metrics: the *live heap*, what the daemon still references, whatever the
time of its last collection. It waits until the window plus 5 s has passed
since the drain, sends %d new 1-alert bodies (the memory store drops what
expired when it is written to), reads the live heap the same way 2 s later,
and the resident set %s after that: Go returns freed pages to the
operating system in the background, a little at a time, and the RSS is
taken as the kernel reports it then (no FreeOSMemory). With Redis the
figures are the daemon's, not Redis's.

**Target** (memory): resident set below %s at %s alerts; after the
retention at most %.0f %% of what the alerts added to the live heap (peak
minus the idle daemon's) still live, and at most %.0f %% of what they added
to the resident set still resident; no non-2xx answer. %s
`, thousands(float64(o.memAlerts)), o.memWindow, memTriggers, memSettle, mib(memGoalRSS), thousands(float64(o.memAlerts)), 100*(1-memReleased), 100*(1-memRSSReleased), analysis)
}

// The memory scenario's second part runs the daemon as a first user does:
// the shipped example configuration (no --config.file: the embedded
// config/example.yml, memory store, every integration without credentials
// rendering into the log), on a loopback port, its log in a file. It takes
// -mem-alerts distinct firing alerts as 50-alert bodies (severity critical,
// so each goes to PagerDuty, email and Slack #alerts-critical, all three
// rendered into the log), over -post-conns connections, each 503 sent again
// after its Retry-After. Once the queue and the outbox are empty it reads
// the live heap after a forced GC, and the resident set then and memSettle
// later; the peak resident set is sampled all along.

// Targets of the shipped-configuration part: the live heap, and the resident
// set memSettle after the forced GC (the peak is shown beside it).
const (
	shipGoalLive = 60 << 20
	shipGoalRSS  = memGoalRSS
)

// shipDrainWait bounds the wait for the queue and the outbox to empty.
const shipDrainWait = 3 * time.Minute

type shipRow struct {
	target string
	kind   string
	failed string

	alerts, requests int
	send             sendResult
	sendTime         time.Duration
	drainTime        time.Duration
	drained          bool

	idleRSS, idleLive float64
	peakRSS           float64
	live              float64 // after a forced GC, queue and outbox empty
	rssAtGC           float64
	rssAfter          float64 // memSettle after that
	// The runtime's account at the last reading: heap in use, freed but
	// still resident, returned to the OS.
	heapInuse, heapFree, heapReleased float64
	sizes                             map[string]float64
	processed, received               float64
	logBytes                          int64
	shutdown                          time.Duration
	logIssues                         int
}

func (b *bench) runShipped(ctx context.Context, fifty *pool) ([]*shipRow, error) {
	if b.o.memAlerts == 0 || !b.o.scenarios[scMemShipped] || !b.o.targets[kindMemory] {
		return nil, nil
	}
	requests := (b.o.memAlerts + fifty.alerts - 1) / fifty.alerts
	if requests > fifty.n {
		b.notef("memory (shipped configuration): the 50-alert pool holds %d bodies, %d needed; sending %d", fifty.n, requests, fifty.n)
		requests = fifty.n
	}
	r := &shipRow{target: "alertmedic, shipped example configuration (memory store)", kind: kindMemory}
	if err := b.shipScenario(ctx, r, fifty, requests); err != nil {
		if ctx.Err() != nil {
			return []*shipRow{r}, ctx.Err()
		}
		r.failed = b.scenarioFailed(err)
	}
	return []*shipRow{r}, nil
}

func (b *bench) shipScenario(ctx context.Context, r *shipRow, fifty *pool, requests int) error {
	label := fmt.Sprintf("memory / shipped configuration, %s alerts", thousands(float64(requests*fifty.alerts)))
	b.settle(ctx, label, r.kind)
	// No --config.file and the daemon's default log level (info): what a
	// first user runs, with the listen address the only change.
	srv, err := b.startDaemon(ctx, r.kind, label, "memory-shipped", "")
	if err != nil {
		return err
	}
	defer srv.stop(shutdownTimeout + 25*time.Second)
	lctx, cancel := srv.context(ctx)
	defer cancel()
	pid := srv.cmd.Process.Pid
	base := "http://" + srv.addr
	exited := func(while string) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %s exited or was stopped while %s (%s)\nlast lines of %s:\n%s", label, srv.name, while, srv.exitStatus(), srv.logPath, tail(srv.logPath, 20))
	}
	if err := forceGC(lctx, base); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	m, err := scrape(lctx, base+"/metrics")
	if err != nil {
		return fmt.Errorf("%s: read /metrics: %w", label, err)
	}
	r.idleLive = m["go_memstats_heap_alloc_bytes"]
	if r.idleRSS, err = vmRSS(pid); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}

	// The peak resident set, sampled until the forced GC.
	stopPeak := make(chan struct{})
	peakDone := make(chan float64)
	go func() {
		peak := r.idleRSS
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := vmRSS(pid); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-stopPeak:
				peakDone <- peak
				return
			case <-t.C:
			}
		}
	}()
	peakStopped := false
	stop := func() {
		if !peakStopped {
			peakStopped = true
			close(stopPeak)
			r.peakRSS = <-peakDone
		}
	}
	defer stop()

	fmt.Fprintf(b.log, "bench: %s: sending %d bodies of %d alerts over %d connections ...\n", label, requests, fifty.alerts, b.o.postConns)
	t0 := time.Now()
	r.send = sendRetrying(lctx, base+"/webhook", requests, fifty.body, b.o.postConns)
	r.sendTime = time.Since(t0)
	r.requests, r.alerts = requests, r.send.sentAlerts(func(int) int { return fifty.alerts })

	// Wait for the workers and the dispatcher: queue and outbox empty,
	// every accepted alert processed.
	deadline := time.Now().Add(shipDrainWait)
	for {
		if m, err = scrape(lctx, base+"/metrics"); err != nil {
			if lctx.Err() != nil {
				return exited("draining")
			}
			return fmt.Errorf("%s: read /metrics: %w", label, err)
		}
		if m["alertmedic_queue_depth"] == 0 && m[`alertmedic_store_size{kind="outbox"}`] == 0 &&
			m["alertmedic_alerts_processed_total"] >= m["alertmedic_alerts_received_total"] {
			r.drained = true
			break
		}
		if time.Now().After(deadline) {
			b.notef("%s: after %s the queue still held %.0f entries and the outbox %.0f items; the figures are read then", label, shipDrainWait, m["alertmedic_queue_depth"], m[`alertmedic_store_size{kind="outbox"}`])
			break
		}
		select {
		case <-lctx.Done():
			return exited("draining")
		case <-time.After(200 * time.Millisecond):
		}
	}
	r.drainTime = time.Since(t0)
	r.processed, r.received = m["alertmedic_alerts_processed_total"], m["alertmedic_alerts_received_total"]
	r.sizes = map[string]float64{}
	for _, k := range []string{"values", "dedup_keys", "outbox", "queued"} {
		r.sizes[k] = m[fmt.Sprintf(`alertmedic_store_size{kind=%q}`, k)]
	}
	if err := forceGC(lctx, base); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	stop()
	if m, err = scrape(lctx, base+"/metrics"); err != nil {
		return fmt.Errorf("%s: read /metrics: %w", label, err)
	}
	r.live = m["go_memstats_heap_alloc_bytes"]
	if r.rssAtGC, err = vmRSS(pid); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	fmt.Fprintf(b.log, "bench: %s: sent in %s (%d 503s sent again), drained after %s: live heap %s, RSS %s (peak %s); RSS again in %s ...\n",
		label, r.sendTime.Round(time.Millisecond), r.send.retries503, r.drainTime.Round(time.Millisecond), mib(r.live), mib(r.rssAtGC), mib(r.peakRSS), memSettle)
	select {
	case <-lctx.Done():
		return exited("settling")
	case <-time.After(memSettle):
	}
	if r.rssAfter, err = vmRSS(pid); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	if m, err = scrape(lctx, base+"/metrics"); err == nil {
		r.heapInuse = m["go_memstats_heap_inuse_bytes"]
		r.heapReleased = m["go_memstats_heap_released_bytes"]
		r.heapFree = m["go_memstats_heap_idle_bytes"] - r.heapReleased
	}
	fmt.Fprintf(b.log, "bench: %s: RSS %s after %s (heap in use %s, freed but resident %s, returned %s)\n",
		label, mib(r.rssAfter), memSettle, mib(r.heapInuse), mib(r.heapFree), mib(r.heapReleased))

	var st daemonStats
	err = b.stopDaemon(ctx, label, r.kind, srv, &st)
	r.shutdown, r.logIssues = st.shutdown, st.logIssues
	if fi, serr := os.Stat(srv.logPath); serr == nil {
		r.logBytes = fi.Size()
	}
	return err
}

func shipVerdict(r *shipRow) string {
	if r.failed != "" {
		return "MISS: not measured"
	}
	var miss []string
	if r.live > shipGoalLive {
		miss = append(miss, fmt.Sprintf("live heap %s > %s", mib(r.live), mib(shipGoalLive)))
	}
	if r.rssAfter > shipGoalRSS {
		miss = append(miss, fmt.Sprintf("RSS %s after the GC %s > %s", memSettle, mib(r.rssAfter), mib(shipGoalRSS)))
	}
	if !r.drained {
		miss = append(miss, "queue or outbox not drained")
	}
	if n := r.send.bad() + r.send.errs; n > 0 {
		miss = append(miss, fmt.Sprintf("%d failed requests", n))
	}
	return verdictCell(miss, "PASS")
}

func shipSettings(o options) string {
	return fmt.Sprintf("the daemon with no --config.file (the embedded config/example.yml: memory store, every integration rendering into the log) and `--web.listen-address` on 127.0.0.1, its log (JSON, level info) in a file; %s distinct alerts as 50-alert bodies (group_50.json with a `bench_seq` label per body, severity critical: PagerDuty, email and Slack #alerts-critical) over %d keep-alive connections, a 503 sent again after its Retry-After; *live heap* is go_memstats_heap_alloc_bytes right after GET /debug/pprof/heap?gc=1 once alertmedic_queue_depth and alertmedic_store_size{kind=\"outbox\"} are 0, *RSS after* the daemon's VmRSS %s after that, *peak RSS* the highest VmRSS sampled every 100 ms from the first request to the GC",
		thousands(float64(o.memAlerts)), o.postConns, memSettle)
}

func shipTable(w io.Writer, rows []*shipRow, withVerdict bool) {
	tableHead(w, fmt.Sprintf("| target | alerts | idle RSS / live heap | live heap | RSS at the GC | RSS %s after (target) | peak RSS | target |", memSettle),
		"|---|--:|--:|--:|--:|--:|--:|---|", withVerdict)
	goal := fmt.Sprintf("live heap ≤ %s, RSS %s after the GC ≤ %s", mib(shipGoalLive), memSettle, mib(shipGoalRSS))
	for _, r := range rows {
		var c []string
		if r.failed != "" {
			c = []string{r.target, "failed", "", "", "", "", "", goal}
		} else {
			c = []string{r.target, thousands(float64(r.alerts)), mib(r.idleRSS) + " / " + mib(r.idleLive), mib(r.live), mib(r.rssAtGC), mib(r.rssAfter), mib(r.peakRSS), goal}
		}
		tableRow(w, c, withVerdict, shipVerdict(r))
	}
}

func shipDetails(w io.Writer, rows []*shipRow) {
	for _, r := range rows {
		if r.failed != "" {
			continue
		}
		fmt.Fprintf(w, "- %s: %d requests sent in %s (%d 503s sent again, %s non-2xx/errors), queue and outbox empty and %s of %s alerts processed after %s; the store then held %s alert values, %s dedup keys, %s outbox items; %s after the GC the runtime had %s of heap in use, %s freed but still resident, %s returned to the OS; the log took %s; shutdown %s.\n",
			r.target, r.requests, r.sendTime.Round(time.Millisecond), r.send.retries503, thousands(float64(r.send.bad()+r.send.errs)), thousands(r.processed), thousands(r.received), r.drainTime.Round(time.Millisecond),
			thousands(r.sizes["values"]), thousands(r.sizes["dedup_keys"]), thousands(r.sizes["outbox"]), memSettle, mib(r.heapInuse), mib(r.heapFree), mib(r.heapReleased), mib(float64(r.logBytes)), r.shutdown.Round(time.Millisecond))
	}
}

// shipIntro explains the shipped-configuration part in BENCHMARKS.md, with
// its targets and, from the run's figures, what missed them and why.
func shipIntro(o options, rows []*shipRow) string {
	if o.memAlerts == 0 || len(rows) == 0 {
		return ""
	}
	var missed []string
	for _, r := range rows {
		v := shipVerdict(r)
		if v == "PASS" {
			continue
		}
		why := strings.TrimPrefix(v, "MISS: ")
		if r.failed == "" && r.rssAfter > shipGoalRSS {
			why += fmt.Sprintf(". The live heap is %s, so most of that resident set is not alerts: %s after the GC the runtime still held %s of heap it had freed but not returned to the operating system (Go's background scavenger returns it a little at a time) beside %s in use; the peak, %s, is the garbage of taking the alerts in (decoding the bodies, rendering three log notifications per alert) at full speed, and what the resident set keeps of it depends on how fast the scavenger works on this host", mib(r.live), memSettle, mib(r.heapFree), mib(r.heapInuse), mib(r.peakRSS))
		}
		if r.failed == "" && r.live > shipGoalLive {
			why += fmt.Sprintf(". The store held %s alert values and %s dedup keys for them then (the shipped dedup_window is 10m and history_retention 24h, so all of them are still needed)", thousands(r.sizes["values"]), thousands(r.sizes["dedup_keys"]))
		}
		missed = append(missed, fmt.Sprintf("%s: %s", r.target, why))
	}
	analysis := "in this run it was met."
	if len(missed) > 0 {
		analysis = "missed in this run by " + strings.Join(missed, "; ") + "."
	}
	return fmt.Sprintf(`
**Memory with the shipped configuration** (the second memory table): the
daemon as a first user runs it, without --config.file (the embedded
`+"`config/example.yml`"+`: the memory store, the shipped routing, every
integration rendering into the log; the listen address, on 127.0.0.1, is
the only change, and the log goes to a file), taking %s distinct firing
alerts as 50-alert bodies (severity critical, so each goes to PagerDuty,
email and Slack `+"`#alerts-critical`"+`, all three through the outbox) over %d
keep-alive connections, every 503 sent again after its Retry-After. Once
`+"`alertmedic_queue_depth`"+` and `+"`alertmedic_store_size{kind=\"outbox\"}`"+` are 0 the
bench forces a GC (`+"`GET /debug/pprof/heap?gc=1`"+`) and reads
`+"`go_memstats_heap_alloc_bytes`"+` (the *live heap*) and the daemon's VmRSS, and
reads VmRSS again %s later (*RSS after*, the figure the target uses: Go
returns freed pages to the operating system in the background, and the
resident set right after a burst is mostly garbage already collected); the
*peak RSS*, sampled every 100 ms from the first request to the GC, is shown
beside it. Nothing expires meanwhile: the shipped dedup window is 10
minutes and the history retention 24 hours, so this part does not check
retention (the first memory table does, with short ones).

**Target** (memory, shipped configuration): live heap at most %s and
resident set %s after the GC at most %s at %s alerts, the queue and the
outbox drained, every body answered 200 in the end; %s
`, thousands(float64(o.memAlerts)), o.postConns, memSettle, mib(shipGoalLive), memSettle, mib(shipGoalRSS), thousands(float64(o.memAlerts)), analysis)
}
