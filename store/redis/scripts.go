package redisstore

import "github.com/redis/go-redis/v9"

// enqueueScript checks the dedup keys, the capacity and queues the entry in
// one step, so two replicas given the same message at the same instant queue
// it once and a refused enqueue leaves nothing behind.
//
// KEYS[1] the stream; KEYS[1+i] the dedup key of alert i.
// ARGV[1] capacity (0: no limit); ARGV[2] dedup TTL in ms; ARGV[3] stream TTL
// in ms; ARGV[4] the entry as JSON without its alerts; ARGV[4+i] alert i as
// JSON.
// Returns {0, ""} when every alert is a duplicate, {-1, ""} when the queue is
// full, else {alerts queued, stream ID}.
//
// The alerts travel as separate JSON values and are joined here because only
// the script knows which ones are new; re-encoding the message with cjson
// would reorder and reformat it.
var enqueueScript = redis.NewScript(`
local n = #KEYS - 1
local fresh = {}
local seen = {}
for i = 1, n do
  local k = KEYS[i + 1]
  if not seen[k] and redis.call('EXISTS', k) == 0 then
    fresh[#fresh + 1] = i
  end
  seen[k] = true
end
if #fresh == 0 then
  return {0, ''}
end
local capacity = tonumber(ARGV[1])
if capacity > 0 and redis.call('XLEN', KEYS[1]) >= capacity then
  return {-1, ''}
end
local alerts = {}
for j, i in ipairs(fresh) do
  redis.call('SET', KEYS[i + 1], '1', 'PX', ARGV[2])
  alerts[j] = ARGV[i + 4]
end
local id = redis.call('XADD', KEYS[1], '*', 'entry', ARGV[4], 'alerts', '[' .. table.concat(alerts, ',') .. ']')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {#fresh, id}
`)

// recordScript adds an entry's observations to their histories once per
// entry ID, so a redelivered entry never counts twice.
//
// KEYS[1] the done marker of the entry; KEYS[2] the processed counter;
// KEYS[2+i] the history of alert i.
// ARGV[1] done marker and counter TTL in ms; ARGV[2] retention in ms; ARGV[3]
// most observations kept; ARGV[4] the entry's receive time in unix ms (the
// score); ARGV[4+i] the observation of alert i without its receive time, so
// that the same observation is the same member and only its score moves.
// Returns 1 when it recorded, 0 when the entry was recorded before.
//
// ZADD GT keeps the later receive time when an older delivery of the same
// observation arrives late.
var recordScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local retention = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
for i = 3, #KEYS do
  local h = KEYS[i]
  redis.call('ZADD', h, 'GT', ARGV[4], ARGV[i + 2])
  local newest = redis.call('ZRANGE', h, -1, -1, 'WITHSCORES')
  local cutoff = tonumber(newest[2]) - retention
  redis.call('ZREMRANGEBYSCORE', h, '-inf', '(' .. string.format('%d', cutoff))
  redis.call('ZREMRANGEBYRANK', h, 0, -(max + 1))
  redis.call('PEXPIRE', h, ARGV[2])
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('INCRBY', KEYS[2], #KEYS - 2)
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
`)
