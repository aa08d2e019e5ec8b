package main

// Failover drills: the daemon runs on a private Redis Cluster or Sentinel
// group (redistest.StartCluster, StartSentinel) and, while Alertmanager-shaped
// webhooks keep coming, the master holding its keys is SIGKILLed or handed
// over with CLUSTER FAILOVER. The promises checked are the ones a 200 makes:
// every alert answered 200 reaches PagerDuty and the webhook target once
// (the webhook after dropping a POST whose Idempotency-Key came before, as an
// idempotent endpoint does) and Slack accounts for it; what the daemon
// answers meanwhile is 200 or 503 (which Alertmanager retries), never a 4xx.
// With store.redis.wait_replicas a 200 also means a replica has the alerts:
// the master dies the instant one is answered, and while the only replica is
// dead or stalled nothing may be answered 200.
//
// Every drill starts its own group (stopped by t.Cleanup), is skipped under
// -short and is bounded: 6,000 alerts, recovery within failoverRecoverBound,
// delivery within failoverDeliverBound, failoverHangGuard against a hang.
//
// This file imports go-redis itself, unlike the rest of the package's tests:
// it asks single nodes what redistest does not (DBSIZE, CLUSTER KEYSLOT,
// CLUSTER FAILOVER).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertmedic/alertmedic/store/redis/redistest"
)

const (
	// failoverBodies group_50.json bodies: 6,000 distinct alerts.
	failoverBodies = 120
	failoverAlerts = failoverBodies * 50
	// failoverRecoverBound: from the failure to the last answer that was
	// not a 200. A private group fails over after 1 s of silence.
	failoverRecoverBound = 20 * time.Second
	// failoverDeliverBound: from the failure to every alert at every
	// stand-in.
	failoverDeliverBound = 45 * time.Second
	// failoverHangGuard only keeps a hung drill from running on.
	failoverHangGuard = 90 * time.Second
)

// A SIGKILLed Cluster master that holds the daemon's keys, under load: its
// replica takes over and nothing answered 200 is lost or sent twice.
func TestFailoverClusterKill(t *testing.T) {
	runFailoverDrill(t, failoverDrill{kind: "cluster", failure: killMaster, daemons: 1, failAfter: 40, pace: 75 * time.Millisecond})
}

// The same with every key under one hash tag (store.redis.shards: 1): the
// victim holds all of them, so every enqueue waits for the failover.
func TestFailoverClusterKillOneShard(t *testing.T) {
	runFailoverDrill(t, failoverDrill{kind: "cluster", failure: killMaster, daemons: 1, failAfter: 40, pace: 75 * time.Millisecond, storeExtra: "shards: 1"})
}

// The same master handed over gracefully: CLUSTER FAILOVER sent to its
// replica, the old master stays up as the new one's replica.
func TestFailoverClusterGraceful(t *testing.T) {
	runFailoverDrill(t, failoverDrill{kind: "cluster", failure: clusterFailover, daemons: 1, failAfter: 40, pace: 75 * time.Millisecond})
}

// Two daemons share the Cluster (an Alertmanager HA pair posting to both);
// Redis loses the master, the daemons stay up.
func TestFailoverClusterKillTwoDaemons(t *testing.T) {
	runFailoverDrill(t, failoverDrill{kind: "cluster", failure: killMaster, daemons: 2, failAfter: 40, pace: 75 * time.Millisecond})
}

// A SIGKILLed Sentinel master under load: the Sentinels promote the replica.
func TestFailoverSentinelKill(t *testing.T) {
	runFailoverDrill(t, failoverDrill{kind: "sentinel", failure: killMaster, daemons: 1, failAfter: 40, pace: 75 * time.Millisecond})
}

// With store.redis.wait_replicas: 1 a 200 means a replica has the entry:
// the master is SIGKILLed the moment one chosen request is answered 200,
// with others in flight, and still no 200 is lost. The new master has no
// replica until the old one comes back, so the drill brings it back as one.
func TestFailoverSentinelWaitReplicas(t *testing.T) {
	runFailoverDrill(t, failoverDrill{kind: "sentinel", failure: killMaster, daemons: 1, waitReplicas: 1, killOnOK: true, failAfter: 40})
}

// The same on a Cluster, with every key under one hash tag (shards: 1), so
// that the master to kill, the owner of the tag's slot, is known before the
// load; the killed master rejoins as the new one's replica.
func TestFailoverClusterWaitReplicas(t *testing.T) {
	runFailoverDrill(t, failoverDrill{kind: "cluster", failure: killMaster, daemons: 1, waitReplicas: 1, killOnOK: true, failAfter: 40, storeExtra: "shards: 1"})
}

