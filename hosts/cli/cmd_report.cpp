// switchboard report LEDGER: spend, tokens, latency and statuses from a SQLite
// ledger, grouped by workload, role, model or tier, with the routed cost
// against the same calls all on the premium tier and what the prompt caches
// saved (cache reads against the input rate, less cache writes above it). A table, one JSON object
// (--json), or one self-contained HTML page with inline SVG charts (--html).
// --shadow reports the shadow rules instead (report_shadow.cpp).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "html.h"
#include "switchboard/calibration.h"
#include "switchboard/switchboard.h"
#include "token_estimates.h"

namespace switchboard::cli {

namespace {

using Clock = std::chrono::system_clock;
using Json = nlohmann::json;

struct ReportOptions {
  std::string ledger;
  std::string config_path = "switchboard.toml";
  std::string since;
  std::string until;
  std::string by = "workload";
  bool json = false;
  std::string html;
  bool shadow = false;
  bool quality = false;
};

// "2026-11-01" (midnight UTC) or an RFC 3339 UTC time "2026-11-01T12:34:56[.789](Z|+00:00)";
// fractions below a millisecond are dropped (the ledger stores milliseconds).
Result<Clock::time_point> parse_time(const std::string& flag, const std::string& text) {
  static const std::regex kDate(R"(^(\d{4})-(\d{2})-(\d{2})$)");
  static const std::regex kTime(R"(^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.(\d{1,9}))?([Zz]|[+-]00:00)$)");
  const auto bad = [&](const std::string& why) {
    return Status::invalid_argument(flag + ": '" + text + "' " + why +
                                    " (expected a UTC time like 2026-11-01T12:34:56Z or a date like 2026-11-01)");
  };
  std::smatch m;
  const bool is_date = std::regex_match(text, m, kDate);
  if (!is_date && !std::regex_match(text, m, kTime)) return bad("is not a date or an RFC 3339 UTC time");
  using namespace std::chrono;
  const year_month_day ymd{year{std::stoi(m[1].str())}, month{static_cast<unsigned>(std::stoi(m[2].str()))},
                           day{static_cast<unsigned>(std::stoi(m[3].str()))}};
  if (!ymd.ok()) return bad("is not a valid calendar date");
  Clock::time_point t = sys_days{ymd};
  if (!is_date) {
    const int h = std::stoi(m[4].str()), mi = std::stoi(m[5].str()), s = std::stoi(m[6].str());
    if (h > 23 || mi > 59 || s > 59) return bad("has an hour, minute or second out of range");
    t += hours{h} + minutes{mi} + seconds{s};
    if (m[8].matched) {
      std::string frac = m[8].str();
      frac.resize(3, '0');
      t += milliseconds{std::stoi(frac)};
    }
  }
  return t;
}

std::string format_day(Clock::time_point t) {
  using namespace std::chrono;
  const year_month_day ymd{floor<days>(t)};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()));
  return buf;
}

std::string format_hour(Clock::time_point t) {
  using namespace std::chrono;
  const auto d = floor<days>(t);
  const auto h = duration_cast<hours>(t - d).count();
  char buf[16];
  std::snprintf(buf, sizeof buf, "T%02lld:00Z", static_cast<long long>(h));
  return format_day(t) + buf;  // "2026-11-01T13:00Z"
}

// What a call's prompt cache did to its bill, at its model's catalog prices.
struct CacheEffect {
  MicroUsd read_saving = 0;  // its cache reads at the input rate, less as billed
  MicroUsd write_extra = 0;  // its cache writes as billed, less at the input rate
};

CacheEffect cache_effect(const Config& config, const CostRecord& r) {
  CacheEffect e;
  const Usage& u = r.usage;
  if (!config.prices || (u.cached_input_tokens == 0 && u.cache_write_5m_tokens == 0 && u.cache_write_1h_tokens == 0)) {
    return e;
  }
  const Result<MicroUsd> billed = config.prices->cost(r.model, u);
  if (!billed.ok()) return e;  // a model the catalog does not price: no figure rather than a wrong one
  Usage no_reads = u;
  no_reads.input_tokens += no_reads.cached_input_tokens;
  no_reads.cached_input_tokens = 0;
  Usage no_writes = u;
  no_writes.input_tokens += no_writes.cache_write_5m_tokens + no_writes.cache_write_1h_tokens;
  no_writes.cache_write_5m_tokens = no_writes.cache_write_1h_tokens = 0;
  if (const Result<MicroUsd> c = config.prices->cost(r.model, no_reads); c.ok()) e.read_saving = *c - *billed;
  if (const Result<MicroUsd> c = config.prices->cost(r.model, no_writes); c.ok()) e.write_extra = *billed - *c;
  return e;
}

