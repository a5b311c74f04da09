#include "switchboard/rule_tests.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "decide.h"
#include "file_text.h"
#include "rule_test_runner.h"
#include "toml_util.h"

namespace switchboard {

namespace fs = std::filesystem;
using detail::ConfigError;
using detail::where;

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
                               "tool_depth", "meta"});
  Step step;
  step.role = detail::required_string(t, "role", file, "step");
  step.prompt = detail::optional_string(t, "prompt", file, "step");
  step.input_tokens = detail::optional_integer(t, "input_tokens", file, "step");
  step.expected_output_tokens = detail::optional_integer(t, "expected_output_tokens", file, "step");
  step.tool_depth = detail::optional_integer(t, "tool_depth", file, "step").value_or(0);
  auto flag = [&](std::string_view key) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    if (!n->is_boolean()) throw ConfigError(where(file, *n) + ": step: '" + std::string(key) + "' must be true or false");
    return *n->value<bool>();
  };
  step.needs_chain_of_thought = flag("needs_chain_of_thought");
  step.output_must_be_json = flag("output_must_be_json");
  step.untrusted_input = flag("untrusted_input");
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

CallContext read_ctx(const toml::node* node, const std::string& file) {
  CallContext ctx;
  if (node == nullptr) return ctx;
  const toml::table& t = detail::expect_table(*node, file, "ctx");
  detail::reject_unknown_keys(t, file, "ctx", {"budget_left_usd", "spent_usd"});
  auto usd = [&](std::string_view key) -> std::optional<MicroUsd> {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    std::optional<double> v = n->value<double>();
    if (!v) throw ConfigError(where(file, *n) + ": ctx: '" + std::string(key) + "' must be a number");
    return std::llround(*v * 1e6);
  };
  ctx.budget_left = usd("budget_left_usd");
  ctx.spent = usd("spent_usd");
  return ctx;
}

// Compares a decision with `expect`; returns "" when it matches.
std::string compare(const toml::table& expect, const Decision& d, const std::string& file) {
  detail::reject_unknown_keys(expect, file, "expect",
                              {"tier", "model", "reasoning", "fanout", "max_output_tokens",
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

}  // namespace

void detail::run_rule_test_file(const Config& config, const std::string& file, RuleTestReport& report,
                                WorkloadRules* candidate, const Workload* given_workload) {
  auto fail_file = [&](const std::string& message) {
    report.failed++;
    report.failures.push_back({file, "", message});
  };
  try {
    toml::table root = toml::parse_file(file);
    detail::reject_unknown_keys(root, file, "the test file", {"workload", "rules", "case"});
    const fs::path dir = fs::path(file).parent_path();
    std::string stem = fs::path(file).filename().string();
    stem.resize(stem.size() - std::min(stem.size(), kSuffix.size()));

    // Which rules, and which workload's settings (fallback tier, budget).
    std::optional<std::string> rules = detail::optional_string(root, "rules", file, "the test file");
    std::optional<std::string> workload_name = detail::optional_string(root, "workload", file, "the test file");
    std::unique_ptr<WorkloadRules> own_rules;
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
      auto text = read_text_file(rules_file, workload.rules_path + ": cannot read the file");
      if (!text.ok()) {
        fail_file(text.status().message());
        return;
      }
      auto compiled = WorkloadRules::compile(config.sandbox, workload.rules_path, std::move(text).value());
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
    for (const toml::node& node : *cases->as_array()) {
      const toml::table& c = *node.as_table();
      detail::reject_unknown_keys(c, file, "case", {"name", "step", "ctx", "expect"});
      const std::string name = detail::required_string(c, "name", file, "case");
      const toml::node* step_node = c.get("step");
      const toml::node* expect_node = c.get("expect");
      if (step_node == nullptr) throw ConfigError(where(file, c) + ": case '" + name + "' has no 'step'");
      if (expect_node == nullptr) throw ConfigError(where(file, c) + ": case '" + name + "' has no 'expect'");
      Step step = read_step(*step_node, file);
      CallContext ctx = read_ctx(c.get("ctx"), file);
      const Decision decision = detail::decide_with(config, workload, *candidate, step, ctx);
      const std::string diff = compare(detail::expect_table(*expect_node, file, "expect"), decision, file);
      if (diff.empty()) {
        report.passed++;
      } else {
        report.failed++;
        report.failures.push_back({file, name, where(file, c) + ": " + diff});
      }
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

RuleTestReport run_rule_tests(const Config& config, const std::vector<std::string>& paths) {
  RuleTestReport report;
  for (const std::string& file : collect(config, paths)) detail::run_rule_test_file(config, file, report);
  return report;
}

}  // namespace switchboard
