// Replay: recorded steps under other rules or prices (replay.h).
#include "switchboard/replay.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <unordered_map>

#include "switchboard/engine.h"

namespace switchboard {

namespace {

// The calls that answered the step itself: fan-out branches (they name the
// aggregation call as parent) when there are any, else every call; only
// successful ones.
std::vector<const CostRecord*> answering_calls(const RecordedStep& step) {
  bool fanned_out = false;
  for (const CostRecord& c : step.calls) fanned_out = fanned_out || !c.parent_id.empty();
  std::vector<const CostRecord*> out;
  for (const CostRecord& c : step.calls) {
    if (c.status == CallStatus::kOk && (!fanned_out || !c.parent_id.empty())) out.push_back(&c);
  }
  return out;
}

std::int64_t scale(std::int64_t tokens, double factor) {
  return static_cast<std::int64_t>(std::llround(static_cast<double>(tokens) * factor));
}

// A file is a SQLite database when it starts with the format's magic string.
bool is_sqlite_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[16] = {};
  in.read(magic, sizeof magic);
  return in.gcount() == 16 && std::string_view(magic, 16) == std::string_view("SQLite format 3\0", 16);
}

// `config` priced with `catalog`: every model must have an entry.
Status reprice_config(Config& config, std::shared_ptr<const PriceCatalog> catalog) {
  for (auto& [name, model] : config.models) {
    const ModelPrices* p = catalog->find(name);
    if (p == nullptr) {
      return Status::invalid_argument("price catalog " + catalog->version() + " has no price for model '" + name +
                                      "' (" + model.source + ")");
    }
    model.price.input = p->base.input;
    model.price.cached_input = p->base.cached_input;
    model.price.output = p->base.output;
  }
  config.prices = std::move(catalog);
  return Status();
}

// What a recorded step's calls cost under `prices`.
Result<MicroUsd> reprice(const PriceCatalog& prices, const RecordedStep& step) {
  MicroUsd total = 0;
  for (const CostRecord& c : step.calls) {
    if (c.status == CallStatus::kRefusedByBudget) continue;
    auto cost = prices.cost(c.model, c.usage);
    if (!cost.ok()) return cost.status();
    total += *cost;
  }
  return total;
}

}  // namespace

std::vector<RecordedStep> recorded_steps(const std::vector<DecisionRecord>& decisions,
                                         const std::vector<CostRecord>& calls) {
  std::vector<RecordedStep> steps;
  std::unordered_map<std::string, size_t> by_trace;
  for (const DecisionRecord& d : decisions) {
    // Shadow rules' and judged shadow calls' records share the step's trace; they are no step.
    if (d.kind == DecisionKind::kShadow || d.kind == DecisionKind::kJudged || by_trace.count(d.trace_id) != 0) {
      continue;
    }
    by_trace.emplace(d.trace_id, steps.size());
    steps.push_back(RecordedStep{d, {}, 0});
  }
  for (const CostRecord& c : calls) {
    auto it = by_trace.find(c.trace_id);
    if (it == by_trace.end()) continue;
    RecordedStep& s = steps[it->second];
    s.calls.push_back(c);
    s.billed += c.cost;
  }
  return steps;
}

OutputRatios OutputRatios::from_history(const std::vector<RecordedStep>& steps) {
  struct Sums {
    std::int64_t output = 0, expected = 0, reasoning = 0, calls = 0;
  };
  std::map<std::string, Sums> models;
  std::map<std::pair<std::string, Reasoning>, Sums> levels;
  for (const RecordedStep& s : steps) {
    const std::int64_t expected = s.decision.decision.estimated_output_tokens;
    if (expected <= 0) continue;
    for (const CostRecord* c : answering_calls(s)) {
      for (Sums* sums : {&models[c->model], &levels[{c->model, s.decision.decision.reasoning}]}) {
        sums->output += c->usage.output_tokens;
        sums->expected += expected;
        sums->reasoning += c->usage.reasoning_tokens;
        sums->calls += 1;
      }
    }
  }
  const auto ratio = [](const Sums& s) {
    Ratio r;
    r.output = static_cast<double>(s.output) / static_cast<double>(s.expected);
    r.reasoning = s.output > 0 ? static_cast<double>(s.reasoning) / static_cast<double>(s.output) : 0.0;
    r.calls = s.calls;
    return r;
  };
  OutputRatios out;
  for (const auto& [model, sums] : models) out.by_model_[model] = ratio(sums);
  for (const auto& [key, sums] : levels) out.by_level_[key] = ratio(sums);
  return out;
}

std::optional<OutputRatios::Ratio> OutputRatios::find(const std::string& model, Reasoning level) const {
  if (auto it = by_level_.find({model, level}); it != by_level_.end() && it->second.calls >= kMinCalls) {
    return it->second;
  }
  if (auto it = by_model_.find(model); it != by_model_.end() && it->second.calls >= kMinCalls) return it->second;
  return std::nullopt;
}

