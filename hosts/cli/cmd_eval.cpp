// switchboard eval SET --targets a,b,...: runs an eval set (switchboard/eval.h)
// on models, tiers and rules files, and reports per target the pass rate
// with its 95% Wilson interval, the cost, the latency p50/p95 and, for a
// rules target, the share of cases per tier and its quality and cost against
// all-premium on the same cases. As a table, one JSON object (--json), and a
// self-contained HTML page with a cost-quality chart (--html): each target a
// point, the frontier (the targets no other beats on both cost and quality)
// drawn through them. Every call goes to the ledger (decisions of kind eval).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "html.h"
#include "switchboard/eval.h"
#include "switchboard/switchboard.h"

namespace switchboard::cli {

namespace {

using Json = nlohmann::ordered_json;

struct EvalCliOptions {
  std::string set;
  std::vector<std::string> targets;
  std::string config_path = "switchboard.toml";
  std::string ledger = "switchboard.db";
  double budget_usd = -1;  // < 0: no cap
  int repeat = 1;
  int parallel = 4;
  bool json = false;
  std::string html;
  int show_failures = 5;
};

std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", fraction * 100);
  return buf;
}

const EvalTargetSummary* find_summary(const EvalReport& rep, const std::string& target) {
  for (const EvalTargetSummary& s : rep.targets) {
    if (s.target == target) return &s;
  }
  return nullptr;
}

// Quality and cost of `s` as fractions of the all-premium target's; unset when there is none (or it is `s`).
struct VsPremium {
  std::optional<double> quality;
  std::optional<double> cost;
};
VsPremium vs_premium(const EvalReport& rep, const EvalTargetSummary& s) {
  VsPremium v;
  const EvalTargetSummary* p = find_summary(rep, rep.premium_target);
  if (p == nullptr || p == &s) return v;
  if (p->pass_rate() > 0) v.quality = s.pass_rate() / p->pass_rate();
  if (p->cost > 0) v.cost = static_cast<double>(s.cost) / static_cast<double>(p->cost);
  return v;
}

// The targets on the cost-quality frontier: none other is as cheap or cheaper and at least as good, and strictly
// better in one.
std::vector<bool> frontier(const EvalReport& rep) {
  std::vector<bool> on(rep.targets.size(), true);
  for (size_t i = 0; i < rep.targets.size(); ++i) {
    const EvalTargetSummary& a = rep.targets[i];
    for (const EvalTargetSummary& b : rep.targets) {
      if (&a == &b) continue;
      const bool no_worse = b.cost <= a.cost && b.pass_rate() >= a.pass_rate();
      const bool better = b.cost < a.cost || b.pass_rate() > a.pass_rate();
      if (no_worse && better) on[i] = false;
    }
  }
  return on;
}

Json to_json(const EvalReport& rep, const EvalCliOptions& o, size_t cases) {
  Json j;
  j["set"] = o.set;
  j["cases"] = cases;
  j["repeat"] = o.repeat;
  j["premium_target"] = rep.premium_target;
  j["spent_usd"] = to_usd(rep.spent);
  j["spent_micro_usd"] = rep.spent;
  j["budget_usd"] = o.budget_usd < 0 ? Json() : Json(o.budget_usd);
  j["budget_exhausted"] = rep.budget_exhausted;
  const std::vector<bool> on_frontier = frontier(rep);
  Json targets = Json::array();
  for (size_t i = 0; i < rep.targets.size(); ++i) {
    const EvalTargetSummary& s = rep.targets[i];
    Json t;
    t["target"] = s.target;
    t["kind"] = s.kind;
    t["passed"] = s.passed;
    t["failed"] = s.failed;
    t["errors"] = s.errors;
    t["skipped"] = s.skipped;
    t["pass_rate"] = s.pass_rate();
    t["ci95"] = {s.pass_interval.low, s.pass_interval.high};
    t["cost_usd"] = to_usd(s.cost);
    t["cost_micro_usd"] = s.cost;
    t["latency_p50_ms"] = s.p50.count();
    t["latency_p95_ms"] = s.p95.count();
    Json tiers = Json::object();
    const std::int64_t answered = [&] {
      std::int64_t n = 0;
      for (const auto& [tier, count] : s.tiers) n += count;
      return n;
    }();
    for (const auto& [tier, count] : s.tiers) {
      tiers[tier] = {{"runs", count}, {"share", answered == 0 ? 0.0 : static_cast<double>(count) / answered}};
    }
    t["tiers"] = tiers;
    const VsPremium v = vs_premium(rep, s);
    t["quality_vs_premium"] = v.quality ? Json(*v.quality) : Json();
    t["cost_vs_premium"] = v.cost ? Json(*v.cost) : Json();
    t["on_frontier"] = static_cast<bool>(on_frontier[i]);
    targets.push_back(std::move(t));
  }
  j["targets"] = targets;
  Json results = Json::array();
  for (const EvalResult& r : rep.results) {
    Json x;
    x["case"] = r.case_id;
    x["target"] = r.target;
    x["repetition"] = r.repetition;
    x["outcome"] = std::string(to_string(r.outcome));
    x["tier"] = r.tier;
    x["model"] = r.model;
    x["cost_micro_usd"] = r.cost;
    x["latency_ms"] = r.latency.count();
    if (!r.error.empty()) x["error"] = r.error;
    Json verdicts = Json::array();
    for (const GraderVerdict& v : r.verdicts) {
      verdicts.push_back({{"grader", std::string(to_string(v.kind))},
                          {"outcome", std::string(to_string(v.outcome))},
                          {"reason", v.reason}});
    }
    x["verdicts"] = verdicts;
    results.push_back(std::move(x));
  }
  j["results"] = results;
  return j;
}

void print_text(const EvalReport& rep, const EvalCliOptions& o, size_t cases) {
  std::printf("eval %s: %zu cases x %zu targets x %d run%s\n\n", o.set.c_str(), cases, rep.targets.size(), o.repeat,
              o.repeat == 1 ? "" : "s");
  size_t width = 6;
  for (const EvalTargetSummary& s : rep.targets) width = std::max(width, s.target.size());
  std::printf("%-*s  %-5s  %9s  %6s  %-15s  %8s %s  %11s  %7s  %7s\n", static_cast<int>(width), "target", "kind",
              "passed", "rate", "95% CI", "errors", "skipped", "cost", "p50", "p95");
  for (const EvalTargetSummary& s : rep.targets) {
    const std::string passed = std::to_string(s.passed) + "/" + std::to_string(s.passed + s.failed);
    const std::string ci = "[" + percent(s.pass_interval.low) + ", " + percent(s.pass_interval.high) + "]";
    std::printf("%-*s  %-5s  %9s  %6s  %-15s  %8lld %7lld  %11s  %5lldms  %5lldms\n", static_cast<int>(width),
                s.target.c_str(), s.kind.c_str(), passed.c_str(), percent(s.pass_rate()).c_str(), ci.c_str(),
                static_cast<long long>(s.errors), static_cast<long long>(s.skipped), format_usd(s.cost).c_str(),
                static_cast<long long>(s.p50.count()), static_cast<long long>(s.p95.count()));
  }
  for (const EvalTargetSummary& s : rep.targets) {
    if (s.kind != "rules") continue;
    std::printf("\n%s routed", s.target.c_str());
    std::int64_t answered = 0;
    for (const auto& [tier, count] : s.tiers) answered += count;
    for (const auto& [tier, count] : s.tiers) {
      std::printf(" %s %s", tier.c_str(),
                  percent(answered == 0 ? 0.0 : static_cast<double>(count) / static_cast<double>(answered)).c_str());
    }
    const VsPremium v = vs_premium(rep, s);
    std::printf("\n  quality vs all-premium (%s): %s", rep.premium_target.c_str(),
                v.quality ? percent(*v.quality).c_str() : "n/a");
    std::printf("; cost vs all-premium: %s\n", v.cost ? percent(*v.cost).c_str() : "n/a");
  }
  if (o.show_failures > 0) {
    for (const EvalTargetSummary& s : rep.targets) {
      int shown = 0;
      for (const EvalResult& r : rep.results) {
        if (r.target != s.target || r.outcome == EvalResult::Outcome::kPass) continue;
        if (shown == 0) std::printf("\n%s, not passed:\n", s.target.c_str());
        if (shown++ >= o.show_failures) continue;
        std::string why = r.error;
        for (const GraderVerdict& v : r.verdicts) {
          if (v.outcome != GraderVerdict::Outcome::kPass && why.empty()) {
            why = std::string(to_string(v.kind)) + ": " + v.reason;
          }
        }
        std::printf("  %-7s %s: %s\n", std::string(to_string(r.outcome)).c_str(), r.case_id.c_str(), why.c_str());
      }
      if (shown > o.show_failures) std::printf("  ... and %d more (--json lists them all)\n", shown - o.show_failures);
    }
  }
  std::printf("\nspent %s", format_usd(rep.spent).c_str());
  if (o.budget_usd >= 0) std::printf(" of a %s budget", format_usd(static_cast<MicroUsd>(std::llround(o.budget_usd * 1e6))).c_str());
  if (rep.budget_exhausted) std::printf(": the budget ran out, skipped runs are not in the pass rates");
  std::printf("\n");
}

// JSON safe inside <script>: no '<', '>' or '&' survives (they only occur inside strings).
std::string script_json(const Json& j) {
  std::string out;
  for (char c : j.dump()) {
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else out += c;
  }
  return out;
}

// Draws the cost-quality chart: one circle per target (data-drawn = their
// count), its 95% interval as a vertical line, the frontier as a polyline.
const char* kScript = R"js(
(function () {
  var data = JSON.parse(document.getElementById('eval-data').textContent);
  var svg = document.getElementById('chart-cost-quality');
  var NS = svg.namespaceURI;
  var COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(x, y, s, anchor) {
    var t = el('text', {x: x, y: y, 'font-size': 11, 'text-anchor': anchor || 'start'}, svg);
    t.textContent = s;
  }
  var W = 760, H = 360, L = 70, R = 190, T = 20, B = 50, plotW = W - L - R, plotH = H - T - B;
  var maxCost = Math.max.apply(null, [1].concat(data.targets.map(function (t) { return t.cost_micro_usd; })));
  function x(cost) { return L + cost / maxCost * plotW; }
  function y(rate) { return T + (1 - rate) * plotH; }
  el('line', {x1: L, y1: T + plotH, x2: L + plotW, y2: T + plotH, stroke: '#333'}, svg);
  el('line', {x1: L, y1: T, x2: L, y2: T + plotH, stroke: '#333'}, svg);
  text(L - 6, T + 4, '100%', 'end');
  text(L - 6, T + plotH, '0%', 'end');
  text(L, T + plotH + 16, '$0', 'middle');
  text(L + plotW, T + plotH + 16, '$' + (maxCost / 1e6).toFixed(4), 'middle');
  text(L + plotW / 2, T + plotH + 34, 'cost of the run', 'middle');
  var front = data.targets.filter(function (t) { return t.on_frontier; })
      .sort(function (a, b) { return a.cost_micro_usd - b.cost_micro_usd; });
  if (front.length > 1) {
    el('polyline', {id: 'frontier', fill: 'none', stroke: '#999', 'stroke-dasharray': '4 3', 'data-points': String(front.length),
                    points: front.map(function (t) { return x(t.cost_micro_usd) + ',' + y(t.pass_rate); }).join(' ')}, svg);
  }
  var drawn = 0;
  data.targets.forEach(function (t, i) {
    var c = COLORS[i % COLORS.length];
    el('line', {x1: x(t.cost_micro_usd), x2: x(t.cost_micro_usd), y1: y(t.ci95[0]), y2: y(t.ci95[1]), stroke: c}, svg);
    var p = el('circle', {cx: x(t.cost_micro_usd), cy: y(t.pass_rate), r: 6, fill: c}, svg);
    el('title', {}, p).textContent = t.target + ': ' + (t.pass_rate * 100).toFixed(1) + '% at $' + t.cost_usd.toFixed(6);
    el('circle', {cx: W - R + 16, cy: T + 8 + i * 16, r: 5, fill: c}, svg);
    text(W - R + 26, T + 12 + i * 16, t.target + ' ' + (t.pass_rate * 100).toFixed(1) + '%');
    drawn++;
  });
  svg.setAttribute('data-drawn', String(drawn));
})();
)js";

