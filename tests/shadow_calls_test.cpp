// Judged shadow calls (dispatch.h, "Judged shadow calls"): the sampler's
// rate, the client's answer never waiting for a shadow call, the shadow
// budget as a hard cap, judge failures recorded as errors, both orders
// cancelling a judge's position bias, the bounded queue's drops, the
// verdict's ledger record, and the config's errors.
#include <doctest/doctest.h>

#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>

#include "eval/pairwise.h"
#include "test_util.h"

using namespace switchboard;
using namespace switchboard::testing;
using namespace std::chrono_literals;

namespace {

// Answers every call with `answer(request)`.
class FnClient final : public ModelClient {
 public:
  using Answer = std::function<Result<std::string>(const ModelRequest&)>;
  explicit FnClient(Answer answer) : answer_(std::move(answer)) {}
  std::string provider() const override { return "scripted"; }
  Result<ModelResponse> invoke(const ModelRequest& request) override { return stream(request, nullptr); }
  Result<ModelResponse> stream(const ModelRequest& request, const ChunkHandler&) override {
    Result<std::string> text = answer_(request);
    if (!text.ok()) return text.status();
    ModelResponse r;
    r.content.push_back(ContentBlock::of_text(*text));
    r.usage.input_tokens = 400;
    r.usage.output_tokens = 40;
    return r;
  }

 private:
  Answer answer_;
};

// Holds every call until release(): the shadow call under way while the test looks.
class GatedClient final : public ModelClient {
 public:
  std::string provider() const override { return "gated"; }
  Result<ModelResponse> invoke(const ModelRequest& request) override { return stream(request, nullptr); }
  Result<ModelResponse> stream(const ModelRequest&, const ChunkHandler&) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    ModelResponse r;
    r.content.push_back(ContentBlock::of_text("[gated m-premium] the target's answer"));
    r.usage.input_tokens = 100;
    r.usage.output_tokens = 50;
    return r;
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait_entered(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return entered_ >= n; });
  }
  int entered() {
    std::lock_guard<std::mutex> lock(mu_);
    return entered_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int entered_ = 0;
};

// The verdict a judge gives: "A" when answer A mentions `better`, "B" when B does.
Result<std::string> prefer(const ModelRequest& request, const std::string& better) {
  const std::string prompt = request.messages.back().text();
  const size_t b = prompt.find("### Answer B");
  const size_t at = prompt.find(better, prompt.find("### Answer A"));
  if (at == std::string::npos) return std::string(R"({"winner": "tie", "reason": "neither"})");
  return std::string(at < b ? R"({"winner": "A", "reason": "A is )" : R"({"winner": "B", "reason": "B is )") +
         better + "\"}";
}

constexpr const char* kCheap = R"lua(function classify(step, ctx) return "cheap" end)lua";

// small_config() with a judge model m-judge (its own tier) and the workload's
// shadow_calls line `shadow`; rules `rules`; clients overridden by `overrides`.
struct Rig {
  TempDir dir;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Dispatcher> dispatcher;
  std::shared_ptr<GatedClient> gate;  // released before the dispatcher goes
  std::mutex mu;
  std::vector<CostRecord> calls;
  std::vector<DecisionRecord> decisions;

  Rig(const std::string& shadow, std::map<std::string, std::shared_ptr<ModelClient>> overrides = {},
      std::size_t queue = 4096, const std::string& rules = kCheap) {
    dir.write("rules/w.lua", rules);
    const std::string path = write_config(dir, small_config(shadow + R"toml(

[models.m-judge]
provider = "sim"
context_window = 100000
default_output_tokens = 200

[tiers.judges]
models = ["m-judge"]
)toml"));
    dir.write("prices.toml", small_prices("\n[models.m-judge]\ninput = 1.0\ncached_input = 0.1\noutput = 5.0\n"));
    auto e = Engine::open_file(path);
    REQUIRE_MESSAGE(e.ok(), e.status().to_string());
    engine = std::move(e).value();
    auto clients = ModelClients::from_config(engine->config());
    REQUIRE(clients.ok());
    for (auto& [model, client] : overrides) clients->set(model, client);
    DispatcherOptions o;
    o.ledger = std::make_shared<Ledger>(std::vector<std::shared_ptr<LedgerSink>>{callback_ledger(
        [this](const CostRecord& r) {
          std::lock_guard<std::mutex> lock(mu);
          calls.push_back(r);
        },
        [this](const DecisionRecord& r) {
          std::lock_guard<std::mutex> lock(mu);
          decisions.push_back(r);
        })});
    o.seed = 7;
    o.shadow_call_queue = queue;
    dispatcher = std::make_unique<Dispatcher>(*engine, std::move(clients).value(), std::move(o));
  }
  ~Rig() {
    if (gate) gate->release();
    dispatcher.reset();
  }

  StepResult run(std::int64_t input_tokens = 1000) {
    StepCall call;
    call.step.role = "summarize";
    call.step.input_tokens = input_tokens;
    call.request.messages = {Message::of_text("user", "summarise the quarterly report")};
    return dispatcher->run("w", call);
  }
  std::vector<DecisionRecord> judged() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<DecisionRecord> out;
    for (const DecisionRecord& d : decisions) {
      if (d.kind == DecisionKind::kJudged) out.push_back(d);
    }
    return out;
  }
};

std::string shadow_line(const std::string& sample, const std::string& budget = "5") {
  return "shadow_calls = { sample = " + sample + ", target = \"premium\", judge = \"m-judge\", budget_usd = " +
         budget + " }\n";
}

}  // namespace

