package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/store/redis"
	"github.com/alertmedic/alertmedic/store/redis/redistest"
)

func redisURL() string { return redistest.URL() }

// redisPrefix opens the store the daemons under test will share, under a
// prefix of this test alone, deleted at the end (see redistest).
func redisPrefix(t *testing.T) (*redis.Store, string) {
	t.Helper()
	prefix := redistest.Prefix(t, "e2e")
	return redistest.Open(t, prefix), prefix
}

func redisConfig(t *testing.T, prefix, replica string, workers int) string {
	return writeConfig(t, fmt.Sprintf(`
global:
  replica_id: %s
store:
  type: redis
  redis:
    url: %s
    key_prefix: %s
    claim_idle: 1s
pipeline:
  workers: %d
`, replica, redisURL(), prefix, workers))
}

// Every alert answered 200 is processed exactly once, even when the daemon is
// killed with SIGKILL while entries are queued and in flight: a second replica
// takes over the dead one's entries after claim_idle.
func TestSIGKILLLosesNothingRedis(t *testing.T) {
	st, prefix := redisPrefix(t)
	ctx := context.Background()

	var total, pendingAtKill int
	var fps []string
	for round := 0; round < 3 && pendingAtKill == 0; round++ {
		a := start(t, "--config.file="+redisConfig(t, prefix, "replica-a", 1))
		// Sixteen posters against one worker, killed while they post and
		// the worker is behind: what was answered 200 and not yet
		// processed must survive. (A worker that keeps up leaves nothing to
		// prove; the watcher waits for a backlog.)
		var mu sync.Mutex
		var wg sync.WaitGroup
		killAt := total + 3000
		killed := make(chan struct{})
		var once sync.Once
		stopWatch := make(chan struct{})
		go func() {
			for {
				select {
				case <-stopWatch:
					return
				case <-time.After(time.Millisecond):
				}
				mu.Lock()
				ready := total >= killAt
				mu.Unlock()
				if d, err := st.Depth(ctx); ready && err == nil && d >= 3 {
					once.Do(func() { close(killed) })
					return
				}
			}
		}()
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 1000; i++ {
					n := round*100000 + w*1000 + i
					body := variant(fixture(t, "group_50.json"), n)
					req, _ := http.NewRequest(http.MethodPost, a.url("/webhook"), bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						return // killed
					}
					rb, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						t.Errorf("webhook: %d %s", resp.StatusCode, rb)
						return
					}
					mu.Lock()
					total += accepted(t, string(rb))
					fps = append(fps, fingerprints(t, body)...)
					mu.Unlock()
					select {
					case <-killed:
						return
					default:
					}
				}
			}(w)
		}
		posted := make(chan struct{})
		go func() { wg.Wait(); close(posted) }()
		select {
		case <-killed:
		case <-posted:
		}
		close(stopWatch)
		a.stop(t, syscall.SIGKILL, 5*time.Second)
		wg.Wait()
		d, err := st.Depth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pendingAtKill = int(d)
		t.Logf("round %d: %d alerts accepted so far, %d entries unfinished at SIGKILL", round, total, d)
	}
	if pendingAtKill == 0 {
		t.Fatal("the worker kept up with ingest in every round: the kill left nothing to recover, so the test proves nothing")
	}
	if len(fps) != total {
		t.Fatalf("%d alerts posted, %d accepted: every one is new", len(fps), total)
	}

	b := start(t, "--config.file="+redisConfig(t, prefix, "replica-b", 2))
	eventually(t, 30*time.Second, "every accepted alert processed", func() bool {
		once, _ := observed(t, st, fps)
		d, _ := st.Depth(ctx)
		return once == total && d == 0
	})
	time.Sleep(300 * time.Millisecond) // anything processed twice would show by now
	if once, more := observed(t, st, fps); once != total || more != 0 {
		t.Errorf("%d alerts processed once and %d more than once, of %d accepted: each must be processed exactly once", once, more, total)
	}
	b.stop(t, syscall.SIGTERM, 10*time.Second)
}

// fingerprints are the alerts' of a webhook body.
func fingerprints(t *testing.T, body []byte) []string {
	t.Helper()
	m, err := alert.Decode(body, alert.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range m.Alerts {
		out = append(out, a.Fingerprint)
	}
	return out
}

// observed counts the alerts whose record says they were processed once,
// and those processed more often.
func observed(t *testing.T, st *redis.Store, fps []string) (once, more int) {
	t.Helper()
	for i := 0; i < len(fps); i += 500 {
		keys := []string{}
		for _, fp := range fps[i:min(i+500, len(fps))] {
			keys = append(keys, "alert:"+fp)
		}
		vs, err := st.Get(context.Background(), 0, keys...)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			var r struct {
				N int `json:"n"`
			}
			if v != nil && json.Unmarshal(v, &r) == nil {
				switch {
				case r.N == 1:
					once++
				case r.N > 1:
					more++
				}
			}
		}
	}
	return once, more
}

