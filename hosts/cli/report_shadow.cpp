// switchboard report --shadow: how a workload's shadow rules compare with its
// active rules on the traffic a SQLite ledger recorded. Per workload and
// shadow rules version: evaluations, agreement, a table of the disagreements
// (active choice -> candidate choice), what the candidate would have cost
// against what was billed, a few example disagreements and the candidate's
// rule errors; then the shadow files that do not load now.
//
// The candidate's cost is an estimate (replay.h): a step it agrees on costs
// what it was billed; another choice keeps the step's recorded input tokens
// and scales its output by each model's ratio of actual to expected output in
// the same ledger.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "switchboard/switchboard.h"

namespace switchboard::cli {

namespace {

using Json = nlohmann::json;

constexpr size_t kExamples = 5;
constexpr const char* kEstimateNote =
    "estimate: a step the shadow rules agree on costs what it was billed; another choice keeps the step's "
    "recorded input tokens and scales its output by each model's ratio of actual to expected output in this ledger";

// What same_choice() compares, as one line: "tier/model", then the reasoning
// level, fan-out and output cap when set.
std::string choice_label(const Decision& d) {
  std::string s = d.tier + "/" + d.model;
  if (d.reasoning != Reasoning::kDefault) s += " " + std::string(to_string(d.reasoning));
  if (d.fanout > 1) s += " x" + std::to_string(d.fanout) + " -> " + d.aggregate;
  if (d.max_output_tokens) s += " max " + std::to_string(*d.max_output_tokens);
  return s;
}

Json choice_json(const Decision& d) {
  return {{"tier", d.tier},
          {"model", d.model},
          {"reasoning", d.reasoning == Reasoning::kDefault ? Json(nullptr) : Json(std::string(to_string(d.reasoning)))},
          {"fanout", d.fanout},
          {"aggregate", d.fanout > 1 ? Json(d.aggregate) : Json(nullptr)},
          {"max_output_tokens", d.max_output_tokens ? Json(*d.max_output_tokens) : Json(nullptr)}};
}

double percent(std::int64_t part, std::int64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

// One disagreement worth showing.
struct Example {
  const DecisionRecord* shadow = nullptr;
  const RecordedStep* step = nullptr;  // the active side's record and calls, when the ledger has them
};

// The shadow records of one workload under one shadow rules version.
struct Group {
  std::string workload;
  std::string version;
  std::set<std::string> active_versions;
  std::int64_t evaluations = 0, agreed = 0, errors = 0;
  // Disagreements by (active choice, candidate choice), with their first few records.
  std::map<std::pair<std::string, std::string>, std::vector<Example>> moves;
  std::map<std::pair<std::string, std::string>, std::int64_t> move_counts;
  std::map<std::string, std::int64_t> error_counts;  // the candidate's rule errors, by message
  // Cost: over the evaluations whose step has recorded calls.
  std::int64_t priced = 0;
  std::int64_t unpriced = 0;        // no decision or calls recorded under the trace id
  std::int64_t kept_as_billed = 0;  // the caller named the model, or the budget refused or rerouted it
  MicroUsd billed = 0;
  MicroUsd candidate = 0;
  bool estimated = false;           // some candidate cost rests on scaled or estimated tokens
};

// Up to kExamples disagreements: the first of each move, most frequent move
// first, then more of the most frequent ones.
std::vector<Example> pick_examples(const Group& g) {
  std::vector<std::pair<std::string, std::string>> order;
  for (const auto& [move, n] : g.move_counts) order.push_back(move);
  std::stable_sort(order.begin(), order.end(),
                   [&](const auto& a, const auto& b) { return g.move_counts.at(a) > g.move_counts.at(b); });
  std::vector<Example> out;
  for (size_t round = 0; out.size() < kExamples; ++round) {
    bool any = false;
    for (const auto& move : order) {
      const std::vector<Example>& records = g.moves.at(move);
      if (round < records.size() && out.size() < kExamples) {
        out.push_back(records[round]);
        any = true;
      }
    }
    if (!any) break;
  }
  return out;
}

std::vector<std::pair<std::pair<std::string, std::string>, std::int64_t>> moves_by_count(const Group& g) {
  std::vector<std::pair<std::pair<std::string, std::string>, std::int64_t>> rows(g.move_counts.begin(),
                                                                                 g.move_counts.end());
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return rows;
}

// A shadow rules file of the config that does not load now.
struct LoadError {
  std::string workload;
  std::string path;
  std::string error;
};

Json example_json(const Example& e) {
  const DecisionRecord& r = *e.shadow;
  Json active = choice_json(*r.active);
  active["reason"] = e.step != nullptr ? Json(e.step->decision.decision.reason) : Json(nullptr);
  Json candidate = choice_json(r.decision);
  candidate["reason"] = r.decision.reason;
  candidate["error"] = r.decision.error ? Json(*r.decision.error) : Json(nullptr);
  return {{"trace_id", r.trace_id},
          {"role", r.step.role},
          {"input_tokens", r.step.input_tokens.value_or(0)},
          {"active", active},
          {"candidate", candidate}};
}

Json group_json(const Group& g, const std::map<std::string, std::string>& current) {
  Json moves = Json::array();
  for (const auto& [move, n] : moves_by_count(g)) {
    const Example& first = g.moves.at(move).front();
    moves.push_back({{"from", choice_json(*first.shadow->active)}, {"to", choice_json(first.shadow->decision)},
                     {"count", n}});
  }
  Json examples = Json::array();
  for (const Example& e : pick_examples(g)) examples.push_back(example_json(e));
  Json errors = Json::array();
  for (const auto& [message, n] : g.error_counts) errors.push_back({{"error", message}, {"count", n}});
  auto now = current.find(g.workload);
  const MicroUsd difference = g.candidate - g.billed;
  return {{"workload", g.workload},
          {"shadow_version", g.version},
          {"current", now != current.end() && now->second == g.version},
          {"active_versions", std::vector<std::string>(g.active_versions.begin(), g.active_versions.end())},
          {"evaluations", g.evaluations},
          {"agreed", g.agreed},
          {"disagreed", g.evaluations - g.agreed},
          {"errors", g.errors},
          {"agreement_percent", percent(g.agreed, g.evaluations)},
          {"disagreements", moves},
          {"cost",
           {{"steps_priced", g.priced},
            {"steps_unpriced", g.unpriced},
            {"steps_kept_as_billed", g.kept_as_billed},
            {"billed_micro_usd", g.billed},
            {"billed_usd", to_usd(g.billed)},
            {"candidate_micro_usd", g.candidate},
            {"candidate_usd", to_usd(g.candidate)},
            {"difference_micro_usd", difference},
            {"difference_usd", to_usd(difference)},
            {"difference_percent", g.billed == 0 ? 0.0 : 100.0 * static_cast<double>(difference) /
                                                                static_cast<double>(g.billed)},
            {"estimated", g.estimated}}},
          {"examples", examples},
          {"rule_errors", errors}};
}

void print_group(const Group& g, const std::map<std::string, std::string>& current,
                 const std::map<std::string, std::string>& paths) {
  auto now = current.find(g.workload);
  const bool is_current = now != current.end() && now->second == g.version;
  std::string active;
  for (const std::string& v : g.active_versions) active += (active.empty() ? "" : ", ") + v.substr(0, 12);
  const std::string now_file = is_current ? " (" + paths.at(g.workload) + " as it is now)" : std::string();
  std::printf("workload %s: shadow rules %s%s, active rules %s\n", g.workload.c_str(), g.version.substr(0, 12).c_str(),
              now_file.c_str(), active.c_str());
  std::printf("  evaluations %9lld\n", static_cast<long long>(g.evaluations));
  std::printf("  agree       %9lld  %5.1f%%\n", static_cast<long long>(g.agreed), percent(g.agreed, g.evaluations));
  std::printf("  disagree    %9lld  %5.1f%%  (%lld where the shadow rules failed)\n",
              static_cast<long long>(g.evaluations - g.agreed), percent(g.evaluations - g.agreed, g.evaluations),
              static_cast<long long>(g.errors));

  const auto rows = moves_by_count(g);
  if (!rows.empty()) {
    int from = 6, to = 6;
    for (const auto& [move, n] : rows) {
      from = std::max(from, static_cast<int>(move.first.size()));
      to = std::max(to, static_cast<int>(move.second.size()));
    }
    std::printf("\n  %-*s    %-*s %6s\n", from, "active", to, "shadow", "steps");
    for (const auto& [move, n] : rows) {
      std::printf("  %-*s -> %-*s %6lld\n", from, move.first.c_str(), to, move.second.c_str(),
                  static_cast<long long>(n));
    }
  }

  std::printf("\n  cost of the %lld steps with recorded calls%s\n", static_cast<long long>(g.priced),
              g.estimated ? " (the shadow side is an estimate: see below)" : "");
  std::printf("    billed (active rules)         %14s\n", format_usd(g.billed).c_str());
  const MicroUsd difference = g.candidate - g.billed;
  std::printf("    shadow rules would have cost  %14s  %s%s (%+.1f%%)\n", format_usd(g.candidate).c_str(),
              difference >= 0 ? "+" : "", format_usd(difference).c_str(),
              g.billed == 0 ? 0.0 : 100.0 * static_cast<double>(difference) / static_cast<double>(g.billed));
  if (g.kept_as_billed > 0) {
    std::printf("    %lld kept as billed: the caller named the model, or the budget refused or rerouted the step\n",
                static_cast<long long>(g.kept_as_billed));
  }
  if (g.unpriced > 0) {
    std::printf("    %lld not priced: no step recorded under their trace id\n", static_cast<long long>(g.unpriced));
  }

  const std::vector<Example> examples = pick_examples(g);
  if (!examples.empty()) std::printf("\n  examples\n");
  for (const Example& e : examples) {
    const DecisionRecord& r = *e.shadow;
    std::printf("    trace %s: %s, %lld input tokens\n", r.trace_id.empty() ? "(none)" : r.trace_id.c_str(),
                r.step.role.c_str(), static_cast<long long>(r.step.input_tokens.value_or(0)));
    const std::string active_reason = e.step != nullptr ? e.step->decision.decision.reason : std::string();
    std::printf("      active  %s%s%s\n", choice_label(*r.active).c_str(), active_reason.empty() ? "" : ": ",
                active_reason.c_str());
    std::printf("      shadow  %s%s%s\n", choice_label(r.decision).c_str(), r.decision.reason.empty() ? "" : ": ",
                r.decision.reason.c_str());
    if (r.decision.error) std::printf("              failed: %s\n", r.decision.error->c_str());
  }

  if (!g.error_counts.empty()) {
    std::printf("\n  shadow rule errors\n");
    for (const auto& [message, n] : g.error_counts) {
      std::printf("    %6lld  %s\n", static_cast<long long>(n), message.c_str());
    }
  }
}

}  // namespace

int print_shadow_report(const Config& config, const std::string& ledger, const LedgerQuery& query,
                        const std::string& since, const std::string& until, bool json) {
  auto decisions = read_ledger_decisions(ledger, query);
  if (!decisions.ok()) {
    std::cerr << decisions.status().message() << "\n";
    return 2;
  }
  auto calls = read_ledger(ledger, query);
  if (!calls.ok()) {
    std::cerr << calls.status().message() << "\n";
    return 2;
  }
  const std::vector<RecordedStep> steps = recorded_steps(*decisions, *calls);
  const OutputRatios ratios = OutputRatios::from_history(steps);
  std::unordered_map<std::string, const RecordedStep*> by_trace;
  for (const RecordedStep& s : steps) by_trace.emplace(s.decision.trace_id, &s);

  std::vector<Group> groups;
  std::map<std::pair<std::string, std::string>, size_t> group_of;  // (workload, version) -> index
  for (const DecisionRecord& r : *decisions) {
    if (r.kind != DecisionKind::kShadow || !r.active) continue;
    const auto key = std::make_pair(r.decision.workload, r.decision.rules_version);
    auto [it, added] = group_of.emplace(key, groups.size());
    if (added) {
      groups.emplace_back();
      groups.back().workload = key.first;
      groups.back().version = key.second;
    }
    Group& g = groups[it->second];
    g.active_versions.insert(r.active->rules_version);
    g.evaluations++;
    if (r.agrees) g.agreed++;
    const RecordedStep* step = nullptr;
    if (auto found = by_trace.find(r.trace_id); !r.trace_id.empty() && found != by_trace.end()) step = found->second;
    if (r.decision.error) {
      g.errors++;
      g.error_counts[*r.decision.error]++;
    }
    if (!r.agrees) {
      const auto move = std::make_pair(choice_label(*r.active), choice_label(r.decision));
      g.move_counts[move]++;
      std::vector<Example>& first = g.moves[move];
      if (first.size() < kExamples) first.push_back(Example{&r, step});
    }

    if (step == nullptr || step->calls.empty()) {
      g.unpriced++;
      continue;
    }
    g.priced++;
    g.billed += step->billed;
    const DecisionRecord& acted = step->decision;
    if (acted.kind == DecisionKind::kRequested || acted.admission == AdmissionOutcome::kRefused ||
        acted.admission == AdmissionOutcome::kRerouted) {
      // What was called was not the rules' to say: the candidate would not have changed it.
      g.kept_as_billed++;
      g.candidate += step->billed;
    } else if (same_choice(r.decision, acted.decision)) {
      g.candidate += step->billed;  // the same calls
    } else {
      auto cost = replay_cost(config, *config.prices, *step, r.decision, ratios);
      if (!cost.ok()) {
        std::cerr << cost.status().message() << "\n";
        return 2;
      }
      g.candidate += cost->cost;
      g.estimated = true;
    }
  }
  std::stable_sort(groups.begin(), groups.end(), [](const Group& a, const Group& b) { return a.workload < b.workload; });

  // The config's shadow files as they are now: their versions mark the
  // groups that are the current candidate; those that do not load are listed.
  std::map<std::string, std::string> current;  // workload -> sha256 of its shadow file now
  std::map<std::string, std::string> paths;    // workload -> shadow rules path
  std::vector<LoadError> load_errors;
  for (const auto& [name, w] : config.workloads) {
    if (w.shadow_rules_path.empty()) continue;
    paths[name] = w.shadow_rules_path;
    auto version = check_rules_file(w.shadow_rules_file, config.sandbox, w.shadow_rules_path);
    if (version.ok()) {
      current[name] = *version;
    } else {
      load_errors.push_back({name, w.shadow_rules_path, version.status().message()});
    }
  }

  if (json) {
    Json out_groups = Json::array();
    for (const Group& g : groups) out_groups.push_back(group_json(g, current));
    Json errors = Json::array();
    for (const LoadError& e : load_errors) {
      errors.push_back({{"workload", e.workload}, {"shadow_rules", e.path}, {"error", e.error}});
    }
    const Json out = {{"ledger", ledger},
                      {"since", since.empty() ? Json(nullptr) : Json(since)},
                      {"until", until.empty() ? Json(nullptr) : Json(until)},
                      {"catalog_version", config.prices->version()},
                      {"estimate", kEstimateNote},
                      {"shadow", out_groups},
                      {"load_errors", errors}};
    std::cout << out.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
    return 0;
  }

  std::printf("shadow rules in %s", ledger.c_str());
  if (!since.empty()) std::printf(", since %s", since.c_str());
  if (!until.empty()) std::printf(", until %s", until.c_str());
  std::printf("\n");
  if (groups.empty()) std::printf("\nno shadow decisions recorded\n");
  for (const Group& g : groups) {
    std::printf("\n");
    print_group(g, current, paths);
  }
  if (!groups.empty()) std::printf("\n%s; priced with catalog %s.\n", kEstimateNote, config.prices->version().c_str());
  if (!load_errors.empty()) {
    std::printf("\nshadow rules that do not load now (not evaluated until they do):\n");
    for (const LoadError& e : load_errors) std::printf("  %s %s: %s\n", e.workload.c_str(), e.path.c_str(), e.error.c_str());
  }
  return 0;
}

}  // namespace switchboard::cli
