package redistest

// scripts/redis-servers driven from Go, for the tests' private groups
// (StartCluster, StartSentinel) and for the bench's private Cluster alike:
// picking free ports, starting a group, reading what the script printed,
// and stopping it by the PIDs the script recorded. Nothing here needs a
// testing.TB; errors are returned.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Script is scripts/redis-servers.
type Script struct {
	// Path is the script's path.
	Path string
	// Stderr, when not nil, also receives the script's progress and errors,
	// which are always kept for the error of a failed run.
	Stderr io.Writer
}

// ScriptError is a failed run of the script.
type ScriptError struct {
	Args   []string
	Err    error
	Stdout []byte
	Stderr []byte
}

// Error reads "redis-servers ARG: CAUSE: LINE", LINE being the script's
// last word on stderr.
func (e *ScriptError) Error() string {
	s := fmt.Sprintf("redis-servers %s: %v", e.Args[0], e.Err)
	if l := lastLine(string(e.Stderr), "redis-servers: "); l != "" {
		s += ": " + l
	}
	return s
}

func (e *ScriptError) Unwrap() error { return e.Err }

// lastLine is the last line of s that starts with prefix, or the last line.
func lastLine(s, prefix string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], prefix) {
			return lines[i]
		}
	}
	return lines[len(lines)-1]
}

// scriptWaitDelay bounds how long a cancelled run may take to exit after
// SIGTERM before it is killed.
const scriptWaitDelay = 10 * time.Second

// Run runs the script with args and returns its stdout. The script runs in
// a process group of its own, and so do the servers it launches, so that
// Ctrl-C on the terminal reaches only the caller, which then stops them in
// order; cancelling ctx sends the group SIGTERM. A failure is a
// *ScriptError.
func (s Script) Run(ctx context.Context, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, s.Path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if s.Stderr != nil {
		cmd.Stderr = io.MultiWriter(&stderr, s.Stderr)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = scriptWaitDelay
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &ScriptError{Args: args, Err: err, Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	}
	return stdout.Bytes(), nil
}

// PortRange is where StartServers picks a group's base port: Min, Min+Step,
// and so on up to Max. A Cluster takes base..base+5 and its bus ports
// base+10000..base+10005, a Sentinel group base..base+4.
type PortRange struct {
	Min, Max, Step int
}

// TestPorts is the tests' range: blocks of 10 whose ports, bus included,
// are below Linux's ephemeral range (32768 and up), so that no client's
// outgoing port takes one meanwhile.
var TestPorts = PortRange{Min: 10000, Max: 22690, Step: 10}

// clusterPortMax is the script's bound on a Cluster's ports: the bus ports
// are 10000 above, and must stay below 65536.
const clusterPortMax = 55000

func (r PortRange) check(kind string) error {
	switch {
	case r.Step < 1 || r.Min < 1024 || r.Max < r.Min:
		return fmt.Errorf("redis %s: bad port range %d..%d step %d", kind, r.Min, r.Max, r.Step)
	case kind == "cluster" && r.Max+5 >= clusterPortMax:
		return fmt.Errorf("redis cluster: port range %d..%d: a Cluster's ports must be below %d (its bus ports are 10000 above)", r.Min, r.Max, clusterPortMax)
	}
	return nil
}

// portOffsets are the ports of a group of kind, from its base.
func portOffsets(kind string) []int {
	if kind == "cluster" {
		return []int{0, 1, 2, 3, 4, 5, 10000, 10001, 10002, 10003, 10004, 10005}
	}
	return []int{0, 1, 2, 3, 4}
}

var (
	basesMu sync.Mutex
	bases   = map[int]bool{} // the bases this process's groups hold
)

// reserveTries is how many bases reserveBase tries.
const reserveTries = 200

// reserveBase finds a base in r whose ports are free now and that no other
// group of this process holds, and returns it with the function that
// releases it. Another process may still take a port before the servers
// bind theirs; StartServers then tries again.
func reserveBase(kind string, r PortRange) (int, func(), error) {
	basesMu.Lock()
	defer basesMu.Unlock()
	for range reserveTries {
		base := r.Min + r.Step*rand.IntN((r.Max-r.Min)/r.Step+1)
		if bases[base] || !portsFree(base, portOffsets(kind)) {
			continue
		}
		bases[base] = true
		return base, func() {
			basesMu.Lock()
			delete(bases, base)
			basesMu.Unlock()
		}, nil
	}
	return 0, nil, fmt.Errorf("no free ports for a redis %s with a base between %d and %d", kind, r.Min, r.Max)
}

func portsFree(base int, offsets []int) bool {
	for _, off := range offsets {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+off)))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// ServersOptions says what StartServers starts.
