package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	goredis "github.com/redis/go-redis/v9"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/store"
	"github.com/alertmedic/alertmedic/store/redis"
	"github.com/alertmedic/alertmedic/store/storetest"
)

// DB 15 keeps the tests away from the data a developer keeps in DB 0.
const defaultURL = "redis://127.0.0.1:6379/15"

func redisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return defaultURL
}

func newClient(t *testing.T) goredis.UniversalClient {
	t.Helper()
	c, err := redis.NewClient(redis.ClientOptions{URL: redisURL()})
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	return c
}

// admin connects to the Redis under test, skipping the test when there is
// none, unless CI=true says there must be one.
func admin(t *testing.T) goredis.UniversalClient {
	t.Helper()
	c := newClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		where := redisURL()
		if u, perr := url.Parse(where); perr == nil {
			where = u.Redacted()
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s is unreachable: %v", where, err)
		}
		t.Skipf("redis at %s is unreachable (%v); start one or set REDIS_URL, CI=true makes this a failure", where, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testPrefix returns a prefix of this test alone and deletes its keys, and
// only its keys, when the test ends.
func testPrefix(t *testing.T, c goredis.UniversalClient) string {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	prefix := "alertmedic-test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		// t.Context is already cancelled while cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys := prefixKeys(t, ctx, c, prefix)
		// A store of several shards keeps its keys under {prefix:i-k}.
		iter := c.Scan(ctx, 0, "{"+redis.GlobEscape(prefix)+":*", 100).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("delete test keys: %v", err)
			}
		}
	})
	return prefix
}

func prefixKeys(t *testing.T, ctx context.Context, c goredis.UniversalClient, prefix string) []string {
	t.Helper()
	var keys []string
	iter := c.Scan(ctx, 0, "{"+redis.GlobEscape(prefix)+"}:*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan test keys: %v", err)
	}
	return keys
}

func opener(t *testing.T, prefix string, o storetest.Options) storetest.Opener {
	return func() storetest.Store {
		t.Helper()
		return openStore(t, prefix, o)
	}
}