// With store.redis.wait_replicas: 1 and the only replica SIGKILLed, no 200
// can be promised: every body, a first try or a retry, is answered 503
// until the replica is back. (A retry finds its alerts queued by the try
// answered 503 before it; no replica has those either.)
func TestFailoverSentinelWaitReplicasNoReplica(t *testing.T) {
	runFailoverDrill(t, failoverDrill{kind: "sentinel", failure: killReplica, daemons: 1, waitReplicas: 1, failAfter: 40, pace: 75 * time.Millisecond})
}

// With store.redis.wait_replicas: 1 and the replica stalled (SIGSTOP: still
// connected, acknowledging nothing), as a replica that lags far behind: the
// same, every body is answered 503 until it catches up.
func TestFailoverSentinelWaitReplicasStalledReplica(t *testing.T) {
	runFailoverDrill(t, failoverDrill{kind: "sentinel", failure: stallReplica, daemons: 1, waitReplicas: 1, failAfter: 40, pace: 75 * time.Millisecond})
}

// What a drill does to Redis.
const (
	killMaster      = "SIGKILL of the master"
	clusterFailover = "CLUSTER FAILOVER away from the master"
	killReplica     = "SIGKILL of the replica"
	stallReplica    = "SIGSTOP of the replica"
)

// replicaOutage is how long killReplica and stallReplica leave the group
// without a working replica: longer than a few of the daemon's WAITs
// (store.redis.timeout, 3 s by default).
const replicaOutage = 12 * time.Second

type failoverDrill struct {
	kind    string // "cluster" or "sentinel"
	failure string // killMaster, clusterFailover, killReplica or stallReplica
	daemons int
	// waitReplicas is store.redis.wait_replicas (0: not set).
	waitReplicas int
	// storeExtra is one more line of store.redis, if any.
	storeExtra string
	// The failure comes once failAfter bodies are answered 200, while the
	// load goes on; with killOnOK the master is killed from the poster's
	// goroutine the moment body failAfter is answered 200.
	failAfter int
	killOnOK  bool
	// pace spaces the bodies' first tries, so that the load outlasts the
	// failover (0: as fast as the posters go).
	pace time.Duration
}

