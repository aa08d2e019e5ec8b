package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertmedic/alertmedic/alert"
	"github.com/alertmedic/alertmedic/store"
)

// A leased queue is one sorted set, {p}:q:<queue>, whose members are the
// items themselves, scored by due time in unix ms (a claimed item by the
// end of its lease). A member is a header line and the payload:
//
//	batch \t id \t group \t class \t alerts \t since_ms \t attempts \t collects \t last_err \t ext \n payload
//
// The fields are escaped (\t, \n and \\) so that the header stays one
// line of tab-separated fields; the scripts split it and never need to
// unescape. Keeping the payload in the member makes a put one ZADD and a
// settle one ZREM. A claim rewrites only the batch field, so the members
// of a lapsed lease are the same bytes for whoever claims them next.
//
// An item that has to wait (its target is rate limited, or busy) is looked
// at by every claim until it goes; so the first claim that makes it wait
// moves its payload into the hash {p}:q:<queue>:p (ext 1, the member keeps
// only its header), and the claims after it touch a hundred bytes, not the
// 24 KiB of a 50-alert notification. The claim that takes it reads the
// payload back; its settle deletes it.

func (s *shard) queueKey(q string) string { return s.keyPrefix + "q:" + q }

// collectKey names a collecting item's fields ("c") or spilled names ("o").
func (s *shard) collectKey(q, kind, id string) string {
	return s.keyPrefix + "q:" + q + ":" + kind + ":" + escape(id)
}

var escaper = strings.NewReplacer("\\", `\\`, "\t", `\t`, "\n", `\n`)

func escape(s string) string { return escaper.Replace(s) }

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 't':
				b.WriteByte('\t')
			case 'n':
				b.WriteByte('\n')
			default:
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func score(t time.Time) float64 { return float64(t.UnixMilli()) }

func encodeMember(it store.Item) string {
	since := it.Since
	if since.IsZero() {
		since = it.Due
	}
	collects := "0"
	if it.Collects {
		collects = "1"
	}
	var b strings.Builder
	b.Grow(64 + len(it.ID) + len(it.Group) + len(it.Payload))
	for i, f := range []string{escape(it.Batch), escape(it.ID), escape(it.Group), escape(it.Class),
		strconv.Itoa(it.Alerts), strconv.FormatInt(since.UnixMilli(), 10), strconv.Itoa(it.Attempts), collects, escape(it.LastErr), "0"} {
		if i > 0 {
			b.WriteByte('\t')
		}
		b.WriteString(f)
	}
	b.WriteByte('\n')
	b.Write(it.Payload)
	return b.String()
}

func decodeMember(m string, scoreMs float64) (store.Item, error) {
	nl := strings.IndexByte(m, '\n')
	if nl < 0 {
		return store.Item{}, errors.New("decode item: no header line")
	}
	f := strings.Split(m[:nl], "\t")
	if len(f) != 10 {
		return store.Item{}, fmt.Errorf("decode item: %d header fields, want 10", len(f))
	}
	alerts, err1 := strconv.Atoi(f[4])
	since, err2 := strconv.ParseInt(f[5], 10, 64)
	attempts, err3 := strconv.Atoi(f[6])
	if err := errors.Join(err1, err2, err3); err != nil {
		return store.Item{}, fmt.Errorf("decode item: %w", err)
	}
	return store.Item{
		Batch:    unescape(f[0]),
		ID:       unescape(f[1]),
		Group:    unescape(f[2]),
		Class:    unescape(f[3]),
		Alerts:   alerts,
		Since:    time.UnixMilli(since),
		Attempts: attempts,
		Collects: f[7] == "1",
		LastErr:  unescape(f[8]),
		Due:      time.UnixMilli(int64(scoreMs)),
		Payload:  []byte(m[nl+1:]),
		Receipt:  m,
	}, nil
}

// memberExt says whether a member's payload is in the payload hash.
func memberExt(m string) bool {
	nl := strings.IndexByte(m, '\n')
	return nl >= 2 && m[nl-2:nl] == "\t1"
}