type ServersOptions struct {
	// Kind is "cluster" (3 masters with a replica each) or "sentinel" (a
	// master, its replica and 3 Sentinels watching it).
	Kind   string
	Script Script
	// Dir is the group's directory: every server's config, log and
	// nodes.conf, and the pids file.
	Dir string
	// Base is the base port; 0 picks one in Ports that is free, and picks
	// again when another process takes a port before the servers bind it.
	Base  int
	Ports PortRange
	// NodeTimeout is the Cluster's cluster-node-timeout and the Sentinels'
	// down-after-milliseconds; 0 leaves the script's default (2 s).
	NodeTimeout time.Duration
	// Logf, when not nil, is told of each try.
	Logf func(format string, args ...any)
}

// Node is one server as the script started it.
type Node struct {
	Role string // master, replica or sentinel, at start
	Addr string // 127.0.0.1:PORT
	Port int
	PID  int
}

// Servers is a group that scripts/redis-servers started and Stop stops.
type Servers struct {
	Kind string
	Dir  string
	Base int
	// Nodes are every server, by port, as the script printed them.
	Nodes []Node
	// ClusterAddrs is REDIS_CLUSTER_ADDRS, a Cluster's nodes;
	// SentinelAddrs REDIS_SENTINEL_ADDRS and MasterName
	// REDIS_SENTINEL_MASTER, a Sentinel group's.
	ClusterAddrs  []string
	SentinelAddrs []string
	MasterName    string

	script  Script
	release func()
}

// startTries is how many bases StartServers tries when it picks them.
const startTries = 4

// startTimeout bounds one start: the script gives up after its own 60 s.
const startTimeout = 90 * time.Second

// StartServers starts a group with the script. The script is told this
// process's PID (--owner), so that it stops the servers itself if the
// process dies without stopping them. When StartServers fails it has
// stopped what it started.
func StartServers(ctx context.Context, o ServersOptions) (*Servers, error) {
	if o.Kind != "cluster" && o.Kind != "sentinel" {
		return nil, fmt.Errorf("redis group kind %q: want cluster or sentinel", o.Kind)
	}
	if o.Base == 0 {
		if err := o.Ports.check(o.Kind); err != nil {
			return nil, err
		}
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	for try := 1; ; try++ {
		s := &Servers{Kind: o.Kind, Dir: o.Dir, Base: o.Base, script: o.Script, release: func() {}}
		if o.Base == 0 {
			var err error
			if s.Base, s.release, err = reserveBase(o.Kind, o.Ports); err != nil {
				return nil, err
			}
		}
		args := []string{"start", o.Kind, "--dir", o.Dir, "--port", strconv.Itoa(s.Base), "--owner", strconv.Itoa(os.Getpid())}
		if o.NodeTimeout > 0 {
			args = append(args, "--node-timeout", strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10))
		}
		logf("redis %s: starting on 127.0.0.1 ports from %d", o.Kind, s.Base)
		began := time.Now()
		tctx, cancel := context.WithTimeout(ctx, startTimeout)
		out, err := o.Script.Run(tctx, args...)
		cancel()
		if err == nil {
			if err = s.parse(out); err == nil {
				logf("redis %s on ports from %d started in %v", o.Kind, s.Base, time.Since(began).Round(time.Millisecond))
				return s, nil
			}
		}
		if serr := s.Stop(); serr != nil {
			logf("redis %s: %v (servers may be left in %s)", o.Kind, serr, o.Dir)
		}
		// Another process may have taken a port between the check and the
		// server's bind (the script's check, or the server's log in the
		// script's error, says so): only then is another base worth a try.
		var se *ScriptError
		if try == startTries || o.Base != 0 || ctx.Err() != nil ||
			!errors.As(err, &se) || !bytes.Contains(se.Stderr, []byte("in use")) {
			return nil, err
		}
		logf("redis %s on ports from %d: a port was taken, trying others: %v", o.Kind, s.Base, err)
	}
}