std::string render_html(const EvalReport& rep, const Json& data, const EvalCliOptions& o) {
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  h += "<title>Switchboard eval: " + escape_html(o.set) + "</title>\n";
  h += "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
       "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th:first-child{text-align:left}</style>\n";
  h += "</head><body>\n<h1>Eval " + escape_html(o.set) + "</h1>\n";
  h += "<table id=\"eval-table\">\n<tr><th>target</th><th>kind</th><th>passed</th><th>pass rate</th><th>95% CI</th>"
       "<th>errors</th><th>skipped</th><th>cost</th><th>p50</th><th>p95</th><th>vs all-premium</th></tr>\n";
  for (const EvalTargetSummary& s : rep.targets) {
    const VsPremium v = vs_premium(rep, s);
    const std::string vs = v.quality || v.cost ? "quality " + (v.quality ? percent(*v.quality) : "n/a") + ", cost " +
                                                     (v.cost ? percent(*v.cost) : "n/a")
                                               : "";
    h += "<tr><th>" + escape_html(s.target) + "</th><td>" + escape_html(s.kind) + "</td><td>" +
         std::to_string(s.passed) + "/" + std::to_string(s.passed + s.failed) + "</td><td>" +
         escape_html(percent(s.pass_rate())) + "</td><td>" + escape_html(percent(s.pass_interval.low)) + " to " +
         escape_html(percent(s.pass_interval.high)) + "</td><td>" + std::to_string(s.errors) + "</td><td>" +
         std::to_string(s.skipped) + "</td><td>" + escape_html(format_usd(s.cost)) + "</td><td>" +
         std::to_string(s.p50.count()) + " ms</td><td>" + std::to_string(s.p95.count()) + " ms</td><td>" +
         escape_html(vs) + "</td></tr>\n";
  }
  h += "</table>\n<h2>Cost and quality</h2>\n";
  h += "<svg id=\"chart-cost-quality\" width=\"760\" height=\"360\"></svg>\n";
  h += "<script type=\"application/json\" id=\"eval-data\">" + script_json(data) + "</script>\n";
  h += "<script>" + std::string(kScript) + "</script>\n</body></html>\n";
  return h;
}