struct Group {
  std::int64_t calls = 0;
  Usage usage;
  MicroUsd cost = 0;
  MicroUsd premium_cost = 0;
  std::vector<std::int64_t> latencies;
  std::map<CallStatus, std::int64_t> statuses;
  std::int64_t overruns = 0;  // calls billed above their budget reservation
  MicroUsd overrun = 0;       // by how much, together
  MicroUsd cache_read_saving = 0;  // the cache reads at the input rate, less what they were billed
  MicroUsd cache_write_extra = 0;  // the cache writes as billed, less the same tokens at the input rate

  void add(const CostRecord& r, MicroUsd premium, const CacheEffect& cache) {
    ++calls;
    cache_read_saving += cache.read_saving;
    cache_write_extra += cache.write_extra;
    if (r.overrun() > 0) {
      ++overruns;
      overrun += r.overrun();
    }
    usage.input_tokens += r.usage.input_tokens;
    usage.cached_input_tokens += r.usage.cached_input_tokens;
    usage.cache_write_5m_tokens += r.usage.cache_write_5m_tokens;
    usage.cache_write_1h_tokens += r.usage.cache_write_1h_tokens;
    usage.output_tokens += r.usage.output_tokens;
    usage.reasoning_tokens += r.usage.reasoning_tokens;
    cost += r.cost;
    premium_cost += premium;
    latencies.push_back(r.latency_ms);
    statuses[r.status]++;
  }
  // Nearest rank: the smallest latency with at least p% of the calls at or below it.
  std::int64_t percentile(int p) const {
    if (latencies.empty()) return 0;
    std::vector<std::int64_t> sorted = latencies;
    std::sort(sorted.begin(), sorted.end());
    const size_t n = sorted.size();
    const size_t rank = (static_cast<size_t>(p) * n + 99) / 100;  // ceil(p·n/100), >= 1
    return sorted[std::max<size_t>(rank, 1) - 1];
  }
};

// Every status, in the order the report lists them. A cancelled attempt's
// cost is spend like any other's (it was billed), so it counts in the totals.
constexpr CallStatus kStatuses[] = {CallStatus::kOk, CallStatus::kError, CallStatus::kFallback,
                                    CallStatus::kRefusedByBudget, CallStatus::kCancelled,
                                    CallStatus::kRefusedByRateLimit};