func runFailoverDrill(t *testing.T, dr failoverDrill) {
	if testing.Short() {
		t.Skip("-short: a failover drill starts a private Redis group")
	}
	prefix := "failover-" + failoverHex(6)
	sink := newFailoverSink(t)
	// Check the configuration first, on stand-in addresses (check-config
	// dials nothing): a key this build does not know yet, wait_replicas
	// say, would otherwise only show as a daemon that exits at start.
	cfg := stormConfig(t, sink.stormSink, failoverStoreBlock(dr, []string{"127.0.0.1:1", "127.0.0.1:2"}, "alertmedic", prefix), "failover-check")
	if code, out, errOut := runCLI(t, "check-config", cfg); code != 0 {
		t.Fatalf("the drill's configuration does not load (check-config exit %d):\n%s%s", code, out, errOut)
	}
	var g *redistest.Group
	var addrs []string
	masterName := ""
	switch dr.kind {
	case "cluster":
		g = redistest.StartCluster(t)
		addrs = g.Addrs
	case "sentinel":
		g = redistest.StartSentinel(t)
		addrs, masterName = g.SentinelAddrs, g.MasterName
	default:
		t.Fatalf("drill kind %q", dr.kind)
	}
	storeBlock := failoverStoreBlock(dr, addrs, masterName, prefix)
	var ds []*daemon
	for k := range dr.daemons {
		ds = append(ds, start(t, "--config.file="+stormConfig(t, sink.stormSink, storeBlock, fmt.Sprintf("failover-%c", 'a'+k))))
	}

	// master is the one the failure is about and replica its replica. On a
	// Sentinel group they are known now; on a Cluster master is the one that
	// holds the most keys, known once there are some.
	var master, replica string
	if dr.kind == "sentinel" {
		ms, rs := g.Masters(), g.Replicas()
		if len(ms) != 1 || len(rs) != 1 {
			t.Fatalf("sentinel group: masters %v, replicas %v; want one of each", ms, rs)
		}
		master, replica = ms[0], rs[0]
	} else if dr.killOnOK {
		if dr.storeExtra != "shards: 1" {
			t.Fatal("killOnOK on a Cluster needs every key under one tag (shards: 1), to know the master before the load")
		}
		master = failoverSlotOwner(t, g, "{"+prefix+"}")
		replica = failoverReplicaIn(t, g, master)
	}
	if dr.killOnOK && dr.failure != killMaster {
		t.Fatalf("killOnOK kills the master, not %q", dr.failure)
	}

	l := &failoverLoad{
		bodies: failoverBodyList(t, failoverBodies),
		urls: func(body, try int) (int, string) {
			k := (body + try) % len(ds) // as postAll: a retry may go to the other daemon
			return k, ds[k].url("/webhook")
		},
		workers: 8,
		pace:    dr.pace,
	}
	var failBegan, failDone, restartBegan time.Time
	killNow, killed := make(chan struct{}), make(chan struct{})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	if dr.killOnOK {
		l.onOK = func(a failoverAnswer) {
			if a.body != dr.failAfter {
				return
			}
			select {
			case killNow <- struct{}{}:
			case <-stop:
				return
			}
			select {
			case <-killed:
			case <-stop:
			}
		}
	}
	loadDone := make(chan struct{})
	began := time.Now()
	go func() { defer close(loadDone); l.run(stop) }()

	if dr.killOnOK {
		select {
		case <-killNow:
		case <-loadDone:
			t.Fatalf("the load ended before body %d was answered 200", dr.failAfter)
		case <-time.After(failoverHangGuard):
			t.Fatalf("body %d not answered 200 within %v", dr.failAfter, failoverHangGuard)
		}
		failBegan = time.Now()
		g.Kill(master)
		failDone = time.Now()
		close(killed)
	} else {
		eventually(t, failoverHangGuard, fmt.Sprintf("%d bodies answered 200", dr.failAfter), func() bool { return l.okCount() >= dr.failAfter })
		if dr.kind == "cluster" {
			master, replica = failoverBusiestMaster(t, g, prefix)
		}
		failBegan = time.Now()
		switch dr.failure {
		case killMaster:
			g.Kill(master)
		case killReplica:
			g.Kill(replica)
		case stallReplica:
			failoverSignal(t, g, replica, syscall.SIGSTOP)
			t.Cleanup(func() { failoverSignal(t, g, replica, syscall.SIGCONT) })
		case clusterFailover:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c := failoverNode(replica)
			err := c.Do(ctx, "CLUSTER", "FAILOVER").Err()
			c.Close()
			cancel()
			if err != nil {
				t.Fatalf("cluster failover on %s: %v", replica, err)
			}
		default:
			t.Fatalf("failure %q", dr.failure)
		}
		failDone = time.Now()
	}
	t.Logf("%s (master %s, replica %s) at %v, %d bodies answered 200 so far",
		dr.failure, master, replica, failBegan.Sub(began).Round(time.Millisecond), l.okCount())

	var promoted time.Duration
	switch dr.failure {
	case killReplica, stallReplica:
		// The master stays; the replica is away for replicaOutage, then
		// comes back (from its own config as the master's replica) or
		// goes on.
		time.Sleep(time.Until(failBegan.Add(replicaOutage)))
		restartBegan = time.Now()
		if dr.failure == killReplica {
			g.Restart(replica)
		} else {
			failoverSignal(t, g, replica, syscall.SIGCONT)
		}
		eventually(t, 30*time.Second, replica+" back as a replica of "+master, func() bool { return failoverLinkUp(replica, master) })
		if ms := g.Masters(); !slices.Equal(ms, []string{master}) {
			t.Errorf("masters %v after the replica's outage; want [%s]", ms, master)
		}
	default:
		// The promoted role, as the nodes themselves say it.
		eventually(t, 30*time.Second, replica+" promoted", func() bool {
			ms := g.Masters()
			return slices.Contains(ms, replica) && !slices.Contains(ms, master)
		})
		promoted = time.Since(failBegan)
		if dr.failure == clusterFailover {
			eventually(t, 30*time.Second, master+" a replica of "+replica, func() bool { return failoverRole(master) == "slave of "+replica })
		}
		if dr.waitReplicas > 0 {
			// The new master has no replica to wait for until the old one
			// is back; until then every enqueue answers 503. The old
			// master holds nothing (no persistence in these groups): back
			// as a master, a Sentinel could promote it, and its empty
			// dataset would replace the new master's (Redis's replication
			// docs warn of this). So it comes back only once every Sentinel
			// has settled on the new master, and is made its replica at once.
			// (A Cluster node rejoins from its nodes.conf as the replica
			// of the one that took its slots.)
			if dr.kind == "sentinel" {
				failoverSentinelsSettled(t, g, replica, 2*time.Second)
			}
			restartBegan = time.Now()
			g.Restart(master)
			if dr.kind == "sentinel" {
				failoverReplicaOf(t, master, replica)
			}
			eventually(t, 30*time.Second, master+" back as a replica of "+replica, func() bool { return failoverLinkUp(master, replica) })
			t.Logf("%s back as a replica of %s %v after the kill (restarted at %v)", master, replica,
				time.Since(failBegan).Round(time.Millisecond), restartBegan.Sub(failBegan).Round(time.Millisecond))
		}
	}

	select {
	case <-loadDone:
	case <-time.After(failoverHangGuard):
		t.Fatalf("the posters still run %v after the failure", failoverHangGuard)
	}
	loaded := time.Since(began)
	delivered := failoverWait(failoverHangGuard, func() bool {
		s, p, h := sink.accounted()
		return s >= failoverAlerts && p >= failoverAlerts && h >= failoverAlerts
	})
	deliveredAfter := time.Since(failBegan)
	time.Sleep(time.Second) // a duplicate would show by now

	// What the daemons answered.
	sum := l.summary(failBegan)
	for _, a := range sum.bad {
		t.Errorf("body %d try %d (daemon %d), %v after the failure: %d %s", a.body, a.try, a.daemon, a.at.Sub(failBegan).Round(time.Millisecond), a.code, a.err)
	}
	if len(sum.ok) != failoverBodies {
		t.Errorf("%d of %d bodies answered 200", len(sum.ok), failoverBodies)
	}
	for _, a := range sum.ok {
		if a.accepted+a.duplicates != 50 || a.try == 0 && a.accepted != 50 {
			t.Errorf("body %d try %d (sent %v after the failure, answered %v later) answered 200 with %d accepted and %d duplicates: want 50 accepted (or, after a 503 whose enqueue went through, 50 in all)",
				a.body, a.try, a.sent.Sub(failBegan).Round(time.Millisecond), a.at.Sub(a.sent).Round(time.Millisecond), a.accepted, a.duplicates)
		}
	}
	if dr.killOnOK && sum.inFlight == 0 {
		t.Errorf("no request was in flight at the kill: the drill proves nothing about them")
	}
	if (dr.failure == killReplica || dr.failure == stallReplica) && dr.waitReplicas > 0 {
		// A request sent once the replica was dead or stalled and answered
		// before it was back: no replica can have had its alerts.
		early := l.okBetween(failDone, restartBegan)
		for _, a := range early[:min(len(early), 5)] {
			t.Errorf("body %d try %d, sent %v after the replica's kill, answered 200 (%d accepted, %d duplicates) %v later, with no working replica: wait_replicas: %d promises a replica has it",
				a.body, a.try, a.sent.Sub(failBegan).Round(time.Millisecond), a.accepted, a.duplicates, a.at.Sub(a.sent).Round(time.Millisecond), dr.waitReplicas)
		}
		if len(early) > 0 {
			t.Errorf("%d requests answered 200 while no replica worked", len(early))
		}
	}

	// What the stand-ins got.
	sink.mu.Lock()
	var lost, pdTwice, hookTwice []int
	for i := range failoverAlerts {
		switch {
		case sink.pd[i] == 0 || sink.hook[i] == 0:
			lost = append(lost, i)
		case sink.pd[i] > 1:
			pdTwice = append(pdTwice, i)
		case sink.hook[i] > 1:
			hookTwice = append(hookTwice, i)
		}
	}
	slackAlerts := len(sink.slackShown) + sink.slackMore
	slackTwice := 0
	for _, c := range sink.slackShown {
		if c > 1 {
			slackTwice++
		}
	}
	pdEvents, slackMessages := sumCounts(sink.pd), len(sink.slackTimes)
	sink.mu.Unlock()
	sink.kmu.Lock()
	hookPosts, hookRepeats := len(sink.hookSeen), sink.hookRepeats
	sink.kmu.Unlock()

	if !delivered {
		t.Errorf("not every alert at every stand-in %v after the failure", failoverHangGuard)
	} else if deliveredAfter > failoverDeliverBound {
		t.Errorf("every alert at every stand-in only %v after the failure; want within %v", deliveredAfter.Round(time.Millisecond), failoverDeliverBound)
	}
	if len(lost) > 0 {
		t.Errorf("%d alerts answered 200 never reached PagerDuty or the webhook; %s", len(lost), failoverDescribe(sink.stormSink, sum.ok, lost, failBegan))
	}
	if len(pdTwice) > 0 {
		t.Errorf("%d alerts reached PagerDuty more than once; %s", len(pdTwice), failoverDescribe(sink.stormSink, sum.ok, pdTwice, failBegan))
	}
	if len(hookTwice) > 0 {
		t.Errorf("%d alerts reached the webhook more than once under different Idempotency-Keys; %s", len(hookTwice), failoverDescribe(sink.stormSink, sum.ok, hookTwice, failBegan))
	}
	if slackAlerts < failoverAlerts {
		t.Errorf("the Slack messages account for %d alerts, want at least %d", slackAlerts, failoverAlerts)
	}
	for k, d := range ds {
		select {
		case <-d.done:
			t.Errorf("daemon %d exited during the drill: %v", k, d.err)
			continue
		default:
		}
		if n := metricSum(t, d, "alertmedic_notifications_dead_letters_total"); n != 0 {
			t.Errorf("daemon %d: %v dead letters", k, n)
		}
	}
	// Recovery counts from the failure, or, where the drill keeps the group
	// without a replica on purpose, from the replica's restart.
	recoverFrom, from := failBegan, "the failure"
	if !restartBegan.IsZero() {
		recoverFrom, from = restartBegan, "the failed node's return"
	}
	if took := sum.lastFail.Sub(recoverFrom); took > failoverRecoverBound {
		t.Errorf("the webhook still failed %v after %s; want every answer a 200 within %v", took.Round(time.Millisecond), from, failoverRecoverBound)
	}

	t.Logf("%d alerts in %d bodies, all posted in %v; %d alerts answered 200, %d of those on a retry as duplicates (a try answered 503 had queued them); %d bodies answered 200 on a retry, %d after the failure",
		failoverAlerts, failoverBodies, loaded.Round(time.Millisecond), sum.okAlerts, sum.dupAlerts, sum.retried, sum.okAfter)
	t.Logf("%s at %v after the start (taking %v); replica promoted %v after it (0: none); answers not 200: %d before it, %d after (%d of them 503); first 200 to a request sent after it %v after, last answer not 200 %v after; %d requests in flight at it (%d answered 200)",
		dr.failure, failBegan.Sub(began).Round(time.Millisecond), failDone.Sub(failBegan).Round(time.Microsecond), promoted.Round(time.Millisecond),
		sum.failBefore, sum.failAfter, sum.unavailable, failoverSince(sum.firstOK, failBegan), failoverSince(sum.lastFail, failBegan), sum.inFlight, sum.inFlightOK)
	t.Logf("every alert at every stand-in %v after the failure: PagerDuty %d events for %d alerts, webhook %d POSTs (+%d repeats of a key, dropped), Slack %d messages accounting for %d alerts (%d shown twice)",
		deliveredAfter.Round(time.Millisecond), pdEvents, failoverAlerts, hookPosts, hookRepeats, slackMessages, slackAlerts, slackTwice)
	for k, d := range ds {
		t.Logf("daemon %d log, warnings and errors: %s", k, failoverLogTally(d.log))
	}
}

