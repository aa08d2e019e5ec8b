package redistest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertmedic/alertmedic/store/redis/redistest"
)

// failoverBound is how long a drill waits for a failover, or for a restarted
// server to find its place. Private groups fail over after 1 s of silence;
// the rest is the election and the clients finding the new master.
const failoverBound = 30 * time.Second

// eventually calls f until it returns nil, failing t with f's last error
// after failoverBound, and returns how long it took.
func eventually(t *testing.T, what string, f func(ctx context.Context) error) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			took := time.Since(began)
			t.Logf("%s after %v", what, took.Round(time.Millisecond))
			return took
		}
		if time.Since(began) > failoverBound {
			t.Fatalf("%s: not within %v: %v", what, failoverBound, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func keysWithTags(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("{tag%d}:key", i)
	}
	return keys
}

func TestPrivateCluster(t *testing.T) {
	t.Parallel()
	g := redistest.StartCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: g.Addrs, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	keys := keysWithTags(30)
	for _, k := range keys {
		if err := c.Set(ctx, k, "v-"+k, 0).Err(); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	for _, k := range keys {
		if got, err := c.Get(ctx, k).Result(); err != nil || got != "v-"+k {
			t.Fatalf("get %s = %q, %v; want %q", k, got, err, "v-"+k)
		}
	}
	slots := map[int64]bool{}
	for _, k := range keys {
		slot, err := c.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatalf("cluster keyslot %s: %v", k, err)
		}
		slots[slot] = true
	}
	if len(slots) < 2 {
		t.Fatalf("30 hash tags map to %d slot(s)", len(slots))
	}

	masters := g.Masters()
	if len(masters) != 3 || len(g.Replicas()) != 3 {
		t.Fatalf("masters %v, replicas %v; want 3 of each", masters, g.Replicas())
	}
	var total int64
	for _, m := range masters {
		n := dbsize(ctx, t, m)
		if n == 0 {
			t.Errorf("master %s holds none of the 30 keys", m)
		}
		total += n
	}
	if total != int64(len(keys)) {
		t.Errorf("the masters hold %d keys in all; want %d", total, len(keys))
	}

	// Kill a master once its replica has every write, and its replica takes
	// over its slots.
	victim := masters[0]
	replica := replicaOf(ctx, t, g, victim)
	waitReplicated(ctx, t, victim)
	g.Kill(victim)
	eventually(t, "replica "+replica+" promoted, cluster_state:ok", func(ctx context.Context) error {
		if role, _, err := redistest.Role(ctx, replica); err != nil || role != "master" {
			return fmt.Errorf("%s: role %q, %v", replica, role, err)
		}
		for _, a := range g.Addrs {
			if a == victim {
				continue
			}
			if state, err := redistest.ClusterState(ctx, a); err != nil || state != "ok" {
				return fmt.Errorf("%s: cluster_state %q, %v", a, state, err)
			}
		}
		return nil
	})
	// go-redis reloads its slot map on MOVED, or every
	// ClusterStateReloadInterval (60 s by default since v9.22), but not when
	// a master refuses connections (redis/go-redis#3979): without asking it
	// to, the client would keep dialling the dead master for up to a minute.
	eventually(t, "every key readable through the cluster client", func(ctx context.Context) error {
		for _, k := range keys {
			if got, err := c.Get(ctx, k).Result(); err != nil || got != "v-"+k {
				c.ReloadState(ctx)
				return fmt.Errorf("get %s = %q, %v", k, got, err)
			}
		}
		return c.Set(ctx, "{after}:key", "x", 0).Err()
	})

	// The old master rejoins as the replica of the one that replaced it.
	g.Restart(victim)
	eventually(t, victim+" rejoined as a replica of "+replica, func(ctx context.Context) error {
		role, master, err := redistest.Role(ctx, victim)
		if err != nil || role != "slave" || master != replica {
			return fmt.Errorf("%s: role %q of %q, %v", victim, role, master, err)
		}
		return nil
	})
	if got := g.Masters(); len(got) != 3 || slices.Contains(got, victim) {
		t.Errorf("masters after the failover %v; want 3 without %s", got, victim)
	}
}

func TestPrivateSentinel(t *testing.T) {
	t.Parallel()
	g := redistest.StartSentinel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	master, replica := g.Addrs[0], g.Addrs[1]
	if got := g.Masters(); !slices.Equal(got, []string{master}) {
		t.Fatalf("masters %v; want [%s]", got, master)
	}
	if got := g.Replicas(); !slices.Equal(got, []string{replica}) {
		t.Fatalf("replicas %v; want [%s]", got, replica)
	}
	fc := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: g.MasterName, SentinelAddrs: g.SentinelAddrs,
		DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1,
	})
	defer fc.Close()
	if err := fc.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatalf("set through the sentinels: %v", err)
	}
	if got, err := fc.Get(ctx, "before").Result(); err != nil || got != "1" {
		t.Fatalf("get before = %q, %v", got, err)
	}
	waitReplicated(ctx, t, master)

	g.Kill(master)
	eventually(t, "a write through the sentinels after killing the master", func(ctx context.Context) error {
		return fc.Set(ctx, "after", "2", 0).Err()
	})
	// The Sentinel that led the failover tells the others in its next hello
	// message.
	eventually(t, "every sentinel names "+replica+" the master", func(ctx context.Context) error {
		for _, s := range g.SentinelAddrs {
			if got, err := redistest.SentinelMaster(ctx, s, g.MasterName); err != nil || got != replica {
				return fmt.Errorf("sentinel %s: master %q, %v", s, got, err)
			}
		}
		return nil
	})
	if got, err := fc.Get(ctx, "before").Result(); err != nil || got != "1" {
		t.Errorf("get before after the failover = %q, %v; want 1", got, err)
	}

	// The old master comes back as a master, until the Sentinels make it a
	// replica of the new one.
	g.Restart(master)
	eventually(t, master+" made a replica of "+replica, func(ctx context.Context) error {
		role, of, err := redistest.Role(ctx, master)
		if err != nil || role != "slave" || of != replica {
			return fmt.Errorf("%s: role %q of %q, %v", master, role, of, err)
		}
		return nil
	})
}