double share(MicroUsd part, MicroUsd whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

const std::string& key_of(const CostRecord& r, const std::string& by) {
  if (by == "role") return r.role;
  if (by == "model") return r.model;
  if (by == "tier") return r.tier;
  return r.workload;
}

struct Report {
  std::string by;
  std::vector<std::pair<std::string, Group>> groups;  // by spend, most first; then by name
  Group total;
  std::string premium_tier;
  std::string premium_model;
  std::optional<Clock::time_point> first, last;
  std::vector<CostRecord> overruns;  // the calls billed above their reservation, oldest first
};

Json group_json(const Group& g, MicroUsd total_cost) {
  Json statuses = Json::object();
  for (CallStatus s : kStatuses) {
    auto it = g.statuses.find(s);
    statuses[std::string(to_string(s))] = it == g.statuses.end() ? 0 : it->second;
  }
  return {{"calls", g.calls},
          {"input_tokens", g.usage.input_tokens},
          {"cached_input_tokens", g.usage.cached_input_tokens},
          {"cache_write_tokens", g.usage.cache_write_5m_tokens + g.usage.cache_write_1h_tokens},
          {"output_tokens", g.usage.output_tokens},
          {"reasoning_tokens", g.usage.reasoning_tokens},
          {"cost_micro_usd", g.cost},
          {"cost_usd", to_usd(g.cost)},
          {"share_percent", share(g.cost, total_cost)},
          {"premium_micro_usd", g.premium_cost},
          {"premium_usd", to_usd(g.premium_cost)},
          {"p50_latency_ms", g.percentile(50)},
          {"p95_latency_ms", g.percentile(95)},
          {"statuses", statuses},
          {"overruns", g.overruns},
          {"overrun_micro_usd", g.overrun},
          {"cache",
           {{"read_saving_micro_usd", g.cache_read_saving},
            {"read_saving_usd", to_usd(g.cache_read_saving)},
            {"write_extra_micro_usd", g.cache_write_extra},
            {"write_extra_usd", to_usd(g.cache_write_extra)},
            {"net_saving_micro_usd", g.cache_read_saving - g.cache_write_extra},
            {"net_saving_usd", to_usd(g.cache_read_saving - g.cache_write_extra)}}}};
}

Json report_json(const Report& rep, const ReportOptions& o) {
  Json groups = Json::array();
  for (const auto& [key, g] : rep.groups) {
    Json j = group_json(g, rep.total.cost);
    j["key"] = key;
    groups.push_back(std::move(j));
  }
  const MicroUsd saving = rep.total.premium_cost - rep.total.cost;
  return {{"ledger", o.ledger},
          {"by", rep.by},
          {"since", o.since.empty() ? Json(nullptr) : Json(o.since)},
          {"until", o.until.empty() ? Json(nullptr) : Json(o.until)},
          {"groups", groups},
          {"total", group_json(rep.total, rep.total.cost)},
          {"premium",
           {{"tier", rep.premium_tier},
            {"model", rep.premium_model},
            {"routed_micro_usd", rep.total.cost},
            {"routed_usd", to_usd(rep.total.cost)},
            {"all_premium_micro_usd", rep.total.premium_cost},
            {"all_premium_usd", to_usd(rep.total.premium_cost)},
            {"saving_micro_usd", saving},
            {"saving_usd", to_usd(saving)},
            {"saving_percent", share(saving, rep.total.premium_cost)}}}};
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void print_row(const std::string& key, const Group& g, MicroUsd total_cost) {
  std::printf("%-20s %7lld %12lld %12lld %12lld %12lld %14s %6.1f%% %8lld %8lld\n", key.c_str(),
              static_cast<long long>(g.calls), static_cast<long long>(g.usage.input_tokens),
              static_cast<long long>(g.usage.cached_input_tokens), static_cast<long long>(g.usage.output_tokens),
              static_cast<long long>(g.usage.reasoning_tokens), format_usd(g.cost).c_str(), share(g.cost, total_cost),
              static_cast<long long>(g.percentile(50)), static_cast<long long>(g.percentile(95)));
}

// The prompt caches' effect on the bill: reads saved against paying the
// input rate, writes billed above it (Anthropic's), and the net.
void print_cache(const Group& g) {
  const Usage& u = g.usage;
  const std::int64_t written = u.cache_write_5m_tokens + u.cache_write_1h_tokens;
  std::printf("\n  cache reads               %14s  saved (%lld tokens at the cached rate, not the input rate)\n",
              format_usd(g.cache_read_saving).c_str(), static_cast<long long>(u.cached_input_tokens));
  std::printf("  cache writes              %14s  above the input rate (%lld tokens written)\n",
              format_usd(g.cache_write_extra).c_str(), static_cast<long long>(written));
  std::printf("  cache saving, net         %14s  (%.1f%% of what the calls would cost uncached)\n",
              format_usd(g.cache_read_saving - g.cache_write_extra).c_str(),
              share(g.cache_read_saving - g.cache_write_extra, g.cost + g.cache_read_saving - g.cache_write_extra));
}

void print_text(const Report& rep) {
  std::printf("%-20s %7s %12s %12s %12s %12s %14s %7s %8s %8s\n", rep.by.c_str(), "calls", "input", "cached",
              "output", "reasoning", "spend", "share", "p50 ms", "p95 ms");
  for (const auto& [key, g] : rep.groups) print_row(key, g, rep.total.cost);
  print_row("total", rep.total, rep.total.cost);
  std::printf("\nstatus:");
  for (CallStatus s : kStatuses) {
    auto it = rep.total.statuses.find(s);
    std::printf(" %s %lld", std::string(to_string(s)).c_str(),
                static_cast<long long>(it == rep.total.statuses.end() ? 0 : it->second));
  }
  if (rep.total.overruns > 0) {
    // A provider billed more than the budget's bound: counted against the
    // caps all the same, and worth a look (a counting bug upstream, a cap not honoured).
    std::printf("\n\noverruns: %lld calls billed %s above their budget reservations\n",
                static_cast<long long>(rep.total.overruns), format_usd(rep.total.overrun).c_str());
    constexpr size_t kListed = 10;
    for (size_t i = 0; i < rep.overruns.size() && i < kListed; ++i) {
      const CostRecord& r = rep.overruns[i];
      std::printf("  %s trace %s %s: reserved %s, billed %s (+%s)\n", format_hour(r.time).c_str(),
                  r.trace_id.c_str(), r.model.c_str(), format_usd(r.reserved).c_str(), format_usd(r.cost).c_str(),
                  format_usd(r.overrun()).c_str());
    }
    if (rep.overruns.size() > kListed) std::printf("  ... and %zu more\n", rep.overruns.size() - kListed);
  }
  const MicroUsd saving = rep.total.premium_cost - rep.total.cost;
  std::printf("\n\n  routed (as recorded)      %14s\n", format_usd(rep.total.cost).c_str());
  std::printf("  all on '%s' (%s)  %14s\n", rep.premium_tier.c_str(), rep.premium_model.c_str(),
              format_usd(rep.total.premium_cost).c_str());
  std::printf("  saving                    %14s  (%.1f%%)\n", format_usd(saving).c_str(),
              share(saving, rep.total.premium_cost));
  print_cache(rep.total);
}

// ---- HTML ----

// JSON safe inside <script>: no '<', '>' or '&' survives (they only occur inside strings).
std::string script_json(const Json& j) {
  std::string out;
  for (char c : dump(j)) {
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else out += c;
  }
  return out;
}

// Spend per time bucket, stacked by role and by model. Hourly buckets when the
// records span less than a day, else daily; every bucket from the first to the
// last is listed, empty ones included.
Json chart_data(const std::vector<CostRecord>& records, const Report& rep) {
  using namespace std::chrono;
  Json charts;
  const bool hourly = rep.first && (*rep.last - *rep.first) < hours{24};
  std::vector<Clock::time_point> buckets;
  if (rep.first) {
    const auto start = hourly ? floor<hours>(*rep.first) : Clock::time_point(floor<days>(*rep.first));
    const auto step = hourly ? Clock::duration(hours{1}) : Clock::duration(hours{24});
    for (auto t = start; t <= *rep.last; t += step) buckets.push_back(t);
  }
  Json labels = Json::array();
  for (auto t : buckets) labels.push_back(hourly ? format_hour(t) : format_day(t));
  const auto index = [&](Clock::time_point t) {
    const auto d = t - buckets.front();
    return static_cast<size_t>(hourly ? duration_cast<hours>(d).count() : duration_cast<hours>(d).count() / 24);
  };
  const auto stacked = [&](const std::string& by) {
    std::map<std::string, std::vector<MicroUsd>> series;
    for (const CostRecord& r : records) {
      auto& v = series[key_of(r, by)];
      v.resize(buckets.size(), 0);
      v[index(r.time)] += r.cost;
    }
    Json out = Json::array();
    for (const auto& [key, values] : series) out.push_back({{"key", key}, {"values", values}});
    return out;
  };
  charts["bucket"] = hourly ? "hour" : "day";
  charts["labels"] = labels;
  charts["by_role"] = stacked("role");
  charts["by_model"] = stacked("model");
  charts["premium"] = Json::array({{{"key", "routed"}, {"value", rep.total.cost}},
                                   {{"key", "all on " + rep.premium_tier + " (" + rep.premium_model + ")"},
                                    {"value", rep.total.premium_cost}}});
  return charts;
}

// Draws every chart from the embedded data; each svg gets data-drawn = its bar count.
const char* kScript = R"js(
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  // The inline <svg> elements carry the SVG namespace: no URL is written anywhere in the page.
  var NS = document.getElementById('chart-spend-by-role').namespaceURI;
  var COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, s, anchor) {
    var t = el('text', {x: x, y: y, 'font-size': 11, 'text-anchor': anchor || 'start'}, parent);
    t.textContent = s;
    return t;
  }
  function usd(micro) { return '$' + (micro / 1e6).toFixed(micro >= 1e8 ? 0 : 2); }
  var W = 760, H = 300, L = 70, R = 170, T = 20, B = 60;
  function stacked(id, series, labels) {
    var svg = document.getElementById(id);
    var totals = labels.map(function (_, i) {
      return series.reduce(function (s, x) { return s + x.values[i]; }, 0);
    });
    var max = Math.max.apply(null, [0].concat(totals)) || 1;
    var plotW = W - L - R, plotH = H - T - B, n = Math.max(labels.length, 1);
    var bw = plotW / n, drawn = 0;
    el('line', {x1: L, y1: T + plotH, x2: L + plotW, y2: T + plotH, stroke: '#333'}, svg);
    el('line', {x1: L, y1: T, x2: L, y2: T + plotH, stroke: '#333'}, svg);
    text(svg, L - 6, T + 4, usd(max), 'end');
    text(svg, L - 6, T + plotH, usd(0), 'end');
    labels.forEach(function (label, i) {
      var y = T + plotH;
      series.forEach(function (s, k) {
        var v = s.values[i];
        if (v <= 0) return;
        var h = v / max * plotH;
        y -= h;
        var r = el('rect', {x: L + i * bw + bw * 0.1, y: y, width: bw * 0.8, height: h, fill: COLORS[k % COLORS.length]}, svg);
        el('title', {}, r).textContent = s.key + ' ' + label + ': ' + usd(v);
        drawn++;
      });
      var every = Math.ceil(n / 12);
      if (i % every === 0) text(svg, L + i * bw + bw / 2, T + plotH + 14, label, 'middle');
    });
    series.forEach(function (s, k) {
      el('circle', {cx: W - R + 16, cy: T + 8 + k * 16, r: 5, fill: COLORS[k % COLORS.length]}, svg);
      text(svg, W - R + 26, T + 12 + k * 16, s.key);
    });
    svg.setAttribute('data-drawn', String(drawn));
  }
  function bars(id, items) {
    var svg = document.getElementById(id);
    var max = Math.max.apply(null, [0].concat(items.map(function (x) { return x.value; }))) || 1;
    var plotW = W - L - R, plotH = H - T - B, bw = plotW / items.length, drawn = 0;
    el('line', {x1: L, y1: T + plotH, x2: L + plotW, y2: T + plotH, stroke: '#333'}, svg);
    items.forEach(function (item, i) {
      var h = item.value / max * plotH;
      var r = el('rect', {x: L + i * bw + bw * 0.2, y: T + plotH - h, width: bw * 0.6, height: h, fill: COLORS[i]}, svg);
      el('title', {}, r).textContent = item.key + ': ' + usd(item.value);
      text(svg, L + i * bw + bw / 2, T + plotH + 14, item.key, 'middle');
      text(svg, L + i * bw + bw / 2, T + plotH - h - 4, usd(item.value), 'middle');
      drawn++;
    });
    svg.setAttribute('data-drawn', String(drawn));
  }
  stacked('chart-spend-by-role', data.by_role, data.labels);
  stacked('chart-spend-by-model', data.by_model, data.labels);
  bars('chart-routed-vs-premium', data.premium);
})();
)js";

