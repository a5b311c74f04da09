// Rate limits on the call path (issue 19): requests and tokens per minute of
// a key, a workload and a model, read from the config; a step counted once
// per scope, refused with a ledger record and a Retry-After, a model without
// room passed by like an unhealthy one, and the headroom shown to the rules.
// (The limiter itself: tests/state/rate_limit_test.cpp; three gateways on
// one Redis: tests/gateway/replicas_test.cpp.)
#include <doctest/doctest.h>

#include <mutex>

#include "test_util.h"

using namespace switchboard;
using namespace switchboard::testing;

namespace {

// The rules say what they saw of the headroom in the decision's reason, and
// pick premium (m-premium, then m-cheap) unless the step's role is "format".
const char* kRules = R"lua(
function classify(step, ctx)
  local seen = tostring(ctx.rate_requests_left) .. "/" .. tostring(ctx.rate_tokens_left) .. "/" ..
               tostring(math.type(ctx.rate_requests_left))
  if step.role == "format" then return { tier = "cheap", reason = seen } end
  return { tier = "premium", reason = seen }
end
)lua";

// small_config() with `model_lines` added to [models.m-premium] and `extra` after [workloads.w].
std::string config_with(const std::string& model_lines, const std::string& extra) {
  std::string text = small_config(extra);
  const std::string at = "[models.m-premium]\n";
  text.insert(text.find(at) + at.size(), model_lines);
  return text;
}

// An engine and a dispatcher on sim models, the ledger's records collected.
struct Rig {
  TempDir dir;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Dispatcher> dispatcher;
  std::mutex mu;
  std::vector<CostRecord> records;

  explicit Rig(const std::string& workload_lines, const std::string& model_lines = "") {
    dir.write("rules/w.lua", kRules);
    auto e = Engine::open_file(write_config(dir, config_with(model_lines, workload_lines)));
    REQUIRE_MESSAGE(e.ok(), e.status().to_string());
    engine = std::move(e).value();
    auto clients = ModelClients::from_config(engine->config());
    REQUIRE(clients.ok());
    DispatcherOptions o;
    o.ledger = std::make_shared<Ledger>(std::vector<std::shared_ptr<LedgerSink>>{
        callback_ledger([this](const CostRecord& r) {
          std::lock_guard<std::mutex> lock(mu);
          records.push_back(r);
        })});
    o.seed = 7;
    dispatcher = std::make_unique<Dispatcher>(*engine, std::move(clients).value(), std::move(o));
  }

  StepCall call(const std::string& role = "plan", std::vector<std::string> scopes = {}) const {
    StepCall c;
    c.step.role = role;
    c.step.input_tokens = 1000;
    c.request.max_output_tokens = 200;  // 1,200 tokens counted per step
    c.budget_scopes = std::move(scopes);
    return c;
  }
  StepResult run(const std::string& role = "plan", std::vector<std::string> scopes = {}) {
    return dispatcher->run("w", call(role, std::move(scopes)));
  }
  std::vector<CostRecord> with_status(CallStatus s) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<CostRecord> out;
    for (const CostRecord& r : records) {
      if (r.status == s) out.push_back(r);
    }
    return out;
  }
};

}  // namespace

