package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/store/redis/redistest"
)

// The cluster scenario runs the Redis store on a Redis Cluster of its own
// (3 masters, a replica each, started by scripts/redis-servers on
// 127.0.0.1 and stopped by it at the end) beside the single Redis of
// -redis-url, in the same run and through the same code: the cost
// scenario's measurement of route (a), the ingest closed loop, and an open
// loop that times the ack with store.redis.wait_replicas 0 and 1. Commands
// are INFO commandstats summed over the masters: a replica counts what its
// master replicates to it, which no client sent.

// clusterPrefix is the key prefix on the private Cluster; nothing else
// uses that Cluster, which is emptied (FLUSHALL) between daemons.
const clusterPrefix = "alertmedic-bench"

// clusterPoolMB bounds each body pool when the cluster scenario runs without
// the ingest scenarios: its closed loops are -cluster-duration long.
const clusterPoolMB = 512

// clusterPorts is where the scenario picks its Cluster's base port when
// -cluster-port is 0: below 45000, so that the bus ports (10000 above) stay
// below 55000, as the script wants.
var clusterPorts = redistest.PortRange{Min: 20000, Max: 44989, Step: 1}

// clusterEnv is the running private Cluster.
type clusterEnv struct {
	srv     *redistest.Servers
	log     *os.File // the script's stderr, redis-servers.log in the run's directory
	masters redisNodes
}

// startCluster starts the private Cluster under the run's temporary
// directory, with scripts/redis-servers, which stops the servers itself if
// the bench dies without running its defers. The returned env, when not
// nil, must be stopped, also after an error.
func (b *bench) startCluster(ctx context.Context) (*clusterEnv, error) {
	script, err := filepath.Abs(b.o.redisServers)
	if err != nil {
		return nil, fmt.Errorf("cluster: resolve %s: %w", b.o.redisServers, err)
	}
	if fi, err := os.Stat(script); err != nil || fi.IsDir() {
		return nil, fmt.Errorf("cluster: %s not found (-redis-servers; run the bench from the repository's root)", b.o.redisServers)
	}
	logf, err := os.OpenFile(filepath.Join(b.tmp, "redis-servers.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	srv, err := redistest.StartServers(ctx, redistest.ServersOptions{
		Kind:   "cluster",
		Script: redistest.Script{Path: script, Stderr: logf},
		Dir:    filepath.Join(b.tmp, "cluster"),
		Base:   b.o.clusterPort,
		Ports:  clusterPorts,
		Logf:   func(format string, args ...any) { fmt.Fprintf(b.log, "bench: cluster: "+format+"\n", args...) },
	})
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	env := &clusterEnv{srv: srv, log: logf}
	for _, n := range srv.Nodes {
		if n.Role != "master" {
			continue
		}
		p, err := openProbe(ctx, "redis://"+n.Addr)
		if err != nil {
			return env, fmt.Errorf("cluster: connect to the master on %s: %w", n.Addr, err)
		}
		env.masters = append(env.masters, p)
	}
	if len(env.masters) != 3 {
		return env, fmt.Errorf("cluster: the script started %d masters, want 3", len(env.masters))
	}
	return env, nil
}

// stop stops what start started, bounded in time and whatever ctx the run
// is in.
func (e *clusterEnv) stop(b *bench) {
	for _, p := range e.masters {
		p.close()
	}
	e.masters = nil
	defer e.log.Close()
	if err := e.srv.Stop(); err != nil {
		fmt.Fprintf(b.log, "bench: cluster: %v (servers may be left in %s)\n", err, e.srv.Dir)
		return
	}
	fmt.Fprintf(b.log, "bench: cluster: stopped the servers in %s\n", e.srv.Dir)
}

// wipe empties the private Cluster for the next daemon and says how many
// keys there were.
func (e *clusterEnv) wipe(ctx context.Context) (int, error) {
	total := 0
	for _, p := range e.masters {
		n, err := p.dbsize(ctx)
		if err != nil {
			return total, fmt.Errorf("DBSIZE on 127.0.0.1:%d: %w", p.port, err)
		}
		if err := p.flushAll(ctx); err != nil {
			return total, fmt.Errorf("FLUSHALL on 127.0.0.1:%d: %w", p.port, err)
		}
		total += int(n)
	}
	return total, nil
}