// parse reads start's stdout: "ROLE 127.0.0.1:PORT pid PID [of ...]" per
// server, then the REDIS_* variables.
func (s *Servers) parse(out []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 1 {
			name, v, _ := strings.Cut(f[0], "=")
			switch name {
			case "REDIS_CLUSTER_ADDRS":
				s.ClusterAddrs = strings.Split(v, ",")
			case "REDIS_SENTINEL_ADDRS":
				s.SentinelAddrs = strings.Split(v, ",")
			case "REDIS_SENTINEL_MASTER":
				s.MasterName = v
			}
			continue
		}
		if len(f) < 4 || f[2] != "pid" {
			continue
		}
		_, port, ok := strings.Cut(f[1], ":")
		p, err1 := strconv.Atoi(port)
		pid, err2 := strconv.Atoi(f[3])
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("redis-servers start %s: unexpected line %q", s.Kind, sc.Text())
		}
		s.Nodes = append(s.Nodes, Node{Role: f[0], Addr: f[1], Port: p, PID: pid})
	}
	data, sentinels := len(s.DataAddrs()), len(s.Nodes)-len(s.DataAddrs())
	ok := data == 6 && sentinels == 0 && len(s.ClusterAddrs) == 6
	if s.Kind == "sentinel" {
		ok = data == 2 && sentinels == 3 && len(s.SentinelAddrs) == 3 && s.MasterName != ""
	}
	if !ok {
		return fmt.Errorf("redis-servers start %s printed an unexpected group:\n%s", s.Kind, out)
	}
	return nil
}

// DataAddrs are the data nodes' addresses, by port: a Cluster's 6 nodes, or
// a Sentinel group's master then its replica, as they started.
func (s *Servers) DataAddrs() []string {
	var addrs []string
	for _, n := range s.Nodes {
		if n.Role != "sentinel" {
			addrs = append(addrs, n.Addr)
		}
	}
	return addrs
}

// Restart starts the server on port again, killed or stopped before, from
// its own config, and waits until it answers.
func (s *Servers) Restart(ctx context.Context, port int) error {
	_, err := s.script.Run(ctx, "restart", "--dir", s.Dir, "--port", strconv.Itoa(port))
	return err
}

// PID reads port's server's PID from the pids file ("PID ROLE PORT" per
// line), which Restart rewrites.
func (s *Servers) PID(port int) (int, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir, "pids"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] == strconv.Itoa(port) {
			pid, err := strconv.Atoi(f[0])
			if err != nil {
				return 0, fmt.Errorf("%s/pids: %q: %w", s.Dir, line, err)
			}
			return pid, nil
		}
	}
	return 0, fmt.Errorf("port %d is not in %s/pids", port, s.Dir)
}

// stopTimeout bounds Stop, whatever context the caller is in.
const stopTimeout = 30 * time.Second

// Stop stops every server of the group by the PIDs the script recorded
// (the script kills those PIDs and nothing else), then frees its ports for
// another group of this process.
func (s *Servers) Stop() error {
	release := s.release
	s.release = func() {}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	_, err := s.script.Run(ctx, "stop", "--dir", s.Dir)
	return err
}
