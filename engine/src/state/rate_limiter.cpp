// RateLimiter: a sliding-minute log per scope, in this process or in Redis.
//
// A log (the time and tokens of each request in the last minute) rather than
// GCRA or a token bucket, because the promise is "at most N in any minute":
// a bucket refilled continuously admits up to twice its size in some 60 s
// windows. The log costs one entry per request per limited scope, for a
// minute: bounded by the limits themselves.
#include "switchboard/rate_limit.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <random>

#include "state/redis_client.h"

namespace switchboard {
namespace {

namespace chr = std::chrono;
constexpr std::int64_t kWindowMs = 60'000;

// KEYS: one per limited scope ("<prefix>rate:<scope>", a sorted set of
// "<id>:<tokens>" by time in ms). ARGV: id, tokens, then per key: rpm, tpm (0: none).
// Returns {1, requests_left, tokens_left} (-1: no limit) when counted in every
// key, or {0, i, retry_after_ms} (-1: never fits) naming the first key i (1-based) without room.
const detail::RedisScript& admit_script() {
  static const detail::RedisScript s(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = 60000
local id, tokens = ARGV[1], tonumber(ARGV[2])
local req_left, tok_left = -1, -1
for i = 1, #KEYS do
  local k = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - window)
  local rpm, tpm = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local count = redis.call('ZCARD', k)
  if rpm > 0 then
    if count + 1 > rpm then
      local e = redis.call('ZRANGE', k, count - rpm, count - rpm, 'WITHSCORES')
      return {0, i, math.max(1, tonumber(e[2]) + window - now)}
    end
    if req_left < 0 or rpm - count - 1 < req_left then req_left = rpm - count - 1 end
  end
  if tpm > 0 then
    if tokens > tpm then return {0, i, -1} end
    local entries = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
    local used = 0
    for j = 1, #entries, 2 do used = used + tonumber(string.match(entries[j], ':(%d+)$')) end
    if used + tokens > tpm then
      local freed = 0
      for j = 1, #entries, 2 do
        freed = freed + tonumber(string.match(entries[j], ':(%d+)$'))
        if used - freed + tokens <= tpm then return {0, i, math.max(1, tonumber(entries[j + 1]) + window - now)} end
      end
      return {0, i, -1}
    end
    if tok_left < 0 or tpm - used - tokens < tok_left then tok_left = tpm - used - tokens end
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now, id .. ':' .. tokens)
  redis.call('PEXPIRE', KEYS[i], window)
end
return {1, req_left, tok_left}
)lua");
  return s;
}

struct Entry {
  std::int64_t at_ms = 0;
  std::int64_t tokens = 0;
};

struct Scope {
  RateLimit limit;
  std::deque<Entry> log;  // in time order, the last minute only (after purge)

  void purge(std::int64_t now_ms) {
    while (!log.empty() && log.front().at_ms <= now_ms - kWindowMs) log.pop_front();
  }
};

}  // namespace

struct RateLimiter::Impl {
  StateSettings state;
  Clock now;
  std::unique_ptr<detail::RedisClient> redis;  // null: in-process only
  std::string id_prefix;
  std::atomic<std::uint64_t> next_id{0};
  std::atomic<bool> degraded{false};

  std::mutex mu;
  std::map<std::string, Scope, std::less<>> scopes;  // guarded by mu

  // In this process; every limit divided by `divisor`.
  RateDecision admit_local(const std::vector<std::string>& names, std::int64_t tokens, std::int64_t divisor) {
    const std::int64_t now_ms = chr::duration_cast<chr::milliseconds>(now().time_since_epoch()).count();
    RateDecision d;
    std::lock_guard lock(mu);
    std::vector<Scope*> counted;
    for (const std::string& name : names) {
      auto it = scopes.find(name);
      if (it == scopes.end()) continue;
      Scope& s = it->second;
      if (std::find(counted.begin(), counted.end(), &s) != counted.end()) continue;  // named twice: counts once
      const std::int64_t rpm = s.limit.requests_per_minute / divisor;
      const std::int64_t tpm = s.limit.tokens_per_minute / divisor;
      if (s.limit.requests_per_minute <= 0 && s.limit.tokens_per_minute <= 0) continue;
      s.purge(now_ms);
      const auto refuse = [&](std::optional<std::int64_t> retry_ms) {
        d.allowed = false;
        d.limited_by = name;
        if (retry_ms) d.retry_after = chr::milliseconds(std::max<std::int64_t>(1, *retry_ms));
        return d;
      };
      const auto count = static_cast<std::int64_t>(s.log.size());
      if (s.limit.requests_per_minute > 0) {
        if (count + 1 > rpm) {
          if (rpm <= 0) return refuse(std::nullopt);
          return refuse(s.log[static_cast<std::size_t>(count - rpm)].at_ms + kWindowMs - now_ms);
        }
        d.requests_left = std::min(d.requests_left.value_or(rpm), rpm - count - 1);
      }
      if (s.limit.tokens_per_minute > 0) {
        if (tokens > tpm) return refuse(std::nullopt);
        std::int64_t used = 0;
        for (const Entry& e : s.log) used += e.tokens;
        if (used + tokens > tpm) {
          std::int64_t freed = 0;
          for (const Entry& e : s.log) {
            freed += e.tokens;
            if (used - freed + tokens <= tpm) return refuse(e.at_ms + kWindowMs - now_ms);
          }
          return refuse(std::nullopt);
        }
        d.tokens_left = std::min(d.tokens_left.value_or(tpm), tpm - used - tokens);
      }
      counted.push_back(&s);
    }
    for (Scope* s : counted) s->log.push_back(Entry{now_ms, tokens});
    d.allowed = true;
    return d;
  }
};

