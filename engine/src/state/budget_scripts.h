// The Redis side of a shared BudgetBook (switchboard/budget.h): the scripts
// that make reserve, settle/release and reduce one atomic step each.
//
// Keys, per scope and period (the period of the scope's limit, a month when
// it has none): BASE = "<prefix>budget:<scope>:<YYYY-MM or YYYY-MM-DD>",
//   BASE       hash {spent, reserved}: micro-dollars
//   BASE:a     hash reservation id -> amount held in this scope
//   BASE:r     sorted set reservation id -> expiry (Redis server time, ms)
// Every script first gives back the reservations of its keys whose expiry
// has passed (a replica died holding them); times come from the server's
// TIME, so replicas' clocks do not matter. BASE is created with the spend
// the caller passes as the seed (what its ledger holds for the period, plus
// what it settled since, less what it has not yet told Redis) when it is
// missing. All keys expire `keep` seconds after they were last written.
#pragma once

#include "state/redis_client.h"

namespace switchboard::detail {

// Shared by the scripts: `now` in ms and purge(BASE).
inline constexpr const char kBudgetPrelude[] = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function purge(b)
  local dead = redis.call('ZRANGEBYSCORE', b .. ':r', '-inf', now)
  for _, id in ipairs(dead) do
    local a = redis.call('HGET', b .. ':a', id)
    if a then redis.call('HINCRBY', b, 'reserved', -tonumber(a)) end
    redis.call('HDEL', b .. ':a', id)
  end
  if #dead > 0 then redis.call('ZREMRANGEBYSCORE', b .. ':r', '-inf', now) end
end
)lua";

// KEYS: the n scopes' BASEs, then BASEs only `replacing` holds.
// ARGV: at_least, at_most, ttl_ms, id, replacing id ('' none), n, keep,
//       then per scope: cap ('' without a limit), seed.
// Returns {1, amount} when reserved in every scope, or {0, i, spent, reserved}
// naming the first scope i (1-based) that cannot hold at_least.
inline const RedisScript& reserve_script() {
  static const RedisScript s(std::string(kBudgetPrelude) + R"lua(
local at_least, at_most = tonumber(ARGV[1]), tonumber(ARGV[2])
local ttl, id, replacing = tonumber(ARGV[3]), ARGV[4], ARGV[5]
local n, keep = tonumber(ARGV[6]), ARGV[7]
for i = 1, #KEYS do
  local b = KEYS[i]
  if i <= n and redis.call('EXISTS', b) == 0 then
    redis.call('HSET', b, 'spent', ARGV[7 + 2 * i], 'reserved', 0)
    redis.call('DEL', b .. ':a', b .. ':r')
  end
  purge(b)
end
local amount = at_most
for i = 1, n do
  local cap = ARGV[6 + 2 * i]
  if cap ~= '' then
    local b = KEYS[i]
    local f = redis.call('HMGET', b, 'spent', 'reserved')
    local spent, reserved = tonumber(f[1] or '0'), tonumber(f[2] or '0')
    local back = 0
    if replacing ~= '' then back = tonumber(redis.call('HGET', b .. ':a', replacing) or '0') end
    local left = tonumber(cap) - spent - (reserved - back)
    if at_least > left then return {0, i, spent, reserved} end
    if left < amount then amount = left end
  end
end
if replacing ~= '' then
  for i = 1, #KEYS do
    local b = KEYS[i]
    local a = redis.call('HGET', b .. ':a', replacing)
    if a then
      redis.call('HINCRBY', b, 'reserved', -tonumber(a))
      redis.call('HDEL', b .. ':a', replacing)
      redis.call('ZREM', b .. ':r', replacing)
    end
  end
end
for i = 1, n do
  local b = KEYS[i]
  redis.call('HINCRBY', b, 'reserved', amount)
  redis.call('HSET', b .. ':a', id, amount)
  redis.call('ZADD', b .. ':r', now + ttl, id)
  redis.call('EXPIRE', b, keep)
  redis.call('EXPIRE', b .. ':a', keep)
  redis.call('EXPIRE', b .. ':r', keep)
end
return {1, amount}
)lua");
  return s;
}

// Ends reservation `id` in each BASE of KEYS and adds `actual` to its spend
// (also when the reservation had already expired: what was spent was spent).
// A missing BASE is created with its seed first (the caller's figures
// without `actual`). ARGV: id, actual, keep, then a seed per key.
inline const RedisScript& finish_script() {
  static const RedisScript s(R"lua(
for i = 1, #KEYS do
  local b = KEYS[i]
  if redis.call('EXISTS', b) == 0 then
    redis.call('HSET', b, 'spent', ARGV[3 + i], 'reserved', 0)
    redis.call('DEL', b .. ':a', b .. ':r')
  end
  local a = redis.call('HGET', b .. ':a', ARGV[1])
  if a then
    redis.call('HINCRBY', b, 'reserved', -tonumber(a))
    redis.call('HDEL', b .. ':a', ARGV[1])
    redis.call('ZREM', b .. ':r', ARGV[1])
  end
  if tonumber(ARGV[2]) ~= 0 then redis.call('HINCRBY', b, 'spent', ARGV[2]) end
  redis.call('EXPIRE', b, ARGV[3])
end
return 1
)lua");
  return s;
}

// Lowers reservation `id` to `to` in each BASE of KEYS that holds more. ARGV: id, to.
inline const RedisScript& reduce_script() {
  static const RedisScript s(R"lua(
for i = 1, #KEYS do
  local b = KEYS[i]
  local a = redis.call('HGET', b .. ':a', ARGV[1])
  if a and tonumber(a) > tonumber(ARGV[2]) then
    redis.call('HINCRBY', b, 'reserved', tonumber(ARGV[2]) - tonumber(a))
    redis.call('HSET', b .. ':a', ARGV[1], ARGV[2])
  end
end
return 1
)lua");
  return s;
}

// One BASE's figures after purging: {spent, reserved}; seeds it first when
// missing. KEYS: BASE. ARGV: seed, keep.
inline const RedisScript& read_script() {
  static const RedisScript s(std::string(kBudgetPrelude) + R"lua(
local b = KEYS[1]
if redis.call('EXISTS', b) == 0 then
  redis.call('HSET', b, 'spent', ARGV[1], 'reserved', 0)
  redis.call('DEL', b .. ':a', b .. ':r')
  redis.call('EXPIRE', b, ARGV[2])
end
purge(b)
local f = redis.call('HMGET', b, 'spent', 'reserved')
return {tonumber(f[1] or '0'), tonumber(f[2] or '0')}
)lua");
  return s;
}

}  // namespace switchboard::detail
