package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one server the bench started, in its own process group so that
// stopping it also stops anything it started, and so that the terminal's
// Ctrl-C reaches the bench (which cleans up) rather than the servers.
type proc struct {
	name    string
	addr    string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error // valid once exited is closed
	stopped bool
}

// procSet stops whatever is still running however run returns.
type procSet struct {
	mu    sync.Mutex
	procs []*proc
	log   io.Writer
}

func newProcSet(log io.Writer) *procSet { return &procSet{log: log} }

// start runs argv with stdout and stderr to logPath.
func (s *procSet) start(name, addr, logPath string, argv []string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create log of %s: %w", name, err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If the bench itself is killed (SIGKILL, OOM), no defer runs: the
		// kernel then stops the servers instead.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, addr: addr, logPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

// stopAll is the backstop for failures and Ctrl-C: a short grace, then
// SIGKILL to the whole group.
func (s *procSet) stopAll() {
	s.mu.Lock()
	ps := s.procs
	s.procs = nil
	s.mu.Unlock()
	for _, p := range ps {
		if _, killed, err := p.stop(5 * time.Second); killed || err != nil {
			fmt.Fprintf(s.log, "bench: %s did not stop cleanly (killed=%v, %v)\n", p.name, killed, err)
		}
	}
}

// stop sends SIGTERM to the group and waits up to grace before SIGKILL. It
// reports how long the process took to exit and whether it had to be killed.
func (p *proc) stop(grace time.Duration) (took time.Duration, killed bool, err error) {
	start := time.Now()
	select {
	case <-p.exited:
		if p.stopped {
			return 0, false, nil
		}
		p.stopped = true
		return 0, false, exitError(p)
	default:
	}
	p.stopped = true
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		took = time.Since(start)
		// A daemon exits with a status after SIGTERM only if its shutdown
		// went wrong, which the results should say.
		return took, false, exitError(p)
	case <-t.C:
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		return time.Since(start), true, errors.New("still running after SIGKILL")
	}
	return time.Since(start), true, nil
}

func exitError(p *proc) error {
	if p.waitErr == nil {
		return nil
	}
	return fmt.Errorf("%s exited: %w", p.name, p.waitErr)
}

// context is ctx, cancelled as well when the process exits, so that a
// load loop does not hammer a dead port until its deadline.
func (p *proc) context(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-c.Done():
		}
	}()
	return c, cancel
}

// exitStatus says how the process ended ("exit status 1", "signal:
// terminated"), or that it is still running (the wait was stopped).
func (p *proc) exitStatus() string {
	if !p.hasExited() {
		return "still running: the bench was stopped"
	}
	if p.cmd.ProcessState == nil {
		return "exited"
	}
	return p.cmd.ProcessState.String()
}

func (p *proc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// waitReady polls url until it answers 200, the process exits or timeout.
func (p *proc) waitReady(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.exited:
			if err := exitError(p); err != nil {
				return err
			}
			return fmt.Errorf("%s exited before it was ready", p.name)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s (last: %s)", p.name, timeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freeAddr picks a port the kernel considers free. Another process could
// take it before the server binds it; the readiness check would then fail
// loudly rather than measure the wrong server.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// tail returns the last n lines of a log, for the error message of a server
// that failed.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return "(log is empty)"
	}
	return strings.Join(lines, "\n")
}

// logIssues counts the warn and error lines of a daemon's JSON log and keeps
// a few distinct messages: a benchmark that made the daemon complain should
// say so next to its numbers.
func logIssues(path string) (count int, samples []string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.Contains(l, `"level":"warn"`) && !strings.Contains(l, `"level":"error"`) &&
			!strings.Contains(l, `"level":"fatal"`) && !strings.Contains(l, "panic") {
			continue
		}
		count++
		key := l
		if i := strings.Index(l, `"message":`); i >= 0 {
			key = l[i:]
		}
		if len(key) > 300 {
			key = key[:300] + "…"
		}
		if !seen[key] && len(samples) < 3 {
			seen[key] = true
			samples = append(samples, key)
		}
	}
	return count, samples
}
