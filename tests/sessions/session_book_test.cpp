// Sessions (switchboard/sessions.h): the book's cache accounting over a
// conversation on a scripted clock (a switch of model, expiry, 1-hour
// writes, explicit and automatic caches), its LRU bound, the [sessions]
// config table, ctx.session as the rules read it, the estimate's cached
// rate, and the dispatcher feeding the book (a fallback's answer included).
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cost/estimate.h"
#include "switchboard/dispatch.h"
#include "switchboard/sessions.h"
#include "test_util.h"

using namespace switchboard;
using namespace switchboard::testing;
using namespace std::chrono_literals;

namespace {

// usage_of(input, cached, write_5m, write_1h, output, reasoning) with no output.
Usage prompt(std::int64_t input, std::int64_t cached, std::int64_t write_5m = 0, std::int64_t write_1h = 0) {
  return usage_of(input, cached, write_5m, write_1h, 100, 0);
}

// Answers with `usage`, or fails as unavailable, as told; counts its calls.
class FixedClient final : public ModelClient {
 public:
  explicit FixedClient(Status failure, Usage usage = {}) : failure_(std::move(failure)), usage_(usage) {}
  std::string provider() const override { return "fixed"; }
  Result<ModelResponse> invoke(const ModelRequest&) override {
    if (!failure_.ok()) return failure_;
    ModelResponse r;
    r.content.push_back(ContentBlock::of_text("ok"));
    r.usage = usage_;
    return r;
  }
  Result<ModelResponse> stream(const ModelRequest& request, const ChunkHandler&) override { return invoke(request); }

 private:
  Status failure_;
  Usage usage_;
};

}  // namespace

