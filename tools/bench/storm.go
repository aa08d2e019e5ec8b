package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The storm scenario asks whether a burst of alerts, as a large outage
// brings, reaches every destination exactly once and how long that takes:
// -storm-alerts distinct firing alerts, posted as 50-alert bodies plus a few
// 1,000-alert ones (web.max_alerts' default) over -post-conns connections,
// every 503 sent again after its Retry-After, to a daemon that routes every
// alert to one Slack, one PagerDuty and one webhook target, all stand-ins in
// the bench process. Slack keeps its default rate limit (1 message a second
// per target, burst 3): a storm must merge into a few messages that show
// some alerts and count the rest ("and N more alerts"), not queue 100,000
// messages behind the limit. PagerDuty gets one event per alert, the webhook
// Alertmanager's v4 body, split every stormWebhookMax alerts.

// e2eWHPath is the webhook stand-in's path.
const e2eWHPath = "/bench/webhook"

// stormWebhookMax is integrations.webhook.max_alerts in the storm: a
// notification of more alerts goes out as several POSTs, each with its
// own Idempotency-Key.
const stormWebhookMax = 250

// stormBig is the size of the storm's big bodies (web.max_alerts' default),
// stormBigMax how many of them it sends at most.
const (
	stormBig    = 1000
	stormBigMax = 5
)

// stormSettle is how long the bench keeps the daemon running after the
// last alert arrived, for duplicates that would come late.
const stormSettle = 2 * time.Second

// stormFreeze is how long after freezing the stand-ins the daemon's
// metrics are read: a delivery the stand-in counted has been answered by
// then, and the daemon has counted it too.
const stormFreeze = time.Second

// stormStall ends the wait for deliveries when no stand-in got anything
// new for this long after the last 200.
const stormStall = 60 * time.Second

// stormIntegrations are the storm's destinations, as the daemon's metric
// labels name them, in the order of the rows.
var stormIntegrations = []struct{ name, label string }{
	{"Slack", "slack"},
	{"PagerDuty", "pagerduty"},
	{"webhook", "webhook"},
}

// stormLoad is the storm's bodies: body i carries alerts[i] alerts, alert k
// of the whole storm with the label bench_seq k and "bench_seq k: " at the
// start of its summary.
type stormLoad struct {
	bodies  [][]byte
	alerts  []int
	total   int
	big     int
	maxSize int
}