// claimScript takes due items in batches; see store.ClaimOptions.
//
// KEYS[1] the queue. ARGV: now_ms, lease_ms, max items, scan (how many due
// members to look at), the rate-limit key prefix, the collect key prefix,
// the number of classes, then per class: name, interval_ms, tau_ms,
// max_alerts; then the number of held groups, and per group its name and
// the time (ms) it is held until. The rate-limit keys ({p}:rl:<group>) and collect keys are
// built here from their prefixes: they share the queue's hash tag.
//
// Returns {batches, limited, next_score, held} where a batch is {id,
// group, reclaimed, {member, fields, spilled, payload[, collects]}...} and
// held lists each group the rate limit held back with the time (ms) it may
// go.
// luaHeader is the scripts' one reader of an item's member (see
// encodeMember): header(m) returns its header fields (batch, id, group,
// class, alerts, since, attempts, collects, last_err, ext) and where the
// payload's newline is; findByID(key, pattern, id) scans a sorted set's
// members matching pattern for those whose id field is id.
const luaHeader = `
local function header(m)
  local nl = string.find(m, '\n', 1, true)
  local f = {}
  for x in string.gmatch(string.sub(m, 1, nl - 1) .. '\t', '([^\t]*)\t') do
    f[#f + 1] = x
  end
  return f, nl
end
local function findByID(key, pat, id)
  local found, seen, cur = {}, {}, '0'
  repeat
    local r = redis.call('ZSCAN', key, cur, 'MATCH', pat, 'COUNT', 1000)
    cur = r[1]
    for i = 1, #r[2], 2 do
      local m = r[2][i]
      if not seen[m] then
        seen[m] = true
        local f, nl = header(m)
        if f[2] == id then found[#found + 1] = {m = m, score = tonumber(r[2][i + 1]), f = f, nl = nl} end
      end
    end
  until cur == '0'
  return found
end
`