TEST_SUITE("sessions") {

TEST_CASE("a conversation's caches: the new model starts cold, the old one's cache expires after its lifetime") {
  ScriptedClock clock;
  SessionBook book(SessionSettings{}, clock.fn());
  CHECK_FALSE(book.snapshot("s").has_value());  // never seen
  CHECK_FALSE(book.snapshot("").has_value());

  // Turn 1 on an Anthropic model: 4000 tokens written (5 minutes).
  book.record("s", "claude", prompt(0, 0, 4000), CacheFill::kExplicit);
  std::optional<SessionView> v = book.snapshot("s");
  REQUIRE(v);
  CHECK(v->id == "s");
  CHECK(v->last_model == "claude");
  CHECK(v->turns == 1);
  CHECK(v->cached_for("claude") == 4000);
  CHECK(v->cached_for("gpt") == 0);

  // Turn 2: 4000 read, 1500 more written: the prefix now cached is 5500.
  clock.now += 60s;
  book.record("s", "claude", prompt(20, 4000, 1500), CacheFill::kExplicit);
  CHECK(book.snapshot("s")->cached_for("claude") == 5500);

  // Turn 3 moves to an OpenAI model: it starts cold (nothing read), and its
  // automatic cache holds the whole prompt afterwards.
  clock.now += 60s;
  v = book.snapshot("s");
  CHECK(v->cached_for("gpt") == 0);
  book.record("s", "gpt", prompt(6000, 0), CacheFill::kAutomatic);
  v = book.snapshot("s");
  CHECK(v->last_model == "gpt");
  CHECK(v->turns == 3);
  REQUIRE(v->cached_tokens.size() == 2);  // by name
  CHECK(v->cached_tokens[0] == std::pair<std::string, std::int64_t>("claude", 5500));
  CHECK(v->cached_tokens[1] == std::pair<std::string, std::int64_t>("gpt", 6000));

  // claude's cache was last refreshed at turn 2 (t = 60 s): it lives until t = 360 s.
  clock.now = std::chrono::steady_clock::time_point{} + 359s;
  CHECK(book.snapshot("s")->cached_for("claude") == 5500);
  clock.now += 1s;
  v = book.snapshot("s");
  CHECK(v->cached_for("claude") == 0);  // expired: cold
  CHECK(v->cached_for("gpt") == 6000);  // written at t = 120 s
  REQUIRE(v->cached_tokens.size() == 1);
  clock.now += 60s;
  CHECK(book.snapshot("s")->cached_tokens.empty());
  CHECK(book.snapshot("s")->turns == 3);  // the session itself is kept
}

TEST_CASE("1-hour cache writes outlive the 5-minute part, and a read of them all refreshes them") {
  ScriptedClock clock;
  SessionBook book(SessionSettings{}, clock.fn());
  // 10000 in the 1-hour cache, 2000 more in the 5-minute one.
  book.record("s", "claude", prompt(0, 0, 2000, 10000), CacheFill::kExplicit);
  CHECK(book.snapshot("s")->cached_for("claude") == 12000);
  clock.now += 301s;
  CHECK(book.snapshot("s")->cached_for("claude") == 10000);  // the 5-minute part is gone
  clock.now += 3000s;                                         // t = 3301 s
  CHECK(book.snapshot("s")->cached_for("claude") == 10000);
  // A call that reads the 1-hour part whole refreshes it for another hour.
  book.record("s", "claude", prompt(50, 10000), CacheFill::kExplicit);
  clock.now += 3599s;
  CHECK(book.snapshot("s")->cached_for("claude") == 10000);
  clock.now += 1s;
  CHECK(book.snapshot("s")->cached_for("claude") == 0);
}

TEST_CASE("an explicit cache holds only what was read or written, and an automatic one the whole prompt") {
  ScriptedClock clock;
  SessionBook book(SessionSettings{}, clock.fn());
  book.record("a", "claude", prompt(3000, 0), CacheFill::kExplicit);  // no breakpoint: nothing cached
  CHECK(book.snapshot("a")->cached_for("claude") == 0);
  CHECK(book.snapshot("a")->turns == 1);
  book.record("b", "gpt", prompt(2500, 500), CacheFill::kAutomatic);
  CHECK(book.snapshot("b")->cached_for("gpt") == 3000);
  book.record("c", "sim", prompt(100, 900, 2000), CacheFill::kAutomatic);  // writes reported: reads + writes
  CHECK(book.snapshot("c")->cached_for("sim") == 2900);
  book.record("", "gpt", prompt(1, 0), CacheFill::kAutomatic);  // no session: nothing kept
  CHECK(book.size() == 3);
}

TEST_CASE("the book keeps at most max_sessions, forgetting the least recently served") {
  ScriptedClock clock;
  SessionSettings s;
  s.max_sessions = 3;
  s.ttl = 10s;
  SessionBook book(s, clock.fn());
  for (const char* id : {"a", "b", "c"}) book.record(id, "m", prompt(2000, 0), CacheFill::kAutomatic);
  book.record("a", "m", prompt(0, 2000), CacheFill::kAutomatic);  // a is served again: b is now the oldest
  book.record("d", "m", prompt(2000, 0), CacheFill::kAutomatic);
  CHECK(book.size() == 3);
  CHECK_FALSE(book.snapshot("b").has_value());
  CHECK(book.snapshot("a")->turns == 2);
  CHECK(book.snapshot("c").has_value());
  CHECK(book.snapshot("d").has_value());
  for (int i = 0; i < 100; ++i) book.record("x" + std::to_string(i), "m", prompt(1, 0), CacheFill::kAutomatic);
  CHECK(book.size() == 3);
  CHECK(book.snapshot("x99").has_value());
  CHECK_FALSE(book.snapshot("a").has_value());
}

TEST_CASE("the book is safe under concurrent calls") {
  SessionBook book(SessionSettings{});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&book, t] {
      for (int i = 0; i < 500; ++i) {
        book.record("s" + std::to_string(i % 7), "m" + std::to_string(t), prompt(10, 1000), CacheFill::kAutomatic);
        (void)book.snapshot("s" + std::to_string((i + t) % 7));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  std::int64_t turns = 0;
  for (int i = 0; i < 7; ++i) turns += book.snapshot("s" + std::to_string(i))->turns;
  CHECK(turns == 2000);
}

TEST_CASE("[sessions] sets the lifetimes and the bound, and bad values name file:line:column") {
  TempDir dir;
  dir.write("rules/w.lua", "function classify(step, ctx) return 'cheap' end\n");
  auto config = load_config(write_small_config(dir, "\n[sessions]\nttl_s = 600\nttl_1h_s = 7200\nmax_sessions = 50\n"));
  REQUIRE_MESSAGE(config.ok(), config.status().to_string());
  CHECK(config->sessions.ttl == 600s);
  CHECK(config->sessions.ttl_1h == 7200s);
  CHECK(config->sessions.max_sessions == 50);
  CHECK(load_config(write_small_config(dir))->sessions.ttl == 300s);  // the default

  const auto error = [&](const std::string& table) {
    auto c = load_config(write_small_config(dir, "\n[sessions]\n" + table + "\n"));
    REQUIRE_FALSE(c.ok());
    return c.status().message();
  };
  std::string e = error("ttl_s = 0");
  CHECK(e.find("switchboard.toml:") != std::string::npos);
  CHECK(e.find("[sessions]: 'ttl_s' must be positive") != std::string::npos);
  e = error("max_sessions = 100_000_000");
  CHECK(e.find("[sessions] max_sessions is at most 10000000") != std::string::npos);
  e = error("ttl = 5");
  CHECK(e.find("ttl") != std::string::npos);
  e = error("ttl_1h_s = \"an hour\"");
  CHECK(e.find("ttl_1h_s") != std::string::npos);
}

TEST_CASE("ctx.session: nil without a session, its figures, pairs over cached_tokens, and writes name the field") {
  TempDir dir;
  ScriptedClock clock;
  EngineOptions options;
  options.sessions_clock = clock.fn();
  auto engine = engine_with_rules(dir, R"lua(
function classify(step, ctx)
  local s = ctx.session
  if step.role == "nil" then return { tier = "cheap", reason = tostring(s) } end
  if step.role == "write" then s.turn = 9 end
  if step.role == "write_cached" then s.cached_tokens["m-cheap"] = 1 end
  local warm = {}
  for model, n in pairs(s.cached_tokens) do warm[#warm + 1] = model .. "=" .. n end
  return { tier = "cheap", reason = string.format("%s %s %d %s %d %d [%s] %s", s.id, tostring(s.last_model),
    s.turn, math.type(s.turn), s.cached_tokens["m-premium"], s.cached_tokens["nope"], table.concat(warm, ","),
    tostring(s.other)) }
end
)lua", "", options);
  REQUIRE_MESSAGE(engine.ok(), engine.status().to_string());
  Step step;
  step.role = "nil";
  auto d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  CHECK(d->reason == "nil");  // no session

  step.role = "read";
  step.session_id = "conv-1";
  d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  CHECK(d->reason == "conv-1 nil 0 integer 0 0 [] nil");  // a new session: nothing served yet

  SessionBook& book = (*engine)->sessions();
  book.record("conv-1", "m-premium", prompt(0, 0, 9000), CacheFill::kExplicit);
  book.record("conv-1", "m-cheap", prompt(9500, 0), CacheFill::kAutomatic);
  d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  CHECK(d->reason == "conv-1 m-cheap 2 integer 9000 0 [m-cheap=9500,m-premium=9000] nil");
  clock.now += 301s;  // both expire
  d = (*engine)->decide("w", step);
  CHECK(d->reason == "conv-1 m-cheap 2 integer 0 0 [] nil");

  step.role = "write";
  d = (*engine)->decide("w", step);
  REQUIRE(d->error.has_value());  // the rule failed: the fallback tier serves
  CHECK(d->error->find("ctx.session is read-only: cannot set 'turn'") != std::string::npos);
  step.role = "write_cached";
  d = (*engine)->decide("w", step);
  REQUIRE(d->error.has_value());
  CHECK(d->error->find("ctx.session.cached_tokens is read-only: cannot set 'm-cheap'") != std::string::npos);
}

TEST_CASE("the estimate prices the part expected to hit the chosen model's cache at its cached rate") {
  TempDir dir;
  auto engine = engine_with_rules(dir, R"lua(
function classify(step, ctx) return "premium" end
)lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().to_string());
  Step step;
  step.role = "chat";
  step.input_tokens = 100'000;
  step.expected_output_tokens = 1'000;
  step.session_id = "s";
  auto d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  CHECK(d->estimated_cost == 1'575'000);  // cold: 100k at $15 + 1k at $75
  (*engine)->sessions().record("s", "m-premium", prompt(0, 0, 80'000), CacheFill::kExplicit);
  d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  CHECK(d->estimated_cost == 495'000);  // 20k at $15 + 80k at $1.50 + 1k at $75
  (*engine)->sessions().record("s", "m-premium", prompt(0, 0, 300'000), CacheFill::kExplicit);
  d = (*engine)->decide("w", step);
  CHECK(d->estimated_cost == 225'000);  // no more than the whole input is cached

  // estimate_cost itself, cached part clamped to the input.
  const ModelSpec* m = (*engine)->config().find_model("m-cheap");
  Decision decision;
  detail::estimate_cost(*m, step, 10'000, decision, 4'000);
  CHECK(decision.estimated_cost == 6'000 + 400 + 5'000);
  detail::estimate_cost(*m, step, 10'000, decision, 0);
  CHECK(decision.estimated_cost == estimate_call_cost(*m, 10'000, 1'000));
}

TEST_CASE("the estimate prices the figure the rules read of the chosen model's cache: one lookup for both") {
  TempDir dir;
  ScriptedClock clock;
  int lookups = 0;  // the book reads its clock once per lookup of a model's cache
  EngineOptions options;
  options.sessions_clock = [&] {
    ++lookups;
    return clock.now;
  };
  auto engine = engine_with_rules(dir, R"lua(
function classify(step, ctx)
  if step.role == "blind" then return "premium" end
  local warm = ctx.session.cached_tokens["m-premium"]
  local again = ctx.session.cached_tokens["m-premium"]
  return { tier = step.role, reason = warm .. " " .. again }
end
)lua", "", options);
  REQUIRE_MESSAGE(engine.ok(), engine.status().to_string());
  (*engine)->sessions().record("s", "m-premium", prompt(0, 0, 80'000), CacheFill::kExplicit);
  (*engine)->sessions().record("s", "m-cheap", prompt(1'000, 0), CacheFill::kAutomatic);
  Step step;
  step.input_tokens = 100'000;
  step.expected_output_tokens = 1'000;
  step.session_id = "s";

  step.role = "premium";  // the rules read the chosen model's figure: the estimate takes it
  lookups = 0;
  auto d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  CHECK(d->reason == "80000 80000");
  CHECK(d->estimated_cost == 495'000);  // 20k at $15 + 80k at $1.50 + 1k at $75
  CHECK(lookups == 1);

  step.role = "cheap";  // another model's: the estimate asks the book for the chosen one
  lookups = 0;
  d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  CHECK(d->estimated_cost == 99'000 + 100 + 5'000);  // 99k at $1 + 1k at $0.10 + 1k at $5
  CHECK(lookups == 2);

  // A call that reads nothing does not get an earlier call's figure.
  clock.now += 301s;  // m-premium's cache expires
  step.role = "blind";
  d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  CHECK(d->estimated_cost == 1'575'000);  // cold: 100k at $15 + 1k at $75
}

TEST_CASE("the dispatcher records each answered call in the book: the model that answered, a fallback's too") {
  TempDir dir;
  auto engine = engine_with_rules(dir, R"lua(
function classify(step, ctx) return "premium" end
)lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().to_string());
  ModelClients clients;
  clients.set("m-premium", std::make_shared<FixedClient>(Status::unavailable("down")));
  clients.set("m-cheap", std::make_shared<FixedClient>(Status(), prompt(200, 1800)));
  DispatcherOptions options;
  options.sleep = [](std::chrono::milliseconds) {};
  Dispatcher dispatcher(**engine, std::move(clients), options);
  StepCall call;
  call.step.role = "chat";
  call.step.input_tokens = 2000;
  call.step.session_id = "s";
  StepResult r = dispatcher.run("w", call);
  REQUIRE(r.status.ok());
  CHECK(r.model == "m-cheap");  // m-premium failed: the tier's fallback answered
  std::optional<SessionView> v = (*engine)->sessions().snapshot("s");
  REQUIRE(v);
  CHECK(v->last_model == "m-cheap");
  CHECK(v->turns == 1);                      // failed attempts are no turns
  CHECK(v->cached_for("m-cheap") == 2000);   // a sim-provider model: automatic, the whole prompt
  CHECK(v->cached_for("m-premium") == 0);

  call.step.session_id.clear();  // no session: the book is not touched
  REQUIRE(dispatcher.run("w", call).status.ok());
  CHECK((*engine)->sessions().size() == 1);
}

}  // TEST_SUITE