TEST_SUITE("shadow calls") {

TEST_CASE("1000 steps at a 10% sample draw a binomial share, and every drawn step gets its verdict") {
  Rig rig(shadow_line("0.1"));
  for (int i = 0; i < 1000; ++i) REQUIRE(rig.run().status.ok());
  REQUIRE(rig.dispatcher->wait_for_shadow_calls(60s));
  const ShadowCallCounts c = rig.dispatcher->shadow_calls();
  CHECK(c.eligible == 1000);
  CHECK(c.on_target == 0);
  // Binomial(1000, 0.1): mean 100, sigma 9.5; three sigmas either side.
  CHECK(c.sampled >= 72);
  CHECK(c.sampled <= 128);
  CHECK(c.dropped == 0);
  CHECK(c.wins + c.ties + c.losses + c.errors + c.skipped == c.sampled);
  const std::vector<DecisionRecord> judged = rig.judged();
  CHECK(judged.size() == c.sampled);
  // The sim judge answers the first value its schema allows, "A", whatever
  // the order: a purely positional judge, and both orders make it a tie.
  CHECK(c.ties == c.sampled);
  for (const DecisionRecord& d : judged) {
    REQUIRE(d.judged.has_value());
    CHECK(d.judged->outcome == JudgedVerdict::Outcome::kTie);
    CHECK(d.judged->target_tier == "premium");
    CHECK(d.judged->target_model == "m-premium");
    CHECK(d.judged->routed_model == "m-cheap");
    CHECK(d.judged->target_cost > 0);
    CHECK(d.judged->judge_cost > 0);
    CHECK(d.decision.workload == "w");
    CHECK(d.admission == AdmissionOutcome::kNotAdmitted);
  }
  // The shadow calls are calls of their own workload, kept out of the live one's.
  MicroUsd shadow_spend = 0;
  int live = 0;
  for (const CostRecord& r : rig.calls) {
    if (r.workload == "shadow:w") {
      shadow_spend += r.cost;
      CHECK(r.budget_scopes == std::vector<std::string>{"workload:shadow:w", "shadow:w"});
    } else {
      CHECK(r.workload == "w");
      ++live;
    }
  }
  CHECK(live == 1000);
  CHECK(shadow_spend == static_cast<MicroUsd>(c.spent));
  // Only live steps have rules decisions: the shadow calls record none.
  for (const DecisionRecord& d : rig.decisions) CHECK(d.decision.workload == "w");
}

TEST_CASE("the client's answer returns while its shadow call is still under way") {
  auto gate = std::make_shared<GatedClient>();
  Rig rig(shadow_line("1"), {{"m-premium", gate}});
  rig.gate = gate;
  const StepResult r = rig.run();
  REQUIRE(r.status.ok());
  CHECK(r.model == "m-cheap");
  // The target has been called and cannot answer until released: the step
  // returned without it, and nothing is judged yet.
  REQUIRE(gate->wait_entered(1));
  const ShadowCallCounts before = rig.dispatcher->shadow_calls();
  CHECK(before.sampled == 1);
  CHECK(before.ties + before.wins + before.losses + before.errors == 0);
  CHECK(rig.judged().empty());
  CHECK_FALSE(rig.dispatcher->wait_for_shadow_calls(50ms));
  gate->release();
  REQUIRE(rig.dispatcher->wait_for_shadow_calls(10s));
  const std::vector<DecisionRecord> judged = rig.judged();
  REQUIRE(judged.size() == 1);
  // Linked to the live step: its trace, its answering call and its cost.
  CHECK(judged[0].trace_id == r.trace_id);
  REQUIRE(r.records.size() == 1);
  CHECK(judged[0].judged->routed_call_id == r.records[0].call_id);
  CHECK(judged[0].judged->routed_cost == r.cost);
  CHECK(judged[0].judged->target_model == "m-premium");
}

TEST_CASE("a full queue drops the sample and counts it") {
  auto gate = std::make_shared<GatedClient>();
  Rig rig(shadow_line("1"), {{"m-premium", gate}}, /*queue=*/2);
  rig.gate = gate;
  REQUIRE(rig.run().status.ok());
  REQUIRE(gate->wait_entered(1));  // the worker holds the first sample
  for (int i = 0; i < 4; ++i) REQUIRE(rig.run().status.ok());
  ShadowCallCounts c = rig.dispatcher->shadow_calls();
  CHECK(c.sampled == 5);
  CHECK(c.dropped == 2);  // two waited in the queue, two found it full
  gate->release();
  REQUIRE(rig.dispatcher->wait_for_shadow_calls(10s));
  c = rig.dispatcher->shadow_calls();
  CHECK(c.ties + c.wins + c.losses + c.errors + c.skipped == 3);
  CHECK(rig.judged().size() == 3);
}

TEST_CASE("the shadow budget is a hard cap: spend stays within it and later samples are skipped with the reason") {
  Rig rig(shadow_line("1", "0.2"));
  for (int i = 0; i < 20; ++i) REQUIRE(rig.run().status.ok());
  REQUIRE(rig.dispatcher->wait_for_shadow_calls(30s));
  const ShadowCallCounts c = rig.dispatcher->shadow_calls();
  CHECK(c.sampled == 20);
  CHECK(c.ties >= 1);
  CHECK(c.skipped >= 1);
  CHECK(c.ties + c.skipped == 20);
  MicroUsd spent = 0;
  for (const CostRecord& r : rig.calls) {
    if (r.workload == "shadow:w") spent += r.cost;
  }
  CHECK(spent > 0);
  CHECK(spent <= 200'000);
  CHECK(spent == static_cast<MicroUsd>(c.spent));
  CHECK(rig.engine->budgets().snapshot(shadow_calls_budget_scope("w")).spent == spent);
  CHECK(rig.engine->budgets().snapshot(shadow_calls_budget_scope("w")).cap == 200'000);
  int skipped = 0;
  for (const DecisionRecord& d : rig.judged()) {
    if (d.judged->outcome != JudgedVerdict::Outcome::kSkipped) continue;
    ++skipped;
    CHECK(d.judged->reason.find("the shadow budget refused") == 0);
  }
  CHECK(skipped == static_cast<int>(c.skipped));
}

TEST_CASE("a judge that fails or answers no verdict is recorded as an error, never a loss") {
  SUBCASE("the judge's call fails") {
    auto judge = std::make_shared<FnClient>(
        [](const ModelRequest&) -> Result<std::string> { return Status::invalid_argument("the judge is down"); });
    Rig rig(shadow_line("1"), {{"m-judge", judge}});
    REQUIRE(rig.run().status.ok());
    REQUIRE(rig.dispatcher->wait_for_shadow_calls(10s));
    const ShadowCallCounts c = rig.dispatcher->shadow_calls();
    CHECK(c.errors == 1);
    CHECK(c.losses == 0);
    const auto judged = rig.judged();
    REQUIRE(judged.size() == 1);
    CHECK(judged[0].judged->outcome == JudgedVerdict::Outcome::kError);
    CHECK(judged[0].judged->reason.find("the judge m-judge failed") == 0);
    CHECK(judged[0].judged->reason.find("the judge is down") != std::string::npos);
  }
  SUBCASE("the judge answers prose") {
    auto judge = std::make_shared<FnClient>(
        [](const ModelRequest&) -> Result<std::string> { return std::string("B is clearly better."); });
    Rig rig(shadow_line("1"), {{"m-judge", judge}});
    REQUIRE(rig.run().status.ok());
    REQUIRE(rig.dispatcher->wait_for_shadow_calls(10s));
    const auto judged = rig.judged();
    REQUIRE(judged.size() == 1);
    CHECK(judged[0].judged->outcome == JudgedVerdict::Outcome::kError);
    CHECK(judged[0].judged->reason.find("the judge gave no verdict") != std::string::npos);
    CHECK(rig.dispatcher->shadow_calls().losses == 0);
  }
}

TEST_CASE("both orders: a judge for an answer gives win or loss, a judge for a position a tie") {
  struct Case {
    const char* what;
    FnClient::Answer judge;
    JudgedVerdict::Outcome want;
  };
  const std::vector<Case> cases = {
      {"prefers the routed answer", [](const ModelRequest& r) { return prefer(r, "m-cheap"); },
       JudgedVerdict::Outcome::kWin},
      {"prefers the target's answer", [](const ModelRequest& r) { return prefer(r, "m-premium"); },
       JudgedVerdict::Outcome::kLoss},
      {"always says A", [](const ModelRequest&) -> Result<std::string> { return std::string(R"({"winner":"A","reason":"first"})"); },
       JudgedVerdict::Outcome::kTie},
      {"always says B", [](const ModelRequest&) -> Result<std::string> { return std::string(R"({"winner":"b","reason":"second"})"); },
       JudgedVerdict::Outcome::kTie},
      {"calls it even", [](const ModelRequest&) -> Result<std::string> { return std::string(R"({"winner":"tie","reason":"same"})"); },
       JudgedVerdict::Outcome::kTie},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    auto judge = std::make_shared<FnClient>(c.judge);
    Rig rig(shadow_line("1"), {{"m-judge", judge}});
    REQUIRE(rig.run().status.ok());
    REQUIRE(rig.dispatcher->wait_for_shadow_calls(10s));
    const auto judged = rig.judged();
    REQUIRE(judged.size() == 1);
    CHECK(judged[0].judged->outcome == c.want);
    CHECK(judged[0].judged->reason.find("routed as A: ") == 0);
    CHECK(judged[0].judged->reason.find("; routed as B: ") != std::string::npos);
  }
}

TEST_CASE("the two orders combine from the routed answer's point of view") {
  using detail::PairwiseWinner;
  using O = JudgedVerdict::Outcome;
  CHECK(detail::combine_pairwise(PairwiseWinner::kA, PairwiseWinner::kB) == O::kWin);
  CHECK(detail::combine_pairwise(PairwiseWinner::kB, PairwiseWinner::kA) == O::kLoss);
  CHECK(detail::combine_pairwise(PairwiseWinner::kTie, PairwiseWinner::kTie) == O::kTie);
  CHECK(detail::combine_pairwise(PairwiseWinner::kA, PairwiseWinner::kA) == O::kTie);  // position, not answer
  CHECK(detail::combine_pairwise(PairwiseWinner::kB, PairwiseWinner::kB) == O::kTie);
  CHECK(detail::combine_pairwise(PairwiseWinner::kA, PairwiseWinner::kTie) == O::kTie);  // disagreeing orders
  CHECK(detail::parse_pairwise_verdict("```json\n{\"winner\": \"B\", \"reason\": \"r\"}\n```")->winner ==
        PairwiseWinner::kB);
  CHECK_FALSE(detail::parse_pairwise_verdict(R"({"winner": "C"})").ok());
  CHECK_FALSE(detail::parse_pairwise_verdict("A").ok());
}

TEST_CASE("steps already served by the target are counted and never shadowed") {
  Rig rig(shadow_line("1"), {}, 4096, R"lua(function classify(step, ctx) return "premium" end)lua");
  for (int i = 0; i < 5; ++i) REQUIRE(rig.run().status.ok());
  REQUIRE(rig.dispatcher->wait_for_shadow_calls(10s));
  const ShadowCallCounts c = rig.dispatcher->shadow_calls();
  CHECK(c.on_target == 5);
  CHECK(c.eligible == 0);
  CHECK(c.sampled == 0);
  CHECK(rig.judged().empty());
}

TEST_CASE("shadow_calls errors name file:line:column") {
  TempDir dir;
  dir.write("rules/w.lua", kCheap);
  dir.write("prices.toml", small_prices());
  struct Broken {
    std::string line;
    std::string error;  // after "bad.toml:"
  };
  // The shadow_calls line is the config's line 26.
  const std::vector<Broken> cases = {
      {R"(shadow_calls = { sample = 0.1, target = "premium", judge = "m-premium", budget_usd = 5, smaple = 1 })",
       "26:89: workload 'w' shadow_calls: unknown key 'smaple' (expected one of: sample, target, judge, budget_usd, "
       "period)"},
      {R"(shadow_calls = { sample = 1.5, target = "premium", judge = "m-premium", budget_usd = 5 })",
       "26:27: workload 'w' shadow_calls: sample must be a number in (0, 1]"},
      {R"(shadow_calls = { sample = 0.1, target = "platinum", judge = "m-premium", budget_usd = 5 })",
       "26:41: workload 'w' shadow_calls: target 'platinum' is not a chat model or tier of the config"},
      {R"(shadow_calls = { sample = 0.1, target = "premium", judge = "cheap", budget_usd = 5 })",
       "26:60: workload 'w' shadow_calls: judge 'cheap' is not a chat model of the config"},
      {R"(shadow_calls = { sample = 0.1, target = "premium", judge = "m-premium" })",
       "26:16: workload 'w' shadow_calls: needs budget_usd (the shadow calls' cap per period)"},
      {R"(shadow_calls = { sample = 0.1, target = "premium", judge = "m-premium", budget_usd = 5, period = "week" })",
       "26:98: workload 'w' shadow_calls: period must be \"day\" or \"month\""},
      {R"(shadow_calls = 0.1)", "26:16: workload 'w' shadow_calls must be a table"},
  };
  for (const Broken& b : cases) {
    CAPTURE(b.line);
    auto config = parse_config(small_config(b.line + "\n"), "bad.toml", dir.path().string());
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().message() == "bad.toml:" + b.error);
  }
  auto good = parse_config(small_config(R"(shadow_calls = { sample = 0.02, target = "m-premium", judge = "m-premium", budget_usd = 5, period = "month" })"
                                        "\n"),
                           "good.toml", dir.path().string());
  REQUIRE_MESSAGE(good.ok(), good.status().message());
  const Workload* w = good->find_workload("w");
  REQUIRE(w->shadow_calls.has_value());
  CHECK(w->shadow_calls->sample == doctest::Approx(0.02));
  CHECK(w->shadow_calls->target == "m-premium");
  CHECK(w->shadow_calls->budget == 5'000'000);
  CHECK(w->shadow_calls->period == BudgetPeriod::kMonth);
}

}  // TEST_SUITE
