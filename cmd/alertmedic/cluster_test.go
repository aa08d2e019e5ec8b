package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/alertmedic/alertmedic/store/redis"
	"github.com/alertmedic/alertmedic/store/redis/redistest"
)

// Three daemons on a Redis Cluster of three masters share a storm: the keys
// are spread over every master (the default 16 shards), every alert
// reaches PagerDuty and the webhook exactly once, the Slack messages
// account for every alert, and the three together keep Slack within its
// one rate limit.
func TestStormClusterThreeDaemons(t *testing.T) {
	addrs := redistest.Cluster(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "alertmedic-cluster-" + hex.EncodeToString(b)
	ctx := context.Background()
	client, err := redis.NewClient(redis.ClientOptions{Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	t.Cleanup(func() {
		st, err := redis.New(context.Background(), redis.Options{Client: client, Prefix: prefix, ClaimIdle: time.Second, Shards: 16})
		if err == nil {
			_, _ = st.Purge(context.Background())
		}
	})
	sink := newStormSink(t)
	storeBlock := fmt.Sprintf("store:\n  type: redis\n  redis:\n    addrs: [%s]\n    key_prefix: %s\n    claim_idle: 2s", strings.Join(addrs, ", "), prefix)
	var ds []*daemon
	for _, r := range []string{"cluster-a", "cluster-b", "cluster-c"} {
		ds = append(ds, start(t, "--config.file="+stormConfig(t, sink, storeBlock, r)))
	}
	bodies := stormBodies()
	began := time.Now()
	postAll(t, func(i int) string { return ds[i%3].url("/webhook") }, bodies)
	ingest := time.Since(began)
	eventually(t, 120*time.Second, "every alert at every stand-in", func() bool {
		s, p, h := sink.accounted()
		return s >= stormAlerts && p >= stormAlerts && h >= stormAlerts
	})
	drain := time.Since(began)

	// The keys of this prefix on each master.
	cc := client.(*goredis.ClusterClient)
	var mu sync.Mutex
	perMaster := map[string]int{}
	err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		n := 0
		iter := c.Scan(ctx, 0, "{"+prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		mu.Lock()
		perMaster[c.Options().Addr] = n
		mu.Unlock()
		return iter.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(perMaster) < 3 {
		t.Fatalf("%d masters answered: %v", len(perMaster), perMaster)
	}
	for addr, n := range perMaster {
		if n == 0 {
			t.Errorf("master %s holds none of the keys: %v", addr, perMaster)
		}
	}
	time.Sleep(500 * time.Millisecond) // a duplicate would show by now
	sink.mu.Lock()
	defer sink.mu.Unlock()
	t.Logf("%d alerts over 3 daemons: ingest %v, drained %v; keys per master %v; Slack %d messages (%d shown, %d counted)",
		stormAlerts, ingest.Round(time.Millisecond), drain.Round(time.Millisecond), perMaster, len(sink.slackTimes), len(sink.slackShown), sink.slackMore)
	for i := 0; i < stormAlerts; i++ {
		if sink.pd[i] != 1 || sink.hook[i] != 1 {
			t.Fatalf("alert %d reached PagerDuty %d times and the webhook %d times, want once each", i, sink.pd[i], sink.hook[i])
		}
	}
	if got := len(sink.slackShown) + sink.slackMore; got != stormAlerts {
		t.Errorf("the Slack messages account for %d alerts, want %d", got, stormAlerts)
	}
	checkRate(t, sink.slackTimes, 1, 3)
	for _, integration := range []string{"slack", "pagerduty", "webhook"} {
		got := 0.0
		for _, d := range ds {
			got += metricSum(t, d, "alertmedic_notification_alerts_total", `integration="`+integration+`"`, `outcome="delivered"`)
		}
		if int(got) != stormAlerts {
			t.Errorf("alertmedic_notification_alerts_total{integration=%q,outcome=\"delivered\"} over the daemons = %v, want %d", integration, got, stormAlerts)
		}
	}
}
