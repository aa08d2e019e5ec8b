package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// The cluster scenario's tables and the paragraph that explains them.

const (
	singleName  = "single Redis (-redis-url)"
	clusterName = "Redis Cluster, 3 masters (summed; replicas left out)"
)

func clusterSettings(o options, c *clusterResult) string {
	return fmt.Sprintf("a private Redis Cluster of 3 masters and 3 replicas (scripts/redis-servers, base port %d, stopped at the end) with `store.redis.addrs` and no `shards` (the Cluster default, %d); the single Redis is -redis-url, in the same run; commands per alert: the cost scenario's route (a) at %d/s; ingest: %s warm-up + %s, closed loop with %d connections, open loop at %d requests/s of 1 alert; best of %d interleaved attempts, each on a fresh daemon and an emptied Redis; the scenario took %s",
		c.base, c.shards, o.costRate, o.warmup, o.clusterDuration, o.concurrency, o.clusterRate, o.clusterRepeat, c.elapsed.Round(time.Second))
}

// clusterCostVerdict: the single Redis keeps the cost scenario's targets;
// the Cluster has no number to meet, only every alert delivered and keys
// on every master.
func clusterCostVerdict(r *costRow, cluster bool) string {
	if !cluster {
		return costVerdict(r) + fmt.Sprintf(" (the cost table's targets: ≤ %.0f per alert, idle ≤ %.0f/s)", r.goal, costGoalIdle)
	}
	if r.failed != "" {
		return "MISS: not measured"
	}
	var miss []string
	if n := r.bad.bad() + r.bad.errs; n > 0 {
		miss = append(miss, fmt.Sprintf("%d failed requests", n))
	}
	if r.timedOut {
		miss = append(miss, "not every alert delivered")
	}
	empty := 0
	for _, k := range r.keys {
		if k.keys == 0 {
			empty++
		}
	}
	if empty > 0 || len(r.keys) == 0 {
		miss = append(miss, fmt.Sprintf("no keys on %d of %d masters", empty, len(r.keys)))
	}
	v := verdictCell(miss, fmt.Sprintf("PASS (no numeric target): every alert delivered, keys on all %d masters", len(r.keys)))
	if len(r.foreign) > 0 {
		v += " (other Redis clients were active: an upper bound)"
	}
	return v
}

func keysCell(ks []nodeKeys) string {
	if len(ks) == 0 {
		return "–"
	}
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf(":%d %s", k.port, thousands(float64(k.keys))))
	}
	return strings.Join(parts, ", ")
}