// newStormLoad builds the storm from the 50-alert capture at path: n alerts,
// min(stormBigMax, n/2000) bodies of stormBig alerts spread among the
// 50-alert ones. Every alert is new (a bench_seq label of its own); the
// template's alerts repeat, which gives each body 50 different instances.
func newStormLoad(path string, n int) (*stormLoad, error) {
	tmpl, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read payload: %w", err)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(tmpl, &env); err != nil {
		return nil, fmt.Errorf("decode payload %s: %w", path, err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(env["alerts"], &raws); err != nil || len(raws) == 0 {
		return nil, fmt.Errorf("payload %s: no alerts array (%v)", path, err)
	}
	// Each template alert split where the bench_seq goes: after the start
	// of its labels object and of its summary value.
	type split struct{ head, mid, tail []byte }
	var alerts []split
	for k, raw := range raws {
		var c bytes.Buffer
		if err := json.Compact(&c, raw); err != nil {
			return nil, fmt.Errorf("payload %s: alert %d: %w", path, k, err)
		}
		a := c.Bytes()
		l := bytes.Index(a, []byte(`"labels":{`))
		s := bytes.Index(a, []byte(`"summary":"`))
		if l < 0 || s < 0 || bytes.Count(a, []byte(`"labels":{`)) != 1 || bytes.Count(a, []byte(`"summary":"`)) != 1 {
			return nil, fmt.Errorf("payload %s: alert %d needs one labels object and one summary annotation", path, k)
		}
		l += len(`"labels":{`)
		s += len(`"summary":"`)
		if s < l {
			return nil, fmt.Errorf("payload %s: alert %d has its annotations before its labels", path, k)
		}
		alerts = append(alerts, split{a[:l], a[l:s], a[s:]})
	}
	// The envelope around the alerts, from a marshalled copy with a
	// placeholder array.
	env["alerts"] = json.RawMessage(`[0]`)
	whole, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("payload %s: %w", path, err)
	}
	at := bytes.Index(whole, []byte(`"alerts":[0]`))
	if at < 0 {
		return nil, fmt.Errorf("payload %s: cannot re-encode the envelope", path)
	}
	pre, post := whole[:at+len(`"alerts":[`)], whole[at+len(`"alerts":[0`):]

	big := min(stormBigMax, n/2000)
	var sizes []int
	for left := n - big*stormBig; left > 0; left -= len(raws) {
		sizes = append(sizes, min(left, len(raws)))
	}
	// Spread the big bodies among the small ones.
	for i := range big {
		at := (i + 1) * len(sizes) / (big + 1)
		sizes = append(sizes[:at], append([]int{stormBig}, sizes[at:]...)...)
	}
	l := &stormLoad{total: n, big: big}
	seq := 0
	for _, size := range sizes {
		var b bytes.Buffer
		b.Write(pre)
		for j := range size {
			if j > 0 {
				b.WriteByte(',')
			}
			a := alerts[seq%len(alerts)]
			b.Write(a.head)
			fmt.Fprintf(&b, seqLayout, seq)
			b.Write(a.mid)
			fmt.Fprintf(&b, e2eSeqLayout, seq)
			b.Write(a.tail)
			seq++
		}
		b.Write(post)
		l.bodies = append(l.bodies, b.Bytes())
		l.alerts = append(l.alerts, size)
		l.maxSize = max(l.maxSize, b.Len())
	}
	// The splice must leave valid messages carrying what intended: check
	// the first body, the last and every big one.
	first := 0
	for i, body := range l.bodies {
		if i == 0 || i == len(l.bodies)-1 || l.alerts[i] == stormBig {
			var m ceilingMessage
			if err := json.Unmarshal(body, &m); err != nil {
				return nil, fmt.Errorf("payload %s: generated storm body %d does not decode: %w", path, i, err)
			}
			if len(m.Alerts) != l.alerts[i] {
				return nil, fmt.Errorf("payload %s: generated storm body %d has %d alerts, want %d", path, i, len(m.Alerts), l.alerts[i])
			}
			for _, k := range []int{0, len(m.Alerts) - 1} {
				want := first + k
				a := m.Alerts[k]
				if a.Labels["bench_seq"] != fmt.Sprintf("%09d", want) || !strings.HasPrefix(a.Annotations["summary"], fmt.Sprintf(e2eSeqLayout, want)) {
					return nil, fmt.Errorf("payload %s: generated storm body %d, alert %d: labels %v, summary %q; want bench_seq %d in both", path, i, k, a.Labels, a.Annotations["summary"], want)
				}
			}
		}
		first += l.alerts[i]
	}
	if first != n {
		return nil, fmt.Errorf("storm: generated %d alerts, want %d", first, n)
	}
	return l, nil
}

