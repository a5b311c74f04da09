// Shadow rules: a workload's candidate rules evaluated beside the active ones
// on live traffic and never acted on. Records through a real Dispatcher (the
// sim provider), hostile and broken candidates, the bounded queue, the drain
// on close, hot reload of the shadow file, and `report --shadow` through the
// real command after `switchboard run`. The threaded case is in the
// "concurrency" suite at the end (CI runs it under ThreadSanitizer).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/sha256.h"
#include "switchboard/dispatch.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// format -> cheap; anything else -> premium with high reasoning.
const char* const kActive = R"lua(
function classify(step, ctx)
  if step.role == "format" then return { tier = "cheap", reason = "mechanical" } end
  return { tier = "premium", reasoning = "high", reason = "thinking" }
end
)lua";

// The candidate: everything cheap; its reason shows the ctx it saw.
const char* const kCandidate = R"lua(
function classify(step, ctx)
  if step.role == "format" then return { tier = "cheap", reason = "still mechanical" } end
  local left = ctx.budget_left_usd and string.format("%.6f", ctx.budget_left_usd) or "none"
  return { tier = "cheap", reason = "candidate: cheap for " .. step.role .. ", left " .. left }
end
)lua";

// Never returns: killed by the sandbox budget (instructions or time).
const char* const kLoopForever = R"lua(
function classify(step, ctx)
  while true do end
end
)lua";

const std::string kShadowLine = "shadow_rules = \"rules/w.next.lua\"\n";

std::string sha(const std::string& text) { return detail::sha256_hex(text); }

// An engine on small_config() whose workload w has `active` as rules and
// `shadow` as shadow rules, writing to a ledger this rig collects.
struct Rig {
  TempDir dir;
  mutable std::mutex mu;
  std::vector<DecisionRecord> decisions;  // guarded by mu
  std::vector<CostRecord> calls;          // guarded by mu
  std::vector<ReloadEvent> events;        // guarded by mu
  std::shared_ptr<Ledger> ledger;
  std::unique_ptr<Engine> engine;

  Rig(const std::string& active, const std::string& shadow, const std::string& extra_config = "",
      EngineOptions options = {}) {
    ledger = std::make_shared<Ledger>(std::vector<std::shared_ptr<LedgerSink>>{callback_ledger(
        [this](const CostRecord& r) {
          std::lock_guard<std::mutex> lock(mu);
          calls.push_back(r);
        },
        [this](const DecisionRecord& r) {
          std::lock_guard<std::mutex> lock(mu);
          decisions.push_back(r);
        })});
    dir.write("rules/w.next.lua", shadow);
    options.shadow_ledger = ledger;
    options.on_reload = [this](const ReloadEvent& e) {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back(e);
    };
    auto opened = testing::engine_with_rules(dir, active, kShadowLine + extra_config, std::move(options));
    REQUIRE_MESSAGE(opened.ok(), opened.status().message());
    engine = std::move(opened).value();
  }

  std::vector<DecisionRecord> of_kind(DecisionKind kind) const {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<DecisionRecord> out;
    for (const DecisionRecord& r : decisions) {
      if (r.kind == kind) out.push_back(r);
    }
    return out;
  }
  std::vector<DecisionRecord> shadows() const { return of_kind(DecisionKind::kShadow); }
  std::vector<ReloadEvent> seen() const {
    std::lock_guard<std::mutex> lock(mu);
    return events;
  }
  WorkloadStatus status() const {
    for (const WorkloadStatus& s : engine->status()) {
      if (s.workload == "w") return s;
    }
    FAIL("no status for workload w");
    return {};
  }
  void edit_shadow(const std::string& text) const { dir.write("rules/w.next.lua", text); }
  void settle() const { REQUIRE(engine->wait_for_shadow(30s)); }
};

Step step_of(const std::string& role, std::int64_t input_tokens) {
  Step s;
  s.role = role;
  s.input_tokens = input_tokens;
  return s;
}

}  // namespace

