package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/store/redis"
)

// The cost scenario counts what one alert costs Redis: the commands the
// daemon sends it, from INFO commandstats before and after -cost-alerts
// distinct single-alert bodies, every one delivered. Redis counts the
// commands a Lua script runs one by one, plus the EVALSHA itself; that is
// intended, since Redis does the work of each. The daemon also costs
// something idle (its workers' blocking reads, the dispatcher's due checks,
// the periodic maintenance); that is measured first, over costIdle, on the
// same fresh daemon, with nothing posted.
//
// INFO commandstats is Redis's, not one client's: another client using the
// same Redis meanwhile would be counted too. The bench leaves out what its
// own measuring sends (INFO, CLIENT LIST) and each new connection's
// handshake (HELLO, SELECT, AUTH, CLIENT SETINFO), reads no /metrics during
// a measurement (the queue depth gauge asks Redis), and lists the clients
// other than the daemon and itself that were active meanwhile, so that such
// a run is called out.

// Targets: commands per alert for each route, and idle commands a second.
const (
	costGoalSlack    = 12.0
	costGoalCritical = 25.0
	costGoalIdle     = 20.0
)

// costIdle is how long the idle daemon is measured; costWarm how long a
// fresh daemon is left alone before that (its start-up commands are not
// idle cost); costSettle how long after the last delivery the measurement
// still runs, for what the daemon does after a send (settling the outbox,
// acknowledging entries in batches); costWait bounds the wait for the
// deliveries.
const (
	costIdle   = 10 * time.Second
	costWarm   = 2 * time.Second
	costSettle = 2 * time.Second
	costWait   = 60 * time.Second
)

// costUncounted are the commands left out of the sums: INFO and CLIENT LIST
// are the bench's measuring, REPLCONF a replica's on its link to its
// master (the Cluster's; the single Redis has none), the others each new
// connection's handshake.
var costUncounted = map[string]bool{"info": true, "select": true, "hello": true, "auth": true, "client|setinfo": true, "client|list": true, "replconf": true}

// The routes of the cost scenario.
const (
	costRouteSlack    = "slack"
	costRouteCritical = "critical"
)

type costRow struct {
	route  string // costRouteSlack or costRouteCritical
	rate   int    // requests per second; 0: closed loop
	conns  int    // the closed loop's connections
	goal   float64
	failed string

	posted    int // bodies answered 200
	bad       counts
	retries   int
	sendTime  time.Duration
	waitTime  time.Duration // first request to the last delivery
	timedOut  bool
	window    time.Duration // the whole measurement
	idleRate  float64       // commands a second, idle; -1 when not measured
	idleTop   []cmdCount
	total     int64
	perAlert  float64
	top       []cmdCount
	slack     sinkTally
	pd        sinkTally
	email     float64 // the daemon's alerts delivered to email (log), after the measurement
	delivered map[string]float64
	deadLtrs  float64
	foreign   []string // other clients active during a measurement
	info      scenarioInfo
	keys      []nodeKeys // the Cluster's masters' DBSIZE after the measurement
}

// nodeKeys is one master's DBSIZE.
type nodeKeys struct {
	port int
	keys int64
}

type cmdCount struct {
	name  string
	calls int64
}

// redisProbe is the bench's own connection for measuring: one connection
// (so that its handshake happens once), used for INFO and CLIENT LIST, and
// on the cluster scenario's private Cluster only for DBSIZE (its keys per
// master) and FLUSHALL (a clean start for the next daemon): never on
// -redis-url, which may be shared. It goes through alertmedic's store
// package, which alone imports go-redis; closures keep the client's type
// out of the bench.
type redisProbe struct {
	port     int // the server's, to tell connections to it apart
	info     func(ctx context.Context, section string) (string, error)
	clients  func(ctx context.Context) (string, error)
	dbsize   func(ctx context.Context) (int64, error)
	flushAll func(ctx context.Context) error
	close    func() error
}

