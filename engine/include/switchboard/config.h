// Configuration: models, tiers, workloads and sandbox limits, read from a TOML
// file (switchboard.toml), and the price catalog it names ([routing]
// price_catalog, see pricing.h). Every error names "file:line:column: what is wrong".
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/budget.h"
#include "switchboard/money.h"
#include "switchboard/pricing.h"
#include "switchboard/status.h"

namespace switchboard {

// Limits for every sandboxed lua_State. Defaults suit rules of a few hundred lines.
struct SandboxLimits {
  std::int64_t instructions_per_call = 1'000'000;   // VM instructions per classify() call
  std::int64_t instructions_at_load = 10'000'000;   // for running the file body once
  std::int64_t memory_bytes = 16 * 1024 * 1024;     // per lua_State, libraries included
  std::int64_t max_source_bytes = 256 * 1024;       // size of a rules file
  // Wall-clock bound on one run of Lua code (the file body, or one call). The
  // instruction budget is the bound that matters; this one catches work the
  // budget cannot see: library calls whose cost grows with their operands
  // (comparing or converting long strings, sorting a big table). Checked on
  // every function call and every 1000 instructions.
  std::int64_t time_limit_ms = 1000;
};

// A model's base list rates, copied from its price-catalog entry: what the
// estimate before a call uses. Exact costs after a call use the catalog itself
// (Config::prices), which also knows cache writes, reasoning and long context.
struct Price {
  MicroUsdPerMtok input = 0;
  MicroUsdPerMtok cached_input = 0;
  MicroUsdPerMtok output = 0;
};

struct ModelSpec {
  std::string name;
  std::string provider;       // "openai" | "anthropic" | "gemini" | "openai-compatible" | "sim"
  std::string endpoint;       // base URL; empty for "sim"
  std::string api_key_env;    // environment variable holding the key; empty for "sim"
  Price price;                // from the price catalog: every model has an entry
  std::int64_t context_window = 0;
  std::int64_t default_output_tokens = 1024;  // expected output when nothing else says
  std::string source;         // "file:line:column" of the definition, for messages
};

struct Tier {
  std::string name;
  std::vector<std::string> models;  // call order = fallback order
  std::string source;
};

struct Workload {
  std::string name;
  std::string rules_path;      // as written in the config: used in error messages
  std::string rules_file;      // resolved against the config's directory
  std::string fallback_tier;
  std::optional<MicroUsd> budget;            // cap per period, when set
  BudgetPeriod budget_period = BudgetPeriod::kMonth;
  std::string over_budget_tier;              // "" = refuse calls over the cap
  std::string source;
};

struct Config {
  std::string path;            // the file this came from ("" when parsed from text)
  std::string base_dir;        // directory that relative paths are resolved against
  std::string premium_tier = "premium";  // the "everything on premium" baseline
  std::string default_fallback_tier;     // for rules with no workload (tests, check)
  int max_fanout = 8;
  std::string price_catalog_path;  // [routing] price_catalog, resolved against base_dir
  // The catalog named by [routing] price_catalog; prices every model in `models`.
  // Shared and immutable, so a ledger or a budget may keep it past the Config.
  std::shared_ptr<const PriceCatalog> prices;
  SandboxLimits sandbox;
  std::map<std::string, ModelSpec, std::less<>> models;
  std::map<std::string, Tier, std::less<>> tiers;
  std::map<std::string, Workload, std::less<>> workloads;

  const ModelSpec* find_model(std::string_view name) const;
  const Tier* find_tier(std::string_view name) const;
  const Workload* find_workload(std::string_view name) const;
  // The first tier (in name order) listing `model`; every model is in one.
  const Tier* tier_of(std::string_view model) const;
  // "sim" when the model's key variable is unset or empty, else its provider.
  std::string effective_provider(const ModelSpec& model) const;
};

// List-price cost of one call to `model`: input × input price + output × output
// price, summed before rounding to micro-dollars.
MicroUsd estimate_call_cost(const ModelSpec& model, std::int64_t input_tokens,
                            std::int64_t output_tokens);

// Reads and validates a config file, and the price catalog it names.
Result<Config> load_config(const std::string& path);
// Parses config text; `source_name` appears in messages, `base_dir` resolves
// paths (the rules files and the price catalog, which is read from disk).
Result<Config> parse_config(std::string_view text, std::string source_name, std::string base_dir);

}  // namespace switchboard