std::string html_row(const std::string& key, const Group& g, MicroUsd total_cost, bool total) {
  char share_buf[32];
  std::snprintf(share_buf, sizeof share_buf, "%.1f%%", share(g.cost, total_cost));
  std::string cells[] = {std::to_string(g.calls),
                         std::to_string(g.usage.input_tokens),
                         std::to_string(g.usage.cached_input_tokens),
                         std::to_string(g.usage.output_tokens),
                         std::to_string(g.usage.reasoning_tokens),
                         format_usd(g.cost),
                         share_buf,
                         std::to_string(g.percentile(50)),
                         std::to_string(g.percentile(95))};
  std::string row = total ? "<tr class=\"total\"><th>" : "<tr><th>";
  row += escape_html(key) + "</th>";
  for (const std::string& c : cells) row += "<td>" + escape_html(c) + "</td>";
  return row + "</tr>\n";
}

std::string render_html(const Report& rep, const Json& charts, const ReportOptions& o) {
  const MicroUsd saving = rep.total.premium_cost - rep.total.cost;
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.1f%%", share(saving, rep.total.premium_cost));
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  h += "<title>Switchboard report: " + escape_html(o.ledger) + "</title>\n";
  h += "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
       "th,td{padding:4px 10px;border-bottom:1px solid #ddd}td{text-align:right}th{text-align:left}"
       "tr.total{font-weight:bold}svg{display:block;margin:1em 0;border:1px solid #eee}</style>\n";
  h += "</head><body>\n<h1>Switchboard report</h1>\n";
  h += "<p>Ledger " + escape_html(o.ledger);
  if (!o.since.empty()) h += ", since " + escape_html(o.since);
  if (!o.until.empty()) h += ", until " + escape_html(o.until);
  h += "</p>\n<table id=\"report-table\">\n<tr><th>" + escape_html(rep.by) +
       "</th><th>calls</th><th>input</th><th>cached</th><th>output</th><th>reasoning</th>"
       "<th>spend</th><th>share</th><th>p50 ms</th><th>p95 ms</th></tr>\n";
  for (const auto& [key, g] : rep.groups) h += html_row(key, g, rep.total.cost, false);
  h += html_row("total", rep.total, rep.total.cost, true);
  h += "</table>\n<p id=\"statuses\">status: ";
  for (CallStatus s : kStatuses) {
    auto it = rep.total.statuses.find(s);
    h += escape_html(std::string(to_string(s))) + " " +
         std::to_string(it == rep.total.statuses.end() ? 0 : it->second) + " ";
  }
  h += "</p>\n<p id=\"premium\">routed " + escape_html(format_usd(rep.total.cost)) + "; all on '" +
       escape_html(rep.premium_tier) + "' (" + escape_html(rep.premium_model) + ") " +
       escape_html(format_usd(rep.total.premium_cost)) + "; saving " + escape_html(format_usd(saving)) + " (" + pct +
       ")</p>\n";
  const std::string per = charts["bucket"].get<std::string>();
  h += "<h2>Spend by role, per " + per + "</h2>\n";
  h += "<svg id=\"chart-spend-by-role\" width=\"760\" height=\"300\"></svg>\n";
  h += "<h2>Spend by model, per " + per + "</h2>\n";
  h += "<svg id=\"chart-spend-by-model\" width=\"760\" height=\"300\"></svg>\n";
  h += "<h2>Routed vs all on premium</h2>\n";
  h += "<svg id=\"chart-routed-vs-premium\" width=\"760\" height=\"300\"></svg>\n";
  h += "<script type=\"application/json\" id=\"report-data\">" + script_json(charts) + "</script>\n";
  h += "<script>" + std::string(kScript) + "</script>\n</body></html>\n";
  return h;
}