func openProbe(ctx context.Context, rawURL string) (*redisProbe, error) {
	c, err := redis.NewClient(redis.ClientOptions{URL: rawURL, DialTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, PoolSize: 1})
	if err != nil {
		return nil, err
	}
	port := 6379
	if u, err := url.Parse(rawURL); err == nil && u.Port() != "" {
		port, _ = strconv.Atoi(u.Port())
	}
	p := &redisProbe{
		port:     port,
		info:     func(ctx context.Context, section string) (string, error) { return c.Info(ctx, section).Result() },
		clients:  func(ctx context.Context) (string, error) { return c.ClientList(ctx).Result() },
		dbsize:   func(ctx context.Context) (int64, error) { return c.DBSize(ctx).Result() },
		flushAll: func(ctx context.Context) error { return c.FlushAll(ctx).Err() },
		close:    c.Close,
	}
	// Dial now: the handshake is then over before any measurement.
	if _, err := p.info(ctx, "server"); err != nil {
		c.Close()
		return nil, err
	}
	return p, nil
}

// cmdStats is INFO commandstats: calls and microseconds per command.
type cmdStats struct {
	calls, usec map[string]int64
}

// commandStats reads INFO commandstats.
func (p *redisProbe) commandStats(ctx context.Context) (cmdStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out := cmdStats{calls: map[string]int64{}, usec: map[string]int64{}}
	s, err := p.info(ctx, "commandstats")
	if err != nil {
		return out, fmt.Errorf("INFO commandstats: %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(l, "cmdstat_")
		if !ok {
			continue
		}
		name, fields, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		for _, f := range strings.Split(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "calls":
				out.calls[name] = n
			case "usec":
				out.usec[name] = n
			}
		}
	}
	return out, nil
}

// redisNodes are the servers whose commands a measurement counts: the one
// Redis of -redis-url, or the masters of the bench's private Cluster. A
// replica's commandstats count what its master replicated to it, commands
// no client sent, so replicas are left out.
type redisNodes []*redisProbe

// commandStats is INFO commandstats summed over the nodes.
func (ns redisNodes) commandStats(ctx context.Context) (cmdStats, error) {
	out := cmdStats{calls: map[string]int64{}, usec: map[string]int64{}}
	for _, p := range ns {
		s, err := p.commandStats(ctx)
		if err != nil {
			return out, fmt.Errorf("127.0.0.1:%d: %w", p.port, err)
		}
		for k, v := range s.calls {
			out.calls[k] += v
		}
		for k, v := range s.usec {
			out.usec[k] += v
		}
	}
	return out, nil
}