// demoted lists the masters that are masters no longer: a failover during
// the scenario would make its figures another Cluster's.
func (e *clusterEnv) demoted(ctx context.Context) []string {
	var out []string
	for _, p := range e.masters {
		s, err := p.info(ctx, "replication")
		if err != nil {
			out = append(out, fmt.Sprintf("127.0.0.1:%d: %v", p.port, err))
			continue
		}
		if !strings.Contains(s, "role:master") {
			out = append(out, fmt.Sprintf("127.0.0.1:%d is no longer a master", p.port))
		}
	}
	return out
}

// clusterResult is the cluster scenario's figures.
type clusterResult struct {
	failed  string
	base    int
	elapsed time.Duration
	// cost holds route (a) on the single Redis (nil without -redis-url)
	// and on the Cluster.
	single, cluster *costRow
	loads           []*loadRun
	demoted         []string
	shards          int
}

// loadRun is one ingest run of the cluster scenario: a closed loop (max) or
// an open loop (latency) against one server.
type loadRun struct {
	kind    string // kindCeiling, kindRedis, kindCluster
	wait    int    // store.redis.wait_replicas
	payload *pool
	measure string // "max" or "latency"
	failed  string

	closed *closedResult
	open   *openResult
	// Latency runs only: requests answered 200 (warm-up included), and
	// the commands the Redis nodes ran from the first request until
	// costSettle after the last answer.
	answered int
	commands int64
	waits    int64
	replconf int64 // the replicas' REPLCONF on the masters, not in commands
	top      []cmdCount
	foreign  []string
	cpu      cpuShare
	st       *daemonStats
}

// label names the run in the log and the notes.
func (l *loadRun) label() string {
	s := fmt.Sprintf("cluster scenario / %s / %s / %s", l.kind, l.payload.name, l.measure)
	if l.wait > 0 {
		s += fmt.Sprintf(" / wait_replicas %d", l.wait)
	}
	return s
}

// name names the run in the details under the tables.
func (l *loadRun) name() string {
	s := map[string]string{kindCeiling: "ceiling", kindRedis: "single Redis", kindCluster: "Redis Cluster"}[l.kind] + ", " + l.payload.name
	if l.measure == "max" {
		s += ", max rate"
	} else {
		s += ", ack latency"
	}
	if l.kind != kindCeiling {
		s += fmt.Sprintf(" (wait_replicas %d)", l.wait)
	}
	return s
}

// better says whether l beats o: measured at all, a higher max rate, a
// lower p99.
func (l *loadRun) better(o *loadRun) bool {
	if o == nil || o.failed != "" {
		return l.failed == ""
	}
	if l.failed != "" {
		return false
	}
	if l.closed != nil && o.closed != nil {
		return l.closed.rate > o.closed.rate
	}
	if l.open != nil && o.open != nil {
		// Another client on the shared Redis both slows the run and
		// inflates its commands per webhook: a clean attempt wins.
		if (len(l.foreign) == 0) != (len(o.foreign) == 0) {
			return len(l.foreign) == 0
		}
		return l.open.p99 < o.open.p99
	}
	return false
}

