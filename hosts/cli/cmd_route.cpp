// switchboard route: the dry run. Decides every step of a STEPS.jsonl file
// without calling any model, and prints what it would cost; with --explain,
// the lines of the rules that made each decision.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "switchboard/switchboard.h"

namespace switchboard::cli {

namespace {

struct RouteOptions {
  std::string config_path = "switchboard.toml";
  std::string workload = "default";
  std::string rules;
  std::string steps;
  bool json = false;
  bool explain = false;
};

struct TierTotal {
  int steps = 0;
  MicroUsd cost = 0;
};

std::string cut(const std::string& s, size_t width) {
  return s.size() <= width ? s : s.substr(0, width - 3) + "...";
}

nlohmann::json to_json(int index, const Decision& d) {
  nlohmann::json j;
  j["index"] = index;
  j["workload"] = d.workload;
  j["tier"] = d.tier;
  j["model"] = d.model;
  j["reasoning"] = d.reasoning == Reasoning::kDefault ? nlohmann::json(nullptr)
                                                       : nlohmann::json(std::string(to_string(d.reasoning)));
  j["fanout"] = d.fanout;
  j["reason"] = d.reason;
  j["estimated_usd"] = to_usd(d.estimated_cost);
  j["rules_version"] = d.rules_version;
  j["error"] = d.error ? nlohmann::json(*d.error) : nlohmann::json(nullptr);
  return j;
}

nlohmann::json explain_json(const Explanation& e) {
  nlohmann::json lines = nlohmann::json::array();
  for (const TracedLine& l : e.lines) lines.push_back({{"line", l.line}, {"text", l.text}});
  return {{"lines", lines}, {"truncated", e.truncated}, {"reason", e.decision.reason}};
}

// Under a step's line: the rules' lines that ran, then the reason (or the error).
void print_explanation(const Explanation& e) {
  for (const TracedLine& l : e.lines) std::printf("       %5d  %s\n", l.line, l.text.c_str());
  if (e.truncated) std::printf("              ... (more lines ran than are kept)\n");
  if (e.decision.error) {
    std::printf("              error: %s\n", e.decision.error->c_str());
  } else {
    std::printf("              reason: %s\n", e.decision.reason.empty() ? "(none given)" : e.decision.reason.c_str());
  }
}

int run_route(const RouteOptions& o) {
  auto config = load_config(o.config_path);
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 2;
  }
  auto it = config->workloads.find(o.workload);
  if (it == config->workloads.end()) {
    std::cerr << o.config_path << ": unknown workload '" << o.workload << "'\n";
    return 2;
  }
  if (!o.rules.empty()) {
    it->second.rules_file = o.rules;
    it->second.rules_path = o.rules;
  }
  auto engine = Engine::open(std::move(config).value());
  if (!engine.ok()) {
    std::cerr << engine.status().message() << "\n";
    return 2;
  }
  const Config& cfg = (*engine)->config();
  const ModelSpec& premium = *cfg.find_model(cfg.find_tier(cfg.premium_tier)->models.front());

