package redistest

// Redis Cluster and Sentinel groups for tests. The shared ones, which
// `make redis-servers` and CI start with scripts/redis-servers, are named
// by REDIS_CLUSTER_ADDRS, REDIS_SENTINEL_ADDRS and REDIS_SENTINEL_MASTER;
// nothing may kill their servers, since other packages' tests use them at the
// same time. A failover drill starts a private group of its own instead,
// with the same script, in a temporary directory and on free ports, and the
// group is stopped when the test ends.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster returns the addresses of the shared Redis Cluster in
// REDIS_CLUSTER_ADDRS (comma-separated), after checking that it answers
// with cluster_state:ok. Without the variable t is skipped, or with CI=true
// fails.
func Cluster(t testing.TB) []string {
	t.Helper()
	addrs := addrsFromEnv(t, "REDIS_CLUSTER_ADDRS")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	for _, a := range addrs {
		var state string
		if state, err = ClusterState(ctx, a); err == nil {
			if state == "ok" {
				return addrs
			}
			err = fmt.Errorf("cluster_state:%s", state)
		}
	}
	t.Fatalf("REDIS_CLUSTER_ADDRS=%s: the cluster is not usable: %v", strings.Join(addrs, ","), err)
	return nil
}

// Sentinel returns the addresses of the shared Sentinels in
// REDIS_SENTINEL_ADDRS and the name of the master they watch in
// REDIS_SENTINEL_MASTER, after checking that a Sentinel knows that master.
// Without the variables t is skipped, or with CI=true fails.
func Sentinel(t testing.TB) (addrs []string, master string) {
	t.Helper()
	addrs = addrsFromEnv(t, "REDIS_SENTINEL_ADDRS")
	master = os.Getenv("REDIS_SENTINEL_MASTER")
	if master == "" {
		t.Fatal("REDIS_SENTINEL_ADDRS is set but REDIS_SENTINEL_MASTER, the master's name, is not")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	for _, a := range addrs {
		if _, err = SentinelMaster(ctx, a, master); err == nil {
			return addrs, master
		}
	}
	t.Fatalf("REDIS_SENTINEL_ADDRS=%s: no Sentinel knows master %q: %v", strings.Join(addrs, ","), master, err)
	return nil, ""
}

func addrsFromEnv(t testing.TB, name string) []string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; CI starts these servers with scripts/redis-servers (make redis-servers)", name)
		}
		t.Skipf("%s is not set (make redis-servers starts the servers and prints it); CI=true makes this a failure", name)
	}
	var addrs []string
	for _, a := range strings.Split(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// Group is a private group of Redis servers that scripts/redis-servers
// started for one test, in a directory of its own.
type Group struct {
	// Kind is "cluster" or "sentinel".
	Kind string
	// Dir holds every server's config, log and nodes.conf, and the pids file.
	Dir string
	// Addrs are the data nodes, by port: a Cluster's 6 nodes, or a Sentinel
	// group's master then its replica, as they started.
	Addrs []string
	// SentinelAddrs are a Sentinel group's 3 Sentinels, and MasterName the
	// name under which they watch the master.
	SentinelAddrs []string
	MasterName    string

	t   testing.TB
	srv *Servers
}

// StartCluster starts a private Redis Cluster of 3 masters with a replica
// each, stopped when t ends. Its servers may be killed and restarted.
func StartCluster(t testing.TB) *Group {
	t.Helper()
	return start(t, "cluster")
}

// StartSentinel starts a private master, its replica and 3 Sentinels
// watching it, stopped when t ends. Its servers may be killed and restarted.
func StartSentinel(t testing.TB) *Group {
	t.Helper()
	return start(t, "sentinel")
}

// groupNodeTimeout is a private Cluster's cluster-node-timeout: short, so
// that a drill's failover takes seconds. A Sentinel group's
// down-after-milliseconds is twice that: at 1 s it equals Sentinel's own
// reconnect period, and on a busy machine two sentinels once marked a
// just-promoted master down and promoted an empty one.
const groupNodeTimeout = time.Second

func nodeTimeout(kind string) time.Duration {
	if kind == "sentinel" {
		return 2 * groupNodeTimeout
	}
	return groupNodeTimeout
}

func start(t testing.TB, kind string) *Group {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: no private Redis %s", kind)
	}
	ci := os.Getenv("CI") == "true"
	for _, bin := range []string{"redis-server", "redis-cli"} {
		// With CI=true the script installs them (CI runs as root), or says
		// why it cannot.
		if _, err := exec.LookPath(bin); err != nil && !ci {
			t.Skipf("%s is not installed (Debian: apt-get install redis-server); CI=true makes this a failure", bin)
		}
	}
	// Cleanups run last registered first: the servers stop (and free their
	// ports for another test) before their directory goes.
	dir := t.TempDir()
	script := Script{Path: filepath.Join(repoRoot(t), "scripts", "redis-servers")}
	srv, err := StartServers(context.Background(), ServersOptions{
		Kind: kind, Script: script, Dir: dir, Ports: TestPorts, NodeTimeout: nodeTimeout(kind), Logf: t.Logf,
	})
	if err != nil {
		t.Fatalf("%s start %s: %v%s", script.Path, kind, err, scriptOutput(err))
	}
	g := &Group{Kind: kind, Dir: dir, Addrs: srv.DataAddrs(), SentinelAddrs: srv.SentinelAddrs, MasterName: srv.MasterName, t: t, srv: srv}
	t.Cleanup(g.stop)
	return g
}