// Groups `records` by `by` (workload, role, model or tier) and prices each
// one's tokens on the premium tier's first model too.
Result<Report> build_report(const Config& config, const std::vector<CostRecord>& records, const std::string& by) {
  const Tier* premium_tier = config.find_tier(config.premium_tier);
  if (premium_tier == nullptr || premium_tier->models.empty()) {
    return Status::invalid_argument(config.path + ": premium tier '" + config.premium_tier + "' has no model");
  }
  Report rep;
  rep.by = by;
  rep.premium_tier = config.premium_tier;
  rep.premium_model = premium_tier->models.front();
  std::map<std::string, Group> groups;
  for (const CostRecord& r : records) {
    auto premium = config.prices->cost(rep.premium_model, r.usage);
    if (!premium.ok()) return premium.status();
    const CacheEffect cache = cache_effect(config, r);
    groups[key_of(r, by)].add(r, *premium, cache);
    rep.total.add(r, *premium, cache);
    if (r.overrun() > 0) rep.overruns.push_back(r);
    if (!rep.first || r.time < *rep.first) rep.first = r.time;
    if (!rep.last || r.time > *rep.last) rep.last = r.time;
  }
  rep.groups.assign(groups.begin(), groups.end());
  std::stable_sort(rep.groups.begin(), rep.groups.end(),
                   [](const auto& a, const auto& b) { return a.second.cost > b.second.cost; });
  return rep;
}

