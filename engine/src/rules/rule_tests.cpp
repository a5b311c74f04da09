#include "switchboard/rule_tests.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "rules/decide.h"
#include "util/file_text.h"
#include "rules/rule_test_runner.h"
#include "util/toml.h"

namespace switchboard {

namespace fs = std::filesystem;
using detail::CallProbe;
using detail::ConfigError;
using detail::RuleTestRun;
using detail::where;
using detail::WorkloadRules;

namespace {

constexpr std::string_view kSuffix = ".test.toml";

bool is_test_file(const fs::path& p) {
  const std::string name = p.filename().string();
  return name.size() > kSuffix.size() && name.ends_with(kSuffix);
}

std::vector<std::string> collect(const Config& config, const std::vector<std::string>& paths) {
  std::vector<std::string> roots = paths;
  if (roots.empty()) {
    for (const auto& [name, w] : config.workloads) {
      roots.push_back(fs::path(w.rules_file).parent_path().string());
    }
  }
  std::vector<std::string> files;
  for (const std::string& root : roots) {
    std::error_code ec;
    if (fs::is_directory(root, ec)) {
      for (const auto& entry : fs::directory_iterator(root, ec)) {
        if (entry.is_regular_file() && is_test_file(entry.path())) files.push_back(entry.path().string());
      }
    } else {
      files.push_back(root);
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

Step read_step(const toml::node& node, const std::string& file) {
  const toml::table& t = detail::expect_table(node, file, "step");
  detail::reject_unknown_keys(t, file, "step",
                              {"role", "input_tokens", "prompt", "expected_output_tokens",
                               "needs_chain_of_thought", "output_must_be_json", "untrusted_input",
                               "tool_depth", "turns", "has_tools", "tool_names", "last_tool", "has_images",
                               "has_documents", "agent", "session_id", "meta"});
  Step step;
  step.role = detail::required_string(t, "role", file, "step");
  step.prompt = detail::optional_string(t, "prompt", file, "step");
  step.input_tokens = detail::optional_integer(t, "input_tokens", file, "step");
  step.expected_output_tokens = detail::optional_integer(t, "expected_output_tokens", file, "step");
  step.tool_depth = detail::optional_integer(t, "tool_depth", file, "step").value_or(0);
  step.turns = detail::optional_integer(t, "turns", file, "step").value_or(0);
  step.last_tool = detail::optional_string(t, "last_tool", file, "step").value_or("");
  step.agent = detail::optional_string(t, "agent", file, "step").value_or("");
  step.session_id = detail::optional_string(t, "session_id", file, "step").value_or("");
  for (auto& [name, at] : detail::optional_string_array(t, "tool_names", file, "step")) {
    step.tool_names.push_back(std::move(name));
  }
  auto flag = [&](std::string_view key) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    if (!n->is_boolean()) throw ConfigError(where(file, *n) + ": step: '" + std::string(key) + "' must be true or false");
    return *n->value<bool>();
  };
  step.needs_chain_of_thought = flag("needs_chain_of_thought");
  step.output_must_be_json = flag("output_must_be_json");
  step.untrusted_input = flag("untrusted_input");
  step.has_tools = flag("has_tools");
  step.has_images = flag("has_images");
  step.has_documents = flag("has_documents");
  if (const toml::node* meta = t.get("meta")) {
    for (const auto& [key, value] : detail::expect_table(*meta, file, "step.meta")) {
      std::string k(key.str());
      if (value.is_string()) step.meta.emplace_back(k, *value.value<std::string>());
      else if (value.is_integer()) step.meta.emplace_back(k, *value.value<std::int64_t>());
      else if (value.is_floating_point()) step.meta.emplace_back(k, *value.value<double>());
      else if (value.is_boolean()) step.meta.emplace_back(k, *value.value<bool>());
      else throw ConfigError(where(file, value) + ": step.meta." + k + " must be a string, number or boolean");
    }
  }
  return step;
}

// A case's ctx: what the call context says, and the session the rules see.
struct CaseContext {
  CallContext call;
  std::optional<SessionView> session;  // ctx.session; unset: nil
};

// ctx.session = { id, last_model, turn, cached_tokens = { MODEL = N } }: the
// session as the book would show it (id defaults to the step's session_id,
// else "test-session"). Without it, a step with a session_id gets a new
// session (no last model, turn 0, every cache cold), as in Engine::decide.
SessionView read_session(const toml::node& node, const Step& step, const std::string& file) {
  const toml::table& t = detail::expect_table(node, file, "ctx.session");
  detail::reject_unknown_keys(t, file, "ctx.session", {"id", "last_model", "turn", "cached_tokens"});
  SessionView s;
  s.id = detail::optional_string(t, "id", file, "ctx.session")
             .value_or(step.session_id.empty() ? "test-session" : step.session_id);
  s.last_model = detail::optional_string(t, "last_model", file, "ctx.session").value_or("");
  s.turns = detail::optional_integer(t, "turn", file, "ctx.session").value_or(0);
  if (s.turns < 0) throw ConfigError(where(file, *t.get("turn")) + ": ctx.session: 'turn' must not be negative");
  if (const toml::node* cached = t.get("cached_tokens")) {
    for (const auto& [key, value] : detail::expect_table(*cached, file, "ctx.session.cached_tokens")) {
      const std::optional<std::int64_t> n = value.value<std::int64_t>();
      if (!value.is_integer() || !n || *n < 0) {
        throw ConfigError(where(file, value) + ": ctx.session.cached_tokens." + std::string(key.str()) +
                          " must be a whole number of tokens, 0 or more");
      }
      if (*n > 0) s.cached_tokens.emplace_back(std::string(key.str()), *n);
    }
    std::sort(s.cached_tokens.begin(), s.cached_tokens.end());
  }
  return s;
}

CaseContext read_ctx(const toml::node* node, const Step& step, const std::string& file) {
  CaseContext out;
  if (!step.session_id.empty()) out.session.emplace().id = step.session_id;
  if (node == nullptr) return out;
  CallContext& ctx = out.call;
  const toml::table& t = detail::expect_table(*node, file, "ctx");
  detail::reject_unknown_keys(t, file, "ctx",
                              {"budget_left_usd", "spent_usd", "session", "rate_requests_left", "rate_tokens_left"});
  auto usd = [&](std::string_view key) -> std::optional<MicroUsd> {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    std::optional<double> v = n->value<double>();
    if (!v) throw ConfigError(where(file, *n) + ": ctx: '" + std::string(key) + "' must be a number");
    return std::llround(*v * 1e6);
  };
  ctx.budget_left = usd("budget_left_usd");
  ctx.spent = usd("spent_usd");
  ctx.rate_requests_left = detail::optional_integer(t, "rate_requests_left", file, "ctx");
  ctx.rate_tokens_left = detail::optional_integer(t, "rate_tokens_left", file, "ctx");
  if (const toml::node* session = t.get("session")) out.session = read_session(*session, step, file);
  return out;
}

// Compares a decision with `expect`; returns "" when it matches.
std::string compare(const toml::table& expect, const Decision& d, const std::string& file) {
  detail::reject_unknown_keys(expect, file, "expect",
                              {"tier", "model", "reasoning", "pin_reasoning", "fanout", "max_output_tokens",
                               "aggregate", "reason_contains", "error"});
  std::string diff;
  auto mismatch = [&](std::string_view key, const std::string& want, const std::string& got) {
    diff += (diff.empty() ? "" : "; ") + std::string(key) + ": expected " + want + ", got " + got;
  };
  auto quoted = [](const std::string& s) { return "\"" + s + "\""; };
  auto text = [&](std::string_view key, const std::string& got) {
    if (auto want = detail::optional_string(expect, key, file, "expect"); want && *want != got) {
      mismatch(key, quoted(*want), quoted(got));
    }
  };
  text("tier", d.tier);
  text("model", d.model);
  text("aggregate", d.aggregate);
  const std::string reasoning = d.reasoning == Reasoning::kDefault ? "default" : std::string(to_string(d.reasoning));
  text("reasoning", reasoning);
  if (auto want = detail::optional_bool(expect, "pin_reasoning", file, "expect"); want && *want != d.reasoning_pinned) {
    mismatch("pin_reasoning", *want ? "true" : "false", d.reasoning_pinned ? "true" : "false");
  }
  if (auto want = detail::optional_integer(expect, "fanout", file, "expect"); want && *want != d.fanout) {
    mismatch("fanout", std::to_string(*want), std::to_string(d.fanout));
  }
  if (auto want = detail::optional_integer(expect, "max_output_tokens", file, "expect")) {
    if (!d.max_output_tokens || *want != *d.max_output_tokens) {
      mismatch("max_output_tokens", std::to_string(*want),
               d.max_output_tokens ? std::to_string(*d.max_output_tokens) : "none");
    }
  }
  if (auto want = detail::optional_string(expect, "reason_contains", file, "expect")) {
    if (d.reason.find(*want) == std::string::npos) mismatch("reason", "to contain " + quoted(*want), quoted(d.reason));
  }
  const toml::node* error = expect.get("error");
  const std::string got_error = d.error ? quoted(*d.error) : "no error";
  if (error == nullptr || (error->is_boolean() && !*error->value<bool>())) {
    if (d.error) mismatch("error", "none", got_error);
  } else if (error->is_string()) {
    const std::string want = *error->value<std::string>();
    if (!d.error || d.error->find(want) == std::string::npos) mismatch("error", "containing " + quoted(want), got_error);
  } else if (error->is_boolean()) {
    if (!d.error) mismatch("error", "an error", got_error);
  } else {
    throw ConfigError(where(file, *error) + ": expect: 'error' must be a string or a boolean");
  }
  return diff;
}

// The key a rules file is gathered under: its real path, so that two
// spellings of one file meet.
std::string file_key(const std::string& path) {
  std::error_code ec;
  const fs::path real = fs::weakly_canonical(path, ec);
  return ec ? path : real.string();
}

std::string trimmed(std::string_view s) {
  const size_t first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return "";
  return std::string(s.substr(first, s.find_last_not_of(" \t") - first + 1));
}

// Adds `lines` (ascending, distinct) to `into` (ascending, distinct).
void merge_lines(std::vector<int>& into, const std::vector<int>& lines) {
  std::vector<int> merged;
  merged.reserve(into.size() + lines.size());
  std::set_union(into.begin(), into.end(), lines.begin(), lines.end(), std::back_inserter(merged));
  into = std::move(merged);
}

// The coverage entry of a rules file, created with its executable lines on
// first use. Fails when the lines cannot be read (the source does not compile).
Result<RuleTestRun::Lines*> coverage_entry(const Config& config, RuleTestRun& run, const std::string& rules_file,
                                           const std::string& rules_name, const std::string& source) {
  const std::string key = file_key(rules_file);
  auto it = run.lines.find(key);
  if (it != run.lines.end()) return &it->second;
  auto executable = detail::executable_lines(config.sandbox, rules_name, source);
  if (!executable.ok()) return executable.status();
  RuleTestRun::Lines& entry = run.lines[key];
  entry.rules = rules_name;
  entry.source = source;
  entry.executable = std::move(executable).value();
  return &entry;
}

RuleCoverage coverage_of(const RuleTestRun::Lines& l) {
  RuleCoverage c;
  c.rules = l.rules;
  c.test_files = l.test_files;
  c.executable = static_cast<int>(l.executable.size());
  const std::vector<std::string_view> text = detail::text_lines(l.source);
  bool in_range = false;
  for (int line : l.executable) {
    if (std::binary_search(l.executed.begin(), l.executed.end(), line)) {
      ++c.executed;
      in_range = false;
    } else if (in_range) {
      c.missed.back().last = line;
    } else {
      c.missed.push_back({line, line, static_cast<size_t>(line) <= text.size() ? trimmed(text[line - 1]) : ""});
      in_range = true;
    }
  }
  return c;
}

// Adds a line to cost.over_budget when `measured` is over `limit`.
void check_limit(const std::optional<CostLimit>& limit, double measured, const char* unit, const char* key,
                 RuleCost& cost) {
  if (!limit || measured <= static_cast<double>(limit->value)) return;
  cost.over_budget.push_back(cost.rules + ": " + std::to_string(std::llround(measured)) + " " + unit +
                             " per call, over the budget of " + std::to_string(limit->value) + " (" + key +
                             " at " + limit->source + ")");
}

// Fields of `over` that are set replace those of `base`.
RuleCostBudget overlay(RuleCostBudget base, const RuleCostBudget& over) {
  if (over.max_instructions) base.max_instructions = over.max_instructions;
  if (over.max_bytes) base.max_bytes = over.max_bytes;
  if (over.max_ns) base.max_ns = over.max_ns;
  return base;
}

// The timing pass: mean ns per decision over the cases, the median of the
// rounds. Nothing is instrumented: these are the calls Engine::decide makes.
double time_cases(const Config& config, const Workload& workload, WorkloadRules& rules,
                  const std::vector<std::pair<Step, CaseContext>>& cases, const RuleTestOptions& options) {
  using Clock = std::chrono::steady_clock;
  std::vector<double> rounds;
  for (int r = 0; r < std::max(1, options.bench_rounds); ++r) {
    long calls = 0;
    const auto start = Clock::now();
    Clock::duration elapsed{};
    do {
      for (const auto& [step, ctx] : cases) {
        detail::decide_with(config, workload, rules, step, ctx.call, nullptr, nullptr, nullptr,
                            ctx.session ? &*ctx.session : nullptr);
        ++calls;
      }
      elapsed = Clock::now() - start;
    } while (calls < options.bench_round_calls || elapsed < options.bench_round_time);
    rounds.push_back(std::chrono::duration<double, std::nano>(elapsed).count() / static_cast<double>(calls));
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

}  // namespace

double RuleCoverage::percent() const {
  return executable == 0 ? 100.0 : 100.0 * static_cast<double>(executed) / static_cast<double>(executable);
}

void detail::run_rule_test_file(const Config& config, const std::string& file, RuleTestReport& report,
                                WorkloadRules* candidate, const Workload* given_workload, RuleTestRun* run) {
  auto fail_file = [&](const std::string& message) {
    report.failed++;
    report.failures.push_back({file, "", message});
  };
  // Coverage and cost are measured on the file's own rules, never on a reload candidate.
  const bool coverage = run != nullptr && candidate == nullptr && run->options.coverage;
  const bool bench = run != nullptr && candidate == nullptr && run->options.bench;
  try {
    toml::table root = toml::parse_file(file);
    detail::reject_unknown_keys(root, file, "the test file", {"workload", "rules", "case", "rule_cost"});
    RuleCostBudget own_budget;
    if (const toml::node* n = root.get("rule_cost")) detail::read_rule_cost(*n, file, own_budget);
    const fs::path dir = fs::path(file).parent_path();
    std::string stem = fs::path(file).filename().string();
    stem.resize(stem.size() - std::min(stem.size(), kSuffix.size()));

    // Which rules, and which workload's settings (fallback tier, budget).
    std::optional<std::string> rules = detail::optional_string(root, "rules", file, "the test file");
    std::optional<std::string> workload_name = detail::optional_string(root, "workload", file, "the test file");
    std::unique_ptr<WorkloadRules> own_rules;
    CallProbe load_probe;
    load_probe.lines = coverage;
    Workload workload;
    if (candidate != nullptr) {
      workload = *given_workload;
    } else {
      const std::string rules_file = (dir / (rules ? *rules : stem + ".lua")).lexically_normal().string();
      const Workload* configured = nullptr;
      if (workload_name) {
        configured = config.find_workload(*workload_name);
        if (configured == nullptr) {
          throw ConfigError(where(file, *root.get("workload")) + ": unknown workload '" + *workload_name + "'");
        }
      } else {
        for (const auto& [name, w] : config.workloads) {
          std::error_code ec;
          if (fs::equivalent(w.rules_file, rules_file, ec)) configured = &w;
        }
      }
      if (configured != nullptr) {
        workload = *configured;
      } else {
        workload.name = stem;
        workload.fallback_tier = config.default_fallback_tier;
      }
      std::error_code ec;
      // Name the rules as the config does when it is the workload's own file.
      if (configured == nullptr || !fs::equivalent(configured->rules_file, rules_file, ec)) {
        workload.rules_path = rules_file;
      }
      workload.rules_file = rules_file;
      if (run != nullptr) run->tested.insert(file_key(rules_file));
      auto text = read_text_file(rules_file, workload.rules_path + ": cannot read the file");
      if (!text.ok()) {
        fail_file(text.status().message());
        return;
      }
      auto compiled = WorkloadRules::compile(config.sandbox, workload.rules_path, std::move(text).value(),
                                             coverage ? &load_probe : nullptr);
      if (!compiled.ok()) {
        fail_file(compiled.status().message());
        return;
      }
      own_rules = std::move(compiled).value();
      candidate = own_rules.get();
    }

    const toml::node* cases = root.get("case");
    if (cases == nullptr || !cases->is_array_of_tables()) {
      throw ConfigError(file + ":1:1: the test file has no [[case]] tables");
    }
    report.files.push_back(file);
    std::vector<int> executed = load_probe.lines_hit;
    std::int64_t instructions = 0, bytes = 0;
    std::vector<std::pair<Step, CaseContext>> measured;
    for (const toml::node& node : *cases->as_array()) {
      const toml::table& c = *node.as_table();
      detail::reject_unknown_keys(c, file, "case", {"name", "step", "ctx", "expect"});
      const std::string name = detail::required_string(c, "name", file, "case");
      const toml::node* step_node = c.get("step");
      const toml::node* expect_node = c.get("expect");
      if (step_node == nullptr) throw ConfigError(where(file, c) + ": case '" + name + "' has no 'step'");
      if (expect_node == nullptr) throw ConfigError(where(file, c) + ": case '" + name + "' has no 'expect'");
      Step step = read_step(*step_node, file);
      CaseContext ctx = read_ctx(c.get("ctx"), step, file);
      CallProbe probe;
      probe.lines = coverage;
      probe.instructions = bench;
      const Decision decision = detail::decide_with(config, workload, *candidate, step, ctx.call, nullptr,
                                                    coverage || bench ? &probe : nullptr, nullptr,
                                                    ctx.session ? &*ctx.session : nullptr);
      if (coverage) merge_lines(executed, probe.lines_hit);
      if (bench && !decision.error) {  // a failed call (a kill costs the whole budget) is no measure
        instructions += probe.instruction_count;
        bytes += probe.bytes_allocated;
        measured.emplace_back(std::move(step), std::move(ctx));
      }
      const std::string diff = compare(detail::expect_table(*expect_node, file, "expect"), decision, file);
      if (diff.empty()) {
        report.passed++;
      } else {
        report.failed++;
        report.failures.push_back({file, name, where(file, c) + ": " + diff});
      }
    }
    if (coverage) {
      auto entry = coverage_entry(config, *run, workload.rules_file, workload.rules_path, candidate->source());
      if (!entry.ok()) {
        fail_file(entry.status().message());
      } else {
        (*entry)->test_files.push_back(file);
        merge_lines((*entry)->executed, executed);
      }
    }
    if (bench && !measured.empty()) {
      RuleCost cost;
      cost.rules = workload.rules_path;
      cost.test_file = file;
      cost.calls = static_cast<int>(measured.size());
      cost.instructions = static_cast<double>(instructions) / cost.calls;
      cost.bytes = static_cast<double>(bytes) / cost.calls;
      cost.ns = time_cases(config, workload, *candidate, measured, run->options);
      cost.budget = overlay(config.rule_cost, own_budget);
      check_limit(cost.budget.max_instructions, cost.instructions, "instructions", "max_instructions", cost);
      check_limit(cost.budget.max_bytes, cost.bytes, "bytes", "max_bytes", cost);
      check_limit(cost.budget.max_ns, cost.ns, "ns", "max_ns", cost);
      report.costs.push_back(std::move(cost));
    }
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    if (b.line == 0) {
      // toml++ could not read the file at all: there is no position to name.
      fail_file(file + ": cannot read the test file");
      return;
    }
    fail_file(file + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) + ": " +
              std::string(e.description()));
  } catch (const ConfigError& e) {
    fail_file(e.what());
  }
}

RuleTestReport run_rule_tests(const Config& config, const std::vector<std::string>& paths,
                              const RuleTestOptions& options) {
  RuleTestReport report;
  RuleTestRun run;
  run.options = options;
  for (const std::string& file : collect(config, paths)) {
    detail::run_rule_test_file(config, file, report, nullptr, nullptr, &run);
  }
  if (!options.coverage) return report;
  if (paths.empty()) {
    // A workload whose rules no test file names is covered by its file body alone.
    for (const auto& [name, w] : config.workloads) {
      if (run.tested.count(file_key(w.rules_file))) continue;
      auto fail = [&](const std::string& message) {
        report.failed++;
        report.failures.push_back({w.rules_file, "", message});
      };
      auto text = detail::read_text_file(w.rules_file, w.rules_path + ": cannot read the file");
      if (!text.ok()) {
        fail(text.status().message());
        continue;
      }
      CallProbe probe;
      probe.lines = true;
      auto box = detail::LuaSandbox::create(config.sandbox, w.rules_path, *text, &probe);
      if (!box.ok()) {
        fail(box.status().message());
        continue;
      }
      auto entry = coverage_entry(config, run, w.rules_file, w.rules_path, *text);
      if (!entry.ok()) {
        fail(entry.status().message());
        continue;
      }
      merge_lines((*entry)->executed, probe.lines_hit);
    }
  }
  for (const auto& [key, lines] : run.lines) report.coverage.push_back(coverage_of(lines));
  std::sort(report.coverage.begin(), report.coverage.end(),
            [](const RuleCoverage& a, const RuleCoverage& b) { return a.rules < b.rules; });
  return report;
}

}  // namespace switchboard