func openStore(t *testing.T, prefix string, o storetest.Options) *redis.Store {
	t.Helper()
	c := newClient(t)
	s, err := redis.New(t.Context(), redis.Options{
		Client:         c,
		Prefix:         prefix,
		Capacity:       o.Capacity,
		ClaimIdle:      o.ClaimIdle,
		MaxDeadLetters: o.MaxDeadLetters,
		Shards:         o.Shards,
	})
	if err != nil {
		c.Close()
		t.Fatalf("new redis store: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	c := admin(t)
	storetest.Run(t, func(t *testing.T, o storetest.Options) storetest.Opener {
		return opener(t, testPrefix(t, c), o)
	})
}

func testOptions() storetest.Options {
	return storetest.Options{Capacity: 100, ClaimIdle: time.Minute, MaxDeadLetters: 10}
}

func testEntry(id string, alerts ...template.Alert) *alert.Entry {
	return &alert.Entry{
		ID:         id,
		ReceivedAt: time.Now(),
		Message: &alert.Message{
			Version: "4",
			Data:    &template.Data{Receiver: "alertmedic", Status: alert.StatusFiring, Alerts: alerts},
		},
	}
}

func testAlert(name string) template.Alert {
	labels := template.KV{"alertname": name}
	return template.Alert{
		Status:      alert.StatusFiring,
		Labels:      labels,
		StartsAt:    time.Now().Add(-time.Minute),
		Fingerprint: alert.Fingerprint(labels),
	}
}

// Every key must expire on its own: a deployment that goes away, or a
// prefix that is changed, must not leave data in Redis for ever.
func TestEveryKeyHasTTL(t *testing.T) {
	c := admin(t)
	prefix := testPrefix(t, c)
	s := openStore(t, prefix, testOptions())
	defer s.Close()
	ctx := t.Context()

	a, b := testAlert("A"), testAlert("B")
	if _, err := s.Enqueue(ctx, testEntry("ttl-1", a, b), time.Minute); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	if _, err := s.Enqueue(ctx, testEntry("ttl-2", a), time.Minute); err != nil {
		t.Fatalf("enqueue duplicate: %v", err)
	}
	got, err := s.Dequeue(ctx, 0, "w", 10, time.Second)
	if err != nil || len(got) != 1 {
		t.Fatalf("dequeue = %d entries, %v; want 1", len(got), err)
	}
	// Every kind of key the pipeline writes: a value, an index, outbox
	// items, a digest's collection and what spilled from it, a rate limit,
	// dead letters.
	now := time.Now()
	digest := store.Item{ID: "digest:x", Group: "x", Due: now.Add(time.Hour)}
	err = s.Commit(ctx, 0, store.Txn{
		Ack: got[0].Receipt,
		Set: []store.Value{{Key: "alert:" + a.Fingerprint, Value: []byte("r"), TTL: time.Hour}},
		Put: []store.Put{{Queue: store.QueueOutbox, Item: store.Item{ID: "n1", Group: "t", Class: "slack", Due: now}},
			{Queue: store.QueueOutbox, Item: store.Item{ID: "n2", Group: "u", Due: now}},
			// Every other leased queue, waiting (payloads kept): Maintain
			// must give their keys a TTL too.
			{Queue: store.QueueRemedy, Item: store.Item{ID: "r1", Group: "r", Due: now.Add(time.Hour), Payload: []byte("p")}},
			{Queue: store.QueueForward, Item: store.Item{ID: "f1", Group: "f", Due: now.Add(time.Hour), Payload: []byte("p")}},
			{Queue: store.QueueVerify, Item: store.Item{ID: "v1", Group: "v", Due: now.Add(time.Hour), Payload: []byte("p")}}},
		Collect: []store.Collect{{Queue: store.QueueOutbox, Item: digest, Cap: 1, TTL: time.Hour,
			Fields: []store.Field{{Name: "f1", Value: []byte("1")}, {Name: "f2", Value: []byte("2")}}}},
		Mark: []store.Mark{{Index: "flapping", Member: "k", Score: 1}},
	})
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	cl, err := s.Claim(ctx, 0, store.QueueOutbox, store.ClaimOptions{Now: now, Lease: time.Minute, Max: 10,
		Classes: map[string]store.ClassLimit{"slack": {RateLimit: store.RateLimit{PerSecond: 1, Burst: 1}}}})
	if err != nil || len(cl.Batches) != 2 {
		t.Fatalf("claim: %+v %v", cl, err)
	}
	var dead []store.Item
	for _, b := range cl.Batches {
		dead = append(dead, b.Items...)
	}
	if _, err := s.Settle(ctx, 0, store.QueueOutbox, store.Settlement{Dead: dead, Now: now}); err != nil {
		t.Fatalf("settle: %v", err)
	}
	if err := s.Maintain(ctx); err != nil {
		t.Fatalf("maintain: %v", err)
	}

	keys := prefixKeys(t, ctx, c, prefix)
	kinds := map[string]bool{}
	for _, k := range keys {
		kind := strings.SplitN(strings.TrimPrefix(k, "{"+prefix+"}:"), ":", 2)[0]
		kinds[kind] = true
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatalf("pttl %s: %v", k, err)
		}
		if ttl <= 0 {
			t.Errorf("key %s has no TTL (PTTL %v)", k, ttl)
		}
	}
	if n, err := c.HLen(ctx, "{"+prefix+"}:q:outbox:p").Result(); err != nil || n != 0 {
		t.Errorf("%d payloads of settled items left (%v)", n, err)
	}
	for _, kind := range []string{"queue", "dedup", "state", "index", "q", "rl"} {
		if !kinds[kind] {
			t.Errorf("no %s key among %q", kind, keys)
		}
	}
}

// An entry nobody can decode must not wedge the queue or count against its
// capacity for ever.
func TestUndecodableEntriesAreDropped(t *testing.T) {
	c := admin(t)
	prefix := testPrefix(t, c)
	s := openStore(t, prefix, testOptions())
	defer s.Close()
	ctx := t.Context()
	stream := "{" + prefix + "}:queue"

	// One bad entry already taken by the consumer (its pending list), one
	// waiting, then a good one.
	for _, v := range []map[string]any{{"entry": "not json", "alerts": "[]"}, {"other": "field"}} {
		if err := c.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: v}).Err(); err != nil {
			t.Fatalf("xadd: %v", err)
		}
	}
	if err := c.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: redis.DefaultGroup, Consumer: "w", Streams: []string{stream, ">"}, Count: 1, Block: -1,
	}).Err(); err != nil {
		t.Fatalf("xreadgroup: %v", err)
	}
	if _, err := s.Enqueue(ctx, testEntry("good", testAlert("A")), time.Minute); err != nil {
		t.Fatalf("enqueue: %v", err)
	}

	// Each bad entry may cost a call that returns nothing.
	var got []*alert.Entry
	for range 3 {
		var err error
		if got, err = s.Dequeue(ctx, 0, "w", 10, 0); err != nil {
			t.Fatalf("dequeue: %v", err)
		}
		if len(got) > 0 {
			break
		}
	}
	if len(got) != 1 || got[0].ID != "good" {
		t.Fatalf("dequeued %d entries, want only the good one", len(got))
	}
	if n, err := s.Depth(ctx); err != nil || n != 1 {
		t.Errorf("depth = %d, %v; want 1 (the bad entries deleted)", n, err)
	}
}