int run_eval_command(const EvalCliOptions& o) {
  auto config = load_config(o.config_path);
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 2;
  }
  auto cases = load_eval_set(o.set);
  if (!cases.ok()) {
    std::cerr << cases.status().message() << "\n";
    return 2;
  }
  auto sqlite = open_sqlite_ledger(SqliteLedgerOptions{.path = o.ledger, .durability = config->ledger.durability});
  if (!sqlite.ok()) {
    std::cerr << sqlite.status().message() << "\n";
    return 2;
  }
  EvalOptions options;
  options.targets = o.targets;
  options.repeat = o.repeat;
  options.parallel = o.parallel;
  if (o.budget_usd >= 0) options.budget = static_cast<MicroUsd>(std::llround(o.budget_usd * 1e6));
  options.ledger = std::make_shared<Ledger>(std::vector<std::shared_ptr<LedgerSink>>{*sqlite});
  auto report = run_eval(std::move(config).value(), *cases, options);
  if (!report.ok()) {
    std::cerr << report.status().message() << "\n";
    return 2;
  }
  const Json data = to_json(*report, o, cases->size());
  if (!o.html.empty()) {
    // The chart needs the targets only; the runs' reasons (which may quote an answer) stay out of the page.
    Json chart;
    chart["targets"] = data["targets"];
    const std::string error = write_page(o.html, render_html(*report, chart, o));
    if (!error.empty()) {
      std::cerr << error << "\n";
      return 2;
    }
  }
  if (o.json) {
    std::printf("%s\n", data.dump(2).c_str());
  } else {
    print_text(*report, o, cases->size());
    std::printf("recorded in %s (decisions of kind eval)\n", o.ledger.c_str());
    if (!o.html.empty()) std::printf("wrote %s\n", o.html.c_str());
  }
  return 0;
}

}  // namespace

