package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The end-to-end scenario times what an operator waits for: from the
// webhook POST to the Slack message and the PagerDuty event. The daemon
// routes every alert to one Slack target and one PagerDuty target whose
// endpoints are stand-ins served by the bench itself on 127.0.0.1; each
// stand-in finds in each request which alerts it carries and when it came,
// and each alert's latency is that time minus the request's scheduled send
// time (the open loop's clock, so a stall counts against every alert it
// delayed). The dispatcher may merge alerts that waited for the same Slack
// target into one message: each alert carried gets the message's time.
// PagerDuty gets one event per alert.

// e2eGoal is the target: end-to-end p99 below this, every accepted alert
// delivered.
const e2eGoal = 100 * time.Millisecond

// e2eChannel is the channel the route's target names; a message elsewhere
// is a finding.
const e2eChannel = "#bench"

// e2ePath is the Slack stand-in's webhook path, as Slack's /services/...
// URLs; e2ePDPath is the Events API v2 path go-pagerduty posts to.
const (
	e2ePath   = "/services/bench"
	e2ePDPath = "/v2/enqueue"
)

// e2eRoutingKey is the PagerDuty routing key of the scenario's daemon; an
// event with another is a finding.
const e2eRoutingKey = "bench-routing-key"

// e2eSeqLayout is written at the start of the summary annotation, which the
// Slack message shows as its attachment's text; fixed-width so that every
// body has the same length.
const e2eSeqLayout = "bench_seq %09d: "

var e2eSeqRE = regexp.MustCompile(`bench_seq (\d{9})`)

// moreRE is the attachment the Slack integration adds for the alerts past
// its max_attachments: they arrive, but the message does not say which.
var moreRE = regexp.MustCompile(`^and (\d+) more alerts?$`)

// e2eConfig is the part of the daemon's configuration that makes it
// deliver: every alert to one Slack target and one PagerDuty target, the
// stand-ins at slackAddr and pdAddr, and no rate limit (the default is
// Slack's 1 message/s per channel; this scenario measures the pipeline,
// not that policy).
func e2eConfig(slackAddr, pdAddr string) string {
	return "route:\n  receiver: bench\n" +
		"receivers:\n  - name: bench\n    integrations:\n" +
		"      - type: slack\n        settings: {channel: \"" + e2eChannel + "\"}\n" +
		"      - type: pagerduty\n" +
		"integrations:\n  slack:\n    api_url: http://" + slackAddr + e2ePath + "\n" +
		"  pagerduty:\n    routing_key: " + e2eRoutingKey + "\n    url: http://" + pdAddr + e2ePDPath + "\n" +
		"delivery:\n  rate_limits:\n    slack: {per_second: 0}\n    pagerduty: {per_second: 0}\n"
}

