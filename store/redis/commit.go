package redis

import (
	"context"
	"crypto/sha1" //nolint:gosec // a change detector compared with Redis's own sha1hex, not a security hash
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/store"
)

// Get reads values by key (MGET); an absent key reads as nil.
func (s *shard) Get(ctx context.Context, shard int, keys ...string) ([][]byte, error) {
	if err := s.checkShard(shard); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, nil
	}
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = s.key("state", k)
	}
	vs, err := s.client.MGet(ctx, ks...).Result()
	if err != nil {
		return nil, alert.Unavailable("read values", err)
	}
	out := make([][]byte, len(vs))
	for i, v := range vs {
		if str, ok := v.(string); ok {
			out[i] = []byte(str)
		}
	}
	return out, nil
}

func (s *shard) checkShard(shard int) error {
	if shard != 0 {
		return fmt.Errorf("redis store has one shard, not shard %d", shard)
	}
	return nil
}

// commitScript applies a store.Txn in one step. Expectations are checked
// first (one MGET), then the entry is taken out of the stream (XDEL), and
// only then is anything written, so that a conflict, or an entry another
// consumer finished, leaves everything as it was. XDEL, not XACK, is what
// decides: it says whether the entry was still there, and it is the one of
// the two that the depth and the capacity see. The entry's place in the
// consumer group's pending list is acknowledged later in batches
// (flushAcks): one XACK for many entries instead of one each.
//
// KEYS[1] the stream; the other keys are named by index in the ops.
// ARGV[1] the consumer group; ARGV[2] the receipt (” for none); ARGV[3]
// the number of expectations; then the ops, each a code and its operands:
//
//	E key sha1            the key holds a value with this sha1 ('' absent)
//	S key value ttl_ms    set
//	D key                 delete
//	P queue n (score member)×n                add items if absent (ZADD NX)
//	C hash over queue cap ttl_ms score member n (name value keep)×n
//	                      collect: keep up to cap fields (keep=1 always),
//	                      count the rest in over, put the item if absent
//	V queue c o p pattern id drop score_ms now_ms
//	                      move or drop (drop=1) the waiting members of item
//	                      id (see below), with its collection (c, o) and
//	                      moved-out payload (p)
//	M index score member  mark
//	U index member        unmark
//
// Returns {1, applied...} done, applied 1 or 0 for each V in order; {0}
// the entry was acknowledged already; {-1, i, v, ...} the keys (by index)
// whose values changed, with their current values.
//
// A V finds its item with ZSCAN MATCH pattern: a tab, the escaped id and a
// tab, which only the member of an item that waits starts with (a claimed
// one starts with its batch). Redis compares the pattern with each member's
// first bytes and copies out only the match; the score index is by time,
// so there is no cheaper way to an ID without an ID index that every claim
// and settle would have to keep. A move rewrites the member only to set
// since (field 6) when the item was not yet due; moved later, a collecting
// item's collection lives that much longer, so that it outlives its due
// time by its TTL still.
var commitScript = redis.NewScript(luaHeader + `
local ne = tonumber(ARGV[3])
local a = 4
if ne > 0 then
  local ks = {}
  local want = {}
  for i = 1, ne do
    ks[i] = KEYS[tonumber(ARGV[a + 1])]
    want[i] = ARGV[a + 2]
    a = a + 3
  end
  local cur = redis.call('MGET', unpack(ks))
  local bad = {-1}
  for i = 1, ne do
    local v = cur[i]
    local h = ''
    if v then h = redis.sha1hex(v) end
    if h ~= want[i] then
      bad[#bad + 1] = tonumber(ARGV[4 + 3 * (i - 1) + 1])
      bad[#bad + 1] = v
    end
  end
  if #bad > 1 then
    return bad
  end
end
if ARGV[2] ~= '' then
  if redis.call('XDEL', KEYS[1], ARGV[2]) == 0 then
    return {0}
  end
end
local applied = {1}
while a <= #ARGV do
  local op = ARGV[a]
  if op == 'S' then
    redis.call('SET', KEYS[tonumber(ARGV[a + 1])], ARGV[a + 2], 'PX', ARGV[a + 3])
    a = a + 4
  elseif op == 'D' then
    redis.call('DEL', KEYS[tonumber(ARGV[a + 1])])
    a = a + 2
  elseif op == 'P' then
    local q = KEYS[tonumber(ARGV[a + 1])]
    local n = tonumber(ARGV[a + 2])
    local args = {'NX'}
    for i = 1, n do
      args[#args + 1] = ARGV[a + 1 + 2 * i]
      args[#args + 1] = ARGV[a + 2 + 2 * i]
    end
    redis.call('ZADD', q, unpack(args))
    a = a + 3 + 2 * n
  elseif op == 'C' then
    local h = KEYS[tonumber(ARGV[a + 1])]
    local over = KEYS[tonumber(ARGV[a + 2])]
    local q = KEYS[tonumber(ARGV[a + 3])]
    local cap = tonumber(ARGV[a + 4])
    local ttl = ARGV[a + 5]
    local n = tonumber(ARGV[a + 8])
    local len0 = redis.call('HLEN', h)
    local len = len0
    local kept = {}
    local names = {}
    local spilled = {}
    local b = a + 9
    for i = 1, n do
      local name, v, keep = ARGV[b], ARGV[b + 1], ARGV[b + 2]
      if keep == '1' or len < cap or redis.call('HEXISTS', h, name) == 1 then
        kept[#kept + 1] = name
        kept[#kept + 1] = v
        names[#names + 1] = name
        len = len + 1
      else
        spilled[#spilled + 1] = name
      end
      b = b + 3
    end
    if #kept > 0 then
      redis.call('HSET', h, unpack(kept))
      redis.call('PEXPIRE', h, ttl)
      -- Only a full collection spills, so only then can a kept name (a
      -- resolve of an alert that spilled while firing) be in over.
      if len0 >= cap then
        redis.call('SREM', over, unpack(names))
      end
    end
    if #spilled > 0 then
      redis.call('SADD', over, unpack(spilled))
      redis.call('PEXPIRE', over, ttl)
    end
    -- A claimed item is out (its member carries its batch): not again.
    if redis.call('EXISTS', h .. ':out') == 0 then
      redis.call('ZADD', q, 'NX', ARGV[a + 6], ARGV[a + 7])
    end
    a = b
  elseif op == 'V' then
    local q = KEYS[tonumber(ARGV[a + 1])]
    local ck, ok2, pk = KEYS[tonumber(ARGV[a + 2])], KEYS[tonumber(ARGV[a + 3])], KEYS[tonumber(ARGV[a + 4])]
    local pat, id, drop = ARGV[a + 5], ARGV[a + 6], ARGV[a + 7] == '1'
    local sc, now = tonumber(ARGV[a + 8]), tonumber(ARGV[a + 9])
    local haspay, pay = ARGV[a + 10] == '1', ARGV[a + 11]
    local found = findByID(q, pat, id)
    for _, e in ipairs(found) do
      local m, old, f, nl = e.m, e.score, e.f, e.nl
      if drop then
        redis.call('ZREM', q, m)
        if f[10] == '1' then redis.call('HDEL', pk, id) end
        if f[8] == '1' then redis.call('DEL', ck, ok2) end
      else
        local nm = m
        if tonumber(f[6]) > now then
          f[6] = string.format('%d', sc)
          nm = table.concat(f, '\t') .. string.sub(m, nl)
        end
        if haspay then
          if f[10] == '1' then
            redis.call('HSET', pk, id, pay)
          else
            nm = string.sub(nm, 1, string.find(nm, '\n', 1, true)) .. pay
          end
        end
        if nm ~= m then
          redis.call('ZREM', q, m)
          m = nm
        end
        redis.call('ZADD', q, sc, m)
        if f[8] == '1' and sc > old then
          for _, k in ipairs({ck, ok2}) do
            local ttl = redis.call('PTTL', k)
            if ttl > 0 then redis.call('PEXPIRE', k, ttl + sc - old) end
          end
        end
      end
    end
    if #found > 0 then applied[#applied + 1] = 1 else applied[#applied + 1] = 0 end
    a = a + 12
  elseif op == 'M' then
    redis.call('ZADD', KEYS[tonumber(ARGV[a + 1])], ARGV[a + 2], ARGV[a + 3])
    a = a + 4
  elseif op == 'U' then
    redis.call('ZREM', KEYS[tonumber(ARGV[a + 1])], ARGV[a + 2])
    a = a + 3
  else
    return redis.error_reply('commit: unknown op ' .. tostring(op))
  end
end
return applied
`)