  std::ifstream in(o.steps);
  if (!in) {
    std::cerr << o.steps << ": cannot open the steps file\n";
    return 2;
  }
  if (!o.json) {
    std::printf("%5s  %-16s %8s  %-9s %-18s %-6s %11s  %s\n", "line", "role", "in tok", "tier",
                "model", "think", "est. cost", "reason");
  }
  int line_no = 0, routed = 0, skipped = 0, rule_errors = 0;
  MicroUsd total = 0, all_premium = 0;
  std::map<std::string, TierTotal> by_tier;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto step = parse_step_json(line);
    if (!step.ok()) {
      std::cerr << o.steps << ":" << line_no << ": " << step.status().message() << "; skipped\n";
      ++skipped;
      continue;
    }
    Explanation explained;  // the decision; with --explain, also the lines that made it
    if (o.explain) {
      auto e = (*engine)->explain(o.workload, *step);
      if (!e.ok()) {
        std::cerr << e.status().message() << "\n";
        return 2;
      }
      explained = std::move(e).value();
    } else {
      auto decision = (*engine)->decide(o.workload, *step);
      if (!decision.ok()) {
        std::cerr << decision.status().message() << "\n";
        return 2;
      }
      explained.decision = std::move(decision).value();
    }
    const Decision& d = explained.decision;
    ++routed;
    if (d.error) ++rule_errors;
    total += d.estimated_cost;
    all_premium += estimate_call_cost(premium, d.estimated_input_tokens, d.estimated_output_tokens);
    by_tier[d.tier].steps++;
    by_tier[d.tier].cost += d.estimated_cost;
    if (o.json) {
      nlohmann::json j = to_json(line_no, d);
      if (o.explain) j["explain"] = explain_json(explained);
      std::cout << j.dump() << "\n";
    } else {
      std::string model = d.model + (d.fanout > 1 ? " x" + std::to_string(d.fanout) : "");
      std::printf("%5d  %-16s %8lld  %-9s %-18s %-6s %11s  %s\n", line_no, cut(step->role, 16).c_str(),
                  static_cast<long long>(d.estimated_input_tokens), cut(d.tier, 9).c_str(),
                  cut(model, 18).c_str(), std::string(to_string(d.reasoning)).c_str(),
                  format_usd(d.estimated_cost).c_str(),
                  cut(d.error ? "ERROR " + *d.error : d.reason, 60).c_str());
      if (o.explain) print_explanation(explained);
    }
  }
  if (!o.json) {
    std::printf("\n%d steps routed for workload '%s' (rules %s)", routed, o.workload.c_str(),
                (*engine)->rules_version(o.workload).substr(0, 12).c_str());
    if (rule_errors) std::printf(", %d fell back after a rule error", rule_errors);
    if (skipped) std::printf(", %d malformed lines skipped", skipped);
    std::printf("\n\n");
    for (const auto& [tier, t] : by_tier) {
      std::printf("  %-10s %5d steps  %12s\n", tier.c_str(), t.steps, format_usd(t.cost).c_str());
    }
    const MicroUsd saving = all_premium - total;
    const double percent = all_premium > 0 ? 100.0 * static_cast<double>(saving) / static_cast<double>(all_premium) : 0.0;
    std::printf("\n  routed by the rules       %12s\n", format_usd(total).c_str());
    // Right-aligned with the lines above; at least one space after a long name.
    // Signed: unsigned arithmetic wrapped for names over 25 bytes.
    const int label = static_cast<int>(cfg.premium_tier.size() + premium.name.size());
    std::printf("  all on '%s' (%s) %*s\n", cfg.premium_tier.c_str(), premium.name.c_str(),
                std::max(1, 13 + 12 - label), format_usd(all_premium).c_str());
    std::printf("  saving                    %12s  (%.1f%%)\n", format_usd(saving).c_str(), percent);
    std::printf("\nEstimates at list prices; no model was called.\n");
  }
  return skipped > 0 ? 1 : 0;
}

}  // namespace

Command add_route(CLI::App& app) {
  auto* cmd = app.add_subcommand("route", "Dry run: decide every step without calling any model");
  auto o = std::make_shared<RouteOptions>();
  cmd->add_option("--config", o->config_path, "Configuration file")->capture_default_str();
  cmd->add_option("--workload", o->workload, "Workload whose rules decide")->capture_default_str();
  cmd->add_option("--rules", o->rules, "Use this rules file instead of the workload's");
  cmd->add_flag("--json", o->json, "One JSON object per step per line");
  cmd->add_flag("--explain", o->explain,
                "Show the lines of the rules each decision ran, and its reason (JSON: an \"explain\" field)");
  cmd->add_option("STEPS", o->steps, "Steps, one JSON object per line")->required();
  return [o]() { return run_route(*o); };
}

}  // namespace switchboard::cli
