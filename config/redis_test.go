package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A Redis URL is checked whole at load, by go-redis's rules, so that one that
// would fail the client fails check-config instead; and no error quotes any
// part of it, since it may hold the password. Each URL below carries the
// password Xk9/SECRET or a marker the error must not repeat.
func TestRedisURL(t *testing.T) {
	const bad = "store.redis.url: is not a valid redis://, rediss:// or unix:// URL: "
	cases := []struct {
		url  string
		want string // "" when the URL is good
	}{
		{"redis://:Xk9/SECRET@127.0.0.1:6379/14", bad + "the port is not a number (a password must percent-encode /, ?, # and %)"},
		{"redis://:Xk9%2FSECRET@127.0.0.1:6379/14", ""},
		{"rediss://alertmedic:Xk9SECRET@redis.example.com/0?dial_timeout=3s&skip_verify=true&pool_size=20", ""},
		{"redis://:Xk9SECRET@[::1]:6379?db=3&protocol=3&client_name=alertmedic&conn_max_lifetime=1h", ""},
		{"unix://:Xk9SECRET@/run/redis.sock?db=2", ""},
		{"redis://:Xk9SECRET@127.0.0.1:99999/0", bad + "the port must be 1 to 65535"},
		{"redis://:/Xk9SECRET@127.0.0.1:6379/14", bad + "the path must be a database number, like /0 (a password must percent-encode /, ?, # and %)"},
		{"redis://:12/Xk9SECRET@127.0.0.1:6379", bad + "the path must be a database number, like /0 (a password must percent-encode /, ?, # and %)"},
		{"redis://:Xk9%zzSECRET@127.0.0.1:6379", bad + "it has a % not followed by two hexadecimal digits (write a % in a password as %25)"},
		{"redis://:Xk9SECRET@127.0.0.1:6379/0?pool_size=SECRET", bad + "the pool_size query option must be an integer"},
		{"redis://:Xk9SECRET@127.0.0.1:6379/0?db=SECRET", bad + "the db query option must be an integer"},
		{"redis://:Xk9SECRET@127.0.0.1:6379/0?read_timeout=SECRET", bad + "the read_timeout query option must be a duration (like 3s) or a number of seconds"},
		{"redis://:Xk9SECRET@127.0.0.1:6379/0?pool_fifo=SECRET", bad + "the pool_fifo query option must be true, false, 1 or 0"},
		{"redis://:Xk9SECRET@127.0.0.1:6379/0?SECRET=1", bad + "it has a query option go-redis does not know"},
		{"redis://:Xk9SECRET@127.0.0.1:6379/0?skip_verify=true", bad + "the skip_verify query option applies to rediss:// only"},
		{"unix://Xk9SECRET/run/redis.sock", bad + "a unix:// URL takes no host (write unix:///path/to/socket)"},
		{"unix://", bad + "a unix:// URL needs the socket's path (like unix:///run/redis.sock)"},
		{"http://:Xk9SECRET@redis:6379", "store.redis.url: must start with redis://, rediss:// or unix://"},
	}
	for i, tc := range cases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			_, err := Parse([]byte("store:\n  type: redis\n  redis:\n    url: '"+tc.url+"'\n"), "")
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("a good URL refused: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("error\n got: %v\nwant: %s", err, tc.want)
			}
			if err != nil && (strings.Contains(err.Error(), "Xk9") || strings.Contains(err.Error(), "SECRET")) {
				t.Errorf("the error quotes the URL: %v", err)
			}
		})
	}
}

// The URL of the report: a password holding a / in a url_file. The load
// fails at url_file, naming the file and never a part of the URL.
func TestRedisURLFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "redis-url"), []byte("redis://:Xk9/SECRET@127.0.0.1:6379/14\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "alertmedic.yml")
	if err := os.WriteFile(cfg, []byte("store:\n  type: redis\n  redis:\n    url_file: redis-url\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(cfg)
	want := "load " + cfg + ":\nstore.redis.url_file: the URL in " + filepath.Join(dir, "redis-url") +
		" is not a valid redis://, rediss:// or unix:// URL: the port is not a number (a password must percent-encode /, ?, # and %)"
	if err == nil || err.Error() != want {
		t.Errorf("error\n got: %v\nwant: %s", err, want)
	}
	if err != nil && (strings.Contains(err.Error(), "Xk9") || strings.Contains(err.Error(), "SECRET")) {
		t.Errorf("the error quotes the URL: %v", err)
	}
}

// go-redis refuses a master name with a URL (Sentinel needs addresses); the
// load says so instead of the daemon's start.
func TestRedisMasterNameNeedsAddrs(t *testing.T) {
	_, err := Parse([]byte("store:\n  type: redis\n  redis:\n    url: redis://127.0.0.1:6379/0\n    master_name: mymaster\n"), "")
	if want := "store.redis.master_name: needs addrs (the Sentinels), not url"; err == nil || err.Error() != want {
		t.Errorf("error\n got: %v\nwant: %s", err, want)
	}
}