// failoverStoreBlock is the drill's store: a Cluster's nodes, or a
// Sentinel group's Sentinels and the name they know the master by.
func failoverStoreBlock(dr failoverDrill, addrs []string, master, prefix string) string {
	b := fmt.Sprintf("store:\n  type: redis\n  redis:\n    addrs: [%s]\n", strings.Join(addrs, ", "))
	if dr.kind == "sentinel" {
		b += "    master_name: " + master + "\n"
	}
	b += fmt.Sprintf("    key_prefix: %s\n    claim_idle: 5s", prefix)
	if dr.waitReplicas > 0 {
		b += fmt.Sprintf("\n    wait_replicas: %d", dr.waitReplicas)
	}
	if dr.storeExtra != "" {
		b += "\n    " + dr.storeExtra
	}
	return b
}

// failoverSink is a stormSink whose webhook endpoint drops a POST whose
// Idempotency-Key it has seen, as an idempotent endpoint does, before the
// stand-in counts its alerts.
type failoverSink struct {
	*stormSink
	kmu         sync.Mutex
	hookSeen    map[string]bool
	hookRepeats int
}

func newFailoverSink(t *testing.T) *failoverSink {
	f := &failoverSink{stormSink: newStormSink(t), hookSeen: map[string]bool{}}
	// The stand-in's own server stays unused: the daemons get this one.
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *failoverSink) serve(w http.ResponseWriter, r *http.Request) {
	if k := r.Header.Get("Idempotency-Key"); r.URL.Path == "/hook" && k != "" {
		f.kmu.Lock()
		seen := f.hookSeen[k]
		f.hookSeen[k] = true
		if seen {
			f.hookRepeats++
		}
		f.kmu.Unlock()
		if seen {
			io.WriteString(w, "ok")
			return
		}
	}
	f.stormSink.serve(w, r)
}

