package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/alertmedic/alertmedic/store/redis"
)

// openRedis connects to -redis-url and picks this run's key prefix. When
// Redis cannot be reached it returns the reason instead, and the Redis rows
// are skipped rather than failing the whole run. It goes through alertmedic's
// own store package, the only one that imports go-redis.
func (b *bench) openRedis(ctx context.Context) (st *redis.Store, prefix, skip string) {
	if !b.o.targets[kindRedis] {
		return nil, "", ""
	}
	c, err := redis.NewClient(redis.ClientOptions{URL: b.o.redisURL, DialTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
	if err != nil {
		return nil, "", "bad -redis-url: " + err.Error()
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, "", fmt.Sprintf("Redis at %s is unreachable: %v", b.o.redisURL, err)
	}
	if info, err := c.Info(pctx, "server").Result(); err == nil {
		for _, l := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
				b.info.redis = "Redis " + v
			}
			// Redis's CPU is part of the Redis rows' cost, not background
			// noise; if it runs in another PID namespace the pid is wrong
			// and simply reads as zero.
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "process_id:"); ok {
				b.redisPID, _ = strconv.Atoi(v)
			}
		}
	}
	var r [4]byte
	rand.Read(r[:])
	prefix = "alertmedic-bench-" + hex.EncodeToString(r[:])
	st, err = redis.New(pctx, redis.Options{Client: c, Prefix: prefix, ClaimIdle: time.Minute})
	if err != nil {
		c.Close()
		return nil, "", "open redis store: " + err.Error()
	}
	return st, prefix, ""
}

// wipePrefix deletes this run's keys and nothing else: alertmedic names
// every key "{prefix}:...", and the prefix is random per run.
func wipePrefix(ctx context.Context, st *redis.Store, _ string) (int, error) {
	return st.Purge(ctx)
}