// watch is redisProbe.watch on every node.
func (ns redisNodes) watch(ctx context.Context, pids ...int) ([]redisWatch, error) {
	var ws []redisWatch
	for _, p := range ns {
		w, err := p.watch(ctx, p.port, pids...)
		if err != nil {
			return nil, fmt.Errorf("127.0.0.1:%d: %w", p.port, err)
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// others is redisProbe.others on every node, each finding named by its node
// when there are several.
func (ns redisNodes) others(ctx context.Context, ws []redisWatch) []string {
	var out []string
	for i, p := range ns {
		if i >= len(ws) {
			break
		}
		for _, o := range p.others(ctx, ws[i]) {
			if len(ns) > 1 {
				o = fmt.Sprintf("on 127.0.0.1:%d: %s", p.port, o)
			}
			out = append(out, o)
		}
	}
	return out
}

// cmdTime is one command's share of Redis's time between two readings.
type cmdTime struct {
	name  string
	calls int64
	usec  int64
}

// cmdTimes is b minus a by the time Redis spent, most first, without the
// uncounted commands.
func cmdTimes(a, b cmdStats) []cmdTime {
	var out []cmdTime
	for k, v := range b.usec {
		if d := v - a.usec[k]; d > 0 && !costUncounted[k] {
			out = append(out, cmdTime{k, b.calls[k] - a.calls[k], d})
		}
	}
	slices.SortFunc(out, func(x, y cmdTime) int {
		if x.usec != y.usec {
			return int(y.usec - x.usec)
		}
		return strings.Compare(x.name, y.name)
	})
	return out
}

func (c cmdTime) String() string {
	each := "–"
	if c.calls > 0 {
		each = ms(time.Duration(c.usec) * time.Microsecond / time.Duration(c.calls))
		if c.usec < 1000*c.calls {
			each = fmt.Sprintf("%.1f µs", float64(c.usec)/float64(c.calls))
		}
	}
	return fmt.Sprintf("%s %.1f s in %s calls (%s each)", strings.ToUpper(c.name), float64(c.usec)/1e6, thousands(float64(c.calls)), each)
}

// cmdDiff is b minus a without the uncounted commands: the total and the
// commands by calls, most first.
func cmdDiff(a, b cmdStats) (int64, []cmdCount) {
	var total int64
	var out []cmdCount
	for k, v := range b.calls {
		d := v - a.calls[k]
		if costUncounted[k] || d <= 0 {
			continue
		}
		total += d
		out = append(out, cmdCount{k, d})
	}
	slices.SortFunc(out, func(x, y cmdCount) int {
		if x.calls != y.calls {
			return int(y.calls - x.calls)
		}
		return strings.Compare(x.name, y.name)
	})
	return total, out
}

// foreignClients lists the Redis clients, other than the daemon's and the
// bench's own (found by their local ports in /proc), that sent a command
// within the last `within`: their commands are in commandstats too.
func (p *redisProbe) foreignClients(ctx context.Context, within time.Duration, redisPort int, pids ...int) []string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := p.clients(ctx)
	if err != nil {
		return []string{"CLIENT LIST failed: " + err.Error()}
	}
	ours := socketPorts(redisPort, pids...)
	var out []string
	for _, l := range strings.Split(list, "\n") {
		f := map[string]string{}
		for _, kv := range strings.Fields(l) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				f[k] = v
			}
		}
		addr := f["addr"]
		if addr == "" {
			continue
		}
		port := 0
		if i := strings.LastIndexByte(addr, ':'); i >= 0 {
			port, _ = strconv.Atoi(addr[i+1:])
		}
		if ours[port] || strings.Contains(f["flags"], "S") || strings.Contains(f["flags"], "M") {
			continue
		}
		idle, err := strconv.Atoi(f["idle"])
		if err != nil || time.Duration(idle)*time.Second > within {
			continue
		}
		out = append(out, fmt.Sprintf("%s (last command %s, db %s)", addr, f["cmd"], f["db"]))
	}
	return out
}

// connectionsReceived is Redis's count of connections it accepted so far.
func (p *redisProbe) connectionsReceived(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := p.info(ctx, "stats")
	if err != nil {
		return 0, fmt.Errorf("INFO stats: %w", err)
	}
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "total_connections_received:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO stats: no total_connections_received")
}

// redisWatch notes, at the start of a measurement, what is needed to tell at
// its end whether clients other than the daemon and the bench used Redis:
// the connections Redis had accepted, and the daemon's and the bench's own
// connections to it.
type redisWatch struct {
	conns int64
	ports map[int]bool
	pids  []int
	port  int
	since time.Time
}

func (p *redisProbe) watch(ctx context.Context, redisPort int, pids ...int) (redisWatch, error) {
	n, err := p.connectionsReceived(ctx)
	return redisWatch{conns: n, ports: socketPorts(redisPort, pids...), pids: pids, port: redisPort, since: time.Now()}, err
}

// others lists what other clients did since w: those still connected that
// sent a command meanwhile, and connections Redis accepted that were
// neither the daemon's nor the bench's (a client that came and went).
func (p *redisProbe) others(ctx context.Context, w redisWatch) []string {
	out := p.foreignClients(ctx, time.Since(w.since), w.port, w.pids...)
	n, err := p.connectionsReceived(ctx)
	if err != nil {
		return append(out, err.Error())
	}
	ours := 0
	for port := range socketPorts(w.port, w.pids...) {
		if !w.ports[port] {
			ours++
		}
	}
	if extra := n - w.conns - int64(ours); extra > 0 {
		out = append(out, fmt.Sprintf("%d connections Redis accepted from other clients", extra))
	}
	return out
}