var (
	failoverLabelsRE  = regexp.MustCompile(`"labels":\{`)
	failoverSummaryRE = regexp.MustCompile(`"summary":"[^"]*"`)
)

// failoverBodyList makes n group_50.json bodies distinct as the benchmarks
// do, with a bench_seq label per body, and gives alert j of body b the label
// i and the summary storm-i (i = 50b+j) by which the stand-ins count it.
func failoverBodyList(t *testing.T, n int) [][]byte {
	t.Helper()
	tmpl := fixture(t, "group_50.json")
	out := make([][]byte, n)
	for b := range out {
		j, k := 0, 0
		body := failoverLabelsRE.ReplaceAllFunc(tmpl, func([]byte) []byte {
			j++
			return fmt.Appendf(nil, `"labels":{"bench_seq":"%09d","i":"%d",`, b, b*50+j-1)
		})
		body = failoverSummaryRE.ReplaceAllFunc(body, func([]byte) []byte {
			k++
			return fmt.Appendf(nil, `"summary":"storm-%d"`, b*50+k-1)
		})
		if j != 50 || k != 50 {
			t.Fatalf("group_50.json: %d labels and %d summaries, want 50 of each", j, k)
		}
		out[b] = body
	}
	return out
}

// failoverAnswer is one webhook request of a drill and what came back.
type failoverAnswer struct {
	body, try, daemon    int
	sent, at             time.Time
	code                 int    // 0: no HTTP answer
	err                  string // the transport error, or the answer's body
	accepted, duplicates int
}