// newE2EPool makes n bodies of the 1-alert payload, body i with a label
// bench_seq i (a new alert, as -vary label makes them) and "bench_seq i: "
// at the start of its summary annotation, where the Slack message shows it.
// The ingest scenarios keep their own pools.
func newE2EPool(path string, n int) (*pool, error) {
	tmpl, probe, err := readPayload(path)
	if err != nil {
		return nil, err
	}
	if len(probe.Alerts) != 1 || probe.Alerts[0].Annotations["summary"] == "" {
		return nil, fmt.Errorf("payload %s: the end-to-end scenario wants one alert with a summary annotation", path)
	}
	// Slots after each key, in the order they occur: a label slot at the
	// start of the labels object, a summary slot at the start of each
	// summary value (the alert's and commonAnnotations').
	type slot struct {
		at    int
		label bool
	}
	var slots []slot
	for _, k := range []struct {
		key   string
		label bool
	}{{`"labels":{`, true}, {`"summary":"`, false}} {
		off := 0
		for {
			i := bytes.Index(tmpl[off:], []byte(k.key))
			if i < 0 {
				break
			}
			off += i + len(k.key)
			slots = append(slots, slot{off, k.label})
		}
	}
	slices.SortFunc(slots, func(a, b slot) int { return a.at - b.at })
	fill := func(s slot, i int) string {
		if s.label {
			return fmt.Sprintf(seqLayout, i)
		}
		return fmt.Sprintf(e2eSeqLayout, i)
	}
	size := len(tmpl)
	for _, s := range slots {
		size += len(fill(s, 0))
	}
	p := &pool{name: "1 alert", alerts: 1, size: size, n: n, buf: make([]byte, 0, n*size)}
	for i := range n {
		prev := 0
		for _, s := range slots {
			p.buf = append(p.buf, tmpl[prev:s.at]...)
			p.buf = append(p.buf, fill(s, i)...)
			prev = s.at
		}
		p.buf = append(p.buf, tmpl[prev:]...)
		if len(p.buf) != (i+1)*size {
			return nil, fmt.Errorf("payload %s: body %d has %d bytes, want %d", path, i, len(p.buf)-i*size, size)
		}
	}
	for _, i := range []int{0, n - 1} {
		var m ceilingMessage
		if err := json.Unmarshal(p.body(i), &m); err != nil {
			return nil, fmt.Errorf("payload %s: generated body %d does not decode: %w", path, i, err)
		}
		a := m.Alerts[0]
		want := fmt.Sprintf("%09d", i)
		if len(m.Alerts) != 1 || a.Labels["bench_seq"] != want || !strings.HasPrefix(a.Annotations["summary"], fmt.Sprintf(e2eSeqLayout, i)) {
			return nil, fmt.Errorf("payload %s: generated body %d has labels %v and summary %q, want bench_seq %s in both", path, i, a.Labels, a.Annotations["summary"], want)
		}
	}
	return p, nil
}

// standIn is a notification service's stand-in: it reads each request with
// parse, notes when each alert first came, and answers with reply, as the
// service does.
type standIn struct {
	name  string // "Slack", "PagerDuty"
	path  string
	parse func(body []byte) (got parsed, err error)
	reply func(w http.ResponseWriter)

	srv  *http.Server
	addr string
	errc chan error

	mu        sync.Mutex
	got       map[int]time.Time // bench_seq → first request carrying it
	dups      int               // alerts carried again by a later request
	hidden    int               // alerts only counted in "and N more alerts"
	unknown   int               // parts with no bench_seq
	bad       int               // requests that could not be read
	firstBad  string
	wrongDest int // requests for another channel or routing key
	messages  int
	maxPerMsg int
	last      time.Time

	// keyHeader, when set, names the request header that identifies a
	// message across retries (the webhook's Idempotency-Key): a request
	// whose key came before is what a real endpoint drops.
	keyHeader       string
	keys            map[string]int
	keyRepeats      int // requests whose key had come before
	keyRepeatAlerts int // alerts those carried
	receipts        int // alerts carried, duplicates included

	// frozen: every request is answered 503 and not counted, so that what
	// the stand-in counted and what the daemon counts as delivered can be
	// compared while a delivery is still under way (the storm).
	frozen     bool
	turnedAway int // requests answered 503 since the freeze
}

// freeze has the stand-in answer every further request 503 (Retry-After:
// 60) without counting it.
func (s *standIn) freeze() {
	s.mu.Lock()
	s.frozen = true
	s.mu.Unlock()
}

// parsed is what a stand-in found in one request.
type parsed struct {
	seqs            []int
	hidden, unknown int
	wrongDest       bool
}

func startStandIn(name, path string, parse func([]byte) (parsed, error), reply func(http.ResponseWriter)) (*standIn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%s stand-in: listen: %w", name, err)
	}
	s := &standIn{name: name, path: path, parse: parse, reply: reply, addr: ln.Addr().String(), got: map[int]time.Time{}, errc: make(chan error, 1)}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { s.errc <- s.srv.Serve(ln) }()
	return s, nil
}