Result<ReplayCost> replay_cost(const Config& config, const PriceCatalog& prices, const RecordedStep& step,
                               const Decision& decision, const OutputRatios& ratios) {
  ReplayCost out;
  const Decision& recorded = step.decision.decision;
  if (same_choice(recorded, decision) && !step.calls.empty()) {
    auto cost = reprice(prices, step);
    if (!cost.ok()) return cost.status();
    out.cost = *cost;
    return out;
  }

  // The recorded answer per call: the mean over the branches that answered.
  const std::vector<const CostRecord*> answers = answering_calls(step);
  Usage base;
  std::string recorded_model;
  if (answers.empty()) {
    out.from_estimates = true;
    base.input_tokens = decision.estimated_input_tokens;
    base.output_tokens = decision.estimated_output_tokens;
  } else {
    recorded_model = answers.front()->model;
    const auto n = static_cast<std::int64_t>(answers.size());
    for (const CostRecord* c : answers) {
      base.input_tokens += c->usage.input_tokens;
      base.cached_input_tokens += c->usage.cached_input_tokens;
      base.cache_write_5m_tokens += c->usage.cache_write_5m_tokens;
      base.cache_write_1h_tokens += c->usage.cache_write_1h_tokens;
      base.output_tokens += c->usage.output_tokens;
      base.reasoning_tokens += c->usage.reasoning_tokens;
    }
    base.input_tokens = (base.input_tokens + n / 2) / n;
    base.cached_input_tokens = (base.cached_input_tokens + n / 2) / n;
    base.cache_write_5m_tokens = (base.cache_write_5m_tokens + n / 2) / n;
    base.cache_write_1h_tokens = (base.cache_write_1h_tokens + n / 2) / n;
    base.output_tokens = (base.output_tokens + n / 2) / n;
    base.reasoning_tokens = (base.reasoning_tokens + n / 2) / n;
  }
  const std::optional<OutputRatios::Ratio> from =
      recorded_model.empty() ? std::nullopt : ratios.find(recorded_model, recorded.reasoning);

  // One call on `model`: the recorded input (its cache only on the same
  // model) and the recorded output scaled from the recorded model to it.
  const auto call_on = [&](const std::string& model, std::int64_t input_tokens) {
    Usage u;
    if (model == recorded_model) {
      u = base;
      u.input_tokens = input_tokens - (base.total_input() - base.input_tokens);
    } else {
      u.input_tokens = input_tokens;
    }
    const std::optional<OutputRatios::Ratio> to = ratios.find(model, decision.reasoning);
    double factor = 1.0;
    if (from && to && from->output > 0) {
      factor = to->output / from->output;
      out.scaled = true;
    } else if (out.from_estimates && to) {
      factor = to->output;
      out.scaled = true;
    }
    u.output_tokens = scale(base.output_tokens, factor);
    u.reasoning_tokens = to && to->reasoning > 0 ? scale(u.output_tokens, to->reasoning)
                                                 : scale(base.reasoning_tokens, factor);
    // Never past the cap the call would be sent with (reasoning counts against it).
    if (const ModelSpec* spec = config.find_model(model)) {
      const std::int64_t cap = decision.max_output_tokens.value_or(spec->default_output_tokens);
      u.reasoning_tokens = std::min(u.reasoning_tokens, cap);
      u.output_tokens = std::max<std::int64_t>(0, std::min(u.output_tokens, cap - u.reasoning_tokens));
    }
    return u;
  };

  const std::int64_t input = base.total_input();
  MicroUsd total = 0;
  const int branches = std::max(decision.fanout, 1);
  const Usage branch = call_on(decision.model, input);
  auto cost = prices.cost(decision.model, branch);
  if (!cost.ok()) return cost.status();
  total += *cost * branches;
  if (branches > 1) {
    const Tier* tier = config.find_tier(decision.aggregate.empty() ? decision.tier : decision.aggregate);
    const std::string aggregator = tier != nullptr ? tier->models.front() : decision.model;
    const Usage agg = call_on(aggregator, input + branch.output_tokens * branches);
    auto agg_cost = prices.cost(aggregator, agg);
    if (!agg_cost.ok()) return agg_cost.status();
    total += *agg_cost;
  }
  out.cost = total;
  return out;
}