// failoverLoad posts every body as an Alertmanager would: a 503 or a
// connection error is tried again after a short pause, to the next daemon;
// any other answer ends the body. Its posters never call t, so that one
// still running at a failed test's end cannot panic.
type failoverLoad struct {
	bodies  [][]byte
	urls    func(body, try int) (daemon int, url string)
	workers int
	pace    time.Duration
	// onOK runs in the poster's goroutine on every 200, before it moves on.
	onOK func(failoverAnswer)

	mu      sync.Mutex
	answers []failoverAnswer
	ok      int
}

func (l *failoverLoad) okCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok
}

func (l *failoverLoad) run(stop <-chan struct{}) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: l.workers}}
	defer client.CloseIdleConnections()
	next := make(chan int)
	var wg sync.WaitGroup
	for range l.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				l.post(client, i, stop)
			}
		}()
	}
	began := time.Now()
	for i := range l.bodies {
		// Body i is due at its place in the schedule: late after a stall,
		// then the backlog goes at once, as Alertmanager's does.
		if l.pace > 0 {
			time.Sleep(time.Until(began.Add(time.Duration(i) * l.pace)))
		}
		select {
		case next <- i:
		case <-stop:
		}
	}
	close(next)
	wg.Wait()
}

func (l *failoverLoad) post(client *http.Client, i int, stop <-chan struct{}) {
	giveUp := time.Now().Add(failoverHangGuard)
	for try := 0; time.Now().Before(giveUp); try++ {
		select {
		case <-stop:
			return
		default:
		}
		k, url := l.urls(i, try)
		a := failoverAnswer{body: i, try: try, daemon: k, sent: time.Now()}
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(l.bodies[i]))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			a.at, a.err = time.Now(), err.Error()
			l.record(a)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		rb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.at, a.code = time.Now(), resp.StatusCode
		if a.code == http.StatusOK {
			var w struct{ Accepted, Duplicates int }
			if err := json.Unmarshal(rb, &w); err != nil {
				a.err = fmt.Sprintf("undecodable answer %q", rb)
			}
			a.accepted, a.duplicates = w.Accepted, w.Duplicates
		} else {
			a.err = strings.TrimSpace(string(rb))
		}
		l.record(a)
		switch a.code {
		case http.StatusOK:
			if l.onOK != nil {
				l.onOK(a)
			}
			return
		case http.StatusServiceUnavailable:
			time.Sleep(100 * time.Millisecond)
		default:
			return // Alertmanager does not retry a 4xx
		}
	}
}

func (l *failoverLoad) record(a failoverAnswer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answers = append(l.answers, a)
	if a.code == http.StatusOK {
		l.ok++
	}
}

// okBetween returns the 200s to requests sent at from or later and
// answered before to.
func (l *failoverLoad) okBetween(from, to time.Time) []failoverAnswer {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []failoverAnswer
	for _, a := range l.answers {
		if a.code == http.StatusOK && !a.sent.Before(from) && a.at.Before(to) {
			out = append(out, a)
		}
	}
	return out
}