int run_report(const ReportOptions& o) {
  LedgerQuery query;
  if (!o.since.empty()) {
    auto t = parse_time("--since", o.since);
    if (!t.ok()) {
      std::cerr << t.status().message() << "\n";
      return 2;
    }
    query.since = *t;
  }
  if (!o.until.empty()) {
    auto t = parse_time("--until", o.until);
    if (!t.ok()) {
      std::cerr << t.status().message() << "\n";
      return 2;
    }
    query.until = *t;
  }
  if (query.since && query.until && *query.until <= *query.since) {
    std::cerr << "--until '" << o.until << "' must be later than --since '" << o.since << "'\n";
    return 2;
  }
  // The verdicts carry their own costs: no config needed.
  if (o.quality) return print_quality_report(o.ledger, query, o.since, o.until, o.json);
  auto config = load_config(o.config_path);
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 2;
  }
  if (o.shadow) return print_shadow_report(*config, o.ledger, query, o.since, o.until, o.json);
  auto records = read_ledger(o.ledger, query);
  if (!records.ok()) {
    std::cerr << records.status().message() << "\n";
    return 2;
  }

  auto built = build_report(*config, *records, o.by);
  if (!built.ok()) {
    std::cerr << built.status().message() << "\n";
    return 2;
  }
  const Report& rep = *built;
  // The input-token estimates against the bills, with the factors stored in
  // this ledger (calibration.h); only calls that carry the engine's count.
  auto factors = read_token_factors(o.ledger);
  if (!factors.ok()) {
    std::cerr << factors.status().message() << "\n";
    return 2;
  }
  apply_token_factors(*config, *factors);
  const std::vector<TokenEstimateRow> estimates = token_estimates(*config, *records);

  if (!o.html.empty()) {
    std::ofstream out(o.html, std::ios::binary | std::ios::trunc);
    out << render_html(rep, chart_data(*records, rep), o);
    out.close();
    if (!out) {
      std::cerr << o.html << ": cannot write the HTML report\n";
      return 2;
    }
  }
  if (o.json) {
    Json j = report_json(rep, o);
    if (!estimates.empty()) j["token_estimates"] = token_estimates_json(estimates);
    std::cout << dump(j) << "\n";
  } else {
    print_text(rep);
    print_token_estimates(estimates);
    if (!o.html.empty()) std::printf("\nwrote %s\n", o.html.c_str());
  }
  return 0;
}

}  // namespace