TEST_SUITE("rate_limits") {

TEST_CASE("requests_per_minute and tokens_per_minute are read for keys, workloads and models") {
  TempDir dir;
  dir.write("rules/w.lua", kRules);
  auto config = load_config(write_config(dir, config_with("requests_per_minute = 30\n", R"toml(tokens_per_minute = 90000

[gateway.keys.k]
key_env = "SWITCHBOARD_TEST_RATE_KEY"
workload = "w"
requests_per_minute = 120
tokens_per_minute = 5000
)toml")));
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  CHECK(config->find_model("m-premium")->rate.requests_per_minute == 30);
  CHECK(config->find_model("m-premium")->rate.tokens_per_minute == 0);
  CHECK_FALSE(config->find_model("m-cheap")->rate.limited());
  CHECK(config->find_workload("w")->rate.requests_per_minute == 0);
  CHECK(config->find_workload("w")->rate.tokens_per_minute == 90000);
  REQUIRE(config->gateway.keys.size() == 1);
  CHECK(config->gateway.keys[0].rate.requests_per_minute == 120);
  CHECK(config->gateway.keys[0].rate.tokens_per_minute == 5000);
}

TEST_CASE("a workload's requests per minute admit that many steps, then refuse with a record and a wait") {
  Rig rig("requests_per_minute = 2\n");
  CHECK(rig.run().status.ok());
  CHECK(rig.run().status.ok());
  const StepResult refused = rig.run();
  REQUIRE(refused.status.code() == Status::Code::kRateLimited);
  REQUIRE(refused.status.retry_after().has_value());
  CHECK(refused.status.retry_after()->count() > 0);
  CHECK(refused.status.retry_after()->count() <= 60'000);
  CHECK(refused.attempts == 0);
  const std::vector<CostRecord> records = rig.with_status(CallStatus::kRefusedByRateLimit);
  REQUIRE(records.size() == 1);
  CHECK(records[0].trace_id == refused.trace_id);
  CHECK(records[0].workload == "w");
  CHECK(records[0].cost == 0);
  CHECK(records[0].model.empty());  // refused before the rules ran
  CHECK(records[0].error.find("workload:w") != std::string::npos);
  CHECK(to_string(CallStatus::kRefusedByRateLimit) == "refused_by_rate_limit");
  CHECK(parse_call_status("refused_by_rate_limit") == CallStatus::kRefusedByRateLimit);
  CHECK(rig.with_status(CallStatus::kOk).size() == 2);
}

TEST_CASE("a key's limit counts the steps that name its scope, and a step too large never fits") {
  Rig rig(R"toml(tokens_per_minute = 1000000

[gateway.keys.k]
key_env = "SWITCHBOARD_TEST_RATE_KEY"
workload = "w"
requests_per_minute = 1

[gateway.keys.k2]
key_env = "SWITCHBOARD_TEST_RATE_KEY2"
workload = "w"
tokens_per_minute = 1500
)toml");
  const std::vector<std::string> key{key_budget_scope("k")};
  CHECK(rig.run("plan", key).status.ok());
  CHECK(rig.run("plan").status.ok());  // not the key's: only the workload's limit counts it
  const StepResult refused = rig.run("plan", key);
  REQUIRE(refused.status.code() == Status::Code::kRateLimited);
  CHECK(refused.status.message().find("key:k") != std::string::npos);

  // 1,000 + 1,200 output tokens: more than k2's 1,500 per minute, ever.
  StepCall big = rig.call("plan", {key_budget_scope("k2")});
  big.request.max_output_tokens = 1200;
  const StepResult never = rig.dispatcher->run("w", big);
  REQUIRE(never.status.code() == Status::Code::kRateLimited);
  CHECK_FALSE(never.status.retry_after().has_value());
  CHECK(never.status.message().find("key:k2") != std::string::npos);
  CHECK(rig.with_status(CallStatus::kRefusedByRateLimit).size() == 2);
}

TEST_CASE("the rules see the headroom left after their step, as integers, and nil without a limit") {
  Rig limited("requests_per_minute = 3\ntokens_per_minute = 100000\n");
  CHECK(limited.run().decision.reason == "2/98800/integer");
  CHECK(limited.run().decision.reason == "1/97600/integer");
  CHECK(limited.run().decision.reason == "0/96400/integer");

  Rig unlimited("");
  CHECK(unlimited.run().decision.reason == "nil/nil/nil");
}

TEST_CASE("a model without room is passed by like an unhealthy one and the tier falls back") {
  Rig rig("", "requests_per_minute = 1\n");  // m-premium: one call a minute
  const StepResult first = rig.run();
  REQUIRE(first.status.ok());
  CHECK(first.model == "m-premium");
  const StepResult second = rig.run();
  REQUIRE(second.status.ok());
  CHECK(second.model == "m-cheap");
  CHECK(second.fallbacks == 1);
  const std::vector<CostRecord> passed = rig.with_status(CallStatus::kFallback);
  REQUIRE(passed.size() == 1);
  CHECK(passed[0].model == "m-premium");
  CHECK(passed[0].error.find("rate limit (model:m-premium)") != std::string::npos);

  // The cheap tier has no other model: there the step ends rate limited.
  Rig alone("", "");
  alone.engine->rate_limits().set_limit({model_rate_scope("m-cheap"), 1, 0});
  CHECK(alone.run("format").status.ok());
  const StepResult refused = alone.run("format");
  CHECK(refused.status.code() == Status::Code::kRateLimited);
  CHECK(refused.status.retry_after().has_value());
  CHECK(alone.with_status(CallStatus::kError).size() == 1);
}

TEST_CASE("execute() counts a step the host did not count, and not one it did") {
  Rig rig("requests_per_minute = 1\n");
  Result<Decision> d = rig.engine->decide("w", rig.call().step);
  REQUIRE(d.ok());
  CHECK(rig.dispatcher->execute(*d, rig.call()).status.ok());
  const StepResult refused = rig.dispatcher->execute(*d, rig.call());
  REQUIRE(refused.status.code() == Status::Code::kRateLimited);
  const std::vector<CostRecord> records = rig.with_status(CallStatus::kRefusedByRateLimit);
  REQUIRE(records.size() == 1);
  CHECK(records[0].model == d->model);  // decided before it was counted: the record names the choice
  StepCall counted = rig.call();
  counted.rate_counted = true;
  CHECK(rig.dispatcher->execute(*d, counted).status.ok());
}

}  // TEST_SUITE("rate_limits")
