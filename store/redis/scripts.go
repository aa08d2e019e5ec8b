package redis

import "github.com/redis/go-redis/v9"

// enqueueScript takes the dedup keys of the new observations, checks the
// capacity and queues the entry in one step, so two replicas given the same
// message at the same instant queue it once and a refused enqueue leaves
// nothing behind.
//
// KEYS[1] the stream; KEYS[1+i] the dedup key of alert i.
// ARGV[1] capacity (0: no limit); ARGV[2] dedup TTL in ms; ARGV[3] the
// entry as JSON without its alerts; ARGV[3+i] alert i as JSON.
// Returns {0, ""} when every alert is a duplicate, {-1, ""} when the queue is
// full, else {alerts queued, stream ID}.
//
// SET NX takes a dedup key and says whether it was free in one command; the
// rare refusal at capacity gives back the keys it took. The alerts travel as
// separate JSON values and are joined here because only the script knows
// which ones are new; re-encoding the message with cjson would reorder and
// reformat it. The stream's TTL is refreshed by Maintain, not here: once a
// minute is enough for a 7-day TTL, and it keeps the webhook's cost at one
// command per alert plus three.
var enqueueScript = redis.NewScript(`
local fresh, isfresh = {}, {}
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'PX', ARGV[2]) then
    fresh[#fresh + 1] = i
    isfresh[i] = true
  end
end
-- The duplicates it drops are noted, the latest per alert, in the day's
-- record (one HSET): an alert's timeline says it came again. The lines
-- are made here, for the duplicates only (store.DuplicateRecord).
local function noteDuplicates()
  local nk, nttl = ARGV[#KEYS + 3], ARGV[#KEYS + 4]
  if nk == nil or nk == '' then return end
  local at, req, url = tonumber(ARGV[#KEYS + 5]), ARGV[#KEYS + 6], ARGV[#KEYS + 7]
  local kv = {}
  for i = 2, #KEYS do
    if not isfresh[i] then
      kv[#kv + 1] = ARGV[#KEYS + 8 + 2 * (i - 2)]
      kv[#kv + 1] = cjson.encode({t = at, r = req, u = url, s = ARGV[#KEYS + 9 + 2 * (i - 2)]})
    end
  end
  if #kv > 0 then
    redis.call('HSET', nk, unpack(kv))
    redis.call('PEXPIRE', nk, nttl, 'NX')
  end
end
if #fresh == 0 then
  noteDuplicates()
  return {0, ''}
end
local capacity = tonumber(ARGV[1])
if capacity > 0 and redis.call('XLEN', KEYS[1]) >= capacity then
  for _, i in ipairs(fresh) do
    redis.call('DEL', KEYS[i])
  end
  return {-1, ''}
end
local alerts = {}
for j, i in ipairs(fresh) do
  alerts[j] = ARGV[i + 2]
end
local id = redis.call('XADD', KEYS[1], '*', 'entry', ARGV[3], 'alerts', '[' .. table.concat(alerts, ',') .. ']')
if #fresh < #KEYS - 1 then noteDuplicates() end
return {#fresh, id}
`)
