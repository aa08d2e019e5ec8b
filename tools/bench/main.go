// Command bench measures how fast alertmedic acknowledges Alertmanager
// webhooks, next to a ceiling: a bare net/http handler that only decodes the
// same payload with encoding/json. Every target runs as its own process on
// 127.0.0.1 and gets the same pre-generated bodies, so the rows of one run
// are comparable. Past ingest it measures the way to Slack and PagerDuty
// (e2e), memory (with a short retention, and with the shipped example
// configuration), what an alert costs Redis (cost), a 100,000-alert
// storm to Slack, PagerDuty and webhook stand-ins (storm), and the Redis
// store on a private Redis Cluster beside the single Redis (cluster). It prints
// markdown tables (and, with -write, a BENCHMARKS.md with targets and
// PASS/MISS); it asserts nothing, because timings on a shared machine are
// not a test.
//
//	make bench                        # go run ./tools/bench -binary bin/alertmedic
//	go run ./tools/bench -binary bin/alertmedic -duration 5s
//	go run ./tools/bench -binary bin/alertmedic -write BENCHMARKS.md
//	go run ./tools/bench -binary bin/alertmedic -scenarios cluster -targets ceiling,redis
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command line; every bound the run respects comes from here.
type options struct {
	binary      string
	testdata    string
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	rate        int
	workers     int
	redisURL    string
	poolMB      int
	maxRequests int
	write       string
	targets     map[string]bool
	scenarios   map[string]bool
	vary        string
	retries     int
	repeat      int
	e2eRate     int
	e2eDrain    time.Duration
	memAlerts   int
	memWindow   time.Duration
	costAlerts  int
	costRate    int
	stormAlerts int
	stormDrain  time.Duration
	postConns   int
	// The cluster scenario: the script that starts its Cluster, the
	// Cluster's base port (0: a free one), and its ingest runs' length,
	// fixed rate and attempts.
	redisServers    string
	clusterPort     int
	clusterDuration time.Duration
	clusterRate     int
	clusterRepeat   int
	// serveCeiling is set only when the bench re-executes itself as the
	// ceiling server.
	serveCeiling string
	args         []string
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if o.serveCeiling != "" {
		err = serveCeiling(ctx, o.serveCeiling)
	} else {
		err = run(ctx, o, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		stop()
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{args: args}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.binary, "binary", "bin/alertmedic", "alertmedic binary to benchmark (make build makes it)")
	fs.StringVar(&o.testdata, "testdata", "testdata/alertmanager", "directory holding the captured firing.json and group_50.json")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each scenario (each also runs -warmup first)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each scenario, so that connections and the daemon's caches are warm")
	fs.IntVar(&o.concurrency, "concurrency", 32, "keep-alive connections of the closed loop that finds the maximum rate")
	fs.IntVar(&o.rate, "rate", 1000, "requests per second of the open loop that measures ack latency")
	fs.IntVar(&o.workers, "open-loop-conns", 256, "most connections the open loop may use when the server falls behind")
	fs.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379/15", "Redis for the redis-store rows; must be on 127.0.0.1 (keys under a per-run prefix are deleted afterwards)")
	fs.IntVar(&o.poolMB, "pool-mb", 2048, "memory for the pre-generated bodies of each payload, in MiB; it bounds the requests of a scenario")
	fs.IntVar(&o.maxRequests, "max-requests", 600_000, "most requests of one scenario (with -pool-mb, this bounds the bench's memory)")
	fs.StringVar(&o.vary, "vary", varyLabel, "how each body is made distinct: label (a unique bench_seq label on every alert: new alerts, as in a large fleet) or startsAt (the same alerts, a new startsAt per request: histories stay full)")
	fs.IntVar(&o.repeat, "repeat", 3, "attempts of each ingest scenario, each on a fresh server; the best is kept (highest max rate, lowest p99), which is the one the host's pauses skewed least")
	fs.IntVar(&o.retries, "retries", 3, "how many scenarios, in all, may be run again because other processes took a share of the CPU during them")
	fs.IntVar(&o.e2eRate, "e2e-rate", 200, "requests per second (1 alert each) of the end-to-end scenario, webhook to a local Slack stand-in, run for the memory and redis targets; 0 skips it")
	fs.DurationVar(&o.e2eDrain, "e2e-drain", 30*time.Second, "how long the end-to-end scenario waits after its load for alerts still on their way to the stand-in")
	fs.IntVar(&o.memAlerts, "mem-alerts", 100_000, "distinct alerts (as 50-alert bodies) of the memory scenario: resident memory after them and after their retention (memory and redis targets), and with the shipped example configuration (memory target); 0 skips it")
	fs.DurationVar(&o.memWindow, "mem-window", 20*time.Second, "dedup window and history retention of the memory scenario's retention part; that part lasts about twice this plus 30s")
	fs.IntVar(&o.costAlerts, "cost-alerts", 1000, "distinct single-alert bodies of each run of the cost scenario (Redis commands per alert, redis target only); 0 skips it")
	fs.IntVar(&o.costRate, "cost-rate", 200, "requests per second of the cost scenario's fixed-rate runs (its closed-loop run posts as fast as -post-conns connections do)")
	fs.IntVar(&o.stormAlerts, "storm-alerts", 100_000, "distinct alerts of the storm scenario (50-alert bodies and five 1,000-alert bodies) delivered to Slack, PagerDuty and webhook stand-ins, run for the memory and redis targets; 0 skips it")
	fs.DurationVar(&o.stormDrain, "storm-drain", 4*time.Minute, "how long the storm scenario waits, from its first request, for every alert to reach the stand-ins")
	fs.IntVar(&o.postConns, "post-conns", 8, "keep-alive connections of the storm, of the cost scenario's closed loop and of the memory scenario's shipped-configuration part; each retries a 503 after its Retry-After")
	fs.StringVar(&o.redisServers, "redis-servers", "scripts/redis-servers", "the script that starts (and stops) the cluster scenario's private Redis Cluster of 3 masters and 3 replicas")
	fs.IntVar(&o.clusterPort, "cluster-port", 0, "base port of the cluster scenario's Redis Cluster (it takes BASE..BASE+5 and BASE+10000..BASE+10005 on 127.0.0.1); 0 picks free ones below 45000")
	fs.DurationVar(&o.clusterDuration, "cluster-duration", 4*time.Second, "measured time of each of the cluster scenario's ingest runs (each also runs -warmup first)")
	fs.IntVar(&o.clusterRate, "cluster-rate", 500, "requests per second (1 alert each) of the cluster scenario's fixed-rate runs, which time the ack with wait_replicas 0 and 1")
	fs.IntVar(&o.clusterRepeat, "cluster-repeat", 2, "attempts of each of the cluster scenario's ingest runs, interleaved, each on a fresh server; the best is kept")
	targets := fs.String("targets", "ceiling,memory,redis", "comma-separated targets to run; a subset helps when profiling one")
	scenarios := fs.String("scenarios", strings.Join(defaultScenarios, ","), "comma-separated scenarios to run: ingest (max rate and ack latency), memory (both parts: memory-retention, short retention and no route, memory and redis; memory-shipped, the shipped example configuration, memory store), e2e, cost (Redis commands per alert and idle, redis target), storm (100,000 alerts to three stand-ins, memory and redis), cluster (a private Redis Cluster beside the single Redis: commands per alert, ingest rate, the cost of wait_replicas: 1; redis target, and the ceiling target for its ceiling column)")
	fs.StringVar(&heapProfiles, "heap-profile", "", "also save the heap profile of each forced GC of the memory scenarios into this directory (for go tool pprof)")
	fs.StringVar(&o.write, "write", "", "also write the results, with targets and PASS/MISS, to this file (e.g. BENCHMARKS.md)")
	fs.StringVar(&o.serveCeiling, "serve-ceiling", "", "")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./tools/bench [flags]\n\nMeasures alertmedic's webhook ingest against a bare encoding/json handler.\n\n")
		// -serve-ceiling is how the bench starts its own ceiling process;
		// it is not for people.
		fs.VisitAll(func(f *flag.Flag) {
			if f.Name == "serve-ceiling" {
				return
			}
			fmt.Fprintf(stderr, "  -%s\n    \t%s (default %q)\n", f.Name, f.Usage, f.DefValue)
		})
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return o, errors.New("unexpected arguments")
	}
	if o.serveCeiling != "" {
		return o, nil
	}
	var bad []string
	positiveUpTo(&bad, "-duration", o.duration, 10*time.Minute)
	within(&bad, "-warmup", o.warmup, 0, time.Minute)
	within(&bad, "-concurrency", o.concurrency, 1, 4096)
	within(&bad, "-rate", o.rate, 1, 100_000)
	within(&bad, "-open-loop-conns", o.workers, 1, 4096)
	within(&bad, "-retries", o.retries, 0, 12)
	within(&bad, "-repeat", o.repeat, 1, 10)
	within(&bad, "-e2e-rate", o.e2eRate, 0, 10_000)
	positiveUpTo(&bad, "-e2e-drain", o.e2eDrain, 5*time.Minute)
	within(&bad, "-mem-alerts", o.memAlerts, 0, 1_000_000)
	within(&bad, "-mem-window", o.memWindow, time.Second, 10*time.Minute)
	within(&bad, "-cost-alerts", o.costAlerts, 0, 100_000)
	within(&bad, "-cost-rate", o.costRate, 1, 10_000)
	within(&bad, "-storm-alerts", o.stormAlerts, 0, 1_000_000)
	within(&bad, "-storm-drain", o.stormDrain, 10*time.Second, 30*time.Minute)
	if o.clusterPort != 0 && (o.clusterPort < 1024 || o.clusterPort >= 45000) {
		bad = append(bad, "-cluster-port must be 0 or in [1024, 45000)")
	}
	positiveUpTo(&bad, "-cluster-duration", o.clusterDuration, time.Minute)
	within(&bad, "-cluster-rate", o.clusterRate, 1, 10_000)
	within(&bad, "-cluster-repeat", o.clusterRepeat, 1, 5)
	within(&bad, "-post-conns", o.postConns, 1, 256)
	if o.poolMB < 1 || o.maxRequests < 1 {
		bad = append(bad, "-pool-mb and -max-requests must be positive")
	}
	if o.vary != varyLabel && o.vary != varyStartsAt {
		bad = append(bad, "-vary must be label or startsAt")
	}
	o.targets = map[string]bool{}
	for _, t := range strings.Split(*targets, ",") {
		switch t = strings.TrimSpace(t); t {
		case kindCeiling, kindMemory, kindRedis:
			o.targets[t] = true
		default:
			bad = append(bad, fmt.Sprintf("-targets: unknown target %q (want ceiling, memory, redis)", t))
		}
	}
	o.scenarios = map[string]bool{}
	for _, sc := range strings.Split(*scenarios, ",") {
		switch sc = strings.TrimSpace(sc); sc {
		case "memory":
			o.scenarios[scMemRetention] = true
			o.scenarios[scMemShipped] = true
		case "ingest", "e2e", "cost", "storm", "cluster", scMemRetention, scMemShipped:
			o.scenarios[sc] = true
		default:
			bad = append(bad, fmt.Sprintf("-scenarios: unknown scenario %q (want %s, or memory-retention, memory-shipped)", sc, strings.Join(defaultScenarios, ", ")))
		}
	}
	if err := checkLoopbackURL(o.redisURL); err != nil {
		bad = append(bad, "-redis-url: "+err.Error())
	}
	if len(bad) > 0 {
		for _, b := range bad {
			fmt.Fprintf(stderr, "bench: %s\n", b)
		}
		return o, errors.New("bad flags")
	}
	return o, nil
}