func startSlack() (*standIn, error) {
	return startStandIn("Slack", e2ePath, parseSlack, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
}

func startPagerDuty() (*standIn, error) {
	return startStandIn("PagerDuty", e2ePDPath, parsePagerDuty, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"status":"success","message":"Event processed"}`)
	})
}

func (s *standIn) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.errc
}

// slackMessage is the part of Slack's webhook message the stand-in reads.
type slackMessage struct {
	Channel     string `json:"channel"`
	Text        string `json:"text"`
	Attachments []struct {
		Title    string `json:"title"`
		Text     string `json:"text"`
		Fallback string `json:"fallback"`
		Fields   []struct {
			Title string `json:"title"`
			Value string `json:"value"`
		} `json:"fields"`
	} `json:"attachments"`
}

func parseSlack(body []byte) (parsed, error) {
	var m slackMessage
	var p parsed
	if err := json.Unmarshal(body, &m); err != nil {
		return p, err
	}
	for _, a := range m.Attachments {
		found := e2eSeqRE.FindStringSubmatch(a.Text)
		if found == nil {
			all := a.Title + "\n" + a.Fallback
			for _, f := range a.Fields {
				all += "\n" + f.Value
			}
			found = e2eSeqRE.FindStringSubmatch(all)
		}
		if found != nil {
			n, _ := strconv.Atoi(found[1])
			p.seqs = append(p.seqs, n)
			continue
		}
		if more := moreRE.FindStringSubmatch(a.Text); more != nil {
			n, _ := strconv.Atoi(more[1])
			p.hidden += n
			continue
		}
		p.unknown++
	}
	p.wrongDest = m.Channel != e2eChannel
	return p, nil
}

// pdEvent is the part of an Events API v2 event the stand-in reads.
type pdEvent struct {
	RoutingKey  string `json:"routing_key"`
	EventAction string `json:"event_action"`
	Payload     struct {
		Summary string `json:"summary"`
	} `json:"payload"`
}

// parsePagerDuty reads one event: one alert, its bench_seq at the start of
// the summary (the integration's default summary is the alert's summary
// annotation).
func parsePagerDuty(body []byte) (parsed, error) {
	var e pdEvent
	var p parsed
	if err := json.Unmarshal(body, &e); err != nil {
		return p, err
	}
	if found := e2eSeqRE.FindStringSubmatch(e.Payload.Summary); found != nil {
		n, _ := strconv.Atoi(found[1])
		p.seqs = []int{n}
	} else {
		p.unknown = 1
	}
	p.wrongDest = e.RoutingKey != e2eRoutingKey || e.EventAction != "trigger"
	return p, nil
}

func (s *standIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	at := time.Now()
	var m parsed
	switch {
	case err != nil:
	case r.Method != http.MethodPost || r.URL.Path != s.path:
		err = fmt.Errorf("%s %s", r.Method, r.URL.Path)
	default:
		m, err = s.parse(body)
	}
	if err != nil {
		s.mu.Lock()
		s.bad++
		if s.firstBad == "" {
			s.firstBad = err.Error()
		}
		s.mu.Unlock()
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	key := ""
	if s.keyHeader != "" {
		key = r.Header.Get(s.keyHeader)
	}
	s.mu.Lock()
	if s.frozen {
		s.turnedAway++
		s.mu.Unlock()
		w.Header().Set("Retry-After", "60")
		http.Error(w, "frozen", http.StatusServiceUnavailable)
		return
	}
	s.messages++
	s.receipts += len(m.seqs)
	if key != "" {
		if s.keys == nil {
			s.keys = map[string]int{}
		}
		if s.keys[key] > 0 {
			s.keyRepeats++
			s.keyRepeatAlerts += len(m.seqs)
		}
		s.keys[key]++
	}
	s.maxPerMsg = max(s.maxPerMsg, len(m.seqs)+m.hidden)
	s.hidden += m.hidden
	s.unknown += m.unknown
	if m.wrongDest {
		s.wrongDest++
	}
	for _, n := range m.seqs {
		if _, ok := s.got[n]; ok {
			s.dups++
			continue
		}
		s.got[n] = at
	}
	s.last = at
	s.mu.Unlock()
	s.reply(w)
}

// count says how many of seqs have arrived.
func (s *standIn) count(seqs []int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range seqs {
		if _, ok := s.got[q]; ok {
			n++
		}
	}
	return n
}

// e2eRow is one store's end-to-end scenario, as one destination saw it.
type e2eRow struct {
	target string
	kind   string
	dest   string
	failed string
	res    *e2eResult
	info   scenarioInfo
}

// e2eDests are the destinations, in the order of the rows.
var e2eDests = []string{"Slack", "PagerDuty"}

// e2eResult is what one stand-in saw, matched with what the load sent.
type e2eResult struct {
	dest      string
	ack       openResult // the webhook's own answers, at the same rate
	accepted  int        // alerts whose request was answered 200 (warm-up included)
	delivered int        // of those, how many the stand-in received
	missing   []int      // the rest, by bench_seq (at most a few kept)
	nMissing  int
	stray     int // alerts received whose request got no 200 (timed out, say)
	dups      int
	hidden    int
	unknown   int
	bad       int
	firstBad  string
	wrongDest int
	messages  int
	maxPerMsg int
	samples   int // latencies measured (after the warm-up)
	p50, p99  time.Duration
	max       time.Duration
	// drained is from the last request's scheduled send time to the last
	// delivery; timedOut says the wait for missing alerts hit -e2e-drain.
	drained  time.Duration
	timedOut bool
	// The daemon's counters after the deliveries.
	notifications, coalesced, notifyErrors, deadLetters float64
}

// runE2E runs the end-to-end scenario for each store that is benchmarked.
func (b *bench) runE2E(ctx context.Context) ([]*e2eRow, error) {
	if b.o.e2eRate == 0 || !b.o.scenarios["e2e"] {
		return nil, nil
	}
	need := int(float64(b.o.e2eRate)*(b.o.warmup+b.o.duration).Seconds()) + 1
	p, err := newE2EPool(filepath.Join(b.o.testdata, "firing.json"), min(need, b.o.maxRequests))
	if err != nil {
		return nil, err
	}
	var rows []*e2eRow
	for _, t := range storeTargets {
		if !b.selected(t) {
			continue
		}
		var mine []*e2eRow
		for _, d := range e2eDests {
			mine = append(mine, &e2eRow{target: t.name, kind: t.kind, dest: d})
		}
		rows = append(rows, mine...)
		fail := func(msg string) {
			for _, r := range mine {
				r.failed = msg
			}
		}
		if err := b.checkConfig(ctx, t.kind, e2eConfig("127.0.0.1:9", "127.0.0.1:9"), 0); err != nil {
			if ctx.Err() != nil {
				return rows, ctx.Err()
			}
			first, _, _ := strings.Cut(err.Error(), "\n")
			fmt.Fprintf(b.log, "bench: %v\n", err)
			fail(first)
			b.notef("end-to-end: %s", first)
			continue
		}
		res, info, err := b.e2eScenario(ctx, t.kind, p)
		for err == nil && info.cpu.other >= quietThreshold && b.retries > 0 {
			b.retries--
			fmt.Fprintf(b.log, "bench: other processes used %.0f %% of the machine; running the scenario again\n", info.cpu.other)
			again, ainfo, aerr := b.e2eScenario(ctx, t.kind, p)
			if aerr != nil {
				err = aerr
				break
			}
			if ainfo.cpu.other < info.cpu.other {
				res, info = again, ainfo
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return rows, ctx.Err()
			}
			fmt.Fprintf(b.log, "bench: %v\n", err)
			first, _, _ := strings.Cut(err.Error(), "\n")
			fail(first)
			b.notef("%s (the servers' logs are kept in %s)", first, b.tmp)
			b.keepLogs = true
			continue
		}
		if info.cpu.other >= quietThreshold {
			b.notef("%s / end-to-end: other processes used %.0f %% of the machine during the scenario; its figures are pessimistic", t.kind, info.cpu.other)
		}
		for i, r := range mine {
			r.res, r.info = res[i], info
		}
	}
	return rows, nil
}

// e2eScenario starts the stand-ins and a fresh daemon delivering to them,
// sends -e2e-rate requests/s for warm-up + duration, waits (at most
// -e2e-drain) for every accepted alert to arrive at both, and stops them.
// The results are in the order of e2eDests.
func (b *bench) e2eScenario(ctx context.Context, kind string, p *pool) ([]*e2eResult, scenarioInfo, error) {
	label := kind + " / end-to-end"
	info := scenarioInfo{name: "end-to-end"}
	pids := b.settle(ctx, label, kind)
	slack, err := startSlack()
	if err != nil {
		return nil, info, err
	}
	defer slack.close()
	pd, err := startPagerDuty()
	if err != nil {
		return nil, info, err
	}
	defer pd.close()
	sinks := []*standIn{slack, pd}
	srv, err := b.startTarget(ctx, kind, label, e2eConfig(slack.addr, pd.addr), 0)
	if err != nil {
		return nil, info, err
	}
	// Stopped below; this covers the early returns.
	defer srv.stop(5 * time.Second)
	pids["server"] = srv.cmd.Process.Pid
	cpu0 := snapCPU(pids)
	lctx, cancel := srv.context(ctx)
	defer cancel()

	fmt.Fprintf(b.log, "bench: %s: %s warm-up + %s at %d/s, then up to %s for the last deliveries ...\n", label, b.o.warmup, b.o.duration, b.o.e2eRate, b.o.e2eDrain)
	t0 := time.Now()
	ack, sends := openLoopSends(lctx, "http://"+srv.addr+"/webhook", p, b.o.e2eRate, b.o.workers, b.o.warmup, b.o.duration)
	loadTime := time.Since(t0)
	var accepted []int
	for i := 0; i < sends.scheduled; i++ {
		if sends.errs[i] == nil && sends.codes[i] == http.StatusOK {
			accepted = append(accepted, i)
		}
	}
	// Wait for the stragglers, bounded; the daemon is still running.
	deadline := time.Now().Add(b.o.e2eDrain)
	timedOut := false
	for (slack.count(accepted) < len(accepted) || pd.count(accepted) < len(accepted)) && ctx.Err() == nil && !srv.hasExited() {
		if time.Now().After(deadline) {
			timedOut = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return nil, info, ctx.Err()
	}
	if srv.hasExited() {
		return nil, info, fmt.Errorf("%s: %s exited during the load (%s)\nlast lines of %s:\n%s", label, srv.name, srv.cmd.ProcessState, srv.logPath, tail(srv.logPath, 20))
	}
	info.cpu = share(cpu0, snapCPU(pids))
	fmt.Fprintf(b.log, "bench: %s: CPU %s\n", label, cpuCell(info.cpu))

	st := &daemonStats{loadTime: loadTime}
	var daemon e2eResult // the daemon's delivery counters, for every row
	if m := b.metrics(ctx, label, srv); m != nil {
		st.read(m)
		daemon.notifications = m["alertmedic_notifications_total"]
		daemon.coalesced = m["alertmedic_notifications_coalesced_total"]
		daemon.notifyErrors = m["alertmedic_notification_errors_total"]
		daemon.deadLetters = m["alertmedic_notifications_dead_letters_total"]
	}
	if err := b.stopDaemon(ctx, label, kind, srv, st); err != nil {
		return nil, info, err
	}
	info.st = st

	// Match what was sent with what arrived. The daemon is stopped, so the
	// stand-ins see nothing more.
	var out []*e2eResult
	for _, sink := range sinks {
		res := b.e2eMatch(label, sink, sends, accepted)
		res.dest, res.ack, res.timedOut = sink.name, ack, timedOut
		res.notifications, res.coalesced, res.notifyErrors, res.deadLetters = daemon.notifications, daemon.coalesced, daemon.notifyErrors, daemon.deadLetters
		fmt.Fprintf(b.log, "bench: %s → %s: %d of %d accepted alerts delivered in %d requests (most in one: %d), p50 %s p99 %s max %s; ack p99 %s\n",
			label, sink.name, res.delivered, res.accepted, res.messages, res.maxPerMsg, ms(res.p50), ms(res.p99), ms(res.max), ms(ack.p99))
		out = append(out, res)
	}
	fmt.Fprintf(b.log, "bench: %s: daemon: %.0f notifications, %.0f coalesced, %.0f errors, %.0f dead letters; shutdown took %s\n",
		label, daemon.notifications, daemon.coalesced, daemon.notifyErrors, daemon.deadLetters, st.shutdown.Round(time.Millisecond))
	if daemon.notifyErrors > 0 || daemon.deadLetters > 0 {
		b.notef("%s: the daemon counted %.0f failed deliveries and %.0f dead letters", label, daemon.notifyErrors, daemon.deadLetters)
	}
	return out, info, nil
}

// e2eMatch holds what one stand-in got against what the load sent.
func (b *bench) e2eMatch(label string, sink *standIn, sends openSends, accepted []int) *e2eResult {
	res := &e2eResult{accepted: len(accepted)}
	sink.mu.Lock()
	got := sink.got
	res.dups, res.hidden, res.unknown, res.bad, res.firstBad = sink.dups, sink.hidden, sink.unknown, sink.bad, sink.firstBad
	res.wrongDest, res.messages, res.maxPerMsg = sink.wrongDest, sink.messages, sink.maxPerMsg
	last := sink.last
	sink.mu.Unlock()
	isAccepted := make(map[int]bool, len(accepted))
	var lat []time.Duration
	for _, i := range accepted {
		isAccepted[i] = true
		at, ok := got[i]
		if !ok {
			res.nMissing++
			if len(res.missing) < 5 {
				res.missing = append(res.missing, i)
			}
			continue
		}
		res.delivered++
		if i >= sends.skip {
			lat = append(lat, at.Sub(sends.sched(i)))
		}
	}
	for i := range got {
		if !isAccepted[i] {
			res.stray++
		}
	}
	if sends.scheduled > 0 && !last.IsZero() {
		res.drained = max(last.Sub(sends.sched(sends.scheduled-1)), 0)
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		res.samples = len(lat)
		res.p50, res.p99, res.max = percentile(lat, 0.50), percentile(lat, 0.99), lat[len(lat)-1]
	}
	if res.nMissing > 0 {
		why := ""
		if res.hidden > 0 {
			why = fmt.Sprintf(" (%d alerts arrived only as \"and N more alerts\")", res.hidden)
		}
		b.notef("%s: %d of %d accepted alerts never reached the %s stand-in within %s after the load%s, e.g. bench_seq %v", label, res.nMissing, res.accepted, sink.name, b.o.e2eDrain, why, res.missing)
	}
	if res.dups > 0 {
		b.notef("%s: %d alerts reached the %s stand-in more than once", label, res.dups, sink.name)
	}
	if res.bad > 0 || res.unknown > 0 || res.wrongDest > 0 {
		b.notef("%s: the %s stand-in got %d requests it could not read (first: %s), %d parts without a bench_seq, %d requests for another channel, routing key or action than the scenario's", label, sink.name, res.bad, res.firstBad, res.unknown, res.wrongDest)
	}
	if res.stray > 0 {
		b.notef("%s: %d alerts reached the %s stand-in whose request got no 200 (a timeout or reset after the daemon took it)", label, res.stray, sink.name)
	}
	return res
}

// e2eVerdict holds a row against the end-to-end goal: p99 below e2eGoal and
// every accepted alert delivered, without a refused or failed request.
func e2eVerdict(r *e2eRow) string {
	if r.failed != "" || r.res == nil {
		return "MISS: not measured"
	}
	var miss []string
	if r.res.samples == 0 {
		miss = append(miss, "no latency measured")
	} else if r.res.p99 >= e2eGoal {
		miss = append(miss, fmt.Sprintf("p99 %s ≥ %s", ms(r.res.p99), ms(e2eGoal)))
	}
	if r.res.nMissing > 0 {
		miss = append(miss, fmt.Sprintf("%d alerts not delivered", r.res.nMissing))
	}
	if n := r.res.ack.bad() + r.res.ack.errs; n > 0 {
		miss = append(miss, fmt.Sprintf("%d failed requests", n))
	}
	return verdictCell(miss, "PASS")
}

// e2eTable prints one line per store; withVerdict adds the goal column.
func e2eTable(w io.Writer, rows []*e2eRow, o options, withVerdict bool) {
	h := fmt.Sprintf("| target | to | alerts sent @%s/s | delivered | missing | requests (most alerts in one) | p50 | p99 | max | ack p99 | non-2xx | CPU: load generator + stand-ins / server / Redis / others |", thousands(float64(o.e2eRate)))
	tableHead(w, h, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|", withVerdict)
	for _, r := range rows {
		c := []string{r.target, r.dest}
		if r.res == nil {
			c = append(c, "failed", "", "", "", "", "", "", "", "", "see notes")
		} else {
			x := r.res
			missing := strconv.Itoa(x.nMissing)
			if x.hidden > 0 {
				missing += fmt.Sprintf(" (%d shown as \"and N more\")", x.hidden)
			}
			delivered := thousands(float64(x.delivered))
			if x.dups > 0 {
				delivered += fmt.Sprintf(" (+%d twice)", x.dups)
			}
			c = append(c, thousands(float64(x.accepted)), delivered, missing,
				fmt.Sprintf("%s (%d)", thousands(float64(x.messages)), x.maxPerMsg),
				ms(x.p50), ms(x.p99), ms(x.max), ms(x.ack.p99), badCell(x.ack.counts), cpuCell(r.info.cpu))
		}
		tableRow(w, c, withVerdict, e2eVerdict(r))
	}
}

// e2eDetails is a line per store with what the daemon said about the run.
func e2eDetails(w io.Writer, rows []*e2eRow) {
	for _, r := range rows {
		if r.res == nil || r.info.st == nil {
			continue
		}
		x, st := r.res, r.info.st
		drain := fmt.Sprintf("the last alert arrived %s after the last request was due", ms(x.drained))
		if x.timedOut {
			drain = "the wait for the last alerts timed out"
		}
		merged := "alerts"
		if x.coalesced == 1 {
			merged = "alert"
		}
		fmt.Fprintf(w, "- %s → %s: %s latency samples after the warm-up; %s; the daemon (both destinations) sent %s notifications (%s %s merged into another message), %s failed deliveries, %s dead letters, processed %s of %s alerts, shutdown %s.\n",
			r.target, r.dest, thousands(float64(x.samples)), drain, thousands(x.notifications), thousands(x.coalesced), merged, thousands(x.notifyErrors), thousands(x.deadLetters),
			thousands(st.processed), thousands(st.received), ms(st.shutdown))
	}
}

// e2eIntro explains the end-to-end scenario in BENCHMARKS.md, with its goal
// and the analysis of the last run (kept here, as the ingest analysis is,
// so that a rerun keeps it); empty when the scenario was skipped.
func e2eIntro(o options) string {
	if o.e2eRate == 0 {
		return ""
	}
	return fmt.Sprintf(`
**End to end** (the last table): the time from the webhook POST to the
Slack message and to the PagerDuty event, which is what the person on call
waits for. For this scenario the daemon's configuration also routes every
alert to one receiver with a `+"`slack`"+` integration (channel `+"`%s`"+`) and a
`+"`pagerduty`"+` integration; `+"`integrations.slack.api_url`"+` and
`+"`integrations.pagerduty.url`"+` point at stand-ins, http.Servers inside the
bench process on 127.0.0.1: an incoming webhook that answers 200 "ok", as
Slack does, and an Events API v2 endpoint that answers 202
`+"`{\"status\":\"success\"}`"+`, as PagerDuty does.
`+"`delivery.rate_limits.{slack,pagerduty}.per_second: 0`"+` lifts the rate limits
(by default Slack's own policy for incoming webhooks, 1 message a second
per target with a burst of 3), so the figures are the pipeline's (queue,
worker, flap state, outbox, dispatcher, HTTP post), not that policy's: with
the limit, alerts past the burst wait up to a second and go out merged into
the next message.

- **Load**: open loop at %d requests/s of 1 alert each for %s after a %s
  warm-up, on a freshly started daemon per store, with the ingest settings
  above. The bodies are firing.json with a `+"`bench_seq`"+` label unique to the
  request, as above, and the same number at the start of the summary
  annotation, which the Slack message shows as its attachment's text
  (title `+"`CRITICAL: HighErrorRate`"+`, text `+"`bench_seq 000000042: High HTTP 5xx…`"+`,
  fields Description, Status, Started At) and PagerDuty's event carries as
  its `+"`payload.summary`"+`.
- **p50/p99/max**: each stand-in reads each request, finds the sequence
  numbers of the alerts it carries and notes when it had read the body; an
  alert's latency is that time minus its request's scheduled send time (one
  clock, in one process; a stalled sender counts against the alerts it
  delayed). The dispatcher merges alerts that waited for the same Slack
  target into one message; every alert in it gets that message's time.
  PagerDuty gets one event per alert. Only the alerts sent after the
  warm-up are timed.
- **delivered / missing**: every alert whose request was answered 200,
  warm-up included, must arrive at both; after the load the bench waits up
  to %s (-e2e-drain) for the last ones, then counts the rest as missing.
  An alert a stand-in gets twice is shown as *+N twice*. *requests* counts
  the Slack messages or PagerDuty events and, in brackets, the most alerts
  one carried; *ack p99* is the webhook's own answer at this rate, for
  comparison. CPU is over the load and the wait for the last deliveries
  (one scenario feeds both rows), and the bench's share includes the
  stand-ins.

**Target** (end to end): p99 below %d ms at %d alerts/s with either store
and to either destination, every accepted alert delivered (missing 0) and
no non-2xx answer.

**End to end, the analysis**: an idle worker takes the entry as soon as it
is queued and the dispatcher is woken when the outbox gets an item, so an
alert's way to Slack or PagerDuty costs about one webhook answer plus one
post. With the memory store p99 stays near the ack's own p99, which
follows the host's pauses (see the stall probe); with Redis the outbox's
round trips (put, claim, settle), on the same two cores as Redis and the
load, add tens of milliseconds at p99. An alert bound for Slack merges into the next message when it is
due while the target's previous post is still under way (one message at a
time per target), which happens more with Redis, where claiming and
settling the outbox items of a send are Redis round trips that keep the
target busy longer. With Redis and two destinations this host's p99 has
ranged from about 40 to 90 ms from run to run, close to the target: a
pause of a few hundred milliseconds in that path (the host's, or Redis's)
pushes it over, and the alerts that waited meanwhile go out merged into one
Slack message; past the integration's max_attachments (20) those arrive
only as "and N more alerts", which the stand-in cannot attribute and the
table counts as missing ("N shown as and N more"). PagerDuty, one event per
alert, gets every one of them.
`, e2eChannel, o.e2eRate, o.duration, o.warmup, o.e2eDrain, e2eGoal.Milliseconds(), o.e2eRate)
}
