// run_eval (eval.h): every case on every target through the Dispatcher, so
// an eval call is a model call like any other (retries, fallbacks, budget
// reservations, ledger records), graded, and summed per target.
//
// The budget cap: a case the budget refuses while other cases hold
// reservations tries again when one of them finishes (what it did not spend
// is free again); refused with none in flight, it is skipped. So the cap is
// never passed, and the cases skipped are those the money left cannot hold.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "switchboard/derive_step.h"
#include "switchboard/dispatch.h"
#include "switchboard/engine.h"
#include "switchboard/eval.h"

namespace switchboard {

namespace {

constexpr const char* kEvalWorkload = "eval";

struct Target {
  std::string name;       // as given
  std::string kind;       // "model" | "tier" | "rules"
  std::string workload;   // rules: "eval:PATH"; else kEvalWorkload
  std::string tier;       // tier: its name; model: its tier
  std::string model;      // tier: its first model; model: its name
};

Result<std::vector<Target>> resolve_targets(Config& config, const EvalOptions& options, std::string& premium) {
  std::vector<Target> out;
  bool any_rules = false;
  for (const std::string& name : options.targets) {
    for (const Target& t : out) {
      if (t.name == name) return Status::invalid_argument("the target '" + name + "' is given twice");
    }
    Target t;
    t.name = name;
    t.workload = kEvalWorkload;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".lua") == 0) {
      std::error_code ec;
      if (!std::filesystem::is_regular_file(name, ec)) {
        return Status::not_found("the rules target '" + name + "' is not a file");
      }
      t.kind = "rules";
      t.workload = "eval:" + name;
      Workload w;
      w.name = t.workload;
      w.rules_path = name;
      w.rules_file = std::filesystem::absolute(name).lexically_normal().string();
      w.fallback_tier = config.default_fallback_tier.empty() ? config.premium_tier : config.default_fallback_tier;
      w.source = name;
      config.workloads[w.name] = std::move(w);
      any_rules = true;
    } else if (const Tier* tier = config.find_tier(name)) {
      t.kind = "tier";
      t.tier = tier->name;
      t.model = tier->models.front();
    } else if (const ModelSpec* model = config.find_model(name)) {
      if (model->kind == ModelKind::kEmbedding) {
        return Status::invalid_argument("the target '" + name + "' is an embedding model: it cannot answer a case");
      }
      const Tier* of = config.tier_of(name);
      t.kind = "model";
      t.tier = of != nullptr ? of->name : "";
      t.model = name;
    } else {
      return Status::not_found("unknown target '" + name + "': not a model or tier of " +
                               (config.path.empty() ? std::string("the config") : config.path) +
                               ", nor a rules file (*.lua)");
    }
    if (t.kind == "tier" && t.name == config.premium_tier) premium = t.name;
    out.push_back(std::move(t));
  }
  if (any_rules && premium.empty()) {
    const Tier* tier = config.find_tier(config.premium_tier);
    if (tier == nullptr) {
      return Status::not_found("a rules target is compared with all-premium, and the config has no premium tier '" +
                               config.premium_tier + "'");
    }
    Target t;
    t.name = tier->name;
    t.kind = "tier";
    t.workload = kEvalWorkload;
    t.tier = tier->name;
    t.model = tier->models.front();
    premium = t.name;
    out.push_back(std::move(t));
  }
  return out;
}

// The decision that sends a step to a model or tier target as is.
Decision fixed_decision(const Config& config, const std::string& workload, const std::string& tier,
                        const std::string& model, const Step& step, const std::string& reason) {
  const ModelSpec& spec = *config.find_model(model);
  Decision d;
  d.workload = workload;
  d.tier = tier;
  d.model = model;
  d.reason = reason;
  d.estimated_input_tokens = step.input_tokens.value_or(0);
  d.estimated_output_tokens = step.expected_output_tokens.value_or(spec.default_output_tokens);
  d.estimated_cost = estimate_call_cost(spec, d.estimated_input_tokens, d.estimated_output_tokens);
  return d;
}

std::string random_hex(int bytes) {
  std::random_device rd;
  std::string out;
  const char* digits = "0123456789abcdef";
  for (int i = 0; i < bytes; ++i) {
    const unsigned v = rd() & 0xffu;
    out += digits[v >> 4];
    out += digits[v & 0xfu];
  }
  return out;
}