func clusterCostTable(w io.Writer, c *clusterResult, withVerdict bool) {
	tableHead(w, "| Redis | alerts | delivered (Slack messages) | idle commands/s | commands | per alert | top commands, per alert | keys per master (DBSIZE) |",
		"|---|--:|--:|--:|--:|--:|---|---|", withVerdict)
	for _, x := range []struct {
		name    string
		r       *costRow
		cluster bool
	}{{singleName, c.single, false}, {clusterName, c.cluster, true}} {
		r := x.r
		if r == nil {
			continue
		}
		cells := []string{x.name}
		if r.failed != "" {
			cells = append(cells, "failed", "", "", "", "", "see notes", "")
		} else {
			cells = append(cells, thousands(float64(r.posted)),
				fmt.Sprintf("%s (%s)", thousands(float64(r.slack.accounted())), thousands(float64(r.slack.messages))),
				fmt.Sprintf("%.1f", r.idleRate), thousands(float64(r.total)), fmt.Sprintf("%.2f", r.perAlert),
				cmdList(r.top, max(r.posted, 2), 6), keysCell(r.keys))
		}
		if withVerdict {
			cells = append(cells, clusterCostVerdict(r, x.cluster))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

func rateCell(l *loadRun) string {
	if l == nil || l.closed == nil {
		return "–"
	}
	s := thousands(l.closed.rate)
	if l.closed.exhausted {
		s += " ‡"
	}
	return s
}

func pctCell(a, b *loadRun) string {
	if a == nil || b == nil || a.closed == nil || b.closed == nil || b.closed.rate <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f %%", 100*a.closed.rate/b.closed.rate)
}

// loadBad is the non-2xx cell over runs.
func loadBad(ls ...*loadRun) string {
	var all counts
	for _, l := range ls {
		switch {
		case l == nil:
		case l.closed != nil:
			all.merge(l.closed.counts)
		case l.open != nil:
			all.merge(l.open.counts)
		}
	}
	return badCell(all)
}

func clusterIngestTable(w io.Writer, c *clusterResult) {
	fmt.Fprintln(w, "| payload | ceiling max req/s | single Redis max req/s | Cluster max req/s | Cluster ÷ single Redis | single Redis % of ceiling | Cluster % of ceiling | non-2xx |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|")
	for _, p := range c.payloads() {
		ceil, single, clus := c.find(kindCeiling, 0, p, "max"), c.find(kindRedis, 0, p, "max"), c.find(kindCluster, 0, p, "max")
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", p, rateCell(ceil), rateCell(single), rateCell(clus),
			pctCell(clus, single), pctCell(single, ceil), pctCell(clus, ceil), loadBad(single, clus))
	}
}

func clusterWaitTable(w io.Writer, c *clusterResult, o options) {
	fmt.Fprintf(w, "| Redis | wait_replicas | max req/s, 1 alert | p50 @%s/s | p99 @%s/s | commands per webhook @%s/s | WAIT per webhook | alerts processed / accepted | non-2xx |\n",
		thousands(float64(o.clusterRate)), thousands(float64(o.clusterRate)), thousands(float64(o.clusterRate)))
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	one := ""
	if ps := c.payloads(); len(ps) > 0 {
		one = ps[0]
	}
	for _, x := range []struct {
		name, kind string
		wait       int
	}{{"single Redis", kindRedis, 0}, {"Redis Cluster", kindCluster, 0}, {"Redis Cluster", kindCluster, 1}} {
		mx, lat := c.find(x.kind, x.wait, one, "max"), c.find(x.kind, x.wait, one, "latency")
		if mx == nil && lat == nil {
			continue
		}
		p50, p99, per, waits, proc := "–", "–", "–", "–", "–"
		if lat != nil && lat.open != nil {
			p50, p99 = ms(lat.open.p50), ms(lat.open.p99)
			if lat.open.achieved < 0.98*float64(o.clusterRate) {
				p99 += fmt.Sprintf(" † (%s/s)", thousands(lat.open.achieved))
			}
			if lat.answered > 0 {
				per = fmt.Sprintf("%.2f", float64(lat.commands)/float64(lat.answered))
				waits = fmt.Sprintf("%.2f", float64(lat.waits)/float64(lat.answered))
				if len(lat.foreign) > 0 {
					per += " (upper bound)"
				}
			}
			if lat.st != nil {
				proc = fmt.Sprintf("%s / %s", thousands(lat.st.processed), thousands(lat.st.received))
			}
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", x.name, x.wait, rateCell(mx), p50, p99, per, waits, proc, loadBad(mx, lat))
	}
}

// clusterDetails is a line per run: CPU and the daemon's own account.
func clusterDetails(w io.Writer, c *clusterResult) {
	fmt.Fprintln(w, "CPU below is in percent of the whole machine: the bench (load generator and stand-ins) / the daemon or ceiling / Redis (for the Cluster all six servers) / other processes.")
	fmt.Fprintln(w)
	for _, r := range []*costRow{c.single, c.cluster} {
		if r == nil || r.failed != "" {
			continue
		}
		name := singleName
		if len(r.keys) > 0 {
			name = "Redis Cluster"
		}
		fmt.Fprintf(w, "- commands per alert, %s: posted in %s, the last delivery %s after the first request, measured over %s (about %.0f of the commands are the idle rate's); CPU %s; idle, by command: %s.\n",
			name, r.sendTime.Round(time.Millisecond), r.waitTime.Round(time.Millisecond), r.window.Round(time.Millisecond),
			max(r.idleRate, 0)*r.window.Seconds(), cpuCell(r.info.cpu), cmdList(r.idleTop, 1, 8))
	}
	for _, l := range c.loads {
		if l.failed != "" {
			fmt.Fprintf(w, "- %s: failed (see notes).\n", l.name())
			continue
		}
		what := ""
		if l.closed != nil {
			what = fmt.Sprintf("%s req/s", thousands(l.closed.rate))
		} else if l.open != nil {
			what = fmt.Sprintf("p50 %s, p99 %s, max %s at %s/s", ms(l.open.p50), ms(l.open.p99), ms(l.open.max), thousands(l.open.achieved))
			if l.answered > 0 && l.commands > 0 {
				what += fmt.Sprintf("; %s per webhook", cmdList(l.top, l.answered, 8))
			}
		}
		daemon := ""
		if st := l.st; st != nil {
			daemon = fmt.Sprintf("; the daemon processed %s of %s alerts (%s/s), %s entries queued at the end",
				thousands(st.processed), thousands(st.received), thousands(st.processed/st.loadTime.Seconds()), thousands(st.depth))
		}
		fmt.Fprintf(w, "- %s: %s; CPU %s%s.\n", l.name(), what, cpuCell(l.cpu), daemon)
	}
	if len(c.demoted) > 0 {
		fmt.Fprintf(w, "- a master changed role during the scenario: %s.\n", strings.Join(c.demoted, "; "))
	}
}

// writeCluster is the cluster section of the report; level is "##" for
// the terminal and "###" for BENCHMARKS.md.
func writeCluster(w io.Writer, b *bench, level string, withVerdict bool) {
	c, o := b.clus, b.o
	if c == nil {
		return
	}
	fmt.Fprintf(w, "\n%s Past one Redis: the Redis store on a Redis Cluster\n\n", level)
	if c.failed != "" {
		fmt.Fprintf(w, "Not measured: %s (see the notes).\n", c.failed)
		return
	}
	fmt.Fprintf(w, "- %s\n", clusterSettings(o, c))
	if withVerdict {
		fmt.Fprintf(w, "- command: `%s` (this scenario alone: `%s`)\n", b.info.command, aloneCommand(b, "cluster", clusterTargets(o)))
	}
	if c.single != nil || c.cluster != nil {
		fmt.Fprintf(w, "\nRedis commands per alert, route (a) one Slack target, %s distinct single-alert bodies at %d/s:\n\n", thousands(float64(o.costAlerts)), o.costRate)
		clusterCostTable(w, c, withVerdict)
	}
	if len(c.loads) > 0 {
		fmt.Fprintf(w, "\nIngest, max webhook requests/s (closed loop):\n\n")
		clusterIngestTable(w, c)
		fmt.Fprintf(w, "\nThe cost of `wait_replicas: 1` (1-alert bodies):\n\n")
		clusterWaitTable(w, c, o)
		var dagger, ddagger bool
		for _, l := range c.loads {
			dagger = dagger || (l.open != nil && l.open.achieved < 0.98*float64(o.clusterRate))
			ddagger = ddagger || (l.closed != nil && l.closed.exhausted)
		}
		loadFootnotes(w, dagger, ddagger, o.clusterRate, "-cluster-duration")
	}
	fmt.Fprintln(w)
	clusterDetails(w, c)
}

// clusterTargets is -targets for the scenario alone: the ceiling too when
// this run measured it.
func clusterTargets(o options) string {
	if o.targets[kindCeiling] {
		return "ceiling,redis"
	}
	return "redis"
}

// clusterIntro explains the cluster scenario in BENCHMARKS.md and says, from
// the run's figures, what they show.
func clusterIntro(o options, c *clusterResult) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf(`
**Past one Redis** (the Cluster tables): the Redis store on a Redis
Cluster beside the single Redis, in the same run. The bench starts a
Cluster of its own with `+"`scripts/redis-servers start cluster`"+` (3 masters
and a replica each, on free ports of 127.0.0.1, nothing on disk) and stops
it with `+"`scripts/redis-servers stop`"+` at the end, also after a failure or
Ctrl-C (and, told the bench's PID, the script stops it if the bench is
killed). The daemon gets `+"`store.redis.addrs`"+` (the six nodes, no
`+"`master_name`"+`) and no `+"`shards`"+`, so the Cluster default of %d hash tags
spreads its keys over the masters; the Cluster is emptied (FLUSHALL on each
master) between daemons. *Commands per alert* is the cost scenario's
route (a), through the same code as the cost table for both rows: a fresh
daemon left alone %s, idle for %s (*idle commands/s*), then %s distinct
single-alert bodies at %d/s to one Slack target (the stand-in, Slack's
default rate limit), until the stand-in has every alert and %s more; on
the Cluster `+"`INFO commandstats`"+` is summed over the 3 masters. Replicas are
left out: a replica counts what its master replicates to it, which no
client sent; for the same reason REPLCONF, the replicas' own commands to
their masters, is left out with the cost table's exclusions (%s).
*Keys per master* is each master's DBSIZE at the end of that run. *Ingest*
is the ingest table's closed loop (%d connections, %s after a %s warm-up)
and daemon (no route, a queue of 1,000,000), for the 1-alert and 50-alert
bodies, on the ceiling (when -targets has it), the single Redis and the
Cluster. *The cost of
`+"`wait_replicas: 1`"+`*: the Cluster's daemon again with `+"`store.redis.wait_replicas: 1`"+`
(each part of a webhook is enqueued and then WAITed for on its master's
connection before the 200), its max rate for 1-alert bodies and the ack's
p50/p99 in an open loop at %d requests/s (timed from each request's
scheduled send), with the commands per webhook over that run (until %s
after its last answer, the workers' share included; *WAIT per webhook*
counts the WAITs alone). Each run takes the best of %d attempts, taken in
turn with the others'.

**Target** (Cluster): none in numbers; every alert delivered and keys on
every master (the *vs target* column). **Caveat**: the 2 cores of this
machine are shared by the load generator, the daemon and, for the Cluster,
6 redis-servers (the replicas apply every write too), where the single
Redis is one process: a Cluster here cannot scale out, it can only show
what it costs. Compare the ratios, not the absolute rates.

%s
`, c.shards, costWarm, costIdle, thousands(float64(o.costAlerts)), o.costRate, costSettle, costUncountedList(),
		o.concurrency, o.clusterDuration, o.warmup, o.clusterRate, costSettle, o.clusterRepeat,
		wrapText("**What the figures show** (kept in the generator; the numbers are this run's): "+clusterAnalysis(o, c), 76))
}

// clusterAnalysis says what this run's figures show; the reasons are from
// reading the pipeline (revision 6fd06d3) and hold while its shard loops
// do what they do there.
func clusterAnalysis(o options, c *clusterResult) string {
	var out []string
	if s, k := c.single, c.cluster; s != nil && k != nil && s.failed == "" && k.failed == "" && s.perAlert > 0 && s.idleRate > 0 {
		out = append(out, fmt.Sprintf(`route (a) cost %.1f commands per alert on the
Cluster against %.1f on the single Redis (%.1f×), and %.0f commands a second
idle against %.1f (%.0f×). The idle rate is the shard loops: the
dispatcher's poll, the forwarder's tick and the remediation queue's each
claim from every one of the %d shards once a second, an EVALSHA that runs
ZRANGEBYSCORE and ZRANGE (%s EVALSHA a second idle here), where the single
Redis has one shard and no forwarder. Under load the same sweep is what multiplies: the one Slack
target's outbox lives in one shard, so %d alerts in %d are decided in
another and their outbox work goes through the forward queue, and each
decision that forwards wakes the forwarder, which claims from the forward
queue of all %d shards (at %d alerts/s each wake finds one alert: %s ZRANGE
per alert); the forwarder could look at the shards it was woken for
only.`, k.perAlert, s.perAlert, k.perAlert/s.perAlert, k.idleRate, s.idleRate, k.idleRate/s.idleRate, c.shards,
			idleOf(k, "evalsha"), c.shards-1, c.shards, c.shards, o.costRate, perAlertOf(k, "zrange")))
	}
	if k := c.cluster; k != nil && k.failed == "" {
		if v := clusterCostVerdict(k, true); strings.HasPrefix(v, "PASS") {
			line := fmt.Sprintf("Every alert reached the stand-in and every master held keys (%s)", keysCell(k.keys))
			lo, hi := k.keys[0].keys, k.keys[0].keys
			for _, n := range k.keys {
				lo, hi = min(lo, n.keys), max(hi, n.keys)
			}
			if hi > lo*3/2 {
				line += `; the alerts' records and dedup keys spread evenly, and
the master with the most holds the Slack target's shard, where each
forwarded item leaves a marker key (` + "`state:fwd:...`" + `, kept 24 hours so
that it is put once), one per forwarded alert and target`
			}
			out = append(out, line+".")
		} else {
			out = append(out, "The Cluster row misses: "+strings.TrimPrefix(v, "MISS: ")+".")
		}
	}
	for _, p := range c.payloads() {
		s, k := c.find(kindRedis, 0, p, "max"), c.find(kindCluster, 0, p, "max")
		if s == nil || k == nil || s.closed.rate <= 0 {
			continue
		}
		line := fmt.Sprintf("With %d-alert bodies the Cluster took %.0f %% of the single Redis's max req/s", k.payload.alerts, 100*k.closed.rate/s.closed.rate)
		if ceil := c.find(kindCeiling, 0, p, "max"); ceil != nil && ceil.closed.rate > 0 {
			line += fmt.Sprintf(" (%.0f %% of the ceiling, against %.0f %%)", 100*k.closed.rate/ceil.closed.rate, 100*s.closed.rate/ceil.closed.rate)
		}
		ratio := k.closed.rate / s.closed.rate
		switch {
		case k.payload.alerts > 1:
			line += fmt.Sprintf(`: a webhook's alerts fall in up to %d shards, and its
enqueue queues the parts one after another, one script and one round trip
each, before the 200, where the single Redis runs one script; more round
trips per request, and more work for Redis (%.0f %% of the machine against
%.0f %%)`, min(c.shards, k.payload.alerts), redisCPU(k.cpu), redisCPU(s.cpu))
		case ratio >= 0.9:
			line += ": one alert is one part in one shard, one round trip as on the single Redis"
		default:
			line += `: one alert is one part in one shard, one round trip as on the
single Redis, but the Cluster's six servers (the replicas apply every
write too) take more of the two cores the daemon and the load generator
share (the Redis CPU share in the details)`
		}
		if ks, ss := k.st, s.st; ks != nil && ss != nil && ks.received > 0 && ss.received > 0 &&
			ks.processed >= 0.99*ks.received && ss.processed < 0.9*ss.received {
			line += fmt.Sprintf(`. The Cluster's workers kept up with what it accepted (%.0f %% processed
by the end; every replica runs at least one worker per shard), the single
Redis's did not (%.0f %%)`, 100*ks.processed/ks.received, 100*ss.processed/ss.received)
		}
		out = append(out, line+".")
	}
	one := ""
	if ps := c.payloads(); len(ps) > 0 {
		one = ps[0]
	}
	m0, m1 := c.find(kindCluster, 0, one, "max"), c.find(kindCluster, 1, one, "max")
	l0, l1 := c.find(kindCluster, 0, one, "latency"), c.find(kindCluster, 1, one, "latency")
	if m0 != nil && m1 != nil && l0 != nil && l1 != nil && m0.closed.rate > 0 && l0.answered > 0 && l1.answered > 0 {
		out = append(out, fmt.Sprintf("`wait_replicas: 1`"+` took %.0f %% of the max req/s
without it, moved the ack's p50 by %+.2f ms and its p99 by %+.2f ms at
%s requests/s (p99 here follows the host's pauses more than WAIT's round
trip, which on loopback is a fraction of a millisecond), and cost %.2f
commands per webhook more on the masters (%s). Each WAIT also makes the
master ask its replica for an acknowledgement, which the replica answers
with a REPLCONF ACK (%.2f per webhook on the masters, left out of the
figures with the rest of the replication traffic). With 50-alert bodies a
webhook would WAIT once per shard part, up to %d times.`,
			100*m1.closed.rate/m0.closed.rate, msDiff(l1.open.p50, l0.open.p50), msDiff(l1.open.p99, l0.open.p99),
			thousands(l0.open.achieved), float64(l1.commands)/float64(l1.answered)-float64(l0.commands)/float64(l0.answered),
			cmdDeltas(l0, l1), float64(l1.replconf-l0.replconf)/float64(l1.answered), c.shards))
	}
	if len(out) == 0 {
		return "not measured in this run (see the notes)."
	}
	return strings.Join(out, " ")
}

func msDiff(a, b time.Duration) float64 { return float64(a-b) / float64(time.Millisecond) }

// perAlertOf is one command's calls per alert in a cost row.
func perAlertOf(r *costRow, cmd string) string {
	for _, c := range r.top {
		if c.name == cmd {
			return fmt.Sprintf("%.1f", float64(c.calls)/float64(max(r.posted, 1)))
		}
	}
	return "0"
}

// cmdDeltas names the commands whose calls per webhook rose by half a call
// or more from a to b: what wait_replicas adds.
func cmdDeltas(a, b *loadRun) string {
	per := func(l *loadRun) map[string]float64 {
		m := map[string]float64{}
		for _, c := range l.top {
			m[c.name] = float64(c.calls) / float64(l.answered)
		}
		return m
	}
	pa, pb := per(a), per(b)
	var parts []string
	for _, c := range b.top {
		if d := pb[c.name] - pa[c.name]; d >= 0.5 {
			parts = append(parts, fmt.Sprintf("%s %+.2f", strings.ToUpper(c.name), d))
		}
	}
	if len(parts) == 0 {
		return "no one command by half a call or more: the spread of the others"
	}
	return "by command: " + strings.Join(parts, ", ")
}

// idleOf is one command's calls a second in a cost row's idle measurement.
func idleOf(r *costRow, cmd string) string {
	for _, c := range r.idleTop {
		if c.name == cmd {
			return fmt.Sprintf("%.0f", float64(c.calls)/costIdle.Seconds())
		}
	}
	return "0"
}

// wrapText refills a paragraph to lines of at most width characters (a
// longer word keeps a line of its own), so that the generated analysis reads
// like the fixed text around it.
func wrapText(s string, width int) string {
	var b strings.Builder
	n := 0
	for _, w := range strings.Fields(s) {
		l := len([]rune(w))
		switch {
		case n == 0:
		case n+1+l > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += l
	}
	return b.String()
}