func (b *bench) runCluster(ctx context.Context, one, fifty *pool) (*clusterResult, error) {
	if !b.o.scenarios["cluster"] || !b.o.targets[kindRedis] {
		return nil, nil
	}
	t0 := time.Now()
	res := &clusterResult{}
	defer func() { res.elapsed = time.Since(t0) }()
	fail := func(err error) (*clusterResult, error) {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		fmt.Fprintf(b.log, "bench: %v\n", err)
		res.failed, _, _ = strings.Cut(err.Error(), "\n")
		b.notef("%s (the logs are kept in %s)", res.failed, b.tmp)
		b.keepLogs = true
		return res, nil
	}
	env, err := b.startCluster(ctx)
	if env != nil {
		defer env.stop(b)
	}
	if err != nil {
		return fail(err)
	}
	res.base = env.srv.Base
	b.cluster = env
	defer func() { b.cluster = nil }()
	var cfg config.RedisStore
	cfg.Addrs = env.srv.ClusterAddrs
	res.shards = cfg.ShardCount()

	var single redisNodes
	if b.redis != nil {
		p, err := openProbe(ctx, b.o.redisURL)
		if err != nil {
			return fail(fmt.Errorf("cluster: connect to -redis-url for INFO commandstats: %w", err))
		}
		defer p.close()
		single = redisNodes{p}
	} else {
		b.notef("cluster scenario: no single Redis at -redis-url, so its columns are empty")
	}

	// Commands per alert, route (a), through the cost scenario's code.
	if b.o.costAlerts > 0 {
		cp, err := newE2EPool(filepath.Join(b.o.testdata, "firing.json"), b.o.costAlerts)
		if err != nil {
			return res, err
		}
		if single != nil {
			r := &costRow{route: costRouteSlack, rate: b.o.costRate, goal: costGoalSlack}
			if res.single, err = b.costMeasure(ctx, kindRedis, r, cp, single, ""); err != nil {
				return res, err
			}
		}
		r := &costRow{route: costRouteSlack, rate: b.o.costRate, goal: costGoalSlack}
		if res.cluster, err = b.costMeasure(ctx, kindCluster, r, cp, env.masters, ""); err != nil {
			return res, err
		}
	}

	// Ingest: closed loops for both payloads, then the ack at a fixed rate,
	// each with wait_replicas 0 and (the Cluster, which has replicas) 1.
	var plan []*loadRun
	for _, p := range []*pool{one, fifty} {
		if b.o.targets[kindCeiling] {
			plan = append(plan, &loadRun{kind: kindCeiling, payload: p, measure: "max"})
		}
		if single != nil {
			plan = append(plan, &loadRun{kind: kindRedis, payload: p, measure: "max"})
		}
		plan = append(plan, &loadRun{kind: kindCluster, payload: p, measure: "max"})
	}
	plan = append(plan, &loadRun{kind: kindCluster, wait: 1, payload: one, measure: "max"})
	if single != nil {
		plan = append(plan, &loadRun{kind: kindRedis, payload: one, measure: "latency"})
	}
	plan = append(plan,
		&loadRun{kind: kindCluster, payload: one, measure: "latency"},
		&loadRun{kind: kindCluster, wait: 1, payload: one, measure: "latency"})
	best := make([]*loadRun, len(plan))
	// Attempts are interleaved, so that a noisy minute of the host spoils
	// one attempt of every run rather than every attempt of one.
	for attempt := range b.o.clusterRepeat {
		for i, want := range plan {
			if best[i] != nil && best[i].failed != "" {
				continue
			}
			l := &loadRun{kind: want.kind, wait: want.wait, payload: want.payload, measure: want.measure}
			nodes := single
			switch l.kind {
			case kindCluster:
				nodes = env.masters
			case kindCeiling:
				nodes = nil
			}
			if err := b.clusterLoad(ctx, l, nodes); err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				fmt.Fprintf(b.log, "bench: %v\n", err)
				l.failed, _, _ = strings.Cut(err.Error(), "\n")
				b.notef("%s (attempt %d; the servers' logs are kept in %s)", l.failed, attempt+1, b.tmp)
				b.keepLogs = true
			}
			if best[i] == nil || l.better(best[i]) {
				best[i] = l
			}
		}
	}
	for _, l := range best {
		if l.failed == "" && l.cpu.other >= quietThreshold {
			b.notef("%s: other processes used %.0f %% of the machine during the best attempt; its figures are pessimistic", l.label(), l.cpu.other)
		}
		if len(l.foreign) > 0 {
			b.notef("%s: other Redis clients were active during the run, and INFO commandstats counts their commands too, so its commands per webhook are an upper bound: %s", l.label(), strings.Join(l.foreign, "; "))
		}
	}
	res.loads = best
	fmt.Fprintf(b.log, "bench: cluster scenario: measured in %s\n", time.Since(t0).Round(time.Second))
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	res.demoted = env.demoted(dctx)
	cancel()
	if len(res.demoted) > 0 {
		b.notef("cluster scenario: a master changed role during the scenario (a failover), so the Cluster's figures mix two topologies: %s", strings.Join(res.demoted, "; "))
	}
	return res, nil
}

// clusterIngestConfig is the ingest table's daemon (a queue large enough
// that a 503 would be a finding, no route) on the Redis of kind, waiting
// for wait replicas.
func (b *bench) clusterIngestConfig(kind string, wait int) string {
	cfg := "# written by go run ./tools/bench: the cluster scenario's ingest\n" + b.storeYAML(kind, 1_000_000)
	if wait > 0 {
		cfg += fmt.Sprintf("    wait_replicas: %d\n", wait)
	}
	return cfg + "pipeline:\n  workers: 4\n  shutdown_timeout: " + shutdownTimeout.String() + "\n" +
		"webhook:\n  dedup_window: 10m\n"
}