std::chrono::milliseconds nearest_rank(std::vector<std::chrono::milliseconds> v, int percent) {
  if (v.empty()) return std::chrono::milliseconds(0);
  std::sort(v.begin(), v.end());
  const size_t rank = (v.size() * static_cast<size_t>(percent) + 99) / 100;
  return v[std::max<size_t>(rank, 1) - 1];
}

}  // namespace

std::string_view to_string(EvalResult::Outcome o) {
  switch (o) {
    case EvalResult::Outcome::kPass: return "pass";
    case EvalResult::Outcome::kFail: return "fail";
    case EvalResult::Outcome::kError: return "error";
    case EvalResult::Outcome::kSkipped: return "skipped";
  }
  return "error";
}

double EvalTargetSummary::pass_rate() const {
  const std::int64_t graded = passed + failed;
  return graded == 0 ? 0.0 : static_cast<double>(passed) / static_cast<double>(graded);
}

Result<EvalReport> run_eval(Config config, const std::vector<EvalCase>& cases, const EvalOptions& options) {
  if (options.targets.empty()) return Status::invalid_argument("no target to evaluate");
  if (options.repeat < 1 || options.repeat > 100) return Status::invalid_argument("repeat must be 1 to 100");
  if (options.parallel < 1 || options.parallel > 256) return Status::invalid_argument("parallel must be 1 to 256");
  if (options.budget && *options.budget < 0) return Status::invalid_argument("the budget must not be negative");
  if (cases.empty()) return Status::invalid_argument("no case to run");
  EvalReport report;
  auto targets = resolve_targets(config, options, report.premium_target);
  if (!targets.ok()) return targets.status();
  for (const EvalCase& c : cases) {
    for (const Grader& g : c.graders) {
      if (g.kind != Grader::Kind::kJudge) continue;
      const ModelSpec* judge = config.find_model(g.judge_model);
      if (judge == nullptr || judge->kind == ModelKind::kEmbedding || config.tier_of(g.judge_model) == nullptr) {
        return Status::not_found(c.source + ": the judge '" + g.judge_model + "' is not a chat model of the config");
      }
    }
  }

  auto engine = Engine::open(std::move(config));
  if (!engine.ok()) return engine.status();
  const Config& cfg = (*engine)->config();
  auto clients = ModelClients::from_config(cfg);
  if (!clients.ok()) return clients.status();
  DispatcherOptions dispatcher_options;
  dispatcher_options.ledger = options.ledger;
  Dispatcher dispatcher(**engine, std::move(clients).value(), dispatcher_options);

  // The run's own budget scope: its cap holds every call, judges included.
  std::vector<std::string> scopes;
  if (options.budget) {
    BudgetLimit limit;
    limit.scope = "eval:run-" + random_hex(6);
    limit.cap = *options.budget;
    limit.period = BudgetPeriod::kMonth;
    (*engine)->budgets().set_limit(limit);
    scopes.push_back(limit.scope);
  }

  const size_t per_target = cases.size() * static_cast<size_t>(options.repeat);
  report.results.resize(targets->size() * per_target);
  std::atomic<size_t> next{0};
  // Runs calling (not waiting to try again) and runs finished, for a run
  // the budget refused (run_one).
  std::mutex progress_mu;
  std::condition_variable progress;
  int calling = 0;
  std::uint64_t finished = 0;

  auto judge = [&](const std::string& model, const ModelRequest& request, MicroUsd& cost) -> Result<std::string> {
    StepCall call;
    call.request = request;
    call.step.role = "judge";
    call.step.input_tokens = estimate_input_tokens(request);
    call.step.expected_output_tokens = request.max_output_tokens;
    call.eval = true;
    call.budget_scopes = scopes;
    const Decision d =
        fixed_decision(cfg, kEvalWorkload, cfg.tier_of(model)->name, model, call.step, "eval judge");
    const StepResult r = dispatcher.execute(d, call);
    cost += r.cost;
    if (!r.status.ok()) return r.status;
    return r.response.text();
  };

  auto run_one = [&](size_t index) {
    const Target& t = (*targets)[index / per_target];
    const EvalCase& c = cases[(index % per_target) / static_cast<size_t>(options.repeat)];
    EvalResult& out = report.results[index];
    out.case_id = c.id;
    out.target = t.name;
    out.repetition = static_cast<int>(index % static_cast<size_t>(options.repeat));
    StepCall call;
    call.step = c.step;
    call.request = c.request;
    call.eval = true;
    call.budget_scopes = scopes;
    StepResult r;
    for (;;) {
      const std::uint64_t seen = finished;  // runs finished before this try
      if (t.kind == "rules") {
        r = dispatcher.run(t.workload, call);
      } else {
        r = dispatcher.execute(
            fixed_decision(cfg, t.workload, t.tier, t.model, c.step, "eval target " + t.name), call);
      }
      if (r.status.code() != Status::Code::kOverBudget) break;
      // Refused while other runs are calling (holding reservations): what
      // they do not spend comes back when they settle, so try again after one
      // finishes. Refused while no other run is calling: the budget is spent.
      std::unique_lock<std::mutex> lock(progress_mu);
      --calling;
      progress.notify_all();  // a waiting run may now be the last one
      if (finished == seen && calling == 0) {
        ++calling;
        break;
      }
      progress.wait(lock, [&] { return finished != seen || calling == 0; });
      ++calling;
    }
    out.cost = r.cost;
    out.tier = r.decision.tier;
    out.model = r.model.empty() ? r.decision.model : r.model;
    out.latency = r.latency;
    if (r.status.code() == Status::Code::kOverBudget) {
      out.outcome = EvalResult::Outcome::kSkipped;
      out.error = r.status.message();
      return;
    }
    if (!r.status.ok()) {
      out.outcome = EvalResult::Outcome::kFail;
      out.error = r.status.message();
      return;
    }
    MicroUsd judge_cost = 0;
    const JudgeCall judge_call = [&](const std::string& model, const ModelRequest& request) {
      return judge(model, request, judge_cost);
    };
    bool failed = false;
    bool undecided = false;
    for (const Grader& g : c.graders) {
      out.verdicts.push_back(grade(g, c, r.response, judge_call));
      failed = failed || out.verdicts.back().outcome == GraderVerdict::Outcome::kFail;
      undecided = undecided || out.verdicts.back().outcome == GraderVerdict::Outcome::kError;
    }
    out.cost += judge_cost;
    out.outcome = failed ? EvalResult::Outcome::kFail
                  : undecided ? EvalResult::Outcome::kError
                              : EvalResult::Outcome::kPass;
  };

  auto worker = [&] {
    for (size_t i = next++; i < report.results.size(); i = next++) {
      {
        std::lock_guard<std::mutex> lock(progress_mu);
        ++calling;
      }
      run_one(i);
      {
        std::lock_guard<std::mutex> lock(progress_mu);
        --calling;
        ++finished;
      }
      progress.notify_all();
    }
  };
  std::vector<std::thread> threads;
  const size_t n_threads = std::min<size_t>(static_cast<size_t>(options.parallel), report.results.size());
  for (size_t i = 0; i < n_threads; ++i) threads.emplace_back(worker);
  for (std::thread& th : threads) th.join();

  for (size_t ti = 0; ti < targets->size(); ++ti) {
    const Target& t = (*targets)[ti];
    EvalTargetSummary s;
    s.target = t.name;
    s.kind = t.kind;
    std::vector<std::chrono::milliseconds> latencies;
    std::map<std::string, std::int64_t> tiers;
    for (size_t i = ti * per_target; i < (ti + 1) * per_target; ++i) {
      const EvalResult& r = report.results[i];
      s.cost += r.cost;
      switch (r.outcome) {
        case EvalResult::Outcome::kPass: ++s.passed; break;
        case EvalResult::Outcome::kFail: ++s.failed; break;
        case EvalResult::Outcome::kError: ++s.errors; break;
        case EvalResult::Outcome::kSkipped: ++s.skipped; break;
      }
      if (r.outcome == EvalResult::Outcome::kSkipped) {
        report.budget_exhausted = true;
        continue;
      }
      if (r.error.empty()) {
        latencies.push_back(r.latency);
        ++tiers[r.tier];
      }
    }
    s.pass_interval = wilson_interval(s.passed, s.passed + s.failed);
    s.p50 = nearest_rank(latencies, 50);
    s.p95 = nearest_rank(latencies, 95);
    s.tiers.assign(tiers.begin(), tiers.end());
    report.spent += s.cost;
    report.targets.push_back(std::move(s));
  }
  if (options.ledger) {
    if (Status flushed = options.ledger->flush(); !flushed.ok()) {
      return Status::io_error("the ledger did not flush: " + flushed.message());
    }
  }
  return report;
}

}  // namespace switchboard
