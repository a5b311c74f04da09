// Caps that hold (issue 16): under 64-way concurrency the ledger's spend of
// every budget scope (workload, key, tag) ends at or under its cap, exactly,
// in integer micro-dollars: many small messages, no output cap from the
// caller, a fallback to a dearer model, and across a restart in the middle
// of a period. A provider that bills above its reservation is recorded as an
// overrun, charged, and reported.
//
// The provider here is a host client that bills as the real APIs do, only
// more: per-message and per-request overheads on top of the text, the whole
// output cap every time, and a long answer (4,000 tokens) when no cap is sent.
#include <doctest/doctest.h>

#include <atomic>
#include <latch>
#include <map>
#include <optional>
#include <mutex>
#include <thread>

#include "switchboard/derive_step.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

// Bills every call the most a real provider would, or more (see the file comment).
class BillingClient final : public ModelClient {
 public:
  struct Policy {
    std::int64_t per_request = 3;         // OpenAI primes each reply with 3 tokens
    std::int64_t per_message = 4;         // and adds about 4 per message
    std::int64_t uncapped_output = 4'000;  // what it writes when no cap is sent
    std::int64_t above_cap = 0;           // output billed past the cap (a provider's bug)
    bool fail = false;                    // every call fails (unavailable): the tier falls back
  };
  explicit BillingClient(Policy policy) : policy_(policy) {}

  std::string provider() const override { return "billing"; }
  Result<ModelResponse> invoke(const ModelRequest& request) override {
    calls_.fetch_add(1);
    if (policy_.fail) return Status::unavailable("billing: down for the test");
    ModelResponse r;
    r.content.push_back(ContentBlock::of_text("ok"));
    r.usage.input_tokens = estimate_input_tokens(request) + policy_.per_request +
                           policy_.per_message * static_cast<std::int64_t>(request.messages.size());
    r.usage.output_tokens =
        request.max_output_tokens ? *request.max_output_tokens + policy_.above_cap : policy_.uncapped_output;
    return r;
  }
  int calls() const { return calls_.load(); }

 private:
  Policy policy_;
  std::atomic<int> calls_{0};
};

constexpr const char* kTeamSearch = "tag:team=search";
constexpr const char* kKey = "key:k";

// small_config() with workload w capped at `workload_usd` a day, the tag
// team=search at `tag_usd` a day, and a tier "up": m-cheap, then m-premium.
std::string caps_config(const std::string& workload_usd, const std::string& tag_usd) {
  return switchboard::testing::small_config("budget_usd = " + workload_usd + "\nbudget_period = \"day\"\n" +
                                            R"toml(
[tiers.up]
models = ["m-cheap", "m-premium"]

[budgets.team.search]
usd = )toml" + tag_usd + R"toml(
period = "day"
)toml");
}

// An engine on caps_config() with `rules`, a SQLite ledger, and a
// dispatcher whose models are served by the given clients.
struct CapsRig {
  TempDir dir;
  std::string config_text;
  std::string ledger_path;
  std::unique_ptr<Engine> engine;
  std::shared_ptr<LedgerSink> sink;
  std::unique_ptr<Dispatcher> dispatcher;

  CapsRig(const std::string& rules, std::string config) : config_text(std::move(config)) {
    dir.write("rules/w.lua", rules);
    ledger_path = (dir.path() / "ledger.db").string();
  }