// clusterLoad runs one ingest run on a fresh server. For a latency run it
// also counts the commands nodes ran (nil for the ceiling).
func (b *bench) clusterLoad(ctx context.Context, l *loadRun, nodes redisNodes) error {
	label := l.label()
	pids := b.settle(ctx, label, l.kind)
	var srv *proc
	var err error
	if l.kind == kindCeiling {
		srv, err = b.startTarget(ctx, kindCeiling, label, "", 0)
	} else {
		name := fmt.Sprintf("%s-ingest-wait%d", l.kind, l.wait)
		srv, err = b.startDaemon(ctx, l.kind, label, name, b.clusterIngestConfig(l.kind, l.wait), "--log.level=warn")
	}
	if err != nil {
		return err
	}
	defer srv.stop(shutdownTimeout + 15*time.Second)
	pid := srv.cmd.Process.Pid
	pids["server"] = pid
	lctx, cancel := srv.context(ctx)
	defer cancel()
	url := "http://" + srv.addr + "/webhook"

	count := l.measure == "latency" && nodes != nil
	var ws []redisWatch
	var s0 cmdStats
	if count {
		if ws, err = nodes.watch(lctx, pid, os.Getpid()); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		if s0, err = nodes.commandStats(lctx); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
	}
	fmt.Fprintf(b.log, "bench: %s: %s warm-up + %s ...\n", label, b.o.warmup, b.o.clusterDuration)
	cpu0 := snapCPU(pids)
	t0 := time.Now()
	if l.measure == "max" {
		r := closedLoop(lctx, url, l.payload, b.o.concurrency, b.o.warmup, b.o.clusterDuration)
		l.closed = &r
		fmt.Fprintf(b.log, "bench: %s: %.0f req/s, %d non-2xx, %d errors\n", label, r.rate, r.bad(), r.errs)
		if r.exhausted {
			b.notef("%s: the %d pre-generated bodies ran out after %s of measurement; the rate is over that time", label, l.payload.n, r.window.Round(time.Millisecond))
		}
	} else {
		r, sends := openLoopSends(lctx, url, l.payload, b.o.clusterRate, b.o.workers, b.o.warmup, b.o.clusterDuration)
		l.open = &r
		for i := range sends.scheduled {
			if sends.errs[i] == nil && sends.codes[i] == 200 {
				l.answered++
			}
		}
		fmt.Fprintf(b.log, "bench: %s: p50 %s p99 %s max %s at %.0f/s, %d non-2xx, %d errors\n", label, ms(r.p50), ms(r.p99), ms(r.max), r.achieved, r.bad(), r.errs)
	}
	loadTime := time.Since(t0)
	l.cpu = share(cpu0, snapCPU(pids))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if srv.hasExited() {
		return fmt.Errorf("%s: %s exited during the load (%s)\nlast lines of %s:\n%s", label, srv.name, srv.cmd.ProcessState, srv.logPath, tail(srv.logPath, 20))
	}
	fmt.Fprintf(b.log, "bench: %s: CPU %s\n", label, cpuCell(l.cpu))
	if count {
		// The workers' share of the last entries is the webhook's cost
		// too: they get costSettle to finish.
		select {
		case <-lctx.Done():
		case <-time.After(costSettle):
		}
		s1, err := nodes.commandStats(lctx)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		l.commands, l.top = cmdDiff(s0, s1)
		l.waits = s1.calls["wait"] - s0.calls["wait"]
		l.replconf = s1.calls["replconf"] - s0.calls["replconf"]
		l.foreign = nodes.others(lctx, ws)
		if l.answered > 0 {
			fmt.Fprintf(b.log, "bench: %s: %d commands for %d webhooks = %.2f per webhook (%s)\n", label, l.commands, l.answered, float64(l.commands)/float64(l.answered), cmdList(l.top, l.answered, 6))
		}
	}
	if l.kind == kindCeiling {
		srv.stop(shutdownTimeout + 15*time.Second)
		return ctx.Err()
	}
	st, err := b.endDaemon(ctx, label, l.kind, srv, loadTime)
	if err != nil {
		return err
	}
	l.st = st
	fmt.Fprintf(b.log, "bench: %s: daemon processed %.0f of %.0f alerts, %.0f entries still queued, %d Redis keys deleted\n",
		label, st.processed, st.received, st.depth, st.redisKeys)
	return nil
}

// find is the best run of a kind, wait, payload and measure, or nil.
func (c *clusterResult) find(kind string, wait int, p string, measure string) *loadRun {
	for _, l := range c.loads {
		if l.kind == kind && l.wait == wait && l.payload.name == p && l.measure == measure && l.failed == "" {
			return l
		}
	}
	return nil
}

// payloads are the payload names of the closed loops, in order.
func (c *clusterResult) payloads() []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range c.loads {
		if l.measure == "max" && !seen[l.payload.name] {
			seen[l.payload.name] = true
			out = append(out, l.payload.name)
		}
	}
	return out
}