std::string model_rate_scope(std::string_view model) { return "model:" + std::string(model); }

RateLimiter::RateLimiter(StateSettings state, Clock now) : impl_(std::make_unique<Impl>()) {
  impl_->now = now ? std::move(now) : Clock([] { return chr::system_clock::now(); });
  if (state.backend == StateSettings::Backend::kRedis) {
    auto address = detail::redis_address_of(state);
    if (!address.ok()) {
      spdlog::error("rate limits: {}", address.status().message());
      address = detail::RedisAddress{"", 0, 0};
    }
    impl_->redis = std::make_unique<detail::RedisClient>(std::move(address).value(), state.timeout);
    std::random_device rd;
    impl_->id_prefix = std::to_string(rd()) + "." + std::to_string(rd()) + ".";
  }
  impl_->state = std::move(state);
}

RateLimiter::~RateLimiter() = default;

void RateLimiter::set_limit(RateLimit limit) {
  std::lock_guard lock(impl_->mu);
  Scope& s = impl_->scopes[limit.scope];
  s.limit = std::move(limit);
}

Result<RateDecision> RateLimiter::admit(const std::vector<std::string>& scopes, std::int64_t tokens) {
  if (tokens < 0) return Status::invalid_argument("rate limit: negative token count " + std::to_string(tokens));
  if (impl_->redis == nullptr) return impl_->admit_local(scopes, tokens, 1);

  std::vector<std::string> keys;
  std::vector<std::string> limited;  // the scope of each key
  const std::string id = impl_->id_prefix + std::to_string(impl_->next_id.fetch_add(1, std::memory_order_relaxed));
  std::vector<std::string> args{id, std::to_string(tokens)};
  {
    std::lock_guard lock(impl_->mu);
    for (const std::string& name : scopes) {
      auto it = impl_->scopes.find(name);
      if (it == impl_->scopes.end()) continue;
      const RateLimit& l = it->second.limit;
      if (l.requests_per_minute <= 0 && l.tokens_per_minute <= 0) continue;
      if (std::find(limited.begin(), limited.end(), name) != limited.end()) continue;
      limited.push_back(name);
      keys.push_back(impl_->state.key_prefix + "rate:" + name);
      args.push_back(std::to_string(std::max<std::int64_t>(l.requests_per_minute, 0)));
      args.push_back(std::to_string(std::max<std::int64_t>(l.tokens_per_minute, 0)));
    }
  }
  RateDecision d;
  if (keys.empty()) {
    d.allowed = true;
    return d;
  }
  auto r = impl_->redis->eval(admit_script(), keys, args);
  if (!r.ok()) {
    if (r.status().code() != Status::Code::kUnavailable) return r.status();
    if (!impl_->degraded.exchange(true)) {
      spdlog::warn("rate limits: shared state unreachable ({}); {}", r.status().message(),
                   impl_->state.on_unavailable == StateSettings::OnUnavailable::kLocal
                       ? "counting in this process, each limit divided by " + std::to_string(impl_->state.replicas)
                       : std::string("refusing limited requests until it is back"));
    }
    if (impl_->state.on_unavailable == StateSettings::OnUnavailable::kLocal) {
      return impl_->admit_local(scopes, tokens, std::max(impl_->state.replicas, 1));
    }
    return Status::unavailable("rate limit " + limited.front() +
                               ": the shared rate-limit state is unreachable, and [state] on_unavailable = "
                               "\"fail_closed\" refuses limited requests: " +
                               r.status().message())
        .with_reason(Status::Reason::kRateStateUnreachable);
  }
  if (impl_->degraded.exchange(false)) spdlog::warn("rate limits: shared state reachable again");
  const detail::RedisReply& reply = r.value();
  if (reply.type != detail::RedisReply::Type::kArray || reply.elements.size() != 3) {
    return Status::internal("rate limit: unexpected reply from the admit script");
  }
  if (reply.elements[0].integer == 1) {
    d.allowed = true;
    if (reply.elements[1].integer >= 0) d.requests_left = reply.elements[1].integer;
    if (reply.elements[2].integer >= 0) d.tokens_left = reply.elements[2].integer;
    return d;
  }
  const auto i = static_cast<std::size_t>(reply.elements[1].integer - 1);
  if (i >= limited.size()) return Status::internal("rate limit: unexpected refusal from the admit script");
  d.limited_by = limited[i];
  if (reply.elements[2].integer >= 0) d.retry_after = chr::milliseconds(reply.elements[2].integer);
  return d;
}

}  // namespace switchboard
