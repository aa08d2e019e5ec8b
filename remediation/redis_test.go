package remediation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	redisstore "github.com/alertmedic/alertmedic/store/redis"
)

// TestEngineRedis runs the whole engine suite on Redis, each replica on its
// own client, as two daemons would. It is skipped when no Redis answers
// (REDIS_URL, default redis://127.0.0.1:6379/15), unless CI=true.
func TestEngineRedis(t *testing.T) {
	runSuite(t, openRedis)
}

func openRedis(t *testing.T) func() Store {
	t.Helper()
	where := os.Getenv("REDIS_URL")
	if where == "" {
		where = "redis://127.0.0.1:6379/15"
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "alertmedic-remediation-" + hex.EncodeToString(b)
	var opened []*redisstore.Store
	t.Cleanup(func() {
		if len(opened) > 0 {
			if _, err := opened[0].Purge(context.Background()); err != nil {
				t.Errorf("purge: %v", err)
			}
		}
		for _, s := range opened {
			s.Close()
		}
	})
	return func() Store {
		c, err := redisstore.NewClient(redisstore.ClientOptions{URL: where})
		if err != nil {
			t.Fatalf("REDIS_URL: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := c.Ping(ctx).Err(); err != nil {
			c.Close()
			shown := where
			if u, perr := url.Parse(where); perr == nil {
				shown = u.Redacted()
			}
			if os.Getenv("CI") == "true" {
				t.Fatalf("redis at %s is unreachable: %v", shown, err)
			}
			t.Skipf("redis at %s is unreachable (%v); CI=true makes this a failure", shown, err)
		}
		s, err := redisstore.New(ctx, redisstore.Options{Client: c, Prefix: prefix, ClaimIdle: time.Minute, HistoryRetention: time.Hour, HistoryMax: 10})
		if err != nil {
			t.Fatal(err)
		}
		opened = append(opened, s)
		return s
	}
}