// TestSharedCluster and TestSharedSentinel use the groups of
// `make redis-servers` (CI's), keys of their own, and kill nothing.
func TestSharedCluster(t *testing.T) {
	addrs := redistest.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	id := randomID()
	for _, k := range keysWithTags(10) {
		k = "alertmedic-redistest-" + id + k
		if err := c.Set(ctx, k, "1", time.Minute).Err(); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
		if err := c.Del(ctx, k).Err(); err != nil {
			t.Fatalf("del %s: %v", k, err)
		}
	}
}

func TestSharedSentinel(t *testing.T) {
	addrs, master := redistest.Sentinel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: master, SentinelAddrs: addrs})
	defer fc.Close()
	k := "alertmedic-redistest-" + randomID()
	if err := fc.Set(ctx, k, "1", time.Minute).Err(); err != nil {
		t.Fatalf("set %s: %v", k, err)
	}
	if err := fc.Del(ctx, k).Err(); err != nil {
		t.Fatalf("del %s: %v", k, err)
	}
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func dbsize(ctx context.Context, t *testing.T, addr string) int64 {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	n, err := c.DBSize(ctx).Result()
	if err != nil {
		t.Fatalf("dbsize on %s: %v", addr, err)
	}
	return n
}

// replicaOf returns the replica of master in g.
func replicaOf(ctx context.Context, t *testing.T, g *redistest.Group, master string) string {
	t.Helper()
	for _, r := range g.Replicas() {
		if _, of, err := redistest.Role(ctx, r); err == nil && of == master {
			return r
		}
	}
	t.Fatalf("no replica of %s among %v", master, g.Replicas())
	return ""
}

// waitReplicated waits until master's replica has acknowledged every write.
func waitReplicated(ctx context.Context, t *testing.T, master string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: master})
	defer c.Close()
	if n, err := c.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n < 1 {
		t.Fatalf("wait 1 on %s = %d, %v", master, n, err)
	}
}