// failoverSummary is what the daemons answered, relative to the failure.
type failoverSummary struct {
	ok                    map[int]failoverAnswer // each body's 200
	bad                   []failoverAnswer       // neither 200 nor 503, or no answer
	okAlerts, dupAlerts   int
	retried, okAfter      int
	failBefore, failAfter int // answers not 200, before and after the failure
	unavailable           int // of those after, the 503s
	firstOK, lastFail     time.Time
	inFlight, inFlightOK  int // requests sent before the failure and answered after
}

func (l *failoverLoad) summary(failure time.Time) failoverSummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := failoverSummary{ok: map[int]failoverAnswer{}}
	for _, a := range l.answers {
		if a.sent.Before(failure) && a.at.After(failure) {
			s.inFlight++
			if a.code == http.StatusOK {
				s.inFlightOK++
			}
		}
		if a.code == http.StatusOK {
			s.ok[a.body] = a
			s.okAlerts += a.accepted + a.duplicates
			s.dupAlerts += a.duplicates
			if a.try > 0 {
				s.retried++
			}
			if a.at.After(failure) {
				s.okAfter++
			}
			if !a.sent.Before(failure) && (s.firstOK.IsZero() || a.at.Before(s.firstOK)) {
				s.firstOK = a.at
			}
			continue
		}
		if a.code != http.StatusServiceUnavailable {
			s.bad = append(s.bad, a)
		}
		if a.at.Before(failure) {
			s.failBefore++
			continue
		}
		s.failAfter++
		if a.code == http.StatusServiceUnavailable {
			s.unavailable++
		}
		if a.at.After(s.lastFail) {
			s.lastFail = a.at
		}
	}
	return s
}

// failoverDescribe says, for a few of the alerts, what the daemon answered
// for their body and what each stand-in got, against the failure's time.
func failoverDescribe(s *stormSink, ok map[int]failoverAnswer, alerts []int, failure time.Time) string {
	s.mu.Lock() // a late delivery may still come in
	defer s.mu.Unlock()
	var parts []string
	bodies := map[int]bool{}
	for _, i := range alerts {
		bodies[i/50] = true
	}
	for _, i := range alerts[:min(len(alerts), 8)] {
		a, answered := ok[i/50]
		when := "never answered 200"
		if answered {
			when = fmt.Sprintf("its body %d answered 200 (try %d, %d accepted) %v after the failure", i/50, a.try, a.accepted, a.at.Sub(failure).Round(time.Millisecond))
		}
		parts = append(parts, fmt.Sprintf("alert %d: PagerDuty %d, webhook %d; %s", i, s.pd[i], s.hook[i], when))
	}
	return fmt.Sprintf("from %d bodies; %s", len(bodies), strings.Join(parts, "; "))
}

func failoverSince(at, from time.Time) string {
	if at.IsZero() || at.Before(from) {
		return "none"
	}
	return at.Sub(from).Round(time.Millisecond).String()
}

// failoverWait is eventually that reports instead of failing.
func failoverWait(limit time.Duration, ok func() bool) bool {
	for end := time.Now().Add(limit); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			return false
		}
	}
	return true
}

// failoverLogTally counts a daemon's warnings and errors by message, with one
// error text of each: the evidence of what the failover did to it.
func failoverLogTally(l *logBuf) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	type seen struct {
		n   int
		err string
	}
	tally := map[string]*seen{}
	for _, line := range l.lines {
		var e struct{ Level, Message, Error string }
		if json.Unmarshal([]byte(line), &e) != nil || e.Level != "warn" && e.Level != "error" {
			continue
		}
		k := e.Level + " " + e.Message
		if tally[k] == nil {
			tally[k] = &seen{err: strings.ReplaceAll(e.Error, "\n", " | ")}
		}
		tally[k].n++
	}
	if len(tally) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(tally))
	for k := range tally {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %d× %s", tally[k].n, k)
		if tally[k].err != "" {
			fmt.Fprintf(&b, " (e.g. %s)", tally[k].err)
		}
	}
	return b.String()
}

// failoverNode talks to one node and neither retries nor waits long.
func failoverNode(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: time.Second,
		MaxRetries: -1, PoolSize: 1, DisableIdentity: true,
	})
}

// failoverRole is "master", "slave of ADDR", or the error of asking.
func failoverRole(addr string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	role, master, err := redistest.Role(ctx, addr)
	switch {
	case err != nil:
		return err.Error()
	case role == "slave":
		return "slave of " + master
	}
	return role
}