Command add_eval(CLI::App& app) {
  auto o = std::make_shared<EvalCliOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "Run an eval set on models, tiers or rules files: pass rates, cost, latency");
  cmd->add_option("SET", o->set, "Eval set: one case a line (JSONL), e.g. evals/injection.jsonl")->required();
  cmd->add_option("--targets", o->targets, "Models, tiers or rules files (*.lua), comma-separated")
      ->required()
      ->delimiter(',');
  cmd->add_option("--config", o->config_path, "Configuration file")->capture_default_str();
  cmd->add_option("--ledger", o->ledger, "SQLite ledger to append every call to")->capture_default_str();
  cmd->add_option("--budget-usd", o->budget_usd, "Hard cap on the run's spend, judge calls included")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--repeat", o->repeat, "Runs of each case on each target")->check(CLI::Range(1, 100))->capture_default_str();
  cmd->add_option("--parallel", o->parallel, "Cases in flight at once")->check(CLI::Range(1, 256))->capture_default_str();
  cmd->add_option("--show-failures", o->show_failures, "Cases not passed to list per target (text output)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--html", o->html, "Also write a self-contained HTML page with the cost-quality chart");
  cmd->add_flag("--json", o->json, "One JSON object: targets and every run's verdicts");
  return [o] { return run_eval_command(*o); };
}

}  // namespace switchboard::cli