// socketPorts are the local ports of the TCP connections the processes
// hold to remotePort (Redis's port), or of all their TCP sockets with 0.
func socketPorts(remotePort int, pids ...int) map[int]bool {
	inodes := map[string]bool{}
	for _, pid := range pids {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if t, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(t, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(t, "socket:["), "]")] = true
			}
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			if remotePort != 0 {
				i := strings.LastIndexByte(f[2], ':')
				if rp, err := strconv.ParseUint(f[2][i+1:], 16, 32); i < 0 || err != nil || int(rp) != remotePort {
					continue
				}
			}
			if i := strings.LastIndexByte(f[1], ':'); i >= 0 {
				if port, err := strconv.ParseUint(f[1][i+1:], 16, 32); err == nil {
					ports[int(port)] = true
				}
			}
		}
	}
	return ports
}

// shippedRouting is the time_intervals, route and receivers of the shipped
// example configuration (config/example.yml, as the binary embeds it), as
// YAML the bench puts in its own configuration.
func shippedRouting() (string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(config.Example, &doc); err != nil {
		return "", fmt.Errorf("parse the shipped example configuration: %w", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return "", fmt.Errorf("the shipped example configuration is not a mapping")
	}
	root := doc.Content[0]
	out := &yaml.Node{Kind: yaml.MappingNode}
	found := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch k := root.Content[i].Value; k {
		case "time_intervals", "route", "receivers":
			found[k] = true
			out.Content = append(out.Content, root.Content[i], root.Content[i+1])
		}
	}
	if len(found) != 3 {
		return "", fmt.Errorf("the shipped example configuration lacks time_intervals, route or receivers")
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("re-encode the shipped routing: %w", err)
	}
	return string(b), nil
}

// costConfig is the cost scenario's daemon: Redis under the run's prefix
// (kind kindRedis) or the bench's private Cluster (kindCluster), the bench's
// usual pipeline settings, Slack (and, for the critical route,
// PagerDuty) pointed at the stand-ins; email stays unconfigured, so it
// renders into the log, through the outbox like any target. The delivery
// settings are the defaults: Slack 1 message/s per target, burst 3.
func (b *bench) costConfig(kind, route, slackAddr, pdAddr, shipped string) string {
	cfg := "# written by go run ./tools/bench: the cost scenario, route " + route + "\n" + b.storeYAML(kind, 0) +
		"pipeline:\n  workers: 4\n  shutdown_timeout: " + shutdownTimeout.String() + "\n" +
		"webhook:\n  dedup_window: 10m\n" +
		"integrations:\n  slack:\n    api_url: http://" + slackAddr + e2ePath + "\n"
	if route == costRouteCritical {
		return cfg + "  pagerduty:\n    routing_key: " + e2eRoutingKey + "\n    url: http://" + pdAddr + e2ePDPath + "\n" + shipped
	}
	return cfg + "route:\n  receiver: bench\n" +
		"receivers:\n  - name: bench\n    integrations:\n" +
		"      - type: slack\n        settings: {channel: \"" + e2eChannel + "\"}\n"
}