// whMessage is the part of the v4 webhook body the webhook stand-in reads.
type whMessage struct {
	Version string `json:"version"`
	Alerts  []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// parseWebhook reads one v4 message: the bench_seq label of each alert; an
// alert the message only counts (truncatedAlerts) is hidden.
func parseWebhook(body []byte) (parsed, error) {
	var m whMessage
	var p parsed
	if err := json.Unmarshal(body, &m); err != nil {
		return p, err
	}
	for _, a := range m.Alerts {
		if n, err := strconv.Atoi(a.Labels["bench_seq"]); err == nil && a.Labels["bench_seq"] != "" {
			p.seqs = append(p.seqs, n)
		} else {
			p.unknown++
		}
		if a.Status != "firing" {
			p.wrongDest = true
		}
	}
	p.hidden = int(m.TruncatedAlerts)
	p.wrongDest = p.wrongDest || m.Version != "4"
	return p, nil
}

func startWebhook() (*standIn, error) {
	s, err := startStandIn("webhook", e2eWHPath, parseWebhook, func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusOK)
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.keyHeader = "Idempotency-Key"
	s.mu.Unlock()
	return s, nil
}

// sinkTally is what one stand-in got.
type sinkTally struct {
	messages, maxPerMsg         int
	receipts, distinct, dups    int
	hidden, unknown, bad, wrong int
	firstBad                    string
	keyRepeats, keyRepeatAlerts int
	last                        time.Time
}

func (s *standIn) tally() sinkTally {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sinkTally{
		messages: s.messages, maxPerMsg: s.maxPerMsg,
		receipts: s.receipts, distinct: len(s.got), dups: s.dups,
		hidden: s.hidden, unknown: s.unknown, bad: s.bad, wrong: s.wrongDest, firstBad: s.firstBad,
		keyRepeats: s.keyRepeats, keyRepeatAlerts: s.keyRepeatAlerts,
		last: s.last,
	}
}

// accounted is how many alerts the stand-in can vouch for: the distinct
// ones it saw and those a message only counted.
func (t sinkTally) accounted() int { return t.distinct + t.hidden }

// stormConfig routes every alert to one receiver with a Slack, a PagerDuty
// and a webhook target, the stand-ins; Slack keeps its default rate limit.
func stormConfig(slackAddr, pdAddr, whAddr string) string {
	return "route:\n  receiver: bench\n" +
		"receivers:\n  - name: bench\n    integrations:\n" +
		"      - type: slack\n        settings: {channel: \"" + e2eChannel + "\"}\n" +
		"      - type: pagerduty\n" +
		"      - type: webhook\n" +
		"integrations:\n  slack:\n    api_url: http://" + slackAddr + e2ePath + "\n" +
		"  pagerduty:\n    routing_key: " + e2eRoutingKey + "\n    url: http://" + pdAddr + e2ePDPath + "\n" +
		"  webhook:\n    url: http://" + whAddr + e2eWHPath + "\n    max_alerts: " + strconv.Itoa(stormWebhookMax) + "\n"
}

type stormRow struct {
	target string
	kind   string
	failed string

	alerts, bodies, big int
	sent                int // alerts whose body was answered 200
	send                sendResult
	ingest, drain       time.Duration
	timedOut            bool
	stalled             bool
	sinks               []sinkTally // in the order of stormIntegrations
	delivered, dead     []float64   // the daemon's alertmedic_notification_alerts_total
	notifyErrors        float64
	refusals            float64
	rateLimited         float64
	coalesced           float64
	info                scenarioInfo
	turnedAway          int // requests the frozen stand-ins answered 503
	// redisTime is where Redis spent its time from the first request to
	// the end of the wait (INFO commandstats; all clients), most first.
	redisTime []cmdTime
}

func (b *bench) runStorm(ctx context.Context) ([]*stormRow, error) {
	if b.o.stormAlerts == 0 || !b.o.scenarios["storm"] {
		return nil, nil
	}
	var load *stormLoad
	var rows []*stormRow
	var probe *redisProbe
	if b.o.targets[kindRedis] && b.redis != nil {
		var err error
		if probe, err = openProbe(ctx, b.o.redisURL); err != nil {
			return nil, fmt.Errorf("storm: connect to Redis for INFO commandstats: %w", err)
		}
		defer probe.close()
	}
	for _, t := range storeTargets {
		if !b.selected(t) {
			continue
		}
		if load == nil {
			t0 := time.Now()
			var err error
			if load, err = newStormLoad(filepath.Join(b.o.testdata, "group_50.json"), b.o.stormAlerts); err != nil {
				return nil, err
			}
			fmt.Fprintf(b.log, "bench: storm: %d bodies (%d of %d alerts) carrying %d alerts generated in %s, the largest %d bytes\n",
				len(load.bodies), load.big, stormBig, load.total, time.Since(t0).Round(time.Millisecond), load.maxSize)
		}
		r := &stormRow{target: t.name, kind: t.kind, alerts: load.total, bodies: len(load.bodies), big: load.big}
		rows = append(rows, r)
		p := probe
		if t.kind != kindRedis {
			p = nil
		}
		if err := b.stormScenario(ctx, r, load, p); err != nil {
			if ctx.Err() != nil {
				return rows, ctx.Err()
			}
			r.failed = b.scenarioFailed(err)
		}
	}
	return rows, nil
}

func (b *bench) stormScenario(ctx context.Context, r *stormRow, load *stormLoad, probe *redisProbe) error {
	label := r.kind + " / storm"
	pids := b.settle(ctx, label, r.kind)
	var sinks []*standIn
	for _, start := range []func() (*standIn, error){startSlack, startPagerDuty, startWebhook} {
		s, err := start()
		if err != nil {
			return err
		}
		defer s.close()
		sinks = append(sinks, s)
	}
	web := ""
	if need := int64(load.maxSize) + 64<<10; need > 4<<20 {
		web = fmt.Sprintf("web:\n  max_request_bytes: %d\n", need)
	}
	cfg := "# written by go run ./tools/bench: the storm scenario\n" + b.storeYAML(r.kind, 0) +
		"pipeline:\n  workers: 4\n  shutdown_timeout: " + shutdownTimeout.String() + "\n" +
		"webhook:\n  dedup_window: 10m\n" + web +
		stormConfig(sinks[0].addr, sinks[1].addr, sinks[2].addr)
	srv, err := b.startDaemon(ctx, r.kind, label, r.kind+"-storm", cfg, "--log.level=warn")
	if err != nil {
		return err
	}
	defer srv.stop(shutdownTimeout + 15*time.Second)
	pids["server"] = srv.cmd.Process.Pid
	cpu0 := snapCPU(pids)
	lctx, cancel := srv.context(ctx)
	defer cancel()
	dctx, dcancel := context.WithTimeout(lctx, b.o.stormDrain)
	defer dcancel()

	fmt.Fprintf(b.log, "bench: %s: %d alerts in %d bodies over %d connections, then up to %s (from the first request) for the deliveries ...\n",
		label, load.total, len(load.bodies), b.o.postConns, b.o.stormDrain)
	var stats0 cmdStats
	if probe != nil {
		if stats0, err = probe.commandStats(lctx); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
	}
	r.send = sendRetrying(dctx, "http://"+srv.addr+"/webhook", len(load.bodies), func(i int) []byte { return load.bodies[i] }, b.o.postConns)
	t0 := r.send.first
	r.ingest = r.send.ingestTime()
	r.sent = r.send.sentAlerts(func(i int) int { return load.alerts[i] })
	fmt.Fprintf(b.log, "bench: %s: %d of %d alerts answered 200 after %s (%d 503s sent again, %d failed requests)\n",
		label, r.sent, load.total, r.ingest.Round(time.Millisecond), r.send.retries503, r.send.bad()+r.send.errs)

	// Wait until every stand-in accounts for every alert sent, nothing new
	// came for stormStall, the deadline passed or the daemon died.
	lastTotal, lastChange := -1, time.Now()
	for {
		total, done := 0, true
		for _, s := range sinks {
			n := s.tally().accounted()
			total += n
			done = done && n >= r.sent
		}
		if done {
			break
		}
		if total != lastTotal {
			lastTotal, lastChange = total, time.Now()
		}
		if time.Since(lastChange) > stormStall {
			r.stalled = true
			break
		}
		if dctx.Err() != nil {
			r.timedOut = lctx.Err() == nil
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if srv.hasExited() {
		return fmt.Errorf("%s: %s exited during the storm (%s)\nlast lines of %s:\n%s", label, srv.name, srv.cmd.ProcessState, srv.logPath, tail(srv.logPath, 20))
	}
	time.Sleep(stormSettle)
	r.info = scenarioInfo{name: "storm", cpu: share(cpu0, snapCPU(pids))}
	if probe != nil {
		if stats1, err := probe.commandStats(lctx); err == nil {
			r.redisTime = cmdTimes(stats0, stats1)
		}
	}
	// The daemon's failures are read before the freeze below, which fails
	// whatever is still being sent (and past delivery.deadline, a failure
	// makes a dead letter).
	st := &daemonStats{loadTime: r.ingest}
	if m := b.metrics(ctx, label, srv); m != nil {
		for _, in := range stormIntegrations {
			r.dead = append(r.dead, m[fmt.Sprintf(`alertmedic_notification_alerts_total{integration=%q,outcome="dead_letter"}`, in.label)])
		}
		r.notifyErrors = m["alertmedic_notification_errors_total"]
		r.refusals = m["alertmedic_store_refusals_total"]
	}
	// Freeze the stand-ins, then wait for the answers under way to reach
	// the daemon: its count of delivered alerts can then be compared with
	// theirs exactly, even when the wait ended with deliveries still going.
	for _, s := range sinks {
		s.freeze()
	}
	time.Sleep(stormFreeze)
	if m := b.metrics(ctx, label, srv); m != nil {
		st.read(m)
		for _, in := range stormIntegrations {
			r.delivered = append(r.delivered, m[fmt.Sprintf(`alertmedic_notification_alerts_total{integration=%q,outcome="delivered"}`, in.label)])
		}
		r.rateLimited = m["alertmedic_notifications_rate_limited_total"]
		r.coalesced = m["alertmedic_notifications_coalesced_total"]
	}
	if err := b.stopDaemon(ctx, label, r.kind, srv, st); err != nil {
		return err
	}
	r.info.st = st
	// The stand-ins counted nothing since the freeze.
	for _, s := range sinks {
		t := s.tally()
		r.sinks = append(r.sinks, t)
		s.mu.Lock()
		r.turnedAway += s.turnedAway
		s.mu.Unlock()
		if t.last.After(t0) {
			r.drain = max(r.drain, t.last.Sub(t0))
		}
	}
	fmt.Fprintf(b.log, "bench: %s: ingest %s, drain %s; CPU %s\n", label, r.ingest.Round(time.Millisecond), r.drain.Round(time.Millisecond), cpuCell(r.info.cpu))
	for i, t := range r.sinks {
		fmt.Fprintf(b.log, "bench: %s → %s: %d messages (most alerts in one %d), %d alerts received, %d distinct, %d twice, %d counted as \"and N more\"; the daemon's metric says %.0f delivered, %.0f dead letters\n",
			label, stormIntegrations[i].name, t.messages, t.maxPerMsg, t.receipts, t.distinct, t.dups, t.hidden, r.delivered[min(i, len(r.delivered)-1)], r.dead[min(i, len(r.dead)-1)])
		if t.bad > 0 || t.unknown > 0 || t.wrong > 0 {
			b.notef("%s: the %s stand-in got %d requests it could not read (first: %s), %d alerts without a bench_seq, %d requests for another channel, routing key, action or status than the scenario's", label, stormIntegrations[i].name, t.bad, t.firstBad, t.unknown, t.wrong)
		}
	}
	if r.timedOut {
		b.notef("%s: the wait for the deliveries ended at -storm-drain (%s)", label, b.o.stormDrain)
	}
	if r.stalled {
		b.notef("%s: no stand-in got anything new for %s; the wait for the deliveries ended there", label, stormStall)
	}
	return nil
}

// stormMetric is the daemon's count for destination i, and whether it agrees
// with what the stand-in received: every alert a message carried, and
// for Slack those it only counted.
func (r *stormRow) stormMetric(i int) (float64, int, bool) {
	if i >= len(r.delivered) || i >= len(r.sinks) {
		return 0, 0, false
	}
	t := r.sinks[i]
	seen := t.receipts + t.hidden
	return r.delivered[i], seen, int(r.delivered[i]+0.5) == seen
}

// stormVerdict: PASS only when PagerDuty and the webhook got every alert
// exactly once (the webhook after dropping the POSTs whose Idempotency-Key
// came before, as a real endpoint does), Slack accounted for every alert
// (shown once or counted), the daemon's metric agrees with every stand-in,
// nothing was dead-lettered, and every body was answered 200.
func stormVerdict(r *stormRow) string {
	if r.failed != "" || len(r.sinks) != len(stormIntegrations) {
		return "MISS: not measured"
	}
	var miss []string
	if n := r.send.bad() + r.send.errs; n > 0 || r.sent < r.alerts {
		miss = append(miss, fmt.Sprintf("%s of %s alerts answered 200 (%d failed requests)", thousands(float64(r.sent)), thousands(float64(r.alerts)), n))
	}
	for i, in := range stormIntegrations {
		t := r.sinks[i]
		switch in.label {
		case "slack":
			if t.accounted() != r.alerts || t.dups > 0 {
				miss = append(miss, fmt.Sprintf("Slack accounted for %s of %s alerts (%s shown, %s as \"and N more\", %s shown twice)",
					thousands(float64(t.accounted())), thousands(float64(r.alerts)), thousands(float64(t.distinct)), thousands(float64(t.hidden)), thousands(float64(t.dups))))
			}
		case "webhook":
			dups := t.receipts - t.keyRepeatAlerts - t.distinct
			if t.distinct != r.alerts || dups > 0 || t.hidden > 0 {
				miss = append(miss, fmt.Sprintf("webhook got %s of %s alerts, %s of them again under a new Idempotency-Key", thousands(float64(t.distinct)), thousands(float64(r.alerts)), thousands(float64(dups))))
			}
		default:
			if t.distinct != r.alerts || t.dups > 0 {
				miss = append(miss, fmt.Sprintf("%s got %s of %s alerts, %s twice", in.name, thousands(float64(t.distinct)), thousands(float64(r.alerts)), thousands(float64(t.dups))))
			}
		}
		if m, seen, ok := r.stormMetric(i); !ok {
			miss = append(miss, fmt.Sprintf("the daemon counts %s alerts delivered to %s, the stand-in saw %s", thousands(m), in.name, thousands(float64(seen))))
		}
		if i < len(r.dead) && r.dead[i] > 0 {
			miss = append(miss, fmt.Sprintf("%s alerts dead-lettered for %s", thousands(r.dead[i]), in.name))
		}
	}
	if r.timedOut || r.stalled {
		miss = append(miss, "the wait for the deliveries ended before they did")
	}
	return verdictCell(miss, "PASS")
}

func stormSettings(o options) string {
	return fmt.Sprintf("each store on a freshly started daemon (`pipeline.workers: 4`, `webhook.dedup_window: 10m`, the store's default capacities, `--log.level=warn`) routing every alert to one Slack target (default rate limit: 1 message/s, burst 3; default max_attachments, 20), one PagerDuty target and one webhook target (`max_alerts: %d`), stand-ins in the bench process; %s distinct firing alerts from group_50.json, each with a `bench_seq` label and the same number at the start of its summary, as 50-alert bodies and up to %d bodies of %s alerts, over %d keep-alive connections, a 503 sent again after its Retry-After (%s without one); the wait for the deliveries ends when every stand-in accounts for every alert, after %s without anything new, or %s after the first request",
		stormWebhookMax, thousands(float64(o.stormAlerts)), stormBigMax, thousands(stormBig), o.postConns, noRetryAfter, stormStall, o.stormDrain)
}

func stormTable(w io.Writer, rows []*stormRow, withVerdict bool) {
	tableHead(w, "| target | alerts (bodies) | answered 200 | 503s sent again | ingest | drain | Slack messages (alerts they account for) | PagerDuty events (distinct) | webhook POSTs (distinct) | CPU: load generator + stand-ins / server / Redis / others |",
		"|---|--:|--:|--:|--:|--:|--:|--:|--:|---|", withVerdict)
	for _, r := range rows {
		c := []string{r.target, fmt.Sprintf("%s (%s)", thousands(float64(r.alerts)), thousands(float64(r.bodies)))}
		if r.failed != "" || len(r.sinks) != len(stormIntegrations) {
			c = append(c, "failed", "", "", "", "", "", "", "see notes")
		} else {
			s, p, h := r.sinks[0], r.sinks[1], r.sinks[2]
			drain := fmt.Sprintf("%.1f s", r.drain.Seconds())
			if r.timedOut || r.stalled {
				drain += " (wait ended)"
			}
			c = append(c, thousands(float64(r.sent)), thousands(float64(r.send.retries503)),
				fmt.Sprintf("%.1f s", r.ingest.Seconds()), drain,
				fmt.Sprintf("%s (%s)", thousands(float64(s.messages)), thousands(float64(s.accounted()))),
				fmt.Sprintf("%s (%s)", thousands(float64(p.messages)), thousands(float64(p.distinct))),
				fmt.Sprintf("%s (%s)", thousands(float64(h.messages)), thousands(float64(h.distinct))),
				cpuCell(r.info.cpu))
		}
		tableRow(w, c, withVerdict, stormVerdict(r))
	}
}

// stormDestTable is each destination of each store: what its stand-in got,
// the duplicates, and the daemon's own count of the alerts it delivered.
func stormDestTable(w io.Writer, rows []*stormRow) {
	fmt.Fprintln(w, "| target | to | messages (most alerts in one) | alerts received | distinct | duplicates | counted as \"and N more\" | daemon: delivered (dead letters) | metric agrees |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|---|")
	for _, r := range rows {
		if r.failed != "" || len(r.sinks) != len(stormIntegrations) {
			continue
		}
		for i, in := range stormIntegrations {
			t := r.sinks[i]
			dups := thousands(float64(t.dups))
			if in.label == "webhook" {
				dups = fmt.Sprintf("%s (%s POSTs with an Idempotency-Key seen before, %s alerts; after dropping them: %s)",
					thousands(float64(t.dups)), thousands(float64(t.keyRepeats)), thousands(float64(t.keyRepeatAlerts)), thousands(float64(t.receipts-t.keyRepeatAlerts-t.distinct)))
			}
			m, seen, ok := r.stormMetric(i)
			agree := "yes"
			if !ok {
				agree = fmt.Sprintf("no: the stand-in saw %s", thousands(float64(seen)))
			}
			dead := 0.0
			if i < len(r.dead) {
				dead = r.dead[i]
			}
			fmt.Fprintf(w, "| %s | %s | %s (%s) | %s | %s | %s | %s | %s (%s) | %s |\n", r.target, in.name,
				thousands(float64(t.messages)), thousands(float64(t.maxPerMsg)), thousands(float64(t.receipts)), thousands(float64(t.distinct)),
				dups, thousands(float64(t.hidden)), thousands(m), thousands(dead), agree)
		}
	}
}

func stormDetails(w io.Writer, rows []*stormRow) {
	for _, r := range rows {
		if r.failed != "" || r.info.st == nil {
			continue
		}
		st := r.info.st
		fmt.Fprintf(w, "- %s: %d of the bodies carried %s alerts; the longest Retry-After was %s; the daemon processed %s of %s alerts, %s still queued, merged %s notifications into another, held waiting notifications for a rate limit %s times, counted %s failed deliveries and %s store refusals (503) by the end of the wait; %d warn/error log lines (the stand-ins, frozen for the final count, then turned away %s requests with a 503, which the daemon logs as failed deliveries); shutdown %s.\n",
			r.target, r.big, thousands(stormBig), r.send.maxRetryAft, thousands(st.processed), thousands(st.received), thousands(st.depth),
			thousands(r.coalesced), thousands(r.rateLimited), thousands(r.notifyErrors), thousands(r.refusals), st.logIssues, thousands(float64(r.turnedAway)), ms(st.shutdown))
		if len(r.redisTime) > 0 {
			fmt.Fprintf(w, "- %s: where Redis spent its time from the first request to the end of the wait (INFO commandstats, every client; a script's EVALSHA time includes the commands it runs, which are counted on their own too): %s.\n", r.target, redisTop(r.redisTime, 4))
		}
	}
}

// redisTop is the first n commands by time.
func redisTop(ts []cmdTime, n int) string {
	var parts []string
	for i, t := range ts {
		if i == n {
			break
		}
		parts = append(parts, t.String())
	}
	return strings.Join(parts, "; ")
}

// stormIntro explains the storm in BENCHMARKS.md, with its target and, from
// the run's own figures, what missed it.
func stormIntro(o options, rows []*stormRow) string {
	if o.stormAlerts == 0 || len(rows) == 0 {
		return ""
	}
	var missed []string
	for _, r := range rows {
		if v := stormVerdict(r); v != "PASS" {
			missed = append(missed, fmt.Sprintf("%s: %s", r.target, strings.TrimPrefix(v, "MISS: ")))
		}
	}
	analysis := "in this run every store met it."
	if len(missed) > 0 {
		analysis = "missed in this run by " + strings.Join(missed, "; ") + ". " + stormWhy(rows)
	}
	return fmt.Sprintf(`
**Storm** (the storm tables): %s distinct firing alerts arriving at once,
as an outage brings, and where they end up. They are posted as 50-alert
bodies (group_50.json, each alert with a `+"`bench_seq`"+` label of its own and
the same number at the start of its summary) and up to %d bodies of %s
alerts (`+"`web.max_alerts`"+`' default), over %d keep-alive connections; a 503
(queue or store full) is sent again after its Retry-After, as Alertmanager
would, until it is answered 200. The daemon routes every alert to one
Slack target, which keeps its default rate limit (1 message a second,
burst 3: a storm must merge into a few messages that show %d alerts and
count the rest as "and N more alerts"), one PagerDuty target (one event per
alert) and one webhook target (Alertmanager's v4 body, `+"`max_alerts: %d`"+`,
so a notification goes out as several POSTs, each with its own
`+"`Idempotency-Key`"+`). The stand-ins note every alert by its `+"`bench_seq`"+`:
*distinct* counts each once, *duplicates* what came again (for the webhook
also after dropping the POSTs whose Idempotency-Key came before, which a
real endpoint does). *Ingest* is from the first request to the last 200,
*drain* from the first request to the last delivery at any stand-in. The
daemon's own `+"`alertmedic_notification_alerts_total{outcome=\"delivered\"}`"+`
per integration is compared with what the stand-in received.

**Target** (storm): PagerDuty and the webhook get every alert exactly
once, Slack accounts for every alert (shown once or counted in "and N
more"), the daemon's metric agrees with every stand-in, no dead letter,
every body answered 200 in the end; %s
`, thousands(float64(o.stormAlerts)), stormBigMax, thousands(stormBig), o.postConns, 20, stormWebhookMax, analysis)
}

// stormWhy names what the figures show about a miss.
func stormWhy(rows []*stormRow) string {
	var why []string
	for _, r := range rows {
		if r.failed != "" || len(r.sinks) != len(stormIntegrations) {
			continue
		}
		if r.timedOut || r.stalled {
			var late []string
			for i, in := range stormIntegrations {
				if t := r.sinks[i]; t.accounted() < r.sent && r.drain > 0 {
					late = append(late, fmt.Sprintf("%s had %s of %s alerts, %s a second", in.name, thousands(float64(t.accounted())), thousands(float64(r.sent)), thousands(float64(t.receipts+t.hidden)/r.drain.Seconds())))
				}
			}
			w := fmt.Sprintf("%s: deliveries were still missing when the wait ended, %.0f s after the first request (%s)", r.target, r.drain.Seconds(), strings.Join(late, "; "))
			if len(r.redisTime) > 0 && r.info.cpu.procs["redis"] > 0 {
				w += fmt.Sprintf("; Redis was busy meanwhile (%.0f %% of the machine), most in %s", r.info.cpu.procs["redis"], redisTop(r.redisTime, 2))
			}
			why = append(why, w)
		}
		for i, in := range stormIntegrations {
			if i < len(r.dead) && r.dead[i] > 0 {
				why = append(why, fmt.Sprintf("%s: the daemon gave up on %s alerts for %s (dead letters; their reasons are in its log and at GET /api/v1/deliveries/failed)", r.target, thousands(r.dead[i]), in.name))
			}
			if t := r.sinks[i]; t.dups > 0 && t.keyRepeats == 0 {
				why = append(why, fmt.Sprintf("%s: %s alerts reached %s twice in different messages, which the destination cannot drop", r.target, thousands(float64(t.dups)), in.name))
			}
		}
		if n := r.send.bad() + r.send.errs; n > 0 {
			why = append(why, fmt.Sprintf("%s: %d bodies were refused for good or failed on the way (%s)", r.target, n, badCell(r.send.counts)))
		}
	}
	if len(why) == 0 {
		return "The notes below the tables say more."
	}
	return strings.Join(why, "; ") + "."
}
