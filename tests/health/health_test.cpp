// Model health (switchboard/health.h): the circuit breaker's transitions on a
// scripted clock, its figures, the providers' rate-limit headers, and the
// whole loop: a model whose fake provider fails 5 times in a row is seen as
// unhealthy by the rules at the next decision, passed by in fallbacks with
// the ledger saying why, and comes back after its cool-down.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fake_provider.h"
#include "providers/rate_limits.h"
#include "switchboard/dispatch.h"
#include "switchboard/health.h"
#include "test_util.h"

using namespace switchboard;
using namespace switchboard::testing;
using namespace std::chrono_literals;

namespace {

HealthSettings settings(int threshold = 5, int min_calls = 20, double rate = 0.5) {
  HealthSettings s;
  s.failure_threshold = threshold;
  s.min_calls = min_calls;
  s.error_rate = rate;
  s.window = 60s;
  s.cooldown = 30s;
  return s;
}

}  // namespace

TEST_SUITE("health") {

TEST_CASE("the breaker opens after five failures in a row, half-opens for one probe after the cool-down") {
  ScriptedClock clock;
  HealthBook book(settings(), clock.fn());
  CHECK(book.snapshot("m").healthy);  // never seen: healthy
  for (int i = 0; i < 4; ++i) {
    REQUIRE(book.admit("m"));
    book.record_failure("m");
  }
  CHECK(book.snapshot("m").state == ModelHealth::State::kClosed);
  CHECK(book.snapshot("m").consecutive_failures == 4);
  REQUIRE(book.admit("m"));
  book.record_failure("m");
  ModelHealth h = book.snapshot("m");
  CHECK(h.state == ModelHealth::State::kOpen);
  CHECK_FALSE(h.healthy);
  CHECK_FALSE(book.admit("m"));

  clock.now += 29s;
  CHECK_FALSE(book.admit("m"));  // still cooling down
  clock.now += 1s;
  h = book.snapshot("m");
  CHECK(h.state == ModelHealth::State::kHalfOpen);
  CHECK(h.healthy);               // a probe may go
  REQUIRE(book.admit("m"));       // the probe
  CHECK_FALSE(book.admit("m"));   // one at a time
  CHECK_FALSE(book.snapshot("m").healthy);
  book.record_failure("m");       // the probe failed: open for another cool-down
  CHECK(book.snapshot("m").state == ModelHealth::State::kOpen);
  clock.now += 30s;
  REQUIRE(book.admit("m"));
  book.record_success("m", 120ms, RateLimits());
  h = book.snapshot("m");
  CHECK(h.state == ModelHealth::State::kClosed);
  CHECK(h.consecutive_failures == 0);
  CHECK(h.calls == 1);  // the failures that opened it no longer count
  CHECK(h.error_rate == 0);
}

TEST_CASE("the error rate over the window opens the breaker once the window holds min_calls") {
  ScriptedClock clock;
  HealthBook book(settings(/*threshold=*/100, /*min_calls=*/4, /*rate=*/0.5), clock.fn());
  book.record_failure("m");
  book.record_success("m", 10ms, RateLimits());
  book.record_failure("m");
  CHECK(book.snapshot("m").state == ModelHealth::State::kClosed);  // 3 calls < min_calls
  CHECK(book.snapshot("m").error_rate == doctest::Approx(2.0 / 3));
  book.record_success("m", 10ms, RateLimits());
  book.record_failure("m");  // 3 of 5
  CHECK(book.snapshot("m").state == ModelHealth::State::kOpen);

  HealthBook windowed(settings(100, 4, 0.5), clock.fn());
  windowed.record_failure("m");
  windowed.record_failure("m");
  clock.now += 61s;  // those two leave the window
  windowed.record_success("m", 10ms, RateLimits());
  windowed.record_success("m", 10ms, RateLimits());
  windowed.record_success("m", 10ms, RateLimits());
  windowed.record_failure("m");
  CHECK(windowed.snapshot("m").calls == 4);
  CHECK(windowed.snapshot("m").error_rate == doctest::Approx(0.25));
  CHECK(windowed.snapshot("m").state == ModelHealth::State::kClosed);
}

TEST_CASE("a neutral outcome gives a half-open probe slot back and counts as neither") {
  ScriptedClock clock;
  HealthBook book(settings(/*threshold=*/1), clock.fn());
  book.record_failure("m");
  clock.now += 30s;
  REQUIRE(book.admit("m"));
  CHECK_FALSE(book.admit("m"));
  book.record_neutral("m");  // the probe was refused or cancelled
  CHECK(book.snapshot("m").healthy);
  CHECK(book.admit("m"));
  CHECK(book.snapshot("m").calls == 1);
}

TEST_CASE("latency quantiles cover the last 64 answers and rate-limit resets count down") {
  ScriptedClock clock;
  HealthBook book(settings(), clock.fn());
  CHECK_FALSE(book.snapshot("m").p50_ms.has_value());
  for (int i = 1; i <= 100; ++i) book.record_success("m", std::chrono::milliseconds(i), RateLimits());
  const ModelHealth h = book.snapshot("m");
  REQUIRE(h.p50_ms);
  CHECK(*h.p50_ms == 69);  // the last 64 are 37..100
  CHECK(*h.p95_ms == 97);

  RateLimits limits;
  limits.requests_left = 10;
  limits.tokens_reset = 90'000ms;
  book.record_success("m", 5ms, limits);
  clock.now += 30s;
  ModelHealth later = book.snapshot("m");
  CHECK(later.limits.requests_left == 10);
  CHECK(later.limits.tokens_reset == std::optional<std::chrono::milliseconds>(60'000ms));
  book.record_failure("m", 2000ms);  // a 429's Retry-After: no requests left until then
  later = book.snapshot("m");
  CHECK(later.limits.requests_left == 0);
  CHECK(later.limits.requests_reset == std::optional<std::chrono::milliseconds>(2000ms));
}

TEST_CASE("OpenAI and Anthropic rate-limit headers are read, and others and bad values change nothing") {
  const auto now = std::chrono::system_clock::from_time_t(1'760'000'000);  // 2025-10-09T08:53:20Z
  RateLimits openai;
  CHECK(read_rate_limit_header("x-ratelimit-remaining-requests", "59", now, openai));
  CHECK(read_rate_limit_header("X-RateLimit-Remaining-Tokens", "149984", now, openai));
  CHECK(read_rate_limit_header("x-ratelimit-reset-requests", "6m0s", now, openai));
  CHECK(read_rate_limit_header("x-ratelimit-reset-tokens", "1.5s", now, openai));
  CHECK_FALSE(read_rate_limit_header("x-ratelimit-limit-requests", "60", now, openai));
  CHECK_FALSE(read_rate_limit_header("x-ratelimit-remaining-requests", "many", now, openai));
  CHECK(openai.requests_left == 59);
  CHECK(openai.tokens_left == 149984);
  CHECK(openai.requests_reset == std::optional<std::chrono::milliseconds>(360'000ms));
  CHECK(openai.tokens_reset == std::optional<std::chrono::milliseconds>(1500ms));

  RateLimits anthropic;
  CHECK(read_rate_limit_header("anthropic-ratelimit-input-tokens-remaining", "5000", now, anthropic));
  CHECK(read_rate_limit_header("anthropic-ratelimit-tokens-remaining", "7000", now, anthropic));
  CHECK_FALSE(read_rate_limit_header("anthropic-ratelimit-input-tokens-remaining", "1", now, anthropic));
  CHECK(read_rate_limit_header("anthropic-ratelimit-requests-remaining", "49", now, anthropic));
  CHECK(read_rate_limit_header("anthropic-ratelimit-requests-reset", "2025-10-09T08:54:20Z", now, anthropic));
  CHECK(read_rate_limit_header("anthropic-ratelimit-tokens-reset", "2025-10-09T10:53:50.5+02:00", now, anthropic));
  CHECK(anthropic.tokens_left == 7000);  // the combined figure wins over input tokens
  RateLimits mixed;  // names in any case; a name past any known one's length is none of them
  CHECK(read_rate_limit_header("Anthropic-RateLimit-Requests-Remaining", "3", now, mixed));
  CHECK(mixed.requests_left == 3);
  CHECK_FALSE(read_rate_limit_header("x-ratelimit-remaining-requests" + std::string(40, 's'), "4", now, mixed));
  CHECK_FALSE(read_rate_limit_header("x-ratelimit-", "4", now, mixed));
  CHECK(mixed.requests_left == 3);
  CHECK(anthropic.requests_left == 49);
  CHECK(anthropic.requests_reset == std::optional<std::chrono::milliseconds>(60'000ms));
  CHECK(anthropic.tokens_reset == std::optional<std::chrono::milliseconds>(30'500ms));

  CHECK(parse_go_duration("1h2m3s") == std::optional<std::chrono::milliseconds>(3'723'000ms));
  CHECK(parse_go_duration("20ms") == std::optional<std::chrono::milliseconds>(20ms));
  CHECK_FALSE(parse_go_duration("").has_value());
  CHECK_FALSE(parse_go_duration("5 minutes").has_value());
}

TEST_CASE("a model that fails five times is unhealthy at the next decision, passed by, and back after its cool-down") {
  const auto fake = FakeProvider::start();
  fake->inject(Fault::kServerError, 5, "m-fake");
  TempDir dir;
  dir.write("prices.toml", small_prices("\n[models.m-fake]\ninput = 2.0\noutput = 8.0\n"));
  // The rules route to the fake while it is healthy, and say why not otherwise.
  dir.write("rules/w.lua", R"lua(
function classify(step, ctx)
  local m = ctx.models["m-fake"]
  if step.role == "forced" or m.healthy then return { tier = "fake", reason = "healthy" } end
  return { tier = "cheap", reason = "m-fake is " .. m.state .. " after " .. m.consecutive_failures .. " failures" }
end
)lua");
  const std::string config = dir.write(
      "switchboard.toml", small_config(R"toml(
[models.m-fake]
provider = "openai"
endpoint = ")toml" + fake->base_url() + R"toml(/v1"
api_key_env = "SWITCHBOARD_TEST_UPSTREAM_KEY"
context_window = 100000

[tiers.fake]
models = ["m-fake", "m-cheap"]

[calls]
max_attempts = 1

[health]
failure_threshold = 5
cooldown_s = 1
)toml"));
  setenv("SWITCHBOARD_TEST_UPSTREAM_KEY", "k", 1);
  auto engine = Engine::open_file(config);
  REQUIRE_MESSAGE(engine.ok(), engine.status().to_string());
  auto clients = ModelClients::from_config((*engine)->config());
  REQUIRE(clients.ok());
  Dispatcher dispatcher(**engine, std::move(clients).value());
  const auto run = [&](const std::string& role) {
    StepCall call;
    call.step.role = role;
    return dispatcher.run("w", call);
  };

  for (int i = 0; i < 5; ++i) {
    const StepResult r = run("chat");
    REQUIRE(r.status.ok());
    CHECK(r.decision.tier == "fake");
    CHECK(r.model == "m-cheap");  // m-fake's 500, then the fallback
  }
  CHECK(fake->request_count() == 5);

  // The next decision sees it.
  StepResult r = run("chat");
  REQUIRE(r.status.ok());
  CHECK(r.decision.tier == "cheap");
  CHECK(r.decision.reason == "m-fake is open after 5 failures");
  // A decision for its tier anyway: the fallback passes it by, and says so.
  r = run("forced");
  REQUIRE(r.status.ok());
  CHECK(r.model == "m-cheap");
  REQUIRE(r.records.size() == 2);
  CHECK(r.records[0].model == "m-fake");
  CHECK(r.records[0].status == CallStatus::kFallback);
  CHECK(r.records[0].error == "not called: m-fake's circuit breaker is open (5 failures in a row; [health])");
  CHECK(fake->request_count() == 5);  // not called

  std::this_thread::sleep_for(1100ms);  // the cool-down
  r = run("chat");
  REQUIRE(r.status.ok());
  CHECK(r.decision.tier == "fake");
  CHECK(r.model == "m-fake");  // the probe answered: closed again
  const ModelHealth h = (*engine)->health().snapshot("m-fake");
  CHECK(h.state == ModelHealth::State::kClosed);
  CHECK(h.p50_ms.has_value());
  CHECK(h.limits.requests_left == 4999);  // the fake's x-ratelimit-* headers
  CHECK(h.limits.tokens_left == 799000);
}

TEST_CASE("ctx.models, ctx.price and ctx.cost read the config and health, and ctx.models is read-only") {
  TempDir dir;
  auto engine = engine_with_rules(dir, R"lua(
function classify(step, ctx)
  if step.role == "write" then ctx.models["m-cheap"] = {} end
  if step.role == "pairs" then
    local names = {}
    for name, m in pairs(ctx.models) do names[#names + 1] = name .. "=" .. tostring(m.healthy) end
    return { tier = "cheap", reason = table.concat(names, ",") }
  end
  if step.role == "unknown" then
    return { tier = "cheap", reason = tostring(ctx.models["nope"]) .. " " .. tostring(ctx.price("nope")) }
  end
  local p = ctx.price("m-premium")
  local micro, usd = ctx.cost("m-premium", 1000000, 1000000, 200000)
  return { tier = "cheap", reason = string.format("%g %g %g %d %.2f %s %s", p.input, p.cached_input, p.output,
                                                  micro, usd, math.type(micro), ctx.models["m-cheap"].state) }
end
)lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().to_string());
  Step step;
  step.role = "price";
  auto d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  // 800k fresh at $15 + 200k cached at $1.50 + 1M out at $75
  CHECK(d->reason == "15 1.5 75 87300000 87.30 integer closed");

  step.role = "pairs";
  d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  CHECK(d->reason == "m-cheap=true,m-premium=true");

  step.role = "unknown";
  d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  CHECK(d->reason == "nil nil");

  step.role = "write";
  d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  REQUIRE(d->error.has_value());  // the rule failed: the fallback tier serves
  CHECK(d->error->find("ctx.models is read-only") != std::string::npos);
}

}  // TEST_SUITE