// txnArgs builds the keys and arguments of commitScript.
type txnArgs struct {
	keys []string
	idx  map[string]int
	args []any
}

func (t *txnArgs) key(k string) string {
	i, ok := t.idx[k]
	if !ok {
		t.keys = append(t.keys, k)
		i = len(t.keys)
		t.idx[k] = i
	}
	return strconv.Itoa(i)
}

// Commit implements store.Txn on Redis in one script call.
func (s *shard) Commit(ctx context.Context, shard int, t store.Txn) error {
	_, err := s.CommitMoves(ctx, shard, t)
	return err
}

// CommitMoves is Commit, and says which of t.Move applied (one for each,
// in order); nil when the Txn was refused.
func (s *shard) CommitMoves(ctx context.Context, shard int, t store.Txn) ([]bool, error) {
	if err := s.checkShard(shard); err != nil {
		return nil, err
	}
	if t.Ack == "" && len(t.Expect) == 0 && len(t.Put) == 0 && len(t.Collect) == 0 && len(t.Move) == 0 && len(t.Mark) == 0 && len(t.Unmark) == 0 && len(t.Set) == 1 {
		// One value alone needs no script: one SET (or DEL).
		v := t.Set[0]
		var err error
		if v.Value == nil {
			err = s.client.Del(ctx, s.key("state", v.Key)).Err()
		} else if v.TTL < time.Millisecond {
			return nil, fmt.Errorf("commit: value %s needs a TTL of at least 1ms", v.Key)
		} else {
			err = s.client.Set(ctx, s.key("state", v.Key), v.Value, v.TTL).Err()
		}
		if err != nil {
			return nil, alert.Unavailable("commit", err)
		}
		return nil, nil
	}
	ta, err := s.txnArgs(t)
	if err != nil {
		return nil, err
	}
	res, err := commitScript.Run(ctx, s.client, ta.keys, ta.args...).Slice()
	if err != nil {
		return nil, alert.Unavailable("commit", err)
	}
	return s.committed(ctx, t, ta, res)
}