var claimScript = redis.NewScript(luaHeader + `
local q = KEYS[1]
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local maxItems = tonumber(ARGV[3])
local scan = tonumber(ARGV[4])
local rlp, cp = ARGV[5], ARGV[6]
local classes = {}
local a = 8
for i = 1, tonumber(ARGV[7]) do
  classes[ARGV[a]] = {iv = tonumber(ARGV[a + 1]), tau = tonumber(ARGV[a + 2]), maxa = tonumber(ARGV[a + 3])}
  a = a + 4
end
local heldIn = {}
for i = 1, tonumber(ARGV[a]) do
  heldIn[ARGV[a + 2 * i - 1]] = tonumber(ARGV[a + 2 * i])
end
local due = redis.call('ZRANGEBYSCORE', q, '-inf', now, 'LIMIT', 0, scan)
local groups, order = {}, {}
for _, m in ipairs(due) do
  local f, nl = header(m)
  local g = f[3]
  if g == '' then g = f[2] end
  local k = 'g:' .. g
  if f[1] ~= '' then k = 'b:' .. f[1] end
  local grp = groups[k]
  if not grp then
    grp = {g = g, batch = f[1], class = f[4], items = {}}
    groups[k] = grp
    order[#order + 1] = grp
  end
  grp.items[#grp.items + 1] = {m = m, id = f[2], alerts = tonumber(f[5]), collects = (f[8] == '1'), ext = (f[10] == '1'), nl = nl}
end
local out, rem, add, held, extp, extTake, extIDs = {}, {}, {}, {}, {}, {}, {}
local limited, taken = 0, 0
for _, grp in ipairs(order) do
  if taken >= maxItems then break end
  local cl = classes[grp.class]
  local ok, retry = true, 0
  if heldIn[grp.g] and heldIn[grp.g] > now then
    ok, retry = false, heldIn[grp.g]
  elseif cl and cl.iv > 0 then
    local k = rlp .. grp.g
    local tat = tonumber(redis.call('GET', k) or '0')
    local t = math.max(tat, now)
    if t - now > cl.tau then
      ok, retry = false, t - cl.tau
    else
      redis.call('SET', k, string.format('%d', t + cl.iv), 'PX', string.format('%d', t + cl.iv - now + 60000))
    end
  end
  if not ok then
    limited = limited + 1
    held[#held + 1] = grp.g
    held[#held + 1] = string.format('%d', retry)
    for _, it in ipairs(grp.items) do
      local m = it.m
      if not it.ext and #m - it.nl > 256 then
        -- It waits: its payload goes to the hash, the member shrinks.
        extp[#extp + 1] = it.id
        extp[#extp + 1] = string.sub(m, it.nl + 1)
        rem[#rem + 1] = m
        m = string.sub(m, 1, it.nl - 2) .. '1\n'
      end
      add[#add + 1] = retry
      add[#add + 1] = m
    end
  else
    local bid = grp.batch
    local reclaimed = 1
    if bid == '' then
      bid = grp.g .. '#' .. grp.items[1].id .. '#' .. string.format('%d', now)
      reclaimed = 0
    end
    local b = {bid, grp.g, reclaimed}
    local alerts = 0
    for i, it in ipairs(grp.items) do
      if reclaimed == 0 and i > 1 and (taken >= maxItems or (cl and cl.maxa > 0 and alerts + it.alerts > cl.maxa)) then
        break
      end
      alerts = alerts + it.alerts
      taken = taken + 1
      local nm = it.m
      if reclaimed == 0 then
        local tab = string.find(it.m, '\t', 1, true)
        nm = bid .. string.sub(it.m, tab)
        rem[#rem + 1] = it.m
      end
      add[#add + 1] = now + lease
      add[#add + 1] = nm
      local e = {nm, false, 0, false}
      if it.ext then
        extTake[#extTake + 1] = e
        extIDs[#extIDs + 1] = it.id
      end
      if it.collects then
        local ck, ok2 = cp .. 'c:' .. it.id, cp .. 'o:' .. it.id
        local cck, cok = ck .. ':' .. bid, ok2 .. ':' .. bid
        if reclaimed == 0 then
          if redis.call('EXISTS', ck) == 1 then redis.call('RENAME', ck, cck) end
          if redis.call('EXISTS', ok2) == 1 then redis.call('RENAME', ok2, cok) end
          -- While it is out, a collect must not put the item again.
          redis.call('SET', ck .. ':out', bid, 'PX', string.format('%d', lease + 86400000))
        end
        e[2] = redis.call('HGETALL', cck)
        e[3] = redis.call('SCARD', cok)
        e[5] = 1
      end
      b[#b + 1] = e
    end
    out[#out + 1] = b
  end
end
for i = 1, #rem, 500 do
  redis.call('ZREM', q, unpack(rem, i, math.min(i + 499, #rem)))
end
for i = 1, #extp, 500 do
  redis.call('HSET', cp .. 'p', unpack(extp, i, math.min(i + 499, #extp)))
end
if #extIDs > 0 then
  local ps = redis.call('HMGET', cp .. 'p', unpack(extIDs))
  for i, e in ipairs(extTake) do
    e[4] = ps[i]
  end
end
for i = 1, #add, 1000 do
  redis.call('ZADD', q, unpack(add, i, math.min(i + 999, #add)))
end
local nxt = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
return {out, limited, nxt[2] or '', held}
`)