  // Opens (or, for a restart, reopens) the engine and loads the ledger's spend.
  void open(std::map<std::string, std::shared_ptr<ModelClient>> clients_by_model, MicroUsd key_cap) {
    dispatcher.reset();
    engine.reset();
    sink.reset();
    auto e = Engine::open_file(switchboard::testing::write_config(dir, config_text));
    REQUIRE_MESSAGE(e.ok(), e.status().to_string());
    engine = std::move(e).value();
    engine->budgets().set_limit(BudgetLimit{kKey, key_cap, BudgetPeriod::kDay});
    auto s = open_sqlite_ledger(SqliteLedgerOptions{.path = ledger_path});
    REQUIRE_MESSAGE(s.ok(), s.status().to_string());
    sink = std::move(s).value();
    auto loaded = load_budget_spend(*engine, ledger_path);
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().to_string());
    auto clients = ModelClients::from_config(engine->config());
    REQUIRE(clients.ok());
    for (auto& [model, client] : clients_by_model) clients->set(model, client);
    DispatcherOptions o;
    o.ledger = std::make_shared<Ledger>(std::vector<std::shared_ptr<LedgerSink>>{sink});
    o.sleep = [](std::chrono::milliseconds) {};
    o.seed = 7;
    dispatcher = std::make_unique<Dispatcher>(*engine, std::move(clients).value(), std::move(o));
  }

  // `rounds` rounds of 64 concurrent one-character messages, each charged to
  // the workload, the key and the tag.
  struct Outcome {
    int ok = 0;
    int over_budget = 0;
    int lowered = 0;
    int other = 0;
  };
  Outcome hammer(int rounds, std::optional<std::int64_t> max_tokens) {
    Outcome out;
    std::mutex mu;
    for (int round = 0; round < rounds; ++round) {
      std::latch start(64);
      std::vector<std::thread> threads;
      for (int t = 0; t < 64; ++t) {
        threads.emplace_back([&, t] {
          StepCall call;
          call.step.role = "chat";
          call.request.messages.push_back(Message::of_text("user", std::string(1, static_cast<char>('a' + t % 26))));
          call.request.max_output_tokens = max_tokens;
          call.budget_scopes = {kKey, kTeamSearch};
          start.arrive_and_wait();
          const StepResult r = dispatcher->run("w", call);
          std::lock_guard<std::mutex> lock(mu);
          if (r.status.ok()) {
            ++out.ok;
            if (r.output_cap_lowered) ++out.lowered;
          } else if (r.status.code() == Status::Code::kOverBudget) {
            ++out.over_budget;
          } else {
            ++out.other;
          }
        });
      }
      for (std::thread& th : threads) th.join();
    }
    REQUIRE(sink->flush().ok());
    return out;
  }

  // The ledger's spend per scope (each record in the scopes it names).
  std::map<std::string, MicroUsd> ledger_spend() const {
    auto records = read_sqlite_ledger(ledger_path);
    REQUIRE_MESSAGE(records.ok(), records.status().to_string());
    std::map<std::string, MicroUsd> spend;
    for (const CostRecord& r : *records) {
      for (const std::string& scope : r.budget_scopes) spend[scope] += r.cost;
    }
    return spend;
  }

  std::vector<CostRecord> records() const { return *read_sqlite_ledger(ledger_path); }
};

const char* const kPremiumRules = R"lua(function classify(step, ctx) return "premium" end)lua";
const char* const kUpRules = R"lua(function classify(step, ctx) return "up" end)lua";

// Every scope's ledger spend is at or under its cap, and equals the book's.
void check_caps_hold(const CapsRig& rig, MicroUsd workload_cap, MicroUsd key_cap, MicroUsd tag_cap) {
  const auto spend = rig.ledger_spend();
  const std::map<std::string, MicroUsd> caps = {
      {"workload:w", workload_cap}, {kKey, key_cap}, {kTeamSearch, tag_cap}};
  for (const auto& [scope, cap] : caps) {
    const MicroUsd spent = spend.count(scope) ? spend.at(scope) : 0;
    CHECK_MESSAGE(spent <= cap, scope << " spent " << spent << " over its cap " << cap);
    CHECK_MESSAGE(spent == rig.engine->budgets().snapshot(scope).spent, scope);
    CHECK(rig.engine->budgets().snapshot(scope).reserved == 0);
  }
}

}  // namespace