// committed reads commitScript's reply: which moves applied, or why
// nothing did.
func (s *shard) committed(ctx context.Context, t store.Txn, ta *txnArgs, res []any) ([]bool, error) {
	code, _ := res[0].(int64)
	if code == 1 || code == 0 {
		if t.Ack != "" {
			s.deleted(ctx, t.Ack)
		}
		if code == 0 {
			return nil, store.ErrAcked
		}
		if len(res) != 1+len(t.Move) {
			return nil, fmt.Errorf("commit: %d moves, reply %v", len(t.Move), res)
		}
		applied := make([]bool, len(t.Move))
		for i, r := range res[1:] {
			n, _ := r.(int64)
			applied[i] = n == 1
		}
		return applied, nil
	}
	var c store.Conflict
	for i := 1; i+1 < len(res); i += 2 {
		n, _ := res[i].(int64)
		if n < 1 || int(n) > len(ta.keys) {
			return nil, fmt.Errorf("commit: unexpected conflict reply %v", res)
		}
		v := store.Value{Key: s.unkey("state", ta.keys[n-1])}
		if str, ok := res[i+1].(string); ok {
			v.Value = []byte(str)
		}
		c.Current = append(c.Current, v)
	}
	return nil, &c
}

// txnArgs builds commitScript's keys and arguments for t.
func (s *shard) txnArgs(t store.Txn) (*txnArgs, error) {
	ta := &txnArgs{keys: []string{s.stream}, idx: map[string]int{s.stream: 1}}
	ta.args = append(ta.args, s.group, t.Ack, len(t.Expect))
	for _, e := range t.Expect {
		h := ""
		if e.Value != nil {
			sum := sha1.Sum(e.Value) //nolint:gosec // see the import
			h = hex.EncodeToString(sum[:])
		}
		ta.args = append(ta.args, "E", ta.key(s.key("state", e.Key)), h)
	}
	for _, v := range t.Set {
		k := ta.key(s.key("state", v.Key))
		if v.Value == nil {
			ta.args = append(ta.args, "D", k)
			continue
		}
		if v.TTL < time.Millisecond {
			return nil, fmt.Errorf("commit: value %s needs a TTL of at least 1ms", v.Key)
		}
		ta.args = append(ta.args, "S", k, v.Value, ceilMillis(v.TTL))
	}
	// One ZADD per queue, however many items.
	var queues []string
	byQueue := map[string][]store.Item{}
	for _, p := range t.Put {
		if p.Item.ID == "" {
			return nil, errors.New("commit: item without an ID")
		}
		if _, ok := byQueue[p.Queue]; !ok {
			queues = append(queues, p.Queue)
		}
		byQueue[p.Queue] = append(byQueue[p.Queue], p.Item)
	}
	for _, q := range queues {
		items := byQueue[q]
		ta.args = append(ta.args, "P", ta.key(s.queueKey(q)), len(items))
		for _, it := range items {
			ta.args = append(ta.args, score(it.Due), encodeMember(it))
		}
	}
	for _, c := range t.Collect {
		if c.Item.ID == "" || c.Cap < 1 || c.TTL < time.Millisecond {
			return nil, fmt.Errorf("commit: collect into %q needs an item ID, a cap and a TTL", c.Item.ID)
		}
		it := c.Item
		it.Collects = true
		ta.args = append(ta.args, "C", ta.key(s.collectKey(c.Queue, "c", it.ID)), ta.key(s.collectKey(c.Queue, "o", it.ID)),
			ta.key(s.queueKey(c.Queue)), c.Cap, ceilMillis(c.TTL+max(time.Until(it.Due), 0)), score(it.Due), encodeMember(it), len(c.Fields))
		for _, f := range c.Fields {
			keep := "0"
			if f.Keep {
				keep = "1"
			}
			ta.args = append(ta.args, f.Name, f.Value, keep)
		}
	}
	now := time.Now()
	for _, m := range t.Move {
		if m.ID == "" {
			return nil, errors.New("commit: move without an item ID")
		}
		due := m.Due
		if due.IsZero() {
			due = now
		}
		drop := "0"
		if m.Drop {
			drop = "1"
		}
		haspay := "0"
		if m.Payload != nil {
			haspay = "1"
		}
		id := escape(m.ID)
		ta.args = append(ta.args, "V", ta.key(s.queueKey(m.Queue)),
			ta.key(s.collectKey(m.Queue, "c", m.ID)), ta.key(s.collectKey(m.Queue, "o", m.ID)), ta.key(s.queueKey(m.Queue)+":p"),
			"\t"+globEscape(id)+"\t*", id, drop, due.UnixMilli(), now.UnixMilli(), haspay, m.Payload)
	}
	for _, m := range t.Mark {
		ta.args = append(ta.args, "M", ta.key(s.key("index", m.Index)), m.Score, m.Member)
	}
	for _, m := range t.Unmark {
		ta.args = append(ta.args, "U", ta.key(s.key("index", m.Index)), m.Member)
	}
	return ta, nil
}