TEST_SUITE("shadow") {

TEST_CASE("shadow records of an agreement and a disagreement through the dispatcher hold every field") {
  Rig rig(kActive, kCandidate, "budget_usd = 10.0\n");
  auto clients = ModelClients::from_config(rig.engine->config());
  REQUIRE(clients.ok());
  DispatcherOptions options;
  options.ledger = rig.ledger;
  Dispatcher dispatcher(*rig.engine, std::move(clients).value(), options);

  const auto before = std::chrono::system_clock::now() - 1ms;
  StepCall format;
  format.step = step_of("format", 800);
  format.trace_id = "trace-format";  // a caller's own trace id is the shadow record's too
  const StepResult first = dispatcher.run("w", format);
  REQUIRE_MESSAGE(first.status.ok(), first.status.message());
  StepCall plan;
  plan.step.role = "plan";
  plan.step.prompt = std::string(3600, 'p');  // 1200 tokens by the engine's estimate
  plan.step.needs_chain_of_thought = true;
  plan.step.meta = {{"task", std::string("t-7")}};
  const StepResult second = dispatcher.run("w", plan);  // a fresh trace id, made before the decision
  REQUIRE_MESSAGE(second.status.ok(), second.status.message());
  rig.settle();
  const auto after = std::chrono::system_clock::now() + 1ms;

  const std::vector<DecisionRecord> active = rig.of_kind(DecisionKind::kRules);
  const std::vector<DecisionRecord> shadows = rig.shadows();
  REQUIRE(active.size() == 2);
  REQUIRE(shadows.size() == 2);
  const std::string active_version = sha(kActive);
  const std::string shadow_version = sha(kCandidate);
  CHECK(rig.status().shadow_version == shadow_version);

  const DecisionRecord& agree = shadows[0].trace_id == "trace-format" ? shadows[0] : shadows[1];
  const DecisionRecord& differ = shadows[0].trace_id == "trace-format" ? shadows[1] : shadows[0];
  CHECK(agree.trace_id == first.trace_id);
  CHECK(differ.trace_id == second.trace_id);
  CHECK(second.trace_id.size() == 32);
  for (const DecisionRecord* r : {&agree, &differ}) {
    CHECK(r->kind == DecisionKind::kShadow);
    CHECK(r->admission == AdmissionOutcome::kNotAdmitted);
    CHECK(r->time >= before);
    CHECK(r->time <= after);
    CHECK(r->decision.workload == "w");
    CHECK(r->decision.rules_version == shadow_version);
    CHECK_FALSE(r->decision.error.has_value());
    REQUIRE(r->active.has_value());
    CHECK(r->active->rules_version == active_version);
    CHECK_FALSE(r->step.prompt.has_value());  // [ledger] keep_prompts is off
    // The candidate saw what the active rules saw.
    CHECK(r->decision.context_spent == r->active->context_spent);
    CHECK(r->decision.context_budget_left == r->active->context_budget_left);
  }

  // The agreement: both cheap; the reasons may differ.
  CHECK(agree.agrees);
  CHECK(agree.step.role == "format");
  CHECK(agree.step.input_tokens == 800);
  CHECK(agree.decision.tier == "cheap");
  CHECK(agree.decision.model == "m-cheap");
  CHECK(agree.decision.reason == "still mechanical");
  CHECK(agree.active->reason == "mechanical");

  // The disagreement: the step as the rules saw it, both decisions.
  CHECK_FALSE(differ.agrees);
  CHECK(differ.step.role == "plan");
  CHECK(differ.step.input_tokens == 1200);
  CHECK(differ.step.needs_chain_of_thought);
  CHECK(step_to_json(differ.step) == step_to_json(active[1].step));
  CHECK(differ.decision.tier == "cheap");
  CHECK(differ.decision.model == "m-cheap");
  CHECK(differ.decision.reasoning == Reasoning::kDefault);
  CHECK(differ.decision.fanout == 1);
  CHECK(differ.decision.estimated_input_tokens == 1200);
  CHECK(differ.decision.estimated_output_tokens == 500);           // m-cheap's default output
  CHECK(differ.decision.estimated_cost == 1200 * 1 + 500 * 5);     // $1 in, $5 out per Mtok
  CHECK(differ.active->tier == "premium");
  CHECK(differ.active->model == "m-premium");
  CHECK(differ.active->reasoning == Reasoning::kHigh);
  CHECK(differ.active->reason == "thinking");
  // The second step's ctx came after the first was billed: it saw that spend.
  CHECK(differ.active->context_spent == first.cost);
  CHECK(differ.active->context_budget_left == 10'000'000 - first.cost);
  char left[32];
  std::snprintf(left, sizeof left, "%.6f", static_cast<double>(10'000'000 - first.cost) / 1e6);
  CHECK(differ.decision.reason == std::string("candidate: cheap for plan, left ") + left);
  // The active record of the same step says the same as the shadow record's `active`.
  const DecisionRecord& acted = active[1];
  CHECK(acted.trace_id == second.trace_id);
  CHECK(same_choice(acted.decision, *differ.active));
  CHECK(acted.decision.reason == differ.active->reason);

  const ShadowCounts counts = rig.status().shadow;
  CHECK(counts.evaluated == 2);
  CHECK(counts.agreed == 1);
  CHECK(counts.errors == 0);
  CHECK(counts.dropped == 0);

  // What was called followed the active decisions only.
  std::lock_guard<std::mutex> lock(rig.mu);
  REQUIRE(rig.calls.size() == 2);
  CHECK(rig.calls[0].trace_id == "trace-format");
  CHECK(rig.calls[0].model == "m-cheap");
  CHECK(rig.calls[1].trace_id == second.trace_id);
  CHECK(rig.calls[1].model == "m-premium");
  CHECK(second.model == "m-premium");
  CHECK(second.decision.tier == "premium");
}

TEST_CASE("shadow rules see the ctx.session the active rules saw") {
  Rig rig(kActive, R"lua(
function classify(step, ctx)
  local s = ctx.session
  if s == nil then return { tier = "cheap", reason = "no session" } end
  return { tier = "cheap", reason = string.format("%s %s %d %d", s.id, tostring(s.last_model), s.turn,
                                                  s.cached_tokens["m-premium"]) }
end
)lua");
  rig.engine->sessions().record("conv-1", "m-premium", testing::usage_of(0, 0, 4000, 0, 10, 0), CacheFill::kExplicit);
  Step step = step_of("plan", 5000);
  REQUIRE(rig.engine->decide("w", step).ok());
  step.session_id = "conv-1";
  REQUIRE(rig.engine->decide("w", step).ok());
  rig.settle();
  const std::vector<DecisionRecord> shadows = rig.shadows();
  REQUIRE(shadows.size() == 2);
  std::set<std::string> reasons = {shadows[0].decision.reason, shadows[1].decision.reason};
  CHECK(reasons == std::set<std::string>{"no session", "conv-1 m-premium 1 4000"});
}

TEST_CASE("shadow rules never change the decision decide returns") {
  // The same active rules with and without a candidate (a sane one, a
  // failing one, one that loops forever).
  TempDir plain_dir;
  auto plain = testing::engine_with_rules(plain_dir, kActive);
  REQUIRE(plain.ok());
  for (const char* shadow : {kCandidate, kLoopForever, "function classify(step, ctx) error('no') end"}) {
    INFO(std::string(shadow));
    Rig rig(kActive, shadow);
    for (const char* role : {"format", "plan", "review", "summarize"}) {
      for (const std::int64_t tokens : {10, 5000, 90000}) {
        CAPTURE(role);
        CAPTURE(tokens);
        const Step step = step_of(role, tokens);
        auto want = (*plain)->decide("w", step);
        auto got = rig.engine->decide("w", step);
        REQUIRE(want.ok());
        REQUIRE(got.ok());
        CHECK(same_choice(*got, *want));
        CHECK(got->reason == want->reason);
        CHECK(got->rules_version == want->rules_version);
        CHECK(got->error == want->error);
        CHECK(got->estimated_cost == want->estimated_cost);
      }
    }
    rig.settle();
    CHECK(rig.status().shadow.evaluated == 12);
  }
}

TEST_CASE("a shadow file that does not load leaves the active rules serving and is reported with file:line") {
  Rig rig(kActive, "-- candidate\nfunction classify(step, ctx)\n  return {\nend\n");
  const WorkloadStatus s = rig.status();
  CHECK(s.shadow_rules_path == "rules/w.next.lua");
  CHECK(s.shadow_version.empty());
  REQUIRE(s.shadow_error.has_value());
  CHECK(s.shadow_error->starts_with("rules/w.next.lua:4: "));
  CHECK(s.version == sha(kActive));
  CHECK_FALSE(s.last_error.has_value());

  auto d = rig.engine->decide("w", step_of("plan", 100));
  REQUIRE(d.ok());
  CHECK(d->tier == "premium");
  CHECK_FALSE(d->error.has_value());
  rig.settle();
  CHECK(rig.shadows().empty());  // evaluation is off until the file loads
  CHECK(rig.status().shadow.evaluated == 0);

  // A reload with the same broken text says nothing new.
  CHECK(rig.engine->reload().empty());
}

TEST_CASE("a failing shadow rule is recorded as a shadow error with its place and never agrees") {
  struct Case {
    const char* what;
    std::string shadow;
    std::string error;  // a piece of the recorded error
  };
  const std::vector<Case> cases = {
      {"an error in classify", "function classify(step, ctx)\n  error('candidate broke')\nend\n",
       "rules/w.next.lua:2: candidate broke"},
      {"a loop that never ends", kLoopForever, "instruction budget of 1000000 exceeded"},
      {"a memory bomb",
       "function classify(step, ctx)\n  local t = {}\n  for i = 1, 1e9 do t[i] = string.rep('x', 4096) .. i end\nend\n",
       "memory limit of"},
      {"an unknown tier", "function classify(step, ctx) return 'gold' end\n",
       "rules/w.next.lua: classify returned 'gold', which is neither a tier nor a model"},
  };
  for (const Case& c : cases) {
    INFO(std::string(c.what));
    Rig rig(kActive, c.shadow);
    auto d = rig.engine->decide("w", step_of("plan", 100), CallContext{.trace_id = "t-1"});
    REQUIRE(d.ok());
    CHECK(d->tier == "premium");  // the active rules decided, unharmed
    CHECK_FALSE(d->error.has_value());
    rig.settle();
    const std::vector<DecisionRecord> shadows = rig.shadows();
    REQUIRE(shadows.size() == 1);
    const DecisionRecord& r = shadows[0];
    CHECK(r.trace_id == "t-1");
    REQUIRE(r.decision.error.has_value());
    CHECK_MESSAGE(r.decision.error->find(c.error) != std::string::npos, *r.decision.error);
    CHECK(r.decision.tier == "cheap");  // the workload's fallback tier
    CHECK_FALSE(r.agrees);
    const ShadowCounts counts = rig.status().shadow;
    CHECK(counts.evaluated == 1);
    CHECK(counts.errors == 1);
    CHECK(counts.agreed == 0);
  }
  // A failed candidate whose fallback equals the active choice still does not agree.
  Rig rig(kActive, "function classify(step, ctx) error('x') end\n");
  REQUIRE(rig.engine->decide("w", step_of("format", 10)).ok());  // active: cheap; fallback: cheap
  rig.settle();
  REQUIRE(rig.shadows().size() == 1);
  CHECK(same_choice(rig.shadows()[0].decision, *rig.shadows()[0].active));
  CHECK_FALSE(rig.shadows()[0].agrees);
}

TEST_CASE("decide never waits for a slow shadow rule: a full queue drops and counts") {
  // Each shadow evaluation runs until the 200 ms time limit kills it; at most
  // one runs and 4 wait, so of 20 decisions made at once at least 15 drop.
  Rig rig("function classify(step, ctx) return 'cheap' end\n", kLoopForever,
          "\n[sandbox]\ninstructions_per_call = 100_000_000_000\ntime_limit_ms = 200\n[shadow]\nqueue = 4\n");
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < 20; ++i) {
    auto d = rig.engine->decide("w", step_of("plan", 100));
    REQUIRE(d.ok());
    CHECK(d->tier == "cheap");
  }
  const auto took = Clock::now() - start;
  // All 20 decisions took less than one shadow evaluation.
  CHECK(took < 200ms);
  const ShadowCounts at_once = rig.status().shadow;
  CHECK(at_once.dropped >= 15);
  rig.settle();
  const ShadowCounts counts = rig.status().shadow;
  CHECK(counts.evaluated + counts.dropped == 20);
  CHECK(counts.errors == counts.evaluated);
  CHECK(counts.dropped == at_once.dropped);
  const std::vector<DecisionRecord> shadows = rig.shadows();
  CHECK(shadows.size() == counts.evaluated);
  for (const DecisionRecord& r : shadows) {
    REQUIRE(r.decision.error.has_value());
    CHECK(r.decision.error->find("time limit of 200 ms exceeded") != std::string::npos);
  }
}