// failoverLinkUp: the node at addr is a replica of master with its link up.
func failoverLinkUp(addr, master string) bool {
	if failoverRole(addr) != "slave of "+master {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := failoverNode(addr)
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	return err == nil && strings.Contains(info, "master_link_status:up")
}

// failoverSignal sends sig to the server at addr, by the PID in the
// group's pids file ("PID ROLE PORT" per line, see scripts/redis-servers).
func failoverSignal(t *testing.T, g *redistest.Group, addr string, sig syscall.Signal) {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	b, err := os.ReadFile(filepath.Join(g.Dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] == port {
			pid, err := strconv.Atoi(f[0])
			if err == nil {
				err = syscall.Kill(pid, sig)
			}
			if err != nil {
				t.Fatalf("%v to %s (%q): %v", sig, addr, line, err)
			}
			return
		}
	}
	t.Fatalf("%s is not in %s/pids", addr, g.Dir)
}

// failoverReplicaOf makes the node at addr a replica of master.
func failoverReplicaOf(t *testing.T, addr, master string) {
	t.Helper()
	host, port, err := net.SplitHostPort(master)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := failoverNode(addr)
	defer c.Close()
	if err := c.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		t.Fatalf("replicaof %s on %s: %v", master, addr, err)
	}
}

// failoverSentinelsSettled waits until every Sentinel has named master the
// master, with no flag but "master" (no s_down, no failover in progress),
// for settle on end.
func failoverSentinelsSettled(t *testing.T, g *redistest.Group, master string, settle time.Duration) {
	t.Helper()
	var since time.Time
	agree := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, s := range g.SentinelAddrs {
			c := redis.NewSentinelClient(&redis.Options{Addr: s, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1, PoolSize: 1, DisableIdentity: true})
			m, err := c.Master(ctx, g.MasterName).Result()
			c.Close()
			if err != nil || net.JoinHostPort(m["ip"], m["port"]) != master || m["flags"] != "master" {
				return false
			}
		}
		return true
	}
	eventually(t, 30*time.Second, fmt.Sprintf("every Sentinel settled on %s for %v", master, settle), func() bool {
		if !agree() {
			since = time.Time{}
			return false
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) >= settle
	})
}

// failoverBusiestMaster returns the Cluster master holding the most keys,
// and its replica. With every key under the one hash tag {prefix} that is
// the owner of the tag's slot (logged); with the keys spread over shards'
// tags, the one whose loss hurts most.
func failoverBusiestMaster(t *testing.T, g *redistest.Group, prefix string) (master, replica string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	masters := g.Masters()
	if len(masters) != 3 {
		t.Fatalf("cluster masters %v, want 3", masters)
	}
	keys := map[string]int64{}
	for _, m := range masters {
		c := failoverNode(m)
		n, err := c.DBSize(ctx).Result()
		c.Close()
		if err != nil {
			t.Fatalf("dbsize on %s: %v", m, err)
		}
		keys[m] = n
		if master == "" || n > keys[master] {
			master = m
		}
	}
	if keys[master] == 0 {
		t.Fatalf("no master holds a key: %v", keys)
	}
	tag := "{" + prefix + "}"
	t.Logf("keys per master %v: the victim is %s (%s, the one-shard tag, is on %s)", keys, master, tag, failoverSlotOwner(t, g, tag))
	return master, failoverReplicaIn(t, g, master)
}

// failoverSlotOwner returns the master that serves the slot of key.
func failoverSlotOwner(t *testing.T, g *redistest.Group, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	for _, a := range g.Masters() {
		c := failoverNode(a)
		var slot int64
		var slots []redis.ClusterSlot
		if slot, err = c.ClusterKeySlot(ctx, key).Result(); err == nil {
			slots, err = c.ClusterSlots(ctx).Result() //nolint:staticcheck // CLUSTER SLOTS is what redis-server 7.0 and go-redis's own client read
		}
		c.Close()
		if err != nil {
			continue
		}
		for _, s := range slots {
			if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
				return s.Nodes[0].Addr
			}
		}
		t.Fatalf("no node serves slot %d of %s", slot, key)
	}
	t.Fatalf("the slot of %s: %v", key, err)
	return ""
}

// failoverReplicaIn returns master's replica in g.
func failoverReplicaIn(t *testing.T, g *redistest.Group, master string) string {
	t.Helper()
	for _, r := range g.Replicas() {
		if failoverRole(r) == "slave of "+master {
			return r
		}
	}
	t.Fatalf("no replica of %s among %v", master, g.Replicas())
	return ""
}

func failoverHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