TEST_SUITE("concurrency") {

TEST_CASE("caps hold for many small messages under 64-way concurrency, in every scope") {
  // The issue's case: one-character messages, max_tokens = 20, a $0.05 cap.
  // The tightest scope here is the tag's ($0.03), then the key's ($0.04).
  CapsRig rig(kPremiumRules, caps_config("0.05", "0.03"));
  auto billing = std::make_shared<BillingClient>(BillingClient::Policy{});
  rig.open({{"m-premium", billing}, {"m-cheap", billing}}, 40'000);
  const auto out = rig.hammer(4, 20);
  CHECK(out.other == 0);
  CHECK(out.ok > 0);
  CHECK(out.over_budget > 0);  // the cap was reached: the rest were refused
  check_caps_hold(rig, 50'000, 40'000, 30'000);
  // Every call sent its cap (20, or lowered near the end), and billed within its reservation.
  for (const CostRecord& r : rig.records()) {
    if (r.status != CallStatus::kOk) continue;
    CHECK(r.output_cap > 0);
    CHECK(r.output_cap <= 20);
    CHECK(r.overrun() == 0);
    CHECK(r.budget_scopes == std::vector<std::string>{"workload:w", kKey, kTeamSearch});
  }
}

TEST_CASE("caps hold when the caller sends no output cap: the dispatcher sends one, lowered near the cap") {
  // Without a cap the provider would write 4,000 tokens ($0.30 on m-premium).
  CapsRig rig(kPremiumRules, caps_config("0.5", "1.0"));
  auto billing = std::make_shared<BillingClient>(BillingClient::Policy{});
  rig.open({{"m-premium", billing}, {"m-cheap", billing}}, 1'000'000);
  const auto out = rig.hammer(2, std::nullopt);
  CHECK(out.other == 0);
  CHECK(out.ok > 0);
  CHECK(out.over_budget > 0);
  CHECK(out.lowered > 0);  // the last calls got what was left, not the default 1,000
  check_caps_hold(rig, 500'000, 1'000'000, 1'000'000);
  int lowered = 0;
  for (const CostRecord& r : rig.records()) {
    if (r.status != CallStatus::kOk) continue;
    CHECK(r.output_cap > 0);      // never absent under a cap
    CHECK(r.output_cap <= 1'000);  // m-premium's default_output_tokens
    if (r.output_cap_lowered) {
      ++lowered;
      CHECK(r.output_cap < 1'000);
      CHECK(r.output_cap >= 16);  // [calls] min_answer_tokens
    }
  }
  CHECK(lowered == out.lowered);
}

TEST_CASE("caps hold when every call falls back to a dearer model: each attempt re-reserves at its prices") {
  // Tier "up" is m-cheap ($1/$5), then m-premium ($15/$75); m-cheap is down.
  CapsRig rig(kUpRules, caps_config("0.05", "1.0"));
  auto down = std::make_shared<BillingClient>(BillingClient::Policy{.fail = true});
  auto premium = std::make_shared<BillingClient>(BillingClient::Policy{});
  rig.open({{"m-cheap", down}, {"m-premium", premium}}, 1'000'000);
  const auto out = rig.hammer(4, 20);
  CHECK(out.other == 0);
  CHECK(out.ok > 0);
  CHECK(out.over_budget > 0);
  check_caps_hold(rig, 50'000, 1'000'000, 1'000'000);
  int on_premium = 0;
  for (const CostRecord& r : rig.records()) {
    if (r.status == CallStatus::kOk) {
      CHECK(r.model == "m-premium");
      CHECK(r.reserved >= r.cost);  // reserved at m-premium's prices, not m-cheap's
      CHECK(r.overrun() == 0);
      ++on_premium;
    }
  }
  CHECK(on_premium == out.ok);
}

TEST_CASE("a restart in the middle of a period keeps every scope's spend, and the caps still hold after it") {
  CapsRig rig(kPremiumRules, caps_config("0.05", "0.03"));
  auto billing = std::make_shared<BillingClient>(BillingClient::Policy{});
  rig.open({{"m-premium", billing}, {"m-cheap", billing}}, 40'000);
  // One round of small calls (some refused near the caps).
  const auto before = rig.hammer(1, 5);
  REQUIRE(before.ok > 0);
  std::map<std::string, MicroUsd> spent_before;
  for (const char* scope : {"workload:w", kKey, kTeamSearch}) {
    spent_before[scope] = rig.engine->budgets().snapshot(scope).spent;
    CHECK(spent_before[scope] > 0);
  }

  rig.open({{"m-premium", billing}, {"m-cheap", billing}}, 40'000);  // a new engine, a fresh book
  for (const auto& [scope, spent] : spent_before) {
    CHECK_MESSAGE(rig.engine->budgets().snapshot(scope).spent == spent, scope);
  }
  // The decide() ctx of the workload sees it too.
  CHECK(rig.engine->budgets().snapshot("workload:w").left() == 50'000 - spent_before["workload:w"]);

  const auto after = rig.hammer(3, 20);
  CHECK(after.over_budget > 0);
  check_caps_hold(rig, 50'000, 40'000, 30'000);
}

TEST_CASE("a provider billing above its reservation is recorded as an overrun, charged, and reported") {
  CapsRig rig(kPremiumRules, caps_config("1.0", "1.0"));
  auto greedy = std::make_shared<BillingClient>(BillingClient::Policy{.above_cap = 500});
  rig.open({{"m-premium", greedy}, {"m-cheap", greedy}}, 1'000'000);
  StepCall call;
  call.step.role = "chat";
  call.request.messages.push_back(Message::of_text("user", "x"));
  call.request.max_output_tokens = 20;
  call.budget_scopes = {kKey};
  const StepResult r = rig.dispatcher->run("w", call);
  REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
  REQUIRE(rig.sink->flush().ok());
  const auto records = rig.records();
  REQUIRE(records.size() == 1);
  const CostRecord& rec = records[0];
  // Reserved: (1 + 64 + 16 tokens) × $15 + 20 × $75 per Mtok = $0.002715; billed
  // (1 + 3 + 4) × $15 + 520 × $75 per Mtok = $0.03912.
  CHECK(rec.reserved == 2'715);
  CHECK(rec.cost == 39'120);
  CHECK(rec.overrun() == 39'120 - 2'715);
  // Charged in full: the next admissions see less left.
  CHECK(rig.engine->budgets().snapshot("workload:w").spent == 39'120);
  CHECK(rig.engine->budgets().snapshot(kKey).spent == 39'120);

#ifdef SWITCHBOARD_CLI
  std::string out;
  const int rc = switchboard::testing::run_command(std::string(SWITCHBOARD_CLI) + " report '" + rig.ledger_path +
                                                       "' --config '" + (rig.dir.path() / "switchboard.toml").string() +
                                                       "'",
                                                   out);
  CHECK_MESSAGE(rc == 0, out);
  CHECK_MESSAGE(out.find("overruns: 1 calls billed $0.036405 above their budget reservations") != std::string::npos,
                out);
  CHECK(out.find("reserved $0.002715, billed $0.039120 (+$0.036405)") != std::string::npos);
  const int rc_json = switchboard::testing::run_command(
      std::string(SWITCHBOARD_CLI) + " report '" + rig.ledger_path + "' --json --config '" +
          (rig.dir.path() / "switchboard.toml").string() + "'",
      out);
  CHECK_MESSAGE(rc_json == 0, out);
  CHECK(out.find("\"overrun_micro_usd\":36405") != std::string::npos);
#endif
}

}  // TEST_SUITE

TEST_CASE("tag budgets are read from [budgets.NAME.VALUE] with their positions and set in the engine's book") {
  TempDir dir;
  dir.write("rules/w.lua", kPremiumRules);
  auto engine = Engine::open_file(switchboard::testing::write_config(dir, caps_config("1.0", "20")));
  REQUIRE_MESSAGE(engine.ok(), engine.status().to_string());
  const Config& config = (*engine)->config();
  REQUIRE(config.budgets.size() == 1);
  const TagBudget* b = config.find_tag_budget("team", "search");
  REQUIRE(b != nullptr);
  CHECK(b->cap == 20'000'000);
  CHECK(b->period == BudgetPeriod::kDay);
  CHECK(config.find_tag_budget("team", "ads") == nullptr);
  const auto snap = (*engine)->budgets().snapshot(kTeamSearch);
  CHECK(snap.limited);
  CHECK(snap.cap == 20'000'000);
  CHECK(tag_budget_scope("team", "search") == kTeamSearch);

  struct Bad {
    std::string toml;
    std::string error;
  };
  const std::vector<Bad> cases = {
      {"[budgets.team.search]\nperiod = \"day\"\n", ":1:1: [budgets.team.search]: needs usd (the cap per period)"},
      {"[budgets.team.search]\nusd = -1\n", ":2:7: [budgets.team.search]: usd must be a non-negative number"},
      {"[budgets.team.search]\nusd = 1\nperiod = \"week\"\n",
       ":3:10: [budgets.team.search]: period must be \"day\" or \"month\""},
      {"[budgets.team.search]\nusd = 1\ncap = 2\n", "[budgets.team.search]"},
      {"[budgets.Team.search]\nusd = 1\n", "a tag name is lower-case letters, digits, '-' and '_'"},
  };
  for (const Bad& c : cases) {
    // The budgets come first in the file, so the positions are the case's own.
    const std::string path = dir.write("bad.toml", c.toml + switchboard::testing::small_config());
    auto loaded = load_config(path);
    REQUIRE_FALSE_MESSAGE(loaded.ok(), c.toml);
    CHECK_MESSAGE(loaded.status().message().find(path) == 0, loaded.status().message());
    CHECK_MESSAGE(loaded.status().message().find(c.error) != std::string::npos, loaded.status().message());
  }
  const std::string path = dir.write("min.toml", switchboard::testing::small_config("[calls]\nmin_answer_tokens = 0\n"));
  auto zero = load_config(path);
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.status().message().find("min_answer_tokens") != std::string::npos);
}