Result<WhatIfReport> what_if(const Config& base_config, const WhatIfOptions& options,
                             const std::string& ledger_or_trace) {
  Config config = base_config;
  if (options.prices) {
    if (Status s = reprice_config(config, options.prices); !s.ok()) return s;
  }
  if (!config.prices) return Status::invalid_argument("the configuration has no price catalog");
  const Workload* workload = config.find_workload(options.workload);
  if (workload == nullptr) {
    return Status::not_found((config.path.empty() ? std::string("the config") : config.path) +
                             ": unknown workload '" + options.workload + "'");
  }

  // The candidate on a fresh sandbox: its own engine, its load errors located.
  // Neither engine of a replay evaluates shadow rules: no worker, no records.
  for (auto& [name, workload] : config.workloads) {
    workload.shadow_rules_path.clear();
    workload.shadow_rules_file.clear();
  }
  Config candidate_config = config;
  Workload& w = candidate_config.workloads.find(options.workload)->second;
  w.rules_file = options.candidate_rules;
  w.rules_path = options.candidate_rules;
  auto candidate = Engine::open(std::move(candidate_config));
  if (!candidate.ok()) return candidate.status();

  WhatIfReport report;
  report.workload = options.workload;
  report.source = ledger_or_trace;
  report.candidate_rules = options.candidate_rules;
  report.candidate_version = (*candidate)->rules_version(options.workload);
  report.catalog_version = config.prices->version();
  const PriceCatalog& prices = *config.prices;

  const auto count = [&](WhatIfStep& s) {
    s.changed = !same_choice(s.before, s.after);
    if (s.changed) report.changed++;
    if (s.after.error) report.rule_errors++;
    report.candidate += s.cost_after;
  };

  std::error_code ec;
  const bool postgres = is_postgres_url(ledger_or_trace);
  if (!postgres && !std::filesystem::exists(ledger_or_trace, ec)) {
    return Status::not_found(ledger_or_trace + ": no such ledger or trace file");
  }
  if (postgres || is_sqlite_file(ledger_or_trace)) {
    report.from_ledger = true;
    LedgerQuery query;
    query.workload = options.workload;
    auto decisions = read_ledger_decisions(ledger_or_trace, query);
    if (!decisions.ok()) return decisions.status();
    auto calls = read_ledger(ledger_or_trace, query);
    if (!calls.ok()) return calls.status();
    const std::vector<RecordedStep> steps = recorded_steps(*decisions, *calls);
    if (steps.empty()) {
      return Status::not_found(ledger_or_trace + ": no recorded decisions for workload '" + options.workload +
                               "' (ledgers written before schema version 2 keep no step fields to replay)");
    }
    const OutputRatios ratios = OutputRatios::from_history(steps);
    report.ratios = ratios.by_model();
    std::set<std::string> versions;
    for (const RecordedStep& recorded : steps) {
      const DecisionRecord& d = recorded.decision;
      versions.insert(d.decision.rules_version);
      WhatIfStep s;
      s.id = d.trace_id;
      s.step = d.step;
      s.before = d.decision;
      CallContext ctx;
      ctx.spent = d.decision.context_spent;
      ctx.budget_left = d.decision.context_budget_left;
      auto after = (*candidate)->decide(options.workload, d.step, ctx);
      if (!after.ok()) return after.status();
      s.after = std::move(after).value();
      s.cost_before = recorded.billed;
      auto repriced = reprice(prices, recorded);
      if (!repriced.ok()) return repriced.status();
      report.billed += recorded.billed;
      report.repriced += *repriced;
      if (d.kind == DecisionKind::kRequested) {
        s.kept_because = "the caller chose the model";
      } else if (d.admission == AdmissionOutcome::kRefused) {
        s.kept_because = "the budget refused the step";
      } else if (d.admission == AdmissionOutcome::kRerouted) {
        s.kept_because = "the budget rerouted the step";
      }
      if (!s.kept_because.empty()) {
        s.after = s.before;  // what would be called is not the rules' to say
        s.cost_after = *repriced;
      } else {
        auto cost = replay_cost(config, prices, recorded, s.after, ratios);
        if (!cost.ok()) return cost.status();
        s.cost_after = cost->cost;
        s.estimated = cost->scaled || cost->from_estimates || !same_choice(s.before, s.after);
      }
      count(s);
      report.steps.push_back(std::move(s));
    }
    report.recorded_versions.assign(versions.begin(), versions.end());
    return report;
  }

  // A trace: the config's rules against the candidate, both estimated.
  auto active = Engine::open(config);
  if (!active.ok()) return active.status();
  report.recorded_versions.push_back((*active)->rules_version(options.workload));
  std::ifstream in(ledger_or_trace);
  if (!in) return Status::io_error(ledger_or_trace + ": cannot open");
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto step = parse_step_json(line);
    if (!step.ok()) {
      report.skipped++;
      continue;
    }
    WhatIfStep s;
    s.id = "line " + std::to_string(line_no);
    s.step = *step;
    auto before = (*active)->decide(options.workload, s.step);
    if (!before.ok()) return before.status();
    auto after = (*candidate)->decide(options.workload, s.step);
    if (!after.ok()) return after.status();
    s.before = std::move(before).value();
    s.after = std::move(after).value();
    s.cost_before = s.before.estimated_cost;
    s.cost_after = s.after.estimated_cost;
    s.estimated = true;
    report.billed += s.cost_before;
    report.repriced += s.cost_before;
    count(s);
    report.steps.push_back(std::move(s));
  }
  return report;
}

}  // namespace switchboard