// scriptOutput is what a failed run of the script printed, for a test's
// message.
func scriptOutput(err error) string {
	var se *ScriptError
	if !errors.As(err, &se) {
		return ""
	}
	return "\n" + string(se.Stdout) + string(se.Stderr)
}

// stop stops every server of the group by the PIDs the script recorded,
// after logging the end of each server's log if the test failed.
func (g *Group) stop() {
	if g.t.Failed() {
		g.logTails()
	}
	if err := g.srv.Stop(); err != nil {
		g.t.Errorf("%s stop --dir %s: %v%s", g.srv.script.Path, g.Dir, err, scriptOutput(err))
	}
}

func (g *Group) logTails() {
	logs, _ := filepath.Glob(filepath.Join(g.Dir, "*", "*.log"))
	for _, name := range logs {
		b, err := os.ReadFile(name)
		if err != nil || len(b) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		rel, _ := filepath.Rel(g.Dir, name)
		g.t.Logf("==> %s <==\n%s", rel, strings.Join(lines, "\n"))
	}
}

// Masters returns the data nodes that say, now, that they are masters;
// Replicas those that say they are replicas. A node that does not answer, a
// killed one say, is in neither.
func (g *Group) Masters() []string { return g.withRole("master") }

// Replicas: see Masters.
func (g *Group) Replicas() []string { return g.withRole("slave") }

func (g *Group) withRole(want string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var addrs []string
	for _, a := range g.Addrs {
		if role, _, err := Role(ctx, a); err == nil && role == want {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// Role asks the server at addr for its role: "master", "slave" or
// "sentinel", and for a replica the address of its master.
func Role(ctx context.Context, addr string) (role, master string, err error) {
	c := direct(addr)
	defer c.Close()
	v, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", "", fmt.Errorf("role of %s: %w", addr, err)
	}
	if len(v) == 0 {
		return "", "", fmt.Errorf("role of %s: empty reply", addr)
	}
	role, _ = v[0].(string)
	if role == "slave" && len(v) >= 3 {
		host, _ := v[1].(string)
		port, _ := v[2].(int64)
		master = net.JoinHostPort(host, strconv.FormatInt(port, 10))
	}
	return role, master, nil
}

// Kill sends SIGKILL to the server at addr, by the PID the script recorded,
// and waits until it is gone.
func (g *Group) Kill(addr string) {
	g.t.Helper()
	pid := g.pid(addr)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		g.t.Fatalf("kill %s (pid %d): %v", addr, pid, err)
	}
	for end := time.Now().Add(5 * time.Second); processAlive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			g.t.Fatalf("kill %s: pid %d still runs 5s after SIGKILL", addr, pid)
		}
	}
}

// Restart starts the server at addr again, killed or stopped before, from
// its own config, and waits until it answers. A Cluster node rejoins with
// its nodes.conf, as a replica when its slots moved meanwhile; a Sentinel
// group's old master comes back as a master until the Sentinels make it a
// replica of the new one, some seconds later.
func (g *Group) Restart(addr string) {
	g.t.Helper()
	port := g.port(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := g.srv.Restart(ctx, port); err != nil {
		g.t.Fatalf("%s restart --port %d: %v%s", g.srv.script.Path, port, err, scriptOutput(err))
	}
}

// pid reads addr's PID from the pids file, which Restart rewrites.
func (g *Group) pid(addr string) int {
	g.t.Helper()
	pid, err := g.srv.PID(g.port(addr))
	if err != nil {
		g.t.Fatalf("pid of %s: %v", addr, err)
	}
	return pid
}

func (g *Group) port(addr string) int {
	g.t.Helper()
	_, p, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil {
		g.t.Fatalf("%s: not HOST:PORT", addr)
	}
	return port
}

// processAlive: the process exists and is not a zombie waiting for a
// parent that may never reap it.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// direct is a client for one server that neither retries nor waits long, for
// asking a node about itself while others are failing.
func direct(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:            addr,
		DialTimeout:     time.Second,
		ReadTimeout:     time.Second,
		WriteTimeout:    time.Second,
		MaxRetries:      -1,
		PoolSize:        1,
		DisableIdentity: true,
	})
}

// ClusterState asks the node at addr for its cluster_state ("ok" or "fail").
func ClusterState(ctx context.Context, addr string) (string, error) {
	c := direct(addr)
	defer c.Close()
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return "", fmt.Errorf("cluster info on %s: %w", addr, err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_state:"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("cluster info on %s: no cluster_state", addr)
}

// SentinelMaster asks the Sentinel at addr where the master it calls name is.
func SentinelMaster(ctx context.Context, addr, name string) (string, error) {
	c := redis.NewSentinelClient(&redis.Options{
		Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: -1, PoolSize: 1, DisableIdentity: true,
	})
	defer c.Close()
	hp, err := c.GetMasterAddrByName(ctx, name).Result()
	if err != nil {
		return "", fmt.Errorf("sentinel get-master-addr-by-name %s on %s: %w", name, addr, err)
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("sentinel get-master-addr-by-name %s on %s: %q", name, addr, hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// repoRoot walks up from the working directory, a package's directory under
// go test, to the directory holding go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory: cannot find scripts/redis-servers")
		}
		dir = parent
	}
}