// within adds to bad that flag must be in [lo, hi] when v is not.
func within[T int | time.Duration](bad *[]string, flag string, v, lo, hi T) {
	if v < lo || v > hi {
		*bad = append(*bad, fmt.Sprintf("%s must be in [%s, %s]", flag, rangeEnd(lo), rangeEnd(hi)))
	}
}

// positiveUpTo adds to bad that flag must be in (0, hi] when d is not.
func positiveUpTo(bad *[]string, flag string, d, hi time.Duration) {
	if d <= 0 || d > hi {
		*bad = append(*bad, fmt.Sprintf("%s must be in (0, %s]", flag, rangeEnd(hi)))
	}
}

// rangeEnd writes one end of a flag's range as its message does: 4096, 0,
// 10s, 5m (a whole number of minutes without time.Duration's "0s").
func rangeEnd[T int | time.Duration](v T) string {
	d, ok := any(v).(time.Duration)
	if !ok || d == 0 {
		return strconv.Itoa(int(v))
	}
	if d%time.Minute == 0 {
		return strings.TrimSuffix(d.String(), "0s")
	}
	return d.String()
}

// defaultScenarios are what -scenarios runs unless told otherwise, in the
// order they run; "memory" stands for its two parts.
var defaultScenarios = []string{"ingest", "memory", "e2e", "cost", "storm", "cluster"}

