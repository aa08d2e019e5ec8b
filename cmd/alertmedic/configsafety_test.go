package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alertmedic/alertmedic/config"
	"github.com/alertmedic/alertmedic/store/redis"
)

// runGuarded runs the binary and returns its exit code and output. The
// deadline guards against a hang only; it is far above what the run takes.
func runGuarded(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("alertmedic %s still running after 20s", strings.Join(args, " "))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

// A 666-byte alias bomb (10^9 routes once expanded) is refused by
// check-config at once, naming the line, as startup and reload refuse it.
func TestCheckConfigRefusesAnAliasBomb(t *testing.T) {
	code, out := runGuarded(t, "check-config", "../../config/testdata/alias_bomb.yml")
	if want := "x.f.routes[1]: alias *e expands the file past the 100000 nodes aliases may add (line 10)"; code != 1 || !strings.Contains(out, want) {
		t.Errorf("exit %d, want 1 and %q in:\n%s", code, want, out)
	}
}

// The URL of the report: a password holding a / makes net/url read part of
// it as the port, and its error quoted that part. check-config fails at
// url_file now, and neither it nor a daemon's start attempt shows any of
// the password.
func TestRedisURLPasswordNeverShown(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "redis-url"), []byte("redis://:Xk9/SECRET@127.0.0.1:6379/14\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "alertmedic.yml")
	if err := os.WriteFile(cfg, []byte("store:\n  type: redis\n  redis:\n    url_file: redis-url\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shows := func(out string) bool { return strings.Contains(out, "Xk9") || strings.Contains(out, "SECRET") }

	code, out := runGuarded(t, "check-config", cfg)
	want := "store.redis.url_file: the URL in " + filepath.Join(dir, "redis-url") + " is not a valid redis://, rediss:// or unix:// URL: the port is not a number"
	if code != 1 || !strings.Contains(out, want) {
		t.Errorf("check-config: exit %d, want 1 and %q in:\n%s", code, want, out)
	}
	if shows(out) {
		t.Errorf("check-config shows the password:\n%s", out)
	}

	code, out = runGuarded(t, "serve", "--web.listen-address=127.0.0.1:0", "--config.file="+cfg)
	if code == 0 || !strings.Contains(out, "store.redis.url_file: the URL in") {
		t.Errorf("serve: exit %d, want a failure naming url_file:\n%s", code, out)
	}
	if shows(out) {
		t.Errorf("the daemon's log shows the password:\n%s", out)
	}
}

// What passes the load passes the client: config checks a Redis URL by
// go-redis's rules without importing go-redis, so the two are held to the
// same answers here. The load may be stricter where go-redis would accept
// what cannot work; those URLs are marked.
func TestRedisURLLoadAgreesWithClient(t *testing.T) {
	for _, tc := range []struct {
		url      string
		stricter bool // refused at load, accepted by go-redis
	}{
		{url: "redis://127.0.0.1:6379/0"},
		{url: "redis://localhost"},
		{url: "redis://:p%2Fw@127.0.0.1:6379/14"},
		{url: "redis://user:pw@[::1]:6379/2"},
		{url: "rediss://user:pw@redis.example.com:6380/0?skip_verify=true&dial_timeout=3&read_timeout=2s"},
		{url: "redis://127.0.0.1:1/0?db=3&protocol=3&client_name=am&max_retries=2&min_retry_backoff=8ms&max_retry_backoff=1s"},
		{url: "redis://127.0.0.1:1/0?pool_fifo=true&pool_size=10&pool_timeout=4s&min_idle_conns=1&max_idle_conns=2&max_active_conns=3"},
		{url: "redis://127.0.0.1:1/0?max_concurrent_dials=2&pipeline_pool_size=-1&pipeline_read_buffer_size=1&pipeline_write_buffer_size=1"},
		{url: "redis://127.0.0.1:1/0?conn_max_idle_time=1m&conn_max_lifetime=1h&conn_max_lifetime_jitter=1m"},
		{url: "redis://127.0.0.1:1/0?idle_timeout=1m&max_conn_age=1h&write_timeout=-1&pool_fifo="},
		{url: "unix:///run/redis.sock?db=1"},
		{url: "unix://:pw@/run/redis.sock"},
		{url: "redis://:Xk9/SECRET@127.0.0.1:6379/14"},
		{url: "redis://:/SECRET@127.0.0.1:6379/14"},
		{url: "redis://:12/SECRET@127.0.0.1:6379"},
		{url: "redis://:a%zz@127.0.0.1:6379"},
		{url: "redis://127.0.0.1:1/0/1"},
		{url: "redis://127.0.0.1:1/x"},
		{url: "redis://127.0.0.1:1/0?db=x"},
		{url: "redis://127.0.0.1:1/0?pool_size=x"},
		{url: "redis://127.0.0.1:1/0?dial_timeout=x"},
		{url: "redis://127.0.0.1:1/0?pool_fifo=x"},
		{url: "redis://127.0.0.1:1/0?nope=1"},
		{url: "redis://127.0.0.1:1/0?skip_verify=true"},
		{url: "unix:///run/redis.sock?skip_verify=true"},
		{url: "redis://127.0.0.1:1/0?conn_max_idle_time=1m&idle_timeout=1m"},
		{url: "redis://127.0.0.1:1/0?conn_max_lifetime=1h&max_conn_age=1h"},
		{url: "unix://"},
		{url: "http://h:6379"},
		{url: "redis://h:99999/0", stricter: true},
		{url: "redis://h:0/0", stricter: true},
		{url: "redis://127.0.0.1:1/-1", stricter: true},
		{url: "redis://127.0.0.1:1/0?db=-1", stricter: true},
		{url: "unix://host/run/redis.sock", stricter: true},
		{url: "REDIS://h:6379/0", stricter: true},
	} {
		_, loadErr := config.Parse([]byte("store:\n  type: redis\n  redis:\n    url: '"+tc.url+"'\n"), "")
		c, clientErr := redis.NewClient(redis.ClientOptions{URL: tc.url})
		if clientErr == nil {
			_ = c.Close()
		}
		switch {
		case tc.stricter:
			if loadErr == nil || clientErr != nil {
				t.Errorf("%s: load error %v, client error %v; want the load alone to refuse it", tc.url, loadErr, clientErr)
			}
		case (loadErr == nil) != (clientErr == nil):
			t.Errorf("%s: load error %v, client error %v; want both or neither", tc.url, loadErr, clientErr)
		}
	}
}
