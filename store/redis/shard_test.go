package redis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/store"
	"github.com/alertmedic/alertmedic/store/redis"
	"github.com/alertmedic/alertmedic/store/redis/redistest"
)

// Each shard's tag falls in its own equal share of the Cluster's slots,
// whatever the prefix, so the shards spread over the masters.
func TestShardTagSpreadsSlots(t *testing.T) {
	for _, prefix := range []string{"alertmedic", "am-prod", "x"} {
		for _, n := range []int{2, 3, 16} {
			seen := map[string]bool{}
			for i := 0; i < n; i++ {
				tag := redis.ShardTag(prefix, i, n)
				if seen[tag] || !strings.HasPrefix(tag, prefix+":") {
					t.Fatalf("%s/%d: tag %q", prefix, n, tag)
				}
				seen[tag] = true
			}
		}
		if got := redis.ShardTag(prefix, 0, 1); got != prefix {
			t.Errorf("one shard: tag %q, want the prefix", got)
		}
	}
}

// A message whose alerts fall in several shards is queued part by part,
// each part in its alerts' shard, each with its own ID; sending it again
// finds every part as duplicates.
func TestShardedEnqueue(t *testing.T) {
	prefix := redistest.Prefix(t, "shards")
	client, err := redis.NewClient(redis.ClientOptions{URL: redistest.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	s, err := redis.New(ctx, redis.Options{Client: client, Prefix: prefix, ClaimIdle: time.Second, Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Purge(context.Background())
	var as template.Alerts
	for i := 0; i < 50; i++ {
		l := template.KV{"alertname": "A", "instance": fmt.Sprint(i)}
		as = append(as, template.Alert{Status: "firing", Labels: l, StartsAt: time.Unix(1000, 0), Fingerprint: alert.Fingerprint(l)})
	}
	e := &alert.Entry{ID: "e1", ReceivedAt: time.Now(), Message: &alert.Message{Version: "4", GroupKey: "g", Data: &template.Data{Receiver: "r", Status: "firing", Alerts: as}}}
	res, err := s.Enqueue(ctx, e, time.Minute)
	if err != nil || res.Accepted != 50 {
		t.Fatalf("enqueue: %+v %v", res, err)
	}
	got := 0
	for shard := 0; shard < 4; shard++ {
		es, err := s.Dequeue(ctx, shard, "w", 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, pe := range es {
			if pe.Shard != shard || pe.ID != fmt.Sprintf("e1.%d", shard) {
				t.Errorf("part %s from shard %d says shard %d", pe.ID, shard, pe.Shard)
			}
			for _, a := range pe.Message.Alerts {
				if s.ShardOfAlert(a) != shard {
					t.Errorf("alert %s in shard %d, belongs in %d", a.Fingerprint, shard, s.ShardOfAlert(a))
				}
				got++
			}
		}
	}
	if got != 50 {
		t.Fatalf("%d alerts dequeued over the shards, want 50", got)
	}
	res, err = s.Enqueue(ctx, e, time.Minute)
	if err != nil || res.Accepted != 0 || res.Duplicates != 50 {
		t.Fatalf("again: %+v %v", res, err)
	}
	// A commit in one shard, a leased item in another: each under its tag.
	if err := s.Commit(ctx, 3, store.Txn{Put: []store.Put{{Queue: store.QueueOutbox, Item: store.Item{ID: "i", Group: "g", Due: time.Now()}}}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.QueueLen(ctx, 3, store.QueueOutbox); n != 1 {
		t.Errorf("shard 3's outbox holds %d", n)
	}
	if n, _ := s.QueueLen(ctx, 0, store.QueueOutbox); n != 0 {
		t.Errorf("shard 0's outbox holds %d, the item is shard 3's", n)
	}
	tags := map[string]bool{}
	iter := client.Scan(ctx, 0, "{"+redis.GlobEscape(prefix)+":*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		tags[k[:strings.Index(k, "}")+1]] = true
	}
	if len(tags) < 4 {
		t.Errorf("keys under %d tags, want 4: %v", len(tags), tags)
	}
}