func (b *bench) runCost(ctx context.Context) ([]*costRow, error) {
	if b.o.costAlerts == 0 || !b.o.scenarios["cost"] || !b.o.targets[kindRedis] || b.redis == nil {
		return nil, nil
	}
	pool, err := newE2EPool(filepath.Join(b.o.testdata, "firing.json"), b.o.costAlerts)
	if err != nil {
		return nil, err
	}
	shipped, err := shippedRouting()
	if err != nil {
		return nil, err
	}
	probe, err := openProbe(ctx, b.o.redisURL)
	if err != nil {
		return nil, fmt.Errorf("cost: connect to Redis for INFO commandstats: %w", err)
	}
	defer probe.close()
	rows := []*costRow{
		{route: costRouteSlack, rate: b.o.costRate, goal: costGoalSlack},
		{route: costRouteSlack, conns: b.o.postConns, goal: costGoalSlack},
		{route: costRouteCritical, rate: b.o.costRate, goal: costGoalCritical},
	}
	for i, r := range rows {
		if rows[i], err = b.costMeasure(ctx, kindRedis, r, pool, redisNodes{probe}, shipped); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// costMeasure runs one cost measurement on the Redis of kind (kindRedis or
// kindCluster), counting the commands of nodes, and takes it again (up to
// costRetries times) while other clients used that Redis meanwhile. A
// failure is the row's, in its failed field and the notes; the error is
// only ctx's.
func (b *bench) costMeasure(ctx context.Context, kind string, r *costRow, p *pool, nodes redisNodes, shipped string) (*costRow, error) {
	for attempt := 0; ; attempt++ {
		err := b.costScenario(ctx, kind, r, p, nodes, shipped)
		if err != nil {
			if ctx.Err() != nil {
				return r, ctx.Err()
			}
			r.failed = b.scenarioFailed(err)
			return r, nil
		}
		if len(r.foreign) == 0 {
			return r, nil
		}
		label := fmt.Sprintf("%s / cost / %s / %s", kind, r.route, r.load())
		if attempt == costRetries {
			b.notef("%s: other Redis clients were active during every attempt (%d), and INFO commandstats counts their commands too, so the figures are an upper bound: %s", label, attempt+1, strings.Join(r.foreign, "; "))
			return r, nil
		}
		fmt.Fprintf(b.log, "bench: %s: other Redis clients were active during the measurement (%s); running it again\n", label, strings.Join(r.foreign, "; "))
		r = &costRow{route: r.route, rate: r.rate, conns: r.conns, goal: r.goal}
	}
}

// costRetries is how many times a cost run is taken again because other
// clients used Redis during it.
const costRetries = 2

func (r *costRow) load() string {
	if r.rate > 0 {
		return fmt.Sprintf("%s/s", thousands(float64(r.rate)))
	}
	return fmt.Sprintf("closed loop, %d connections", r.conns)
}

func (r *costRow) routeName() string {
	if r.route == costRouteCritical {
		return "(b) shipped critical route: PagerDuty + email + Slack #alerts-critical"
	}
	return "(a) one Slack target"
}

// costScenario measures one route at one load on a fresh daemon using the
// Redis of kind, counting the commands nodes execute. On the private
// Cluster it also reads each master's DBSIZE before the daemon stops.
func (b *bench) costScenario(ctx context.Context, kind string, r *costRow, p *pool, nodes redisNodes, shipped string) error {
	label := fmt.Sprintf("%s / cost / %s / %s", kind, r.route, r.load())
	pids := b.settle(ctx, label, kind)
	slack, err := startSlack()
	if err != nil {
		return err
	}
	defer slack.close()
	var pd *standIn
	pdAddr := ""
	if r.route == costRouteCritical {
		if pd, err = startPagerDuty(); err != nil {
			return err
		}
		defer pd.close()
		pdAddr = pd.addr
	}
	name := kind + "-cost-" + r.route
	if r.rate == 0 {
		name += "-closed"
	}
	srv, err := b.startDaemon(ctx, kind, label, name, b.costConfig(kind, r.route, slack.addr, pdAddr, shipped), "--log.level=warn")
	if err != nil {
		return err
	}
	defer srv.stop(shutdownTimeout + 15*time.Second)
	pid := srv.cmd.Process.Pid
	pids["server"] = pid
	lctx, cancel := srv.context(ctx)
	defer cancel()
	sleep := func(d time.Duration) error {
		select {
		case <-lctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s: %s exited\nlast lines of %s:\n%s", label, srv.name, srv.logPath, tail(srv.logPath, 20))
		case <-time.After(d):
			return nil
		}
	}
	if err := sleep(costWarm); err != nil {
		return err
	}
	cpu0 := snapCPU(pids)
	r.idleRate = -1
	if r.rate > 0 {
		fmt.Fprintf(b.log, "bench: %s: the idle daemon for %s ...\n", label, costIdle)
		w, err := nodes.watch(lctx, pid, os.Getpid())
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		s0, err := nodes.commandStats(lctx)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		if err := sleep(costIdle); err != nil {
			return err
		}
		s1, err := nodes.commandStats(lctx)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		n, top := cmdDiff(s0, s1)
		r.idleRate, r.idleTop = float64(n)/costIdle.Seconds(), top
		r.foreign = append(r.foreign, nodes.others(lctx, w)...)
		fmt.Fprintf(b.log, "bench: %s: idle %.1f commands/s (%s)\n", label, r.idleRate, cmdList(top, 1, 6))
	}

	fmt.Fprintf(b.log, "bench: %s: %d single-alert bodies at %s ...\n", label, p.n, r.load())
	w, err := nodes.watch(lctx, pid, os.Getpid())
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	before, err := nodes.commandStats(lctx)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	t0 := time.Now()
	url := "http://" + srv.addr + "/webhook"
	if r.rate > 0 {
		dur := time.Duration(p.n) * (time.Second / time.Duration(r.rate))
		_, sends := openLoopSends(lctx, url, p, r.rate, b.o.workers, 0, dur)
		for i := 0; i < sends.scheduled; i++ {
			r.bad.add(sends.codes[i], sends.errs[i])
		}
		r.posted = r.bad.ok
	} else {
		res := sendRetrying(lctx, url, p.n, p.body, r.conns)
		r.bad, r.retries = res.counts, res.retries503
		r.posted = res.sentAlerts(func(int) int { return 1 })
	}
	r.sendTime = time.Since(t0)
	deadline := time.Now().Add(costWait)
	for {
		done := slack.tally().accounted() >= r.posted
		if pd != nil {
			done = done && pd.tally().distinct >= r.posted
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			r.timedOut = true
			break
		}
		if err := sleep(10 * time.Millisecond); err != nil {
			return err
		}
	}
	r.slack = slack.tally()
	last := r.slack.last
	if pd != nil {
		r.pd = pd.tally()
		if r.pd.last.After(last) {
			last = r.pd.last
		}
	}
	r.waitTime = max(last.Sub(t0), 0)
	if err := sleep(costSettle); err != nil {
		return err
	}
	after, err := nodes.commandStats(lctx)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	r.window = time.Since(t0)
	r.total, r.top = cmdDiff(before, after)
	if r.posted > 0 {
		r.perAlert = float64(r.total) / float64(r.posted)
	}
	r.foreign = append(r.foreign, nodes.others(lctx, w)...)
	r.info = scenarioInfo{name: "cost", cpu: share(cpu0, snapCPU(pids))}
	if kind == kindCluster {
		// After the measurement, so that DBSIZE is not counted; before the
		// daemon stops, which wipes the Cluster.
		for _, n := range nodes {
			k, err := n.dbsize(lctx)
			if err != nil {
				return fmt.Errorf("%s: DBSIZE on 127.0.0.1:%d: %w", label, n.port, err)
			}
			r.keys = append(r.keys, nodeKeys{port: n.port, keys: k})
		}
	}
	fmt.Fprintf(b.log, "bench: %s: %d commands for %d alerts = %.2f per alert (%s); delivered after %s; CPU %s\n",
		label, r.total, r.posted, r.perAlert, cmdList(r.top, r.posted, 6), r.waitTime.Round(time.Millisecond), cpuCell(r.info.cpu))

	// Now that the measurement is over, the daemon's own account (the
	// queue depth gauge asks Redis, which is why it waits until now).
	st := &daemonStats{loadTime: r.sendTime}
	if m := b.metrics(ctx, label, srv); m != nil {
		st.read(m)
		r.delivered = map[string]float64{}
		for _, in := range []string{"slack", "pagerduty", "email"} {
			r.delivered[in] = m[fmt.Sprintf(`alertmedic_notification_alerts_total{integration=%q,outcome="delivered"}`, in)]
			r.deadLtrs += m[fmt.Sprintf(`alertmedic_notification_alerts_total{integration=%q,outcome="dead_letter"}`, in)]
		}
		r.email = r.delivered["email"]
		if r.route == costRouteCritical && int(r.email) < r.posted {
			b.notef("%s: the email target (rendered into the log) had %.0f of %d alerts when the measurement ended, so part of its store cost is not counted", label, r.email, r.posted)
		}
	}
	if err := b.stopDaemon(ctx, label, kind, srv, st); err != nil {
		return err
	}
	r.info.st = st
	if r.timedOut {
		b.notef("%s: not every alert reached the stand-ins within %s (Slack accounts for %d, PagerDuty %d of %d)", label, costWait, r.slack.accounted(), r.pd.distinct, r.posted)
	}
	return nil
}

// cmdList is the first n commands with their calls per alert (per = the
// alerts; 1 gives calls as they are).
func cmdList(cs []cmdCount, per, n int) string {
	var parts []string
	for i, c := range cs {
		if i == n {
			break
		}
		if per > 1 {
			parts = append(parts, fmt.Sprintf("%s %.2f", strings.ToUpper(c.name), float64(c.calls)/float64(per)))
		} else {
			parts = append(parts, fmt.Sprintf("%s %d", strings.ToUpper(c.name), c.calls))
		}
	}
	return strings.Join(parts, ", ")
}

// costVerdict holds one run against its targets: commands per alert, idle
// commands a second (where measured), every alert posted and delivered.
func costVerdict(r *costRow) string {
	if r.failed != "" {
		return "MISS: not measured"
	}
	var miss []string
	if r.perAlert > r.goal {
		miss = append(miss, fmt.Sprintf("%.2f commands per alert > %.0f", r.perAlert, r.goal))
	}
	if r.idleRate > costGoalIdle {
		miss = append(miss, fmt.Sprintf("idle %.1f commands/s > %.0f", r.idleRate, costGoalIdle))
	}
	if n := r.bad.bad() + r.bad.errs; n > 0 {
		miss = append(miss, fmt.Sprintf("%d failed requests", n))
	}
	if r.timedOut {
		miss = append(miss, "not every alert delivered")
	}
	v := verdictCell(miss, "PASS")
	if len(r.foreign) > 0 {
		v += " (other Redis clients were active: an upper bound)"
	}
	return v
}

func costSettings(o options) string {
	return fmt.Sprintf("Redis only; each run on a freshly started daemon (`pipeline.workers: 4`, `webhook.dedup_window: 10m`, default delivery settings: Slack 1 message/s per target, burst 3) with the stand-ins of the end-to-end scenario; left alone %s after it is ready, then idle for %s (nothing posted; the fixed-rate runs), then %s distinct single-alert bodies (firing.json with a `bench_seq` label, severity critical), until the stand-ins got every alert (Slack: shown attachments plus \"and N more\") and %s more; commands are INFO commandstats calls over that time, every command but %s",
		costWarm, costIdle, thousands(float64(o.costAlerts)), costSettle, costUncountedList())
}

func costUncountedList() string {
	var ks []string
	for k := range costUncounted {
		ks = append(ks, strings.ToUpper(k))
	}
	slices.Sort(ks)
	return strings.Join(ks, ", ")
}

func costTable(w io.Writer, rows []*costRow, withVerdict bool) {
	tableHead(w, "| route | load | alerts | delivered (Slack messages) | idle commands/s | commands | per alert | top commands, per alert | target |",
		"|---|---|--:|--:|--:|--:|--:|---|---|", withVerdict)
	for _, r := range rows {
		goal := fmt.Sprintf("≤ %.0f per alert", r.goal)
		if r.rate > 0 {
			goal += fmt.Sprintf(", idle ≤ %.0f/s", costGoalIdle)
		}
		c := []string{r.routeName(), r.load()}
		if r.failed != "" {
			c = append(c, "failed", "", "", "", "", "see notes", goal)
		} else {
			deliv := fmt.Sprintf("Slack %s (%s)", thousands(float64(r.slack.accounted())), thousands(float64(r.slack.messages)))
			if r.route == costRouteCritical {
				deliv += fmt.Sprintf(", PagerDuty %s, email %s", thousands(float64(r.pd.distinct)), thousands(r.email))
			}
			idle := "–"
			if r.idleRate >= 0 {
				idle = fmt.Sprintf("%.1f", r.idleRate)
			}
			c = append(c, thousands(float64(r.posted)), deliv, idle, thousands(float64(r.total)), fmt.Sprintf("%.2f", r.perAlert), cmdList(r.top, max(r.posted, 2), 6), goal)
		}
		tableRow(w, c, withVerdict, costVerdict(r))
	}
}

func costDetails(w io.Writer, rows []*costRow) {
	for _, r := range rows {
		if r.failed != "" {
			continue
		}
		idle := ""
		if r.idleRate >= 0 {
			idle = fmt.Sprintf("; idle, by command: %s", cmdList(r.idleTop, 1, 8))
		}
		fmt.Fprintf(w, "- %s at %s: posted in %s, the last delivery %s after the first request, measured over %s (so about %.0f of the commands are the idle rate's); %d 503s sent again; CPU %s%s.\n",
			r.routeName(), r.load(), r.sendTime.Round(time.Millisecond), r.waitTime.Round(time.Millisecond), r.window.Round(time.Millisecond),
			max(rowIdle(rows, r.route), 0)*r.window.Seconds(), r.retries, cpuCell(r.info.cpu), idle)
	}
}

// rowIdle is the idle rate measured for a route, -1 when none was.
func rowIdle(rows []*costRow, route string) float64 {
	for _, r := range rows {
		if r.route == route && r.failed == "" && r.idleRate >= 0 {
			return r.idleRate
		}
	}
	return -1
}

// costIntro explains the cost scenario in BENCHMARKS.md, with its targets
// and, from the run's figures, what missed them.
func costIntro(o options, rows []*costRow) string {
	if o.costAlerts == 0 || len(rows) == 0 {
		return ""
	}
	var missed []string
	for _, r := range rows {
		if v := costVerdict(r); !strings.HasPrefix(v, "PASS") {
			why := strings.TrimPrefix(v, "MISS: ")
			if r.failed == "" && r.perAlert > r.goal {
				why += fmt.Sprintf("; where they go: %s per alert", cmdList(r.top, max(r.posted, 2), 4))
			}
			missed = append(missed, fmt.Sprintf("%s at %s: %s", r.routeName(), r.load(), why))
		}
	}
	analysis := "in this run every run met them."
	if len(missed) > 0 {
		analysis = "missed in this run by " + strings.Join(missed, "; ") + "."
	}
	return fmt.Sprintf(`
**Redis cost** (the cost table, Redis only): how many Redis commands one
alert costs, counted by Redis itself: `+"`INFO commandstats`"+` before and after,
every command but %s (the bench's own measuring and each new connection's
handshake). Redis counts each command a Lua script runs, plus the EVALSHA
itself: a script that does ten things is ten commands of work for Redis.
Each run starts a fresh daemon and leaves it alone %s; the fixed-rate runs
then measure it idle for %s (nothing posted: the workers' blocking reads,
the dispatcher's due checks, the maintenance; *idle commands/s*), then post
%s distinct single-alert bodies (firing.json with a `+"`bench_seq`"+`, severity
critical) at %d/s, wait until the stand-ins got every alert (Slack: its
attachments plus "and N more", which is how merged alerts arrive) and %s
more, and divide the commands over that whole time by the alerts (the idle
rate over that time is included; the details line says how much of it that
is). Route (a) sends every alert to one Slack target; (b) is the shipped
example's routing (`+"`config/example.yml`"+`: its time_intervals, route and
receivers) with Slack and PagerDuty pointed at the stand-ins and email left
unconfigured, so that it renders into the log, through the outbox like any
target: a critical alert goes to oncall's PagerDuty and email and to
Slack `+"`#alerts-critical`"+`. (a) also runs as a closed loop, as fast as %d
connections post, beside. Delivery keeps its defaults: Slack 1 message a
second per target, burst 3, so alerts merge into few Slack messages, and
the store's cost per message is shared by the alerts it carries.
`+"`INFO commandstats`"+` is the whole server's: the bench lists any other
client active during a measurement (by its port; the daemon's and its own
are known from /proc) in the notes and marks the row as an upper bound.

**Target** (Redis cost): at most %.0f commands per alert for (a) and %.0f
for (b), at most %.0f commands a second idle, every alert delivered;
%s
`, costUncountedList(), costWarm, costIdle, thousands(float64(o.costAlerts)), o.costRate, costSettle, o.postConns,
		costGoalSlack, costGoalCritical, costGoalIdle, analysis)
}