// The memory scenario's parts, which -scenarios also takes one at a time.
const (
	scMemRetention = "memory-retention"
	scMemShipped   = "memory-shipped"
)

// checkLoopbackURL keeps the bench's promise that no traffic leaves the
// machine: a Redis elsewhere would also be someone else's Redis.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if u.Scheme != "redis" {
		return fmt.Errorf("scheme must be redis://, got %q", u.Scheme)
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("host must be a loopback address such as 127.0.0.1, got %q", u.Hostname())
	}
	return nil
}

// commandLine is how the run was started, as someone would type it again,
// with a Redis password left out.
func commandLine(args []string) string {
	out := []string{"go", "run", "./tools/bench"}
	for _, a := range args {
		if strings.Contains(a, "redis://") {
			k, v, ok := strings.Cut(a, "=")
			if !ok {
				k, v = "", a
			}
			if u, err := url.Parse(v); err == nil {
				v = u.Redacted()
			}
			if ok {
				a = k + "=" + v
			} else {
				a = v
			}
		}
		if strings.ContainsAny(a, " \t'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// run does the whole benchmark. Everything it starts is stopped by its
// defers, which also run when ctx is cancelled by Ctrl-C.
func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	binary, err := filepath.Abs(o.binary)
	if err != nil {
		return fmt.Errorf("resolve binary: %w", err)
	}
	if fi, err := os.Stat(binary); err != nil || fi.IsDir() {
		return fmt.Errorf("daemon binary %s not found: run make build first", o.binary)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	tmp, err := os.MkdirTemp("", "alertmedic-bench-")
	if err != nil {
		return fmt.Errorf("create temp dir: %w", err)
	}
	keepTmp := false
	defer func() {
		if keepTmp {
			fmt.Fprintf(stderr, "bench: logs kept in %s\n", tmp)
			return
		}
		os.RemoveAll(tmp)
	}()

	procs := newProcSet(stderr)
	defer procs.stopAll()

	b := &bench{o: o, binary: binary, self: self, tmp: tmp, procs: procs, log: stderr, quietBudget: time.Minute, retries: o.retries}
	b.info = machineInfo()
	b.info.command = commandLine(o.args)
	b.info.daemon = daemonVersion(binary)

	rdb, prefix, skip := b.openRedis(ctx)
	if rdb != nil {
		defer func() {
			// Defers run last-in first-out, so this runs before the
			// procSet's: stop the daemons here, or one could write after
			// the wipe.
			procs.stopAll()
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			n, werr := wipePrefix(wctx, rdb, prefix)
			if werr != nil {
				fmt.Fprintf(stderr, "bench: delete Redis keys {%s}*: %v (they expire by their TTL)\n", prefix, werr)
			} else {
				fmt.Fprintf(stderr, "bench: deleted %d Redis keys {%s}*\n", n, prefix)
			}
			rdb.Close()
		}()
	}
	b.redis, b.prefix = rdb, prefix

	b.info.stallsBefore = probeStalls(stallProbe)
	fmt.Fprintf(stderr, "bench: stall probe before the run: %s\n", b.info.stallsBefore)
	res, err := b.runAll(ctx)
	keepTmp = b.keepLogs
	if err == nil {
		b.info.stallsAfter = probeStalls(stallProbe)
		fmt.Fprintf(stderr, "bench: stall probe after the run: %s\n", b.info.stallsAfter)
	}
	if err != nil {
		return err
	}
	report(stdout, b, res, skip)
	if o.write != "" {
		f, err := os.Create(o.write)
		if err != nil {
			return fmt.Errorf("write results: %w", err)
		}
		writeFile(f, b, res, skip)
		if err := f.Close(); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
		fmt.Fprintf(stderr, "bench: wrote %s\n", o.write)
	}
	return nil
}