TEST_CASE("closing the engine records every shadow evaluation still waiting") {
  // Well under a millisecond per evaluation, yet far more than a decision
  // takes: nearly all 300 are still queued when the engine closes.
  Rig rig(kActive, R"lua(
function classify(step, ctx)
  local n = 0
  for i = 1, 20000 do n = n + i % 7 end
  return { tier = "cheap", reason = "counted " .. n }
end
)lua",
          "\n[shadow]\ndrain_timeout_ms = 120_000\n");
  for (int i = 0; i < 300; ++i) REQUIRE(rig.engine->decide("w", step_of("plan", i)).ok());
  CHECK(rig.status().shadow.evaluated < 300);
  rig.engine.reset();
  const std::vector<DecisionRecord> shadows = rig.shadows();
  CHECK(shadows.size() == 300);
  for (const DecisionRecord& r : shadows) CHECK_FALSE(r.decision.error.has_value());
}

TEST_CASE("closing the engine waits no longer than drain_timeout_ms for the shadow queue") {
  // 20 evaluations of 200 ms each would take 4 s; closing stops after 50 ms
  // plus the one under way.
  Rig rig(kActive, kLoopForever,
          "\n[sandbox]\ninstructions_per_call = 100_000_000_000\ntime_limit_ms = 200\n"
          "[shadow]\ndrain_timeout_ms = 50\n");
  for (int i = 0; i < 20; ++i) REQUIRE(rig.engine->decide("w", step_of("plan", i)).ok());
  const Clock::time_point start = Clock::now();
  rig.engine.reset();
  CHECK(Clock::now() - start < 2s);
  CHECK(rig.shadows().size() < 20);
}