Status print_report(const Config& config, const std::vector<CostRecord>& records, const std::vector<std::string>& by) {
  for (size_t i = 0; i < by.size(); ++i) {
    auto rep = build_report(config, records, by[i]);
    if (!rep.ok()) return rep.status();
    if (i > 0) std::printf("\n");
    if (i + 1 < by.size()) {
      std::printf("%-20s %7s %12s %12s %12s %12s %14s %7s %8s %8s\n", rep->by.c_str(), "calls", "input", "cached",
                  "output", "reasoning", "spend", "share", "p50 ms", "p95 ms");
      for (const auto& [key, g] : rep->groups) print_row(key, g, rep->total.cost);
      print_row("total", rep->total, rep->total.cost);
    } else {
      print_text(*rep);  // the last table ends with the totals and the premium comparison
    }
  }
  return Status();
}

Command add_report(CLI::App& app) {
  auto* cmd = app.add_subcommand("report", "Spend, tokens, latency and statuses from a ledger (SQLite or PostgreSQL)");
  auto o = std::make_shared<ReportOptions>();
  cmd->add_option("LEDGER", o->ledger, "SQLite ledger or postgresql:// URL")->required();
  cmd->add_option("--config", o->config_path, "Configuration file (its price catalog and premium tier)")
      ->capture_default_str();
  cmd->add_option("--since", o->since, "First time included: 2026-11-01 or 2026-11-01T12:00:00Z (UTC)");
  cmd->add_option("--until", o->until, "First time excluded: 2026-11-02 or 2026-11-01T18:00:00Z (UTC)");
  CLI::Option* by = cmd->add_option("--by", o->by, "Group by")
                        ->check(CLI::IsMember({"workload", "role", "model", "tier"}))
                        ->capture_default_str();
  cmd->add_flag("--json", o->json, "One JSON object");
  CLI::Option* html = cmd->add_option("--html", o->html, "Also write a self-contained HTML page with charts");
  CLI::Option* quality =
      cmd->add_flag("--quality", o->quality,
                    "The judged shadow calls instead ([workloads.X] shadow_calls): per workload, role and tier, "
                    "how often the routed answer matched or beat the target's, with intervals, and both costs")
          ->excludes(by)
          ->excludes(html);
  cmd->add_flag("--shadow", o->shadow,
                "The shadow rules instead: agreement with the active rules, disagreements and what they "
                "would have cost (an estimate), per workload and shadow rules version")
      ->excludes(by)
      ->excludes(html)
      ->excludes(quality);
  return [o]() { return run_report(*o); };
}

}  // namespace switchboard::cli