// Two replicas sharing one Redis receive the same payload at the same
// instant, as from two Alertmanagers in an HA pair: it is processed once.
func TestTwoReplicasProcessOnceRedis(t *testing.T) {
	st, prefix := redisPrefix(t)
	a := start(t, "--config.file="+redisConfig(t, prefix, "replica-a", 2))
	b := start(t, "--config.file="+redisConfig(t, prefix, "replica-b", 2))
	const rounds = 50
	totalAccepted := 0
	var fps []string
	for i := 0; i < rounds; i++ {
		body := variant(fixture(t, "partial_resolved.json"), i)
		fps = append(fps, fingerprints(t, body)...)
		var wg sync.WaitGroup
		var acc [2]int
		for j, d := range []*daemon{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, resp := post(t, d.url("/webhook"), body)
				if code != 200 {
					t.Errorf("replica %d: %d %s", j, code, resp)
					return
				}
				acc[j] = accepted(t, resp)
			}()
		}
		wg.Wait()
		if acc[0]+acc[1] != 3 {
			t.Errorf("round %d: the replicas accepted %d and %d alerts; together they must accept the 3 once", i, acc[0], acc[1])
		}
		totalAccepted += acc[0] + acc[1]
	}
	eventually(t, 20*time.Second, "all processed", func() bool {
		once, more := observed(t, st, fps)
		return once+more >= rounds*3
	})
	time.Sleep(300 * time.Millisecond)
	once, more := observed(t, st, fps)
	logged := a.log.count(`"message":"alert processed"`) + b.log.count(`"message":"alert processed"`)
	if once != rounds*3 || more != 0 || logged != rounds*3 || totalAccepted != rounds*3 {
		t.Errorf("processed once %d (more often %d), logged %d, accepted %d; want %d each", once, more, logged, totalAccepted, rounds*3)
	}
}

// startRedis runs a private redis-server on a free loopback port with an
// append-only file in dir, so that a restart keeps what was acknowledged.
func startRedis(t *testing.T, dir string, port int) *exec.Cmd {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not installed")
		}
		t.Skip("redis-server not installed")
	}
	cmd := exec.Command(path, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	eventually(t, 5*time.Second, "redis-server up", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return cmd
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Redis goes away: the webhook answers 503 (Alertmanager retries) and
// /-/ready fails; Redis comes back: both recover without a restart and what
// was accepted before the outage is processed.
func TestRedisOutageRecovers(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	rs := startRedis(t, dir, port)
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	cfg := writeConfig(t, fmt.Sprintf(`
store:
  type: redis
  redis:
    url: %s
    dial_timeout: 200ms
    timeout: 500ms
web:
  request_timeout: 1s
`, url))
	d := start(t, "--config.file="+cfg)
	if code, body := post(t, d.url("/webhook"), variant(fixture(t, "firing.json"), 1)); code != 200 {
		t.Fatalf("before the outage: %d %s", code, body)
	}

	_ = rs.Process.Kill()
	eventually(t, 10*time.Second, "readiness to fail", func() bool { c, _ := get(t, d.url("/-/ready")); return c == 503 })
	// Ten seconds without Redis: every webhook answers 503 (Alertmanager
	// retries), readiness fails throughout, and the daemon stays up.
	outage := time.Now()
	for time.Since(outage) < 10*time.Second {
		code, body := post(t, d.url("/webhook"), variant(fixture(t, "firing.json"), 2))
		if code != 503 || !strings.Contains(body, "store unavailable; retry later") {
			t.Fatalf("during the outage: %d %s", code, body)
		}
		if c, _ := get(t, d.url("/-/ready")); c != 503 {
			t.Fatalf("ready during the outage: %d", c)
		}
		time.Sleep(time.Second)
	}

	startRedis(t, dir, port)
	eventually(t, 10*time.Second, "readiness to recover", func() bool { c, _ := get(t, d.url("/-/ready")); return c == 200 })
	eventually(t, 10*time.Second, "the webhook to accept again", func() bool {
		c, _ := post(t, d.url("/webhook"), variant(fixture(t, "firing.json"), 2))
		return c == 200
	})
	eventually(t, 10*time.Second, "both alerts processed", func() bool { return d.log.count(`"message":"alert processed"`) == 2 })
}