TEST_CASE("hot reload picks up shadow file edits and turns a broken one off until it loads") {
  Rig rig(kActive, kCandidate);
  const std::string v1 = sha(kCandidate);
  CHECK(rig.status().shadow_version == v1);

  // An edit goes live: the next evaluation runs on it.
  const std::string v2_text = "function classify(step, ctx) return { tier = 'premium', reasoning = 'high' } end\n";
  rig.edit_shadow(v2_text);
  std::vector<ReloadEvent> events = rig.engine->reload();
  REQUIRE(events.size() == 1);
  CHECK(events[0].shadow);
  CHECK(events[0].kind == ReloadEvent::Kind::kActivated);
  CHECK(events[0].workload == "w");
  CHECK(events[0].rules_path == "rules/w.next.lua");
  CHECK(events[0].version == sha(v2_text));
  CHECK(events[0].previous_version == v1);
  CHECK(rig.status().shadow_version == sha(v2_text));
  CHECK(rig.status().version == sha(kActive));  // the active rules did not move
  REQUIRE(rig.engine->decide("w", step_of("plan", 10)).ok());
  rig.settle();
  REQUIRE(rig.shadows().size() == 1);
  CHECK(rig.shadows()[0].decision.rules_version == sha(v2_text));
  CHECK(rig.shadows()[0].agrees);

  // A broken edit: reported with its place, evaluation off; a valid edit of
  // the active rules in the same reload still goes live.
  rig.edit_shadow("function classify(step, ctx)\n  return 'cheap' +\nend\n");
  const std::string active_v2 = "function classify(step, ctx) return 'cheap' end\n";
  rig.dir.write("rules/w.lua", active_v2);
  events = rig.engine->reload();
  REQUIRE(events.size() == 2);
  CHECK_FALSE(events[0].shadow);
  CHECK(events[0].kind == ReloadEvent::Kind::kActivated);
  CHECK(events[1].shadow);
  CHECK(events[1].kind == ReloadEvent::Kind::kRejected);
  CHECK(events[1].previous_version == sha(v2_text));
  CHECK(events[1].error.starts_with("rules/w.next.lua:3: "));
  WorkloadStatus s = rig.status();
  CHECK(s.version == sha(active_v2));
  CHECK(s.shadow_version.empty());
  REQUIRE(s.shadow_error.has_value());
  CHECK(*s.shadow_error == events[1].error);
  REQUIRE(rig.engine->decide("w", step_of("plan", 10)).ok());
  rig.settle();
  CHECK(rig.shadows().size() == 1);  // nothing evaluated while it does not load
  CHECK(rig.engine->reload().empty());  // the same broken text is not tried again

  // Fixed: on again.
  rig.edit_shadow(kCandidate);
  events = rig.engine->reload();
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == ReloadEvent::Kind::kActivated);
  CHECK(events[0].previous_version.empty());
  s = rig.status();
  CHECK(s.shadow_version == v1);
  CHECK_FALSE(s.shadow_error.has_value());
  REQUIRE(rig.engine->decide("w", step_of("plan", 10)).ok());
  rig.settle();
  REQUIRE(rig.shadows().size() == 2);
  CHECK(rig.shadows()[1].decision.rules_version == v1);
  CHECK(rig.shadows()[1].active->rules_version == sha(active_v2));

  // A shadow file that goes away turns evaluation off too.
  std::filesystem::remove(rig.dir.path() / "rules/w.next.lua");
  events = rig.engine->reload();
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == ReloadEvent::Kind::kRejected);
  CHECK(rig.status().shadow_version.empty());
}