// Claim implements store.ClaimOptions on Redis in one script call.
func (s *shard) Claim(ctx context.Context, shard int, queue string, o store.ClaimOptions) (store.Claimed, error) {
	if err := s.checkShard(shard); err != nil {
		return store.Claimed{}, err
	}
	maxItems := max(o.Max, 1)
	args := []any{o.Now.UnixMilli(), max(o.Lease.Milliseconds(), 1), maxItems, 4*maxItems + 64,
		s.keyPrefix + "rl:", s.keyPrefix + "q:" + queue + ":", len(o.Classes)}
	for name, c := range o.Classes {
		iv, tau := int64(0), int64(0)
		if c.PerSecond > 0 {
			iv = store.Interval(c.PerSecond).Milliseconds()
			tau = int64(max(c.Burst, 1)-1) * iv
		}
		args = append(args, escape(name), iv, tau, c.MaxAlerts)
	}
	args = append(args, len(o.Held))
	for g, until := range o.Held {
		args = append(args, escape(g), until.UnixMilli())
	}
	res, err := claimScript.Run(ctx, s.client, []string{s.queueKey(queue)}, args...).Slice()
	if err != nil {
		return store.Claimed{}, alert.Unavailable("claim from "+queue, err)
	}
	if len(res) != 4 {
		return store.Claimed{}, fmt.Errorf("claim from %s: unexpected reply %v", queue, res)
	}
	var out store.Claimed
	lim, _ := res[1].(int64)
	out.Limited = int(lim)
	if str, ok := res[2].(string); ok && str != "" {
		f, err := strconv.ParseFloat(str, 64)
		if err == nil {
			out.Next = time.UnixMilli(int64(f))
		}
	}
	if held, _ := res[3].([]any); len(held) > 0 {
		out.Held = map[string]time.Time{}
		for i := 0; i+1 < len(held); i += 2 {
			g, _ := held[i].(string)
			ms, _ := held[i+1].(string)
			n, _ := strconv.ParseInt(ms, 10, 64)
			out.Held[unescape(g)] = time.UnixMilli(n)
		}
	}
	leaseEnd := float64(o.Now.Add(o.Lease).UnixMilli())
	batches, _ := res[0].([]any)
	for _, rb := range batches {
		b, _ := rb.([]any)
		if len(b) < 3 {
			return out, fmt.Errorf("claim from %s: unexpected batch %v", queue, rb)
		}
		id, _ := b[0].(string)
		group, _ := b[1].(string)
		re, _ := b[2].(int64)
		batch := store.Batch{ID: unescape(id), Group: unescape(group), Reclaimed: re == 1}
		for _, re := range b[3:] {
			e, _ := re.([]any)
			if len(e) == 0 {
				continue
			}
			m, _ := e[0].(string)
			it, err := decodeMember(m, leaseEnd)
			if err != nil {
				// Only a foreign writer on our prefix gets here; say so
				// rather than wedge the queue on it.
				s.log.Error().Err(err).Str("queue", queue).Msg("dropping undecodable leased item")
				_ = s.client.ZRem(ctx, s.queueKey(queue), m).Err()
				continue
			}
			if p, ok := e[3].(string); ok && len(e) >= 4 {
				it.Payload = []byte(p)
			}
			if len(e) == 5 {
				fields, _ := e[1].([]any)
				it.Collected = make(map[string][]byte, len(fields)/2)
				for i := 0; i+1 < len(fields); i += 2 {
					k, _ := fields[i].(string)
					v, _ := fields[i+1].(string)
					it.Collected[k] = []byte(v)
				}
				n, _ := e[2].(int64)
				it.Overflow = int(n)
			}
			batch.Items = append(batch.Items, it)
		}
		out.Batches = append(out.Batches, batch)
	}
	return out, nil
}

// settleScript finishes claimed items.
//
// KEYS[1] the queue, KEYS[2] its dead letters. ARGV: now_ms, dead cap,
// collect key prefix, the number of moved-out payloads to delete and their
// item ids, the number of plain (not collecting) done items and their
// receipts, then ops:
//
//	d receipt id batch collects rearm               done
//	r receipt id batch collects score member        retry
//	x receipt id batch collects dead_member rearm   dead
//
// An op acts only if its receipt is still in the queue (ZREM says so): a
// lapsed lease's second claimer settles nothing twice. A dead letter
// without a receipt is one of its own (a part of a batch). rearm is the item as
// it is put again when it collected more meanwhile (” for none).
// Returns the dead letters evicted at the cap.
var settleScript = redis.NewScript(`
local q, dead = KEYS[1], KEYS[2]
local now, cap, cp = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local evicted = 0
-- Payloads moved out while their items waited: gone with them.
local nx = tonumber(ARGV[4])
if nx > 0 then
  redis.call('HDEL', cp .. 'p', unpack(ARGV, 5, 4 + nx))
end
-- Plain items done: one ZREM for them all.
local n = tonumber(ARGV[5 + nx])
if n > 0 then
  for i = 6 + nx, 5 + nx + n, 500 do
    redis.call('ZREM', q, unpack(ARGV, i, math.min(i + 499, 5 + nx + n)))
  end
end
local a = 6 + nx + n
while a <= #ARGV do
  local op, receipt, id, bid, collects = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local n = 6
  if op == 'r' or op == 'x' then n = 7 end
  if op == 'n' then
    -- Notes of one record: one HSET, an HGET for each that appends, and
    -- the TTL when the record is new.
    local k, ttl, cnt = receipt, id, tonumber(bid)
    local kv = {}
    for i = 0, cnt - 1 do
      local f, line, app = ARGV[a + 4 + 3 * i], ARGV[a + 5 + 3 * i], ARGV[a + 6 + 3 * i]
      if app == '1' then
        local old = redis.call('HGET', k, f)
        if old then line = old .. line end
      end
      kv[#kv + 1] = f
      kv[#kv + 1] = line
    end
    redis.call('HSET', k, unpack(kv))
    redis.call('PEXPIRE', k, ttl, 'NX')
    n = 4 + 3 * cnt
  elseif (op == 'x' and receipt == '') or redis.call('ZREM', q, receipt) == 1 then
    local ck, ok2 = cp .. 'c:' .. id, cp .. 'o:' .. id
    local cck, cok = ck .. ':' .. bid, ok2 .. ':' .. bid
    if collects == '1' then
      redis.call('DEL', ck .. ':out')
    end
    if op == 'r' then
      if collects == '1' then
        local kv = redis.call('HGETALL', cck)
        for i = 1, #kv, 2 do
          redis.call('HSETNX', ck, kv[i], kv[i + 1])
        end
        if redis.call('EXISTS', cok) == 1 then
          redis.call('SUNIONSTORE', ok2, ok2, cok)
        end
        redis.call('DEL', cck, cok)
      end
      redis.call('ZADD', q, ARGV[a + 5], ARGV[a + 6])
    else
      local rearm = ARGV[a + 5]
      if op == 'x' then
        rearm = ARGV[a + 6]
        redis.call('ZADD', dead, now, ARGV[a + 5])
        local size = redis.call('ZCARD', dead)
        if size > cap then
          redis.call('ZREMRANGEBYRANK', dead, 0, size - cap - 1)
          evicted = evicted + size - cap
        end
      end
      if collects == '1' then
        redis.call('DEL', cck, cok)
        if rearm ~= '' and redis.call('EXISTS', ck, ok2) > 0 then
          redis.call('ZADD', q, 'NX', now, rearm)
        end
      end
    end
  end
  a = a + n
end
return evicted
`)