// CommitAll applies each Txn as Commit does, in order, each atomically on
// its own, in one round trip: a worker commits a batch of entries at once.
func (s *shard) CommitAll(ctx context.Context, shard int, ts []store.Txn) []error {
	errs := make([]error, len(ts))
	if err := s.checkShard(shard); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	tas := make([]*txnArgs, len(ts))
	for i, t := range ts {
		tas[i], errs[i] = s.txnArgs(t)
	}
	run := func() ([]*redis.Cmd, error) {
		cmds := make([]*redis.Cmd, len(ts))
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, ta := range tas {
				if ta != nil {
					cmds[i] = p.EvalSha(ctx, commitScript.Hash(), ta.keys, ta.args...)
				}
			}
			return nil
		})
		return cmds, err
	}
	cmds, err := run()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Redis restarted (or flushed its scripts) since the last load.
		if lerr := commitScript.Load(ctx, s.client).Err(); lerr == nil {
			cmds, _ = run()
		}
	}
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		res, err := cmd.Slice()
		if err != nil {
			errs[i] = alert.Unavailable("commit", err)
			continue
		}
		_, errs[i] = s.committed(ctx, ts[i], tas[i], res)
	}
	return errs
}

// unkey is key's inverse for one kind.
func (s *shard) unkey(kind, k string) string { return k[len(s.keyPrefix)+len(kind)+1:] }

// Fields reads fields of a notes record (store.Note) in one HMGET; nil
// for each absent.
func (s *shard) Fields(ctx context.Context, shard int, key string, fields ...string) ([][]byte, error) {
	if err := s.checkShard(shard); err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		return nil, nil
	}
	vs, err := s.client.HMGet(ctx, s.key("notes", key), fields...).Result()
	if err != nil {
		return nil, alert.Unavailable("read notes", err)
	}
	out := make([][]byte, len(vs))
	for i, v := range vs {
		if str, ok := v.(string); ok {
			out[i] = []byte(str)
		}
	}
	return out, nil
}