TEST_CASE("the rules watcher reloads an edited shadow file") {
  EngineOptions options;
  options.watch_rules = true;
  options.watch_debounce = 20ms;
  options.watch_poll_interval = 100ms;
  Rig rig(kActive, kCandidate, "", std::move(options));
  const std::string v2_text = "-- v2\n" + std::string(kCandidate);
  rig.edit_shadow(v2_text);
  const Clock::time_point deadline = Clock::now() + 20s;
  while (rig.status().shadow_version != sha(v2_text) && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  CHECK(rig.status().shadow_version == sha(v2_text));
  const std::vector<ReloadEvent> events = rig.seen();
  REQUIRE_FALSE(events.empty());
  CHECK(events.back().shadow);
  CHECK(events.back().version == sha(v2_text));
}

TEST_CASE("shadow records keep prompts only when told and an engine without a shadow ledger still counts") {
  for (const bool keep : {false, true}) {
    CAPTURE(keep);
    Rig rig(kActive, kCandidate, keep ? "\n[ledger]\nkeep_prompts = true\n" : "");
    Step step;
    step.role = "plan";
    step.prompt = "fix the bug";
    REQUIRE(rig.engine->decide("w", step).ok());
    rig.settle();
    REQUIRE(rig.shadows().size() == 1);
    CHECK(rig.shadows()[0].step.prompt.has_value() == keep);
    CHECK(rig.shadows()[0].step.input_tokens == estimate_tokens("fix the bug"));
  }
  TempDir dir;
  dir.write("rules/w.next.lua", kCandidate);
  auto engine = testing::engine_with_rules(dir, kActive, kShadowLine);  // no shadow_ledger
  REQUIRE(engine.ok());
  REQUIRE((*engine)->decide("w", step_of("plan", 10)).ok());
  REQUIRE((*engine)->wait_for_shadow(30s));
  const WorkloadStatus s = (*engine)->status().front();
  CHECK(s.shadow.evaluated == 1);
  CHECK(s.shadow.agreed == 0);
  CHECK((*engine)->memory().states >= 2);  // the shadow rules' states are counted
}

#ifdef SWITCHBOARD_CLI

TEST_CASE("cli: report --shadow after run counts the agreements a direct replay of the trace finds") {
  namespace fs = std::filesystem;
  const fs::path source = SWITCHBOARD_SOURCE_DIR;
  TempDir dir;
  fs::copy_file(source / "prices.toml", dir.path() / "prices.toml");
  fs::create_directories(dir.path() / "rules");
  for (const auto& entry : fs::directory_iterator(source / "rules")) {
    fs::copy_file(entry.path(), dir.path() / "rules" / entry.path().filename());
  }
  const auto read = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  const auto replace = [](std::string text, const std::string& from, const std::string& to) {
    const size_t at = text.find(from);
    REQUIRE_MESSAGE(at != std::string::npos, "not found: " << from);
    return text.replace(at, from.size(), to);
  };
  // The candidate: plan/reason with chain of thought on balanced instead of
  // premium, a review on cheap instead of balanced.
  std::string candidate = read(source / "rules/code_fix.lua");
  candidate = replace(candidate,
                      "return guard_budget({ tier = \"premium\", reasoning = \"high\", reason = role .. \": \" .. why }, ctx)",
                      "return { tier = \"balanced\", reasoning = \"high\", reason = role .. \": \" .. why .. \" (candidate)\" }");
  candidate = replace(candidate, "return { tier = \"balanced\", reason = \"review of a patch\" }",
                      "return { tier = \"cheap\", reason = \"review of a patch (candidate)\" }");
  dir.write("rules/code_fix.next.lua", candidate);
  const std::string config_path =
      dir.write("switchboard.toml", replace(read(source / "switchboard.toml"), "rules = \"rules/code_fix.lua\"\n",
                                            "rules = \"rules/code_fix.lua\"\nshadow_rules = \"rules/code_fix.next.lua\"\n"));
  // The demo trace without its sessions: every step alone, as the trace says it
  // (a session's steps re-send their conversation: run would not send the trace's steps).
  const std::string trace = dir.write(
      "trace.jsonl", std::regex_replace(read(source / "examples/agent-trace.jsonl"),
                                        std::regex(R"(,"session_id":"[^"]*")"), ""));
  const std::string ledger = (dir.path() / "ledger.db").string();
  const std::string cli = "env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY -u GEMINI_API_KEY -u LOCAL_LLM_API_KEY '" +
                          std::string(SWITCHBOARD_CLI) + "'";

  // The direct computation: both rules files on every step of the trace.
  auto config = load_config(config_path);
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  config->workloads.at("code_fix").shadow_rules_path.clear();
  config->workloads.at("code_fix").shadow_rules_file.clear();
  Config candidate_config = *config;
  candidate_config.workloads.at("code_fix").rules_file = (dir.path() / "rules/code_fix.next.lua").string();
  auto active_engine = Engine::open(*config);
  auto candidate_engine = Engine::open(candidate_config);
  REQUIRE(active_engine.ok());
  REQUIRE(candidate_engine.ok());
  std::int64_t steps = 0, agree = 0, premium_to_balanced = 0;
  std::ifstream lines(trace);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    auto step = parse_step_json(line);
    REQUIRE(step.ok());
    auto a = (*active_engine)->decide("code_fix", *step);
    auto c = (*candidate_engine)->decide("code_fix", *step);
    REQUIRE(a.ok());
    REQUIRE(c.ok());
    ++steps;
    if (same_choice(*a, *c)) ++agree;
    if (a->tier == "premium" && c->tier == "balanced") ++premium_to_balanced;
  }
  REQUIRE(steps == 262);
  REQUIRE(agree < steps);
  REQUIRE(premium_to_balanced > 0);

  std::string out;
  REQUIRE(testing::run_command(cli + " run --no-progress --parallel 4 --workload code_fix --config '" + config_path +
                                   "' --ledger '" + ledger + "' '" + trace + "'",
                               out) == 0);
  INFO(out);
  char summary[160];
  std::snprintf(summary, sizeof summary, "shadow rules rules/code_fix.next.lua: 262 evaluated, %lld agree (",
                static_cast<long long>(agree));
  CHECK(out.find(summary) != std::string::npos);
  CHECK(out.find("failed, 0 dropped") != std::string::npos);

  REQUIRE(testing::run_command(cli + " report --shadow --json --config '" + config_path + "' '" + ledger + "'", out) ==
          0);
  const nlohmann::json report = nlohmann::json::parse(out);
  CHECK(report["ledger"] == ledger);
  CHECK(report["since"].is_null());
  CHECK(report["load_errors"].empty());
  CHECK(report["estimate"].get<std::string>().starts_with("estimate: "));
  REQUIRE(report["shadow"].size() == 1);
  const nlohmann::json& g = report["shadow"][0];
  CHECK(g["workload"] == "code_fix");
  CHECK(g["shadow_version"] == sha(candidate));
  CHECK(g["current"] == true);
  CHECK(g["active_versions"] == nlohmann::json::array({sha(read(source / "rules/code_fix.lua"))}));
  CHECK(g["evaluations"] == steps);
  CHECK(g["agreed"] == agree);
  CHECK(g["disagreed"] == steps - agree);
  CHECK(g["errors"] == 0);
  std::int64_t moved = 0, to_balanced = 0;
  for (const auto& m : g["disagreements"]) {
    moved += m["count"].get<std::int64_t>();
    if (m["from"]["tier"] == "premium" && m["to"]["tier"] == "balanced") to_balanced += m["count"].get<std::int64_t>();
  }
  CHECK(moved == steps - agree);
  CHECK(to_balanced == premium_to_balanced);
  MicroUsd billed = 0;
  const auto records = read_sqlite_ledger(ledger);
  REQUIRE(records.ok());
  for (const CostRecord& r : *records) billed += r.cost;
  const nlohmann::json& cost = g["cost"];
  CHECK(cost["steps_priced"] == steps);
  CHECK(cost["steps_unpriced"] == 0);
  CHECK(cost["billed_micro_usd"] == billed);
  CHECK(cost["estimated"] == true);
  CHECK(cost["candidate_micro_usd"].get<MicroUsd>() < billed);  // premium -> balanced, balanced -> cheap
  CHECK(cost["difference_micro_usd"] == cost["candidate_micro_usd"].get<MicroUsd>() - billed);
  REQUIRE_FALSE(g["examples"].empty());
  CHECK(g["examples"].size() <= 5);
  for (const auto& e : g["examples"]) {
    CHECK(e["active"]["reason"].is_string());
    CHECK(e["candidate"]["reason"].get<std::string>().find("(candidate)") != std::string::npos);
    CHECK(e["input_tokens"].get<std::int64_t>() > 0);
  }

  // The table says the same, and that the cost is an estimate.
  REQUIRE(testing::run_command(cli + " report --shadow --config '" + config_path + "' '" + ledger + "'", out) == 0);
  CHECK(out.find("workload code_fix: shadow rules " + sha(candidate).substr(0, 12)) != std::string::npos);
  CHECK(std::regex_search(out, std::regex("evaluations +262\n")));
  CHECK(std::regex_search(out, std::regex("agree +" + std::to_string(agree) + " ")));
  CHECK(out.find("premium/claude-opus-4-1 high") != std::string::npos);
  CHECK(out.find("shadow rules would have cost") != std::string::npos);
  CHECK(out.find("estimate: ") != std::string::npos);

  // A shadow file that does not load now is reported; the records stay.
  dir.write("rules/code_fix.next.lua", "function classify(step, ctx)\n  return\n");
  REQUIRE(testing::run_command(cli + " report --shadow --json --config '" + config_path + "' '" + ledger + "'", out) ==
          0);
  const nlohmann::json broken = nlohmann::json::parse(out);
  REQUIRE(broken["load_errors"].size() == 1);
  CHECK(broken["load_errors"][0]["workload"] == "code_fix");
  CHECK(broken["load_errors"][0]["error"].get<std::string>().starts_with("rules/code_fix.next.lua:"));
  CHECK(broken["shadow"][0]["current"] == false);
  CHECK(broken["shadow"][0]["evaluations"] == steps);

  // --shadow excludes --html.
  CHECK(testing::run_command(cli + " report --shadow --html x.html --config '" + config_path + "' '" + ledger + "'",
                             out) != 0);
}

#endif  // SWITCHBOARD_CLI

}  // TEST_SUITE("shadow")

TEST_SUITE("concurrency") {

TEST_CASE("shadow evaluation under concurrent decisions and shadow reloads records each step once") {
  const std::string version_a = "-- A\n" + std::string(kCandidate);
  const std::string version_b = "-- B\nfunction classify(step, ctx) return { tier = 'premium', reasoning = 'high' } end\n";
  Rig rig(kActive, version_a);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 300;
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::thread reloader([&] {
    for (int i = 0; !stop.load(); ++i) {
      rig.edit_shadow(i % 2 == 0 ? version_b : version_a);
      rig.engine->reload();
      std::this_thread::sleep_for(1ms);
    }
  });
  std::vector<std::thread> deciders;
  for (int t = 0; t < kThreads; ++t) {
    deciders.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        CallContext ctx;
        ctx.trace_id = std::to_string(t) + "-" + std::to_string(i);
        auto d = rig.engine->decide("w", step_of(i % 3 == 0 ? "format" : "plan", i), ctx);
        if (!d.ok() || d->error) failures++;
      }
    });
  }
  for (std::thread& t : deciders) t.join();
  stop = true;
  reloader.join();
  rig.settle();

  CHECK(failures.load() == 0);
  const ShadowCounts counts = rig.status().shadow;
  CHECK(counts.evaluated + counts.dropped == kThreads * kPerThread);
  CHECK(counts.errors == 0);
  const std::vector<DecisionRecord> shadows = rig.shadows();
  CHECK(shadows.size() == counts.evaluated);
  std::set<std::string> traces;
  std::uint64_t agreed = 0;
  for (const DecisionRecord& r : shadows) {
    traces.insert(r.trace_id);
    const bool known = r.decision.rules_version == sha(version_a) || r.decision.rules_version == sha(version_b);
    CHECK(known);
    CHECK(r.agrees == same_choice(r.decision, *r.active));
    if (r.agrees) ++agreed;
  }
  CHECK(traces.size() == shadows.size());  // no step recorded twice
  CHECK(agreed == counts.agreed);
}

}  // TEST_SUITE("concurrency")