// Settle implements store.Settlement on Redis in one script call.
func (s *shard) Settle(ctx context.Context, shard int, queue string, st store.Settlement) (store.Settled, error) {
	if err := s.checkShard(shard); err != nil {
		return store.Settled{}, err
	}
	if len(st.Done)+len(st.Retry)+len(st.Dead)+len(st.Notes) == 0 {
		return store.Settled{}, nil
	}
	args := []any{st.Now.UnixMilli(), s.maxDead, s.keyPrefix + "q:" + queue + ":"}
	flag := func(it store.Item) string {
		if it.Collects {
			return "1"
		}
		return "0"
	}
	rearm := func(it store.Item) string {
		if !it.Collects {
			return ""
		}
		it.Batch, it.Due, it.Since, it.Attempts, it.LastErr = "", st.Now, st.Now, 0, ""
		return encodeMember(it)
	}
	var ext []any
	for _, its := range [][]store.Item{st.Done, st.Retry, st.Dead} {
		for _, it := range its {
			if it.Receipt != "" && memberExt(it.Receipt) {
				ext = append(ext, escape(it.ID))
			}
		}
	}
	args = append(args, len(ext))
	args = append(args, ext...)
	var plain []any
	for _, it := range st.Done {
		if !it.Collects {
			plain = append(plain, it.Receipt)
		}
	}
	args = append(args, len(plain))
	args = append(args, plain...)
	for _, it := range st.Done {
		if it.Collects {
			args = append(args, "d", it.Receipt, escape(it.ID), escape(it.Batch), flag(it), rearm(it))
		}
	}
	for _, it := range st.Retry {
		next := it
		next.Batch = ""
		args = append(args, "r", it.Receipt, escape(it.ID), escape(it.Batch), flag(it), score(it.Due), encodeMember(next))
	}
	for _, it := range st.Dead {
		d := it
		d.Batch, d.Collects = "", false
		args = append(args, "x", it.Receipt, escape(it.ID), escape(it.Batch), flag(it), encodeMember(d), rearm(it))
	}
	// The notes of one record go in one op: one HSET for them all.
	var order []string
	byKey := map[string][]store.Note{}
	for _, n := range st.Notes {
		if n.Key == "" || n.Field == "" || n.TTL < time.Millisecond {
			return store.Settled{}, fmt.Errorf("settle: note %q needs a key, a field and a TTL of at least 1ms", n.Key)
		}
		if _, ok := byKey[n.Key]; !ok {
			order = append(order, n.Key)
		}
		byKey[n.Key] = append(byKey[n.Key], n)
	}
	for _, k := range order {
		ns := byKey[k]
		args = append(args, "n", s.key("notes", k), ceilMillis(ns[0].TTL), len(ns))
		for _, n := range ns {
			app := "0"
			if n.Append {
				app = "1"
			}
			args = append(args, n.Field, n.Line, app)
		}
	}
	n, err := settleScript.Run(ctx, s.client, []string{s.queueKey(queue), s.queueKey(queue) + ":dead"}, args...).Int()
	if err != nil {
		return store.Settled{}, alert.Unavailable("settle "+queue, err)
	}
	return store.Settled{Evicted: n}, nil
}

