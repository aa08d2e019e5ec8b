// Package redistest opens Redis stores for tests: on REDIS_URL (default
// redis://127.0.0.1:6379/15), under a prefix of the test's own, deleted
// when the test ends. No Redis: the test is skipped, unless CI=true, where
// it fails, so that CI never passes by skipping. It also gives tests the
// shared Redis Cluster and Sentinel group that CI starts (Cluster, Sentinel),
// and private ones to kill servers in (StartCluster, StartSentinel), which
// StartServers starts without a testing.TB for the bench as well.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/alertmedic/alertmedic/store/redis"
)

// URL is the Redis the tests use.
func URL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/15"
}

// Prefix returns a fresh key prefix whose keys are deleted when t ends,
// skipping (or, with CI=true, failing) t when Redis does not answer.
func Prefix(t testing.TB, name string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "alertmedic-" + name + "-" + hex.EncodeToString(b)
	s := Open(t, prefix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := s.Purge(ctx); err != nil {
			t.Errorf("purge %s: %v", prefix, err)
		}
	})
	return prefix
}

// Open returns a new store on prefix, with its own connection (a replica of
// its own), closed when t ends.
func Open(t testing.TB, prefix string) *redis.Store {
	t.Helper()
	c, err := redis.NewClient(redis.ClientOptions{URL: URL()})
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		shown := URL()
		if u, perr := url.Parse(shown); perr == nil {
			shown = u.Redacted()
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s is unreachable: %v", shown, err)
		}
		t.Skipf("redis at %s is unreachable (%v); CI=true makes this a failure", shown, err)
	}
	s, err := redis.New(ctx, redis.Options{Client: c, Prefix: prefix, ClaimIdle: time.Second})
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
