// Folder state/: see health_exchange.h.
#include "state/health_exchange.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <utility>

namespace switchboard::detail {

namespace {

// KEYS: per model, its hash and its latency list.
// ARGV: failure_threshold, error_rate, min_calls, window_s, cooldown_ms, keep_ms,
//       then per model: successes, failures, trailing_failures, tripped (0|1),
//       closed (0|1), latencies ("12,40,..." or "").
// Returns per model: open_left_ms, closings, calls, failures, consec, p50, p95
// (-1: no latency yet).
const RedisScript& exchange_script() {
  static const RedisScript s(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local sec = math.floor(now / 1000)
local threshold, rate, min_calls = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local window_s, cooldown, keep = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local function quantile(xs, q)
  local k = math.min(#xs - 1, math.floor(q * #xs))
  return xs[k + 1]
end
local out = {}
for i = 1, #KEYS / 2 do
  local h, lat = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 6 + (i - 1) * 6
  local s, f, trailing = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local tripped, closed, lats = ARGV[a + 4] == '1', ARGV[a + 5] == '1', ARGV[a + 6]
  local open_until = tonumber(redis.call('HGET', h, 'open_until') or '0')
  if closed and open_until > 0 and now >= open_until then
    -- a probe's success after the cool-down: closed for the fleet, the failures that opened it forgotten
    open_until = 0
    for _, name in ipairs(redis.call('HKEYS', h)) do
      if string.match(name, '^[sf]:') then redis.call('HDEL', h, name) end
    end
    redis.call('HSET', h, 'open_until', 0, 'consec', 0)
    redis.call('HINCRBY', h, 'closings', 1)
  end
  if s > 0 then
    redis.call('HINCRBY', h, 's:' .. sec, s)
    redis.call('HSET', h, 'consec', trailing)
  elseif f > 0 then
    redis.call('HINCRBY', h, 'consec', f)
  end
  if f > 0 then redis.call('HINCRBY', h, 'f:' .. sec, f) end
  if lats ~= '' then
    for v in string.gmatch(lats, '[^,]+') do redis.call('LPUSH', lat, v) end
    redis.call('LTRIM', lat, 0, 63)
  end
  local calls, failures, consec = 0, 0, 0
  local fields = redis.call('HGETALL', h)
  for j = 1, #fields, 2 do
    local name, value = fields[j], tonumber(fields[j + 1])
    local kind, at = string.match(name, '^([sf]):(%d+)$')
    if kind then
      if tonumber(at) <= sec - window_s then
        redis.call('HDEL', h, name)
      else
        calls = calls + value
        if kind == 'f' then failures = failures + value end
      end
    elseif name == 'consec' then
      consec = value
    end
  end
  local trips = tripped or consec >= threshold or (calls >= min_calls and failures >= rate * calls)
  if (open_until == 0 and trips) or (open_until > 0 and now >= open_until and tripped) then
    open_until = now + cooldown  -- opened once for the fleet: later trips see it open
    redis.call('HSET', h, 'open_until', open_until)
  end
  redis.call('PEXPIRE', h, keep)
  redis.call('PEXPIRE', lat, keep)
  local xs = {}
  for _, v in ipairs(redis.call('LRANGE', lat, 0, 63)) do xs[#xs + 1] = tonumber(v) end
  table.sort(xs)
  local p50, p95 = -1, -1
  if #xs > 0 then p50, p95 = quantile(xs, 0.5), quantile(xs, 0.95) end
  local closings = tonumber(redis.call('HGET', h, 'closings') or '0')
  out[#out + 1] = {math.max(0, open_until - now), closings, calls, failures, consec, p50, p95}
end
return out
)lua");
  return s;
}

std::string figure(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", std::max(0.0, x));
  return buf;
}

}  // namespace

HealthExchange::HealthExchange(RedisClient& redis, std::string key_prefix, HealthSettings settings)
    : redis_(redis), key_prefix_(std::move(key_prefix)), settings_(settings) {}

Result<std::vector<FleetHealth>> HealthExchange::exchange(const std::vector<std::string>& models,
                                                          const std::vector<HealthOutcomes>& outcomes) {
  std::map<std::string_view, const HealthOutcomes*> by_model;
  for (const HealthOutcomes& o : outcomes) by_model[o.model] = &o;
  const auto keep = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::max(settings_.window, settings_.cooldown) + std::chrono::seconds(60));
  std::vector<std::string> keys;
  std::vector<std::string> args = {std::to_string(settings_.failure_threshold),
                                   std::to_string(settings_.error_rate),
                                   std::to_string(settings_.min_calls),
                                   std::to_string(settings_.window.count()),
                                   std::to_string(std::chrono::milliseconds(settings_.cooldown).count()),
                                   std::to_string(keep.count())};
  for (const std::string& model : models) {
    keys.push_back(key_prefix_ + "health:" + model);
    keys.push_back(key_prefix_ + "health:" + model + ":lat");
    const auto it = by_model.find(model);
    const HealthOutcomes none;
    const HealthOutcomes& o = it == by_model.end() ? none : *it->second;
    std::string latencies;
    for (const double ms : o.latencies_ms) {
      if (!latencies.empty()) latencies += ',';
      latencies += figure(ms);
    }
    args.push_back(std::to_string(o.successes));
    args.push_back(std::to_string(o.failures));
    args.push_back(std::to_string(o.trailing_failures));
    args.push_back(o.tripped ? "1" : "0");
    args.push_back(o.closed ? "1" : "0");
    args.push_back(std::move(latencies));
  }
  auto reply = redis_.eval(exchange_script(), keys, args);
  if (!reply.ok()) return reply.status();
  const RedisReply& r = reply.value();
  if (r.type != RedisReply::Type::kArray || r.elements.size() != models.size()) {
    return Status::internal("health exchange: Redis answered " + std::to_string(r.elements.size()) +
                            " models for " + std::to_string(models.size()));
  }
  std::vector<FleetHealth> fleet;
  fleet.reserve(models.size());
  for (std::size_t i = 0; i < models.size(); ++i) {
    const RedisReply& e = r.elements[i];
    if (e.type != RedisReply::Type::kArray || e.elements.size() != 7) {
      return Status::internal("health exchange: a malformed reply for " + models[i]);
    }
    const auto n = [&](std::size_t k) { return e.elements[k].integer; };
    FleetHealth f;
    f.model = models[i];
    f.open_left = std::chrono::milliseconds(n(0));
    f.closings = n(1);
    f.calls = n(2);
    f.failures = n(3);
    f.consecutive_failures = n(4);
    if (n(5) >= 0) f.p50_ms = static_cast<double>(n(5));
    if (n(6) >= 0) f.p95_ms = static_cast<double>(n(6));
    fleet.push_back(std::move(f));
  }
  return fleet;
}

}  // namespace switchboard::detail