// deadRead is one shard's share of a listing of dead letters: those the
// page selects in the shard, and how many the shard keeps.
type deadRead struct {
	list  *redis.ZSliceCmd // nil when the page lists none
	count *redis.IntCmd
}

// readDead queues on p the reads of the dead letters of queue that page
// selects in this shard, past skip of those that died at page.Before: up
// to page.Limit+1 of them, newest first, and their count.
func (s *shard) readDead(ctx context.Context, p redis.Pipeliner, queue string, page store.DeadPage, skip int) deadRead {
	k := s.queueKey(queue) + ":dead"
	var r deadRead
	if page.Limit > 0 {
		maxScore := "+inf"
		if !page.Before.IsZero() {
			// Members of one score come in one order (reverse lexical), so the
			// skip finds the same place again.
			maxScore = strconv.FormatInt(page.Before.UnixMilli(), 10)
		} else {
			skip = 0
		}
		r.list = p.ZRevRangeByScoreWithScores(ctx, k, &redis.ZRangeBy{Max: maxScore, Min: "-inf", Offset: int64(skip), Count: int64(page.Limit) + 1})
	}
	r.count = p.ZCard(ctx, k)
	return r
}

// dead decodes what the read listed, once the pipeline ran.
func (r deadRead) dead() []store.Dead {
	if r.list == nil {
		return nil
	}
	var out []store.Dead
	for _, z := range r.list.Val() {
		m, _ := z.Member.(string)
		it, err := decodeMember(m, z.Score)
		if err != nil {
			continue
		}
		it.Receipt = ""
		out = append(out, store.Dead{Item: it, At: time.UnixMilli(int64(z.Score))})
	}
	return out
}

// QueueLen counts a leased queue's unfinished items.
func (s *shard) QueueLen(ctx context.Context, shard int, queue string) (int, error) {
	if err := s.checkShard(shard); err != nil {
		return 0, err
	}
	n, err := s.client.ZCard(ctx, s.queueKey(queue)).Result()
	if err != nil {
		return 0, alert.Unavailable("count "+queue, err)
	}
	return int(n), nil
}

var reviveScript = redis.NewScript(luaHeader + `
local dead, q = KEYS[1], KEYS[2]
local pat, id, due = ARGV[1], ARGV[2], ARGV[3]
local found = findByID(dead, pat, id)
if #found == 0 or #findByID(q, pat, id) > 0 then return 0 end
local m, f, nl = found[1].m, found[1].f, found[1].nl
redis.call('ZREM', dead, m)
-- A new delivery: no batch, since now, no attempts, inline; its error
-- says it was sent again.
f[1], f[6], f[7], f[8], f[9], f[10] = '', due, '0', '0', ARGV[4], '0'
redis.call('ZADD', q, due, table.concat(f, '\t') .. string.sub(m, nl))
return 1
`)

// Revive takes the dead letter with the ID back into its queue, due at
// due, as a new delivery: no attempts, LastErr store.Revived, its Since
// at due. It reports false when there is no such dead letter, or an item
// of that ID waits already. It scans the dead letters (capped by max_dead_letters)
// and the queue for the ID: for a person's click, not for every item.
func (s *shard) Revive(ctx context.Context, shard int, queue, id string, due time.Time) (bool, error) {
	if err := s.checkShard(shard); err != nil {
		return false, err
	}
	e := escape(id)
	n, err := reviveScript.Run(ctx, s.client, []string{s.queueKey(queue) + ":dead", s.queueKey(queue)},
		"*\t"+globEscape(e)+"\t*", e, due.UnixMilli(), escape(store.Revived)).Int()
	if err != nil {
		return false, alert.Unavailable("revive a dead letter", err)
	}
	return n == 1, nil
}
