// switchboard whatif: candidate rules replayed over recorded traffic (a
// SQLite ledger's decisions, or a STEPS.jsonl trace) without calling any
// model. Prints how many decisions change, from->to matrices of tiers and
// models, the cost delta (an estimate for the changed steps: see replay.h),
// the changed steps grouped by role with examples, and the candidate's rule
// errors; --json for machines, --html for people.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "html.h"
#include "switchboard/switchboard.h"

namespace switchboard::cli {

namespace {

using Json = nlohmann::ordered_json;

struct WhatIfCliOptions {
  std::string config_path = "switchboard.toml";
  std::string workload;
  std::string rules;
  std::string prices;
  std::string source;
  std::string html;
  bool json = false;
  int examples = 3;
};

// Counts of (from, to) pairs, in name order.
using Matrix = std::map<std::string, std::map<std::string, int>>;

struct RoleChanges {
  int steps = 0;
  MicroUsd before = 0, after = 0;
  std::map<std::string, int> moves;  // "tier/model -> tier/model"
  std::vector<const WhatIfStep*> examples;
};

// What the text, JSON and HTML views all show, computed once.
struct Summary {
  Matrix tiers, models;
  std::map<std::string, RoleChanges> by_role;  // changed steps only
  std::map<std::string, int> errors;           // candidate rule errors, by message
  int kept = 0;                                // changed but kept as recorded (caller, budget)
  MicroUsd changed_before = 0, changed_after = 0;
};

std::string choice(const Decision& d) {
  std::string s = d.tier + "/" + d.model;
  if (d.reasoning != Reasoning::kDefault) s += " (" + std::string(to_string(d.reasoning)) + ")";
  if (d.fanout > 1) s += " x" + std::to_string(d.fanout);
  return s;
}

Summary summarise(const WhatIfReport& r, int examples) {
  Summary s;
  for (const WhatIfStep& step : r.steps) {
    s.tiers[step.before.tier][step.after.tier]++;
    s.models[step.before.model][step.after.model]++;
    if (step.after.error) s.errors[*step.after.error]++;
    if (!step.kept_because.empty()) s.kept++;
    if (!step.changed) continue;
    RoleChanges& role = s.by_role[step.step.role];
    role.steps++;
    role.before += step.cost_before;
    role.after += step.cost_after;
    role.moves[choice(step.before) + " -> " + choice(step.after)]++;
    if (static_cast<int>(role.examples.size()) < examples) role.examples.push_back(&step);
    s.changed_before += step.cost_before;
    s.changed_after += step.cost_after;
  }
  return s;
}

double percent(std::int64_t part, std::int64_t whole) {
  return whole != 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

std::string signed_usd(MicroUsd amount) { return (amount > 0 ? "+" : "") + format_usd(amount); }

std::vector<std::string> matrix_columns(const Matrix& m) {
  std::set<std::string> cols;
  for (const auto& [from, row] : m) {
    for (const auto& [to, n] : row) cols.insert(to);
  }
  return {cols.begin(), cols.end()};
}

// Rows: the recorded choice; columns: the candidate's; the diagonal is unchanged.
void print_matrix(const char* what, const Matrix& m) {
  const std::vector<std::string> cols = matrix_columns(m);
  const std::string corner = std::string(what) + " \\ candidate";
  size_t width = corner.size();
  for (const auto& [from, row] : m) width = std::max(width, from.size());
  std::printf("  %-*s", static_cast<int>(width), corner.c_str());
  std::vector<int> col_width;
  for (const std::string& c : cols) {
    col_width.push_back(static_cast<int>(std::max<size_t>(c.size(), 5)));
    std::printf("  %*s", col_width.back(), c.c_str());
  }
  std::printf("\n");
  for (const auto& [from, row] : m) {
    std::printf("  %-*s", static_cast<int>(width), from.c_str());
    for (size_t i = 0; i < cols.size(); ++i) {
      auto it = row.find(cols[i]);
      const int n = it == row.end() ? 0 : it->second;
      if (n == 0) {  // zeros as dots, so the moves stand out
        std::printf("  %*s", col_width[i], ".");
      } else {
        std::printf("  %*d", col_width[i], n);
      }
    }
    std::printf("\n");
  }
}

void print_text(const WhatIfReport& r, const Summary& s) {
  const int n = static_cast<int>(r.steps.size());
  std::printf("whatif: workload '%s', %d steps from %s %s\n", r.workload.c_str(), n,
              r.from_ledger ? "the ledger" : "the trace", r.source.c_str());
  std::string versions;
  for (const std::string& v : r.recorded_versions) versions += (versions.empty() ? "" : ", ") + v.substr(0, 12);
  std::printf("  %s rules %s  ->  candidate %s (%s)\n", r.from_ledger ? "recorded" : "active", versions.c_str(),
              r.candidate_rules.c_str(), r.candidate_version.substr(0, 12).c_str());
  std::printf("  priced with catalog %s\n", r.catalog_version.c_str());
  if (r.skipped > 0) std::printf("  %d trace lines were not valid steps and were skipped\n", r.skipped);

  std::printf("\nDecisions: %d of %d change (%.1f%%)", r.changed, n, percent(r.changed, n));
  if (s.kept > 0) std::printf("; %d more were left as recorded (the caller or the budget chose)", s.kept);
  std::printf("\n\n");
  print_matrix(r.from_ledger ? "recorded tier" : "active tier", s.tiers);
  std::printf("\n");
  print_matrix(r.from_ledger ? "recorded model" : "active model", s.models);

  std::printf("\nCost\n");
  if (r.from_ledger) {
    std::printf("  recorded, as billed              %14s\n", format_usd(r.billed).c_str());
    if (r.repriced != r.billed) {
      std::printf("  the same calls at catalog prices %14s  (%s)\n", format_usd(r.repriced).c_str(),
                  signed_usd(r.repriced - r.billed).c_str());
    }
  } else {
    std::printf("  active rules (estimate)          %14s\n", format_usd(r.billed).c_str());
  }
  const MicroUsd delta = r.candidate - r.repriced;
  std::printf("  candidate rules (estimate)       %14s  (%s, %+.1f%%)\n", format_usd(r.candidate).c_str(),
              signed_usd(delta).c_str(), percent(delta, r.repriced));
  if (r.from_ledger && r.changed > 0) {
    std::printf("  the %d changed steps: %s recorded -> %s estimated\n", r.changed,
                format_usd(s.changed_before).c_str(), format_usd(s.changed_after).c_str());
  }

  if (!s.by_role.empty()) {
    std::printf("\nChanged steps by role\n");
    for (const auto& [role, c] : s.by_role) {
      std::printf("  %-18s %5d steps  %12s -> %12s  (%s)\n", role.c_str(), c.steps, format_usd(c.before).c_str(),
                  format_usd(c.after).c_str(), signed_usd(c.after - c.before).c_str());
      for (const auto& [move, count] : c.moves) std::printf("      %4d  %s\n", count, move.c_str());
      for (const WhatIfStep* e : c.examples) {
        std::printf("      e.g. %s, %lld input tokens: \"%s\" -> \"%s\"\n", e->id.c_str(),
                    static_cast<long long>(e->step.input_tokens.value_or(e->after.estimated_input_tokens)),
                    e->before.reason.c_str(), e->after.error ? e->after.error->c_str() : e->after.reason.c_str());
      }
    }
  }

  std::printf("\nRule errors in the candidate: ");
  if (s.errors.empty()) {
    std::printf("none\n");
  } else {
    std::printf("%d steps fell back\n", r.rule_errors);
    for (const auto& [message, count] : s.errors) std::printf("  %5d  %s\n", count, message.c_str());
  }

  std::printf("\n");
  if (r.from_ledger) {
    std::printf(
        "Unchanged steps cost what they were billed. Changed steps keep their recorded input tokens; their\n"
        "output is an estimate: the recorded output scaled by each model's ratio of actual to expected output\n"
        "in this ledger");
    std::string ratios;
    for (const auto& [model, ratio] : r.ratios) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s%s %.2f (%lld calls)", ratios.empty() ? "" : ", ", model.c_str(),
                    ratio.output, static_cast<long long>(ratio.calls));
      ratios += buf;
    }
    std::printf("%s%s.\n", ratios.empty() ? "" : ": ", ratios.c_str());
  } else {
    std::printf("Both sides are the engine's estimates at list prices (a trace records no usage).\n");
  }
  std::printf("No model was called.\n");
}

Json decision_json(const Decision& d) {
  Json j;
  j["tier"] = d.tier;
  j["model"] = d.model;
  j["reasoning"] = d.reasoning == Reasoning::kDefault ? Json(nullptr) : Json(std::string(to_string(d.reasoning)));
  j["fanout"] = d.fanout;
  j["reason"] = d.reason;
  j["error"] = d.error ? Json(*d.error) : Json(nullptr);
  return j;
}

Json matrix_json(const Matrix& m) {
  Json rows = Json::array();
  for (const auto& [from, row] : m) {
    for (const auto& [to, n] : row) rows.push_back({{"from", from}, {"to", to}, {"steps", n}});
  }
  return rows;
}

Json step_json(const WhatIfStep& s) {
  Json j;
  j["id"] = s.id;
  j["role"] = s.step.role;
  j["input_tokens"] = s.step.input_tokens ? Json(*s.step.input_tokens) : Json(s.after.estimated_input_tokens);
  j["before"] = decision_json(s.before);
  j["after"] = decision_json(s.after);
  j["cost_before_micro_usd"] = s.cost_before;
  j["cost_after_micro_usd"] = s.cost_after;
  j["estimated"] = s.estimated;
  return j;
}

Json report_json(const WhatIfReport& r, const Summary& s) {
  Json j;
  j["workload"] = r.workload;
  j["source"] = r.source;
  j["from_ledger"] = r.from_ledger;
  j["candidate"] = {{"rules", r.candidate_rules}, {"version", r.candidate_version}};
  j["recorded_rules_versions"] = r.recorded_versions;
  j["catalog_version"] = r.catalog_version;
  j["steps"] = r.steps.size();
  j["changed"] = r.changed;
  j["kept_as_recorded"] = s.kept;
  j["rule_errors"] = r.rule_errors;
  j["skipped_lines"] = r.skipped;
  j["cost_micro_usd"] = {{"billed", r.billed},
                         {"repriced", r.repriced},
                         {"candidate", r.candidate},
                         {"delta", r.candidate - r.repriced},
                         {"changed_steps_before", s.changed_before},
                         {"changed_steps_after", s.changed_after}};
  j["cost_is_estimate"] = true;
  j["tiers"] = matrix_json(s.tiers);
  j["models"] = matrix_json(s.models);
  Json roles = Json::array();
  for (const auto& [role, c] : s.by_role) {
    Json moves = Json::array();
    for (const auto& [move, count] : c.moves) moves.push_back({{"move", move}, {"steps", count}});
    Json examples = Json::array();
    for (const WhatIfStep* e : c.examples) examples.push_back(step_json(*e));
    roles.push_back({{"role", role},
                     {"steps", c.steps},
                     {"cost_before_micro_usd", c.before},
                     {"cost_after_micro_usd", c.after},
                     {"moves", moves},
                     {"examples", examples}});
  }
  j["changed_by_role"] = roles;
  Json errors = Json::array();
  for (const auto& [message, count] : s.errors) errors.push_back({{"message", message}, {"steps", count}});
  j["errors"] = errors;
  Json ratios = Json::array();
  for (const auto& [model, ratio] : r.ratios) {
    ratios.push_back({{"model", model}, {"output_ratio", ratio.output}, {"reasoning_share", ratio.reasoning},
                      {"calls", ratio.calls}});
  }
  j["output_ratios"] = ratios;
  Json changes = Json::array();
  for (const WhatIfStep& step : r.steps) {
    if (step.changed) changes.push_back(step_json(step));
  }
  j["changes"] = changes;
  return j;
}

std::string html_matrix(const char* what, const Matrix& m) {
  const std::vector<std::string> cols = matrix_columns(m);
  std::string h = "<table class=\"matrix\"><tr><th>" + escape_html(what) + " from \\ to</th>";
  for (const std::string& c : cols) h += "<th>" + escape_html(c) + "</th>";
  h += "</tr>\n";
  for (const auto& [from, row] : m) {
    h += "<tr><th>" + escape_html(from) + "</th>";
    for (const std::string& c : cols) {
      auto it = row.find(c);
      const int n = it == row.end() ? 0 : it->second;
      const char* cls = n == 0 ? "zero" : (c == from ? "same" : "moved");
      h += std::string("<td class=\"") + cls + "\">" + (n == 0 ? "" : std::to_string(n)) + "</td>";
    }
    h += "</tr>\n";
  }
  return h + "</table>\n";
}

// One horizontal bar pair (before, after) per role, as inline SVG: no script.
std::string html_role_bars(const Summary& s) {
  MicroUsd top = 1;
  for (const auto& [role, c] : s.by_role) top = std::max({top, c.before, c.after});
  const int row_h = 34, label_w = 150, bar_w = 420;
  const int height = row_h * static_cast<int>(s.by_role.size()) + 10;
  std::string h = "<svg id=\"role-bars\" width=\"" + std::to_string(label_w + bar_w + 120) + "\" height=\"" +
                  std::to_string(height) + "\" role=\"img\" aria-label=\"cost of changed steps by role\">\n";
  int y = 5;
  for (const auto& [role, c] : s.by_role) {
    const auto width = [&](MicroUsd v) {
      return std::to_string(static_cast<int>(static_cast<double>(bar_w) * static_cast<double>(v) / static_cast<double>(top)));
    };
    h += "<text x=\"0\" y=\"" + std::to_string(y + 18) + "\">" + escape_html(role) + "</text>";
    h += "<rect class=\"before\" x=\"" + std::to_string(label_w) + "\" y=\"" + std::to_string(y) + "\" width=\"" +
         width(c.before) + "\" height=\"12\"><title>recorded " + escape_html(format_usd(c.before)) + "</title></rect>";
    h += "<rect class=\"after\" x=\"" + std::to_string(label_w) + "\" y=\"" + std::to_string(y + 14) +
         "\" width=\"" + width(c.after) + "\" height=\"12\"><title>candidate " + escape_html(format_usd(c.after)) +
         "</title></rect>";
    h += "<text x=\"" + std::to_string(label_w + bar_w + 8) + "\" y=\"" + std::to_string(y + 18) + "\">" +
         escape_html(signed_usd(c.after - c.before)) + "</text>\n";
    y += row_h;
  }
  return h + "</svg>\n";
}

std::string render_html(const WhatIfReport& r, const Summary& s) {
  const int n = static_cast<int>(r.steps.size());
  const MicroUsd delta = r.candidate - r.repriced;
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  h += "<title>Switchboard whatif: " + escape_html(r.workload) + "</title>\n";
  h += "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0}"
       "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f4f4f4}"
       "td.moved{background:#ffe9c7;font-weight:bold}td.same{background:#eef6ee}"
       "rect.before{fill:#8aa7c9}rect.after{fill:#e0913a}.note{color:#555;max-width:60em}</style>\n";
  h += "</head><body>\n<h1>What if: workload " + escape_html(r.workload) + "</h1>\n";
  h += "<p>" + std::to_string(n) + " steps from " + escape_html(r.source) + "; candidate " +
       escape_html(r.candidate_rules) + " (" + escape_html(r.candidate_version.substr(0, 12)) +
       "); catalog " + escape_html(r.catalog_version) + ".</p>\n";
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.1f%%", percent(r.changed, n));
  h += "<p id=\"changed\"><b>" + std::to_string(r.changed) + "</b> of " + std::to_string(n) +
       " decisions change (" + pct + ").</p>\n";
  h += "<h2>Cost</h2>\n<table id=\"cost\"><tr><th>" + std::string(r.from_ledger ? "recorded" : "active rules") +
       "</th><td>" + escape_html(format_usd(r.repriced)) + "</td></tr>\n<tr><th>candidate (estimate)</th><td>" +
       escape_html(format_usd(r.candidate)) + "</td></tr>\n<tr><th>delta</th><td>" + escape_html(signed_usd(delta)) +
       "</td></tr></table>\n";
  h += "<h2>Decisions</h2>\n" + html_matrix("tier", s.tiers) + html_matrix("model", s.models);
  if (!s.by_role.empty()) {
    h += "<h2>Changed steps by role</h2>\n" + html_role_bars(s);
    h += "<table id=\"roles\"><tr><th>role</th><th>steps</th><th>recorded</th><th>candidate</th><th>moves</th>"
         "<th>examples</th></tr>\n";
    for (const auto& [role, c] : s.by_role) {
      std::string moves, examples;
      for (const auto& [move, count] : c.moves) moves += std::to_string(count) + " &times; " + escape_html(move) + "<br>";
      for (const WhatIfStep* e : c.examples) {
        examples += escape_html(e->id) + ": " + escape_html(e->before.reason) + " &rarr; " +
                    escape_html(e->after.error ? *e->after.error : e->after.reason) + "<br>";
      }
      h += "<tr><th>" + escape_html(role) + "</th><td>" + std::to_string(c.steps) + "</td><td>" +
           escape_html(format_usd(c.before)) + "</td><td>" + escape_html(format_usd(c.after)) +
           "</td><td style=\"text-align:left\">" + moves + "</td><td style=\"text-align:left\">" + examples +
           "</td></tr>\n";
    }
    h += "</table>\n";
  }
  h += "<h2>Rule errors in the candidate</h2>\n";
  if (s.errors.empty()) {
    h += "<p id=\"errors\">none</p>\n";
  } else {
    h += "<table id=\"errors\">";
    for (const auto& [message, count] : s.errors) {
      h += "<tr><td>" + std::to_string(count) + "</td><td style=\"text-align:left\">" + escape_html(message) +
           "</td></tr>\n";
    }
    h += "</table>\n";
  }
  h += "<p class=\"note\">Unchanged steps cost what they were billed. Changed steps keep their recorded input "
       "tokens; their output tokens are estimates scaled by each model's ratio of actual to expected output in "
       "this ledger. No model was called.</p>\n</body></html>\n";
  return h;
}

int run_whatif(const WhatIfCliOptions& o) {
  auto config = load_config(o.config_path);
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 2;
  }
  WhatIfOptions options;
  options.workload = o.workload;
  options.candidate_rules = o.rules;
  if (!o.prices.empty()) {
    auto catalog = PriceCatalog::load(o.prices);
    if (!catalog.ok()) {
      std::cerr << catalog.status().message() << "\n";
      return 2;
    }
    options.prices = std::make_shared<const PriceCatalog>(std::move(catalog).value());
  }
  auto report = what_if(*config, options, o.source);
  if (!report.ok()) {
    std::cerr << report.status().message() << "\n";
    return 2;
  }
  const Summary summary = summarise(*report, o.examples);
  if (!o.html.empty()) {
    if (std::string error = write_page(o.html, render_html(*report, summary)); !error.empty()) {
      std::cerr << error << "\n";
      return 2;
    }
  }
  if (o.json) {
    std::cout << report_json(*report, summary).dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
  } else {
    print_text(*report, summary);
    if (!o.html.empty()) std::printf("\nwrote %s\n", o.html.c_str());
  }
  return 0;
}

}  // namespace

Command add_whatif(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "whatif", "Replay recorded traffic (a ledger or a trace) through candidate rules; no model is called");
  auto o = std::make_shared<WhatIfCliOptions>();
  cmd->add_option("--config", o->config_path, "Configuration file")->capture_default_str();
  cmd->add_option("--workload", o->workload, "Workload whose rules the candidate replaces")->required();
  cmd->add_option("--rules", o->rules, "The candidate rules file")->required();
  cmd->add_option("--prices", o->prices, "Price the replay with this catalog instead of the config's");
  cmd->add_flag("--json", o->json, "One JSON object on stdout");
  cmd->add_option("--html", o->html, "Also write a self-contained HTML page");
  cmd->add_option("--examples", o->examples, "Example steps shown per role")->capture_default_str();
  cmd->add_option("LEDGER_OR_TRACE", o->source, "A SQLite ledger (switchboard.db), a postgresql:// ledger URL or a STEPS.jsonl trace")
      ->required();
  return [o]() { return run_whatif(*o); };
}

}  // namespace switchboard::cli
