// `switchboard report`: totals, shares, latency percentiles and the premium
// comparison from a SQLite ledger; the --html page rendered in headless Chromium.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>
#include <sstream>

#include "test_util.h"

#ifdef SWITCHBOARD_CLI

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

std::chrono::system_clock::time_point at(int day, int hour) {
  using namespace std::chrono;
  return sys_days{year{2026} / November / day} + hours{hour};
}

CostRecord call(std::chrono::system_clock::time_point time, const std::string& workload, const std::string& role,
                const std::string& tier, const std::string& model, Usage usage, MicroUsd cost,
                std::int64_t latency_ms, CallStatus status) {
  CostRecord r;
  r.time = time;
  r.trace_id = "t";
  r.call_id = "c";
  r.workload = workload;
  r.role = role;
  r.tier = tier;
  r.model = model;
  r.provider = "sim";
  r.rules_version = std::string(64, 'a');
  r.catalog_version = "test-1";
  r.latency_ms = latency_ms;
  r.usage = usage;
  r.cost = cost;
  r.status = status;
  return r;
}

// The second workload's name needs escaping in HTML.
const std::string kV = "v<i>&";

// Six calls over two days, priced with small_prices(): m-cheap $1/$0.10/$5,
// m-premium $15/$1.50/$75 (input/cached/output per Mtok; reasoning at the output rate).
// Costs on m-premium (the premium tier's first model), by hand:
//   1: 100k in + 10k out              = 1.50 + 0.75                = 2'250'000
//   2: 200k in + 100k cached + 20k out = 3.00 + 0.15 + 1.50        = 4'650'000 (routed on m-cheap: 0.20 + 0.01 + 0.10 = 310'000)
//   3: 100k in + 10k out + 10k reason  = 1.50 + 0.75 + 0.75        = 3'000'000 (m-cheap: 0.10 + 0.05 + 0.05 = 200'000)
//   4: 10k in + 1k out                 = 0.15 + 0.075              =   225'000
//   5: 1M in                           = 15.00                     = 15'000'000 (m-cheap: 1'000'000)
//   6: refused, no tokens              = 0
std::string write_ledger(const TempDir& dir) {
  const std::string path = (dir.path() / "ledger.db").string();
  auto sink = open_sqlite_ledger({.path = path});
  REQUIRE_MESSAGE(sink.ok(), sink.status().message());
  const CostRecord records[] = {
      call(at(1, 10), "w", "plan", "premium", "m-premium", {.input_tokens = 100'000, .output_tokens = 10'000},
           2'250'000, 100, CallStatus::kOk),
      call(at(1, 11), "w", "format", "cheap", "m-cheap",
           {.input_tokens = 200'000, .cached_input_tokens = 100'000, .output_tokens = 20'000}, 310'000, 200,
           CallStatus::kOk),
      call(at(1, 12), "w", "summarize", "cheap", "m-cheap",
           {.input_tokens = 100'000, .output_tokens = 10'000, .reasoning_tokens = 10'000}, 200'000, 300,
           CallStatus::kFallback),
      call(at(2, 9), kV, "plan", "premium", "m-premium", {.input_tokens = 10'000, .output_tokens = 1'000}, 225'000,
           400, CallStatus::kError),
      call(at(2, 10), kV, "format", "cheap", "m-cheap", {.input_tokens = 1'000'000}, 1'000'000, 500,
           CallStatus::kOk),
      call(at(2, 11), kV, "format", "cheap", "m-cheap", {}, 0, 0, CallStatus::kRefusedByBudget),
  };
  for (const CostRecord& r : records) REQUIRE((*sink)->write(r).ok());
  REQUIRE((*sink)->flush().ok());
  return path;
}

std::string report(const TempDir& dir, const std::string& ledger, const std::string& args, int expect_exit = 0) {
  dir.write("rules/w.lua", "function classify(step, ctx) return \"cheap\" end\n");
  const std::string config = switchboard::testing::write_small_config(dir);
  std::string out;
  const int rc = switchboard::testing::run_command(
      std::string(SWITCHBOARD_CLI) + " report '" + ledger + "' --config " + config + " " + args, out);
  CHECK_MESSAGE(rc == expect_exit, out);
  return out;
}

nlohmann::json report_json(const TempDir& dir, const std::string& ledger, const std::string& args = "") {
  const std::string out = report(dir, ledger, args + " --json");
  try {
    return nlohmann::json::parse(out);
  } catch (const std::exception& e) {
    FAIL("not JSON: " << std::string(e.what()) << "\n" << out);
  }
  return {};
}

const nlohmann::json& group(const nlohmann::json& j, const std::string& key) {
  for (const auto& g : j["groups"]) {
    if (g["key"] == key) return g;
  }
  FAIL("no group '" << key << "' in " << j.dump());
  static const nlohmann::json none;
  return none;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("report totals, shares, latency percentiles and the premium comparison by workload") {
  TempDir dir;
  const std::string ledger = write_ledger(dir);
  const auto j = report_json(dir, ledger);
  CHECK(j["by"] == "workload");
  const auto& t = j["total"];
  CHECK(t["calls"] == 6);
  CHECK(t["input_tokens"] == 1'410'000);
  CHECK(t["cached_input_tokens"] == 100'000);
  CHECK(t["output_tokens"] == 41'000);
  CHECK(t["reasoning_tokens"] == 10'000);
  CHECK(t["cost_micro_usd"] == 3'985'000);
  CHECK(t["cost_usd"].get<double>() == doctest::Approx(3.985));
  CHECK(t["share_percent"].get<double>() == doctest::Approx(100.0));
  // Nearest rank over [0, 100, 200, 300, 400, 500]: p50 is the 3rd, p95 the 6th.
  CHECK(t["p50_latency_ms"] == 200);
  CHECK(t["p95_latency_ms"] == 500);
  CHECK(t["statuses"]["ok"] == 3);
  CHECK(t["statuses"]["error"] == 1);
  CHECK(t["statuses"]["fallback"] == 1);
  CHECK(t["statuses"]["refused_by_budget"] == 1);

  REQUIRE(j["groups"].size() == 2);
  CHECK(j["groups"][0]["key"] == "w");  // most spend first
  const auto& w = group(j, "w");
  CHECK(w["calls"] == 3);
  CHECK(w["cost_micro_usd"] == 2'760'000);
  CHECK(w["share_percent"].get<double>() == doctest::Approx(100.0 * 2.76 / 3.985));
  CHECK(w["p50_latency_ms"] == 200);
  CHECK(w["p95_latency_ms"] == 300);
  CHECK(w["premium_micro_usd"] == 2'250'000 + 4'650'000 + 3'000'000);
  const auto& v = group(j, kV);
  CHECK(v["calls"] == 3);
  CHECK(v["cost_micro_usd"] == 1'225'000);
  CHECK(v["p50_latency_ms"] == 400);  // [0, 400, 500]
  CHECK(v["p95_latency_ms"] == 500);
  CHECK(v["statuses"]["refused_by_budget"] == 1);

  const auto& p = j["premium"];
  CHECK(p["tier"] == "premium");
  CHECK(p["model"] == "m-premium");
  CHECK(p["routed_micro_usd"] == 3'985'000);
  CHECK(p["all_premium_micro_usd"] == 25'125'000);
  CHECK(p["saving_micro_usd"] == 21'140'000);
  CHECK(p["saving_usd"].get<double>() == doctest::Approx(21.14));
  CHECK(p["saving_percent"].get<double>() == doctest::Approx(100.0 * 21.14 / 25.125));
}

TEST_CASE("report prints a table with a total row, statuses and the premium saving") {
  TempDir dir;
  const std::string ledger = write_ledger(dir);
  const std::string out = report(dir, ledger, "");
  CHECK(out.find("$3.985000") != std::string::npos);
  CHECK(out.find("69.3%") != std::string::npos);  // w: 2.76 / 3.985
  CHECK(out.find("30.7%") != std::string::npos);
  CHECK(out.find("status: ok 3 error 1 fallback 1 refused_by_budget 1") != std::string::npos);
  CHECK(out.find("$25.125000") != std::string::npos);
  CHECK(out.find("$21.140000  (84.1%)") != std::string::npos);
  CHECK(std::regex_search(out, std::regex(R"(\ntotal +6 +1410000 +100000 +41000 +10000 +\$3\.985000 +100\.0% +200 +500\n)")));
}

TEST_CASE("report counts a cancelled call's cost as spend and lists it among the statuses") {
  TempDir dir;
  const std::string ledger = (dir.path() / "cancelled.db").string();
  {
    auto sink = open_sqlite_ledger({.path = ledger});
    REQUIRE_MESSAGE(sink.ok(), sink.status().message());
    CostRecord cut = call(at(1, 11), "w", "plan", "premium", "m-premium",
                          {.input_tokens = 100'000, .output_tokens = 2'000}, 1'650'000, 900, CallStatus::kCancelled);
    cut.usage_estimated = true;
    cut.error = "cancelled: the client disconnected";
    REQUIRE((*sink)->write(call(at(1, 10), "w", "format", "cheap", "m-cheap", {.input_tokens = 1'000'000},
                                1'000'000, 100, CallStatus::kOk))
                .ok());
    REQUIRE((*sink)->write(cut).ok());
    REQUIRE((*sink)->flush().ok());
  }
  const auto j = report_json(dir, ledger);
  CHECK(j["total"]["calls"] == 2);
  CHECK(j["total"]["cost_micro_usd"] == 2'650'000);
  CHECK(j["total"]["statuses"]["ok"] == 1);
  CHECK(j["total"]["statuses"]["cancelled"] == 1);
  CHECK(group(j, "w")["statuses"]["cancelled"] == 1);
  // 1.50 + 0.15 on m-premium as recorded, and the 1M cheap input at 15.00.
  CHECK(j["premium"]["all_premium_micro_usd"] == 16'650'000);
  const std::string out = report(dir, ledger, "");
  CHECK(out.find("status: ok 1 error 0 fallback 0 refused_by_budget 0 cancelled 1") != std::string::npos);
  CHECK(out.find("$2.650000") != std::string::npos);
}

TEST_CASE("report --by role, model and tier") {
  TempDir dir;
  const std::string ledger = write_ledger(dir);
  const auto role = report_json(dir, ledger, "--by role");
  CHECK(role["by"] == "role");
  REQUIRE(role["groups"].size() == 3);
  CHECK(group(role, "plan")["cost_micro_usd"] == 2'475'000);
  CHECK(group(role, "plan")["premium_micro_usd"] == 2'475'000);
  CHECK(group(role, "format")["cost_micro_usd"] == 1'310'000);
  CHECK(group(role, "format")["calls"] == 3);
  CHECK(group(role, "format")["p50_latency_ms"] == 200);  // [0, 200, 500]
  CHECK(group(role, "summarize")["reasoning_tokens"] == 10'000);
  CHECK(role["groups"][2]["key"] == "summarize");

  const auto model = report_json(dir, ledger, "--by model");
  REQUIRE(model["groups"].size() == 2);
  CHECK(group(model, "m-premium")["cost_micro_usd"] == 2'475'000);
  CHECK(group(model, "m-cheap")["cost_micro_usd"] == 1'510'000);
  CHECK(group(model, "m-cheap")["premium_micro_usd"] == 4'650'000 + 3'000'000 + 15'000'000);

  const auto tier = report_json(dir, ledger, "--by tier");
  REQUIRE(tier["groups"].size() == 2);
  CHECK(group(tier, "premium")["calls"] == 2);
  CHECK(group(tier, "cheap")["calls"] == 4);
  CHECK(tier["total"]["cost_micro_usd"] == 3'985'000);

  report(dir, ledger, "--by provider", 105);  // CLI11's validation error
}

TEST_CASE("report --since (included) and --until (excluded) take dates and RFC 3339 UTC times") {
  TempDir dir;
  const std::string ledger = write_ledger(dir);
  const auto day2 = report_json(dir, ledger, "--since 2026-11-02");
  CHECK(day2["total"]["calls"] == 3);
  CHECK(day2["total"]["cost_micro_usd"] == 1'225'000);
  CHECK(day2["premium"]["all_premium_micro_usd"] == 15'225'000);
  CHECK(day2["since"] == "2026-11-02");

  const auto morning = report_json(dir, ledger, "--until 2026-11-01T11:30:00Z");
  CHECK(morning["total"]["calls"] == 2);
  CHECK(morning["total"]["cost_micro_usd"] == 2'560'000);

  const auto window = report_json(dir, ledger, "--since 2026-11-01T11:00:00.000Z --until 2026-11-02T10:00:00+00:00");
  CHECK(window["total"]["calls"] == 3);  // 11:00 included, 10:00 the next day excluded
  CHECK(window["total"]["cost_micro_usd"] == 735'000);

  const auto none = report_json(dir, ledger, "--since 2026-12-01");
  CHECK(none["total"]["calls"] == 0);
  CHECK(none["groups"].empty());
  CHECK(none["premium"]["saving_percent"] == 0.0);
}

TEST_CASE("report rejects a bad date and a missing ledger with a clear error") {
  TempDir dir;
  const std::string ledger = write_ledger(dir);
  std::string out = report(dir, ledger, "--since 2026-13-01", 2);
  CHECK(out.find("--since: '2026-13-01'") != std::string::npos);
  CHECK(out.find("2026-11-01T12:34:56Z") != std::string::npos);
  out = report(dir, ledger, "--until yesterday", 2);
  CHECK(out.find("--until: 'yesterday' is not a date or an RFC 3339 UTC time") != std::string::npos);
  out = report(dir, ledger, "--since 2026-02-30", 2);
  CHECK(out.find("not a valid calendar date") != std::string::npos);
  out = report(dir, ledger, "--since 2026-11-01T12:00:00+02:00", 2);  // UTC only
  CHECK(out.find("--since:") != std::string::npos);
  out = report(dir, ledger, "--since 2026-11-02 --until 2026-11-01", 2);
  CHECK(out.find("must be later than --since") != std::string::npos);
  const std::string missing = (dir.path() / "nope.db").string();
  out = report(dir, missing, "", 2);
  CHECK(out.find("nope.db") != std::string::npos);
  CHECK(!std::filesystem::exists(missing));
}

namespace {

// Renders `html_path` in headless Chromium and returns the DOM after its scripts ran.
// Fails (never skips) when chromium is not installed.
std::string render_in_chromium(const TempDir& dir, const std::string& html_path) {
  std::string which;
  REQUIRE_MESSAGE(switchboard::testing::run_command("command -v chromium", which) == 0,
                  "chromium is not installed: the --html check needs Debian's chromium package "
                  "(scripts/deps.sh installs it; apt-get install -y chromium)");
  const std::string profile = (dir.path() / "chromium-profile").string();
  const std::string errors = (dir.path() / "chromium.log").string();
  std::string dom;
  const int rc = switchboard::testing::run_command(
      "{ timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-component-update --disable-sync --no-first-run --user-data-dir=" + profile +
      " --dump-dom 'file://" + html_path + "' 2>" + errors + "; }", dom);
  REQUIRE_MESSAGE(rc == 0, "chromium exited " << rc << " (124: timed out): " << read_file(errors));
  return dom;
}

// Each chart's svg says it drew `marks` marks (data-drawn) and holds that many <rect>s.
void check_charts(const std::string& dom, const std::vector<std::pair<std::string, int>>& charts) {
  for (const auto& [id, marks] : charts) {
    CAPTURE(id);
    const size_t at_id = dom.find("id=\"" + id + "\"");
    REQUIRE_MESSAGE(at_id != std::string::npos, dom);
    const size_t open = dom.rfind("<svg", at_id);
    const size_t open_end = dom.find('>', at_id);
    const size_t close = dom.find("</svg>", at_id);
    REQUIRE(open != std::string::npos);
    REQUIRE(close != std::string::npos);
    const std::string tag = dom.substr(open, open_end - open);
    std::smatch m;
    const std::regex drawn(R"re(data-drawn="(\d+)")re");
    REQUIRE_MESSAGE(std::regex_search(tag, m, drawn), "not drawn: " << tag);
    CHECK(std::stoi(m[1].str()) == marks);
    CHECK(marks > 0);
    const std::string body = dom.substr(open, close - open);
    int rects = 0;
    for (size_t p = body.find("<rect"); p != std::string::npos; p = body.find("<rect", p + 1)) ++rects;
    CHECK(rects == marks);
  }
}

}  // namespace

TEST_CASE("report --html draws its charts in headless Chromium") {
  TempDir dir;
  const std::string ledger = write_ledger(dir);
  const std::string html_path = (dir.path() / "report.html").string();
  report(dir, ledger, "--html " + html_path);
  const std::string html = read_file(html_path);
  REQUIRE(!html.empty());
  // Self-contained and escaped: no URL, no external resource, the workload name as text.
  CHECK(html.find("http") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("href") == std::string::npos);
  CHECK(html.find("<i>") == std::string::npos);
  CHECK(html.find("v&lt;i&gt;&amp;") != std::string::npos);

  // Daily bars (the ledger spans 25 hours). Marks: by role, day 1 plan/format/summarize and
  // day 2 plan/format (the refused call costs $0: no bar); by model, two per day; routed vs premium, two.
  const std::string dom = render_in_chromium(dir, html_path);
  check_charts(dom, {{"chart-spend-by-role", 5}, {"chart-spend-by-model", 4}, {"chart-routed-vs-premium", 2}});
  CHECK(dom.find(">2026-11-01</text>") != std::string::npos);
  CHECK(dom.find("v&lt;i&gt;&amp;") != std::string::npos);  // still text after rendering

  // Day 2 alone spans two hours: hourly bars, 09:00 plan, 10:00 format, 11:00 none (the $0 call).
  const std::string day2 = (dir.path() / "day2.html").string();
  report(dir, ledger, "--since 2026-11-02 --html " + day2);
  const std::string dom2 = render_in_chromium(dir, day2);
  check_charts(dom2, {{"chart-spend-by-role", 2}, {"chart-spend-by-model", 2}, {"chart-routed-vs-premium", 2}});
  CHECK(dom2.find(">2026-11-02T09:00Z</text>") != std::string::npos);
  CHECK(dom2.find(">2026-11-02T11:00Z</text>") != std::string::npos);
}

#endif  // SWITCHBOARD_CLI