// The stream, and with it the group, may expire or be deleted; the queue
// must keep working, and entries added meanwhile must not be skipped.
func TestGroupRecreated(t *testing.T) {
	c := admin(t)
	prefix := testPrefix(t, c)
	s := openStore(t, prefix, testOptions())
	defer s.Close()
	ctx := t.Context()
	stream := "{" + prefix + "}:queue"

	if err := c.Del(ctx, stream).Err(); err != nil {
		t.Fatalf("del: %v", err)
	}
	if got, err := s.Dequeue(ctx, 0, "w", 10, 0); err != nil || len(got) != 0 {
		t.Fatalf("dequeue without a group = %d entries, %v; want none and no error", len(got), err)
	}

	if err := c.Del(ctx, stream).Err(); err != nil {
		t.Fatalf("del: %v", err)
	}
	if _, err := s.Enqueue(ctx, testEntry("after", testAlert("A")), time.Minute); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	got, err := s.Dequeue(ctx, 0, "w", 10, 0)
	if err != nil || len(got) != 1 || got[0].ID != "after" {
		t.Fatalf("dequeue after the stream was recreated = %d entries, %v; want the entry", len(got), err)
	}
	if err := s.Ack(ctx, 0, got[0].Receipt); err != nil {
		t.Fatalf("ack: %v", err)
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	// Port 1 refuses connections; nothing listens there.
	c, err := redis.NewClient(redis.ClientOptions{Addrs: []string{"127.0.0.1:1"}, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	// Redis down at start is a temporary fault: New succeeds, and every
	// operation reports the store unavailable, which the webhook turns into
	// a 503 so that Alertmanager retries.
	s, err := redis.New(ctx, redis.Options{
		Client: c, ClaimIdle: time.Second,
	})
	if err != nil {
		t.Fatalf("new with an unreachable redis: %v", err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err == nil {
		t.Error("ping succeeded")
	}
	_, err = s.Enqueue(ctx, testEntry("e1", testAlert("A")), time.Minute)
	if !errors.Is(err, alert.ErrStoreUnavailable) {
		t.Errorf("enqueue: err = %v, want alert.ErrStoreUnavailable", err)
	}
	if _, err := s.Depth(ctx); !errors.Is(err, alert.ErrStoreUnavailable) {
		t.Errorf("depth: err = %v, want alert.ErrStoreUnavailable", err)
	}
}

func TestNewClient(t *testing.T) {
	const badURL = "new redis client: parse URL: not a valid redis://, rediss:// or unix:// URL (the reason is not shown: it would quote the URL, which may hold the password)"
	tests := []struct {
		name    string
		opts    redis.ClientOptions
		want    string // client type, or "" for an error
		wantErr string
	}{
		{name: "url", opts: redis.ClientOptions{URL: "redis://localhost:6379/3"}, want: "*goredis.Client"},
		{name: "single address", opts: redis.ClientOptions{Addrs: []string{"localhost:6379"}}, want: "*goredis.Client"},
		{name: "cluster", opts: redis.ClientOptions{Addrs: []string{"a:6379", "b:6379"}}, want: "*goredis.ClusterClient"},
		{name: "sentinel", opts: redis.ClientOptions{Addrs: []string{"a:26379", "b:26379"}, MasterName: "mymaster"}, want: "*goredis.Client"},
		{name: "nothing", wantErr: "new redis client: neither a URL nor addresses are set"},
		{name: "both", opts: redis.ClientOptions{URL: "redis://x", Addrs: []string{"y:1"}}, wantErr: "new redis client: set either a URL or addresses, not both"},
		{name: "bad scheme", opts: redis.ClientOptions{URL: "http://x"}, wantErr: badURL},
		{name: "bad url keeps password out", opts: redis.ClientOptions{URL: "redis://user:s3cret@host:port"}, wantErr: badURL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := redis.NewClient(tc.opts)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("err %q leaks the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("new client: %v", err)
			}
			defer c.Close()
			if got := typeName(c); got != tc.want {
				t.Errorf("client is %s, want %s", got, tc.want)
			}
		})
	}
}

func typeName(c goredis.UniversalClient) string {
	switch c.(type) {
	case *goredis.Client:
		return "*goredis.Client"
	case *goredis.ClusterClient:
		return "*goredis.ClusterClient"
	default:
		return "other"
	}
}

func TestNewRejectsOptions(t *testing.T) {
	c, err := redis.NewClient(redis.ClientOptions{Addrs: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	defer c.Close()
	ok := redis.Options{Client: c, ClaimIdle: time.Second}
	tests := []struct {
		name    string
		edit    func(o *redis.Options)
		wantErr string
	}{
		{"no client", func(o *redis.Options) { o.Client = nil }, "new redis store: no client"},
		{"brace in prefix", func(o *redis.Options) { o.Prefix = "a}b" }, `new redis store: prefix "a}b" must not contain { or }`},
		{"negative capacity", func(o *redis.Options) { o.Capacity = -1 }, "new redis store: capacity -1 is negative"},
		{"no claim idle", func(o *redis.Options) { o.ClaimIdle = 0 }, "new redis store: claim idle time 0s must be at least 1ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.edit(&o)
			_, err := redis.New(t.Context(), o)
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// An idle queue whose stream expired (key_ttl passed with no enqueue) heals:
// dequeue recreates the group and the stream instead of failing forever.
func TestExpiredStreamHeals(t *testing.T) {
	c := admin(t)
	prefix := testPrefix(t, c)
	s := openStore(t, prefix, testOptions())
	defer s.Close()
	ctx := t.Context()
	if err := c.Del(ctx, "{"+prefix+"}:queue").Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // past the claim throttle too
		if _, err := s.Dequeue(ctx, 0, "w", 1, 0); err != nil {
			t.Fatalf("dequeue on an expired stream: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if _, err := s.Enqueue(ctx, testEntry("e1", testAlert("A")), time.Minute); err != nil {
		t.Fatal(err)
	}
	es, err := s.Dequeue(ctx, 0, "w", 1, 0)
	if err != nil || len(es) != 1 {
		t.Fatalf("after healing: %v %v", es, err)
	}
}

// A dropped item leaves nothing behind: not its moved-out payload, not its
// collection; a collecting item moved later keeps its collection that much
// longer.
func TestMoveLeavesNothing(t *testing.T) {
	c := admin(t)
	prefix := testPrefix(t, c)
	s := openStore(t, prefix, testOptions())
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	now := time.Now().Truncate(time.Millisecond)
	big := []byte(strings.Repeat("x", 1000))
	digest := store.Item{ID: "digest", Group: "d", Due: now.Add(time.Hour), Payload: []byte("d")}
	err := s.Commit(ctx, 0, store.Txn{
		Put: []store.Put{{Queue: store.QueueOutbox, Item: store.Item{ID: "w", Group: "busy", Due: now, Payload: big}}},
		Collect: []store.Collect{{Queue: store.QueueOutbox, Item: digest, Cap: 1, TTL: time.Minute,
			Fields: []store.Field{{Name: "f1", Value: []byte("1")}, {Name: "f2", Value: []byte("2")}}}},
	})
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	// w waits for its group: its payload moves to the hash.
	if _, err := s.Claim(ctx, 0, store.QueueOutbox, store.ClaimOptions{Now: now, Lease: time.Minute, Max: 10,
		Held: map[string]time.Time{"busy": now.Add(time.Hour)}}); err != nil {
		t.Fatalf("claim: %v", err)
	}
	p := "{" + prefix + "}:q:outbox:"
	if n, err := c.HLen(ctx, p+"p").Result(); err != nil || n != 1 {
		t.Fatalf("%d payloads moved out (%v), want w's", n, err)
	}
	before, err := c.PTTL(ctx, p+"c:digest").Result()
	if err != nil || before <= 0 {
		t.Fatalf("collection TTL %v %v", before, err)
	}
	applied, err := s.CommitMoves(ctx, 0, store.Txn{Move: []store.Move{{Queue: store.QueueOutbox, ID: "digest", Due: now.Add(5 * time.Hour)}}})
	if err != nil || len(applied) != 1 || !applied[0] {
		t.Fatalf("move later: %v %v", applied, err)
	}
	for _, k := range []string{"c:digest", "o:digest"} {
		if ttl, err := c.PTTL(ctx, p+k).Result(); err != nil || ttl < before+4*time.Hour-time.Minute {
			t.Errorf("%s TTL %v after a move 4h later, was %v (%v)", k, ttl, before, err)
		}
	}
	applied, err = s.CommitMoves(ctx, 0, store.Txn{Move: []store.Move{{Queue: store.QueueOutbox, ID: "w", Drop: true}, {Queue: store.QueueOutbox, ID: "digest", Drop: true}}})
	if err != nil || len(applied) != 2 || !applied[0] || !applied[1] {
		t.Fatalf("drop: %v %v", applied, err)
	}
	for _, k := range prefixKeys(t, ctx, c, prefix) {
		if strings.HasPrefix(k, "{"+prefix+"}:q:") {
			t.Errorf("key %s left after the drops", k)
		}
	}
}
