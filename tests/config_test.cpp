// Configuration: the shipped file loads, every broken config names the exact
// file:line:column of its fault, every model is priced from the catalog the
// config names (catalog parsing itself: pricing_test.cpp).
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

// A minimal valid config. Its line numbers, for reading the cases below:
//   1 [routing]
//   2 price_catalog = "prices.toml"
//   3 premium_tier = "cheap"
//   4 max_fanout = 4
//   5 [models.m]
//   6 provider = "sim"
//   7 context_window = 1000
//   8 [tiers.cheap]
//   9 models = ["m"]
//  10 [workloads.w]
//  11 rules = "w.lua"
//  12 fallback_tier = "cheap"
const std::string kValid =
    "[routing]\n"
    "price_catalog = \"prices.toml\"\n"
    "premium_tier = \"cheap\"\n"
    "max_fanout = 4\n"
    "[models.m]\n"
    "provider = \"sim\"\n"
    "context_window = 1000\n"
    "[tiers.cheap]\n"
    "models = [\"m\"]\n"
    "[workloads.w]\n"
    "rules = \"w.lua\"\n"
    "fallback_tier = \"cheap\"\n";

// kValid with the one occurrence of `from` replaced by `to`.
std::string edit(const std::string& from, const std::string& to) {
  const size_t at = kValid.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "not in the base config: " << from);
  REQUIRE_MESSAGE(kValid.find(from, at + 1) == std::string::npos, "ambiguous edit: " << from);
  std::string text = kValid;
  text.replace(at, from.size(), to);
  return text;
}

// The catalog beside kValid: m at $1 in, $0.25 cached, $5 out.
const std::string kPrices =
    "version = \"t-1\"\n"
    "[models.m]\n"
    "input = 1.0\n"
    "cached_input = 0.25\n"
    "output = 5.0\n";

// A directory holding w.lua and prices.toml, so only the edit under test can be wrong.
struct ConfigDir {
  TempDir dir;
  explicit ConfigDir(const std::string& prices = kPrices) {
    dir.write("w.lua", R"lua(function classify(step, ctx) return "cheap" end)lua");
    dir.write("prices.toml", prices);
  }
  std::string catalog_path() const { return (dir.path() / "prices.toml").string(); }
  Result<Config> parse(const std::string& text) const {
    return parse_config(text, "bad.toml", dir.path().string());
  }
};

struct BrokenConfig {
  const char* what;
  std::string text;
  std::string error;  // the whole message: "file:line:column: ..."
};

}  // namespace

TEST_CASE("the shipped switchboard.toml loads") {
  auto config = load_config(SWITCHBOARD_SOURCE_DIR "/switchboard.toml");
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  CHECK(config->models.size() == 10);  // 2 of them embedding models
  CHECK(config->tiers.size() == 5);
  CHECK(config->embeddings.tier == "embed");
  CHECK(config->workloads.size() == 5);  // cache_aware among them
  CHECK(config->premium_tier == "premium");
  CHECK(config->default_fallback_tier == "cheap");
  CHECK(config->max_fanout == 8);
  CHECK(config->sandbox.instructions_per_call == 1'000'000);
  CHECK(config->sandbox.memory_bytes == 16'777'216);
  // CI checks the shipped rules against these (switchboard test --bench).
  CHECK(config->rule_cost.max_instructions.has_value());
  CHECK(config->rule_cost.max_bytes.has_value());
  CHECK(config->rule_cost.max_ns.has_value());

  const Tier* cheap = config->find_tier("cheap");
  REQUIRE(cheap != nullptr);
  CHECK(cheap->models == std::vector<std::string>{"claude-haiku-4-5", "gpt-5-mini", "gemini-2.5-flash"});

  // Every model is priced from the shipped catalog, prices.toml beside it.
  REQUIRE(config->prices != nullptr);
  CHECK_FALSE(config->prices->version().empty());
  CHECK(std::filesystem::equivalent(config->price_catalog_path, SWITCHBOARD_SOURCE_DIR "/prices.toml"));
  for (const auto& [name, model] : config->models) {
    INFO(name);
    const ModelPrices* prices = config->prices->find(name);
    REQUIRE(prices != nullptr);
    CHECK(model.price.input == prices->base.input);
    CHECK(model.price.cached_input == prices->base.cached_input);
    CHECK(model.price.output == prices->base.output);
    CHECK(model.price.input > 0);
    CHECK((model.price.output > 0) == (model.kind == ModelKind::kChat));  // embedding models produce no output
  }
  const ModelSpec* opus = config->find_model("claude-opus-4-1");
  REQUIRE(opus != nullptr);
  CHECK(opus->price.input == 15'000'000);
  CHECK(opus->price.cached_input == 1'500'000);
  CHECK(opus->price.output == 75'000'000);

  const Workload* code_fix = config->find_workload("code_fix");
  REQUIRE(code_fix != nullptr);
  CHECK(code_fix->fallback_tier == "balanced");
  CHECK(code_fix->budget == std::optional<MicroUsd>(200'000'000));
  CHECK(code_fix->rules_path == "rules/code_fix.lua");
  CHECK(std::filesystem::equivalent(code_fix->rules_file,
                                    SWITCHBOARD_SOURCE_DIR "/rules/code_fix.lua"));
  CHECK_FALSE(config->find_workload("default")->budget.has_value());
}

TEST_CASE("the base config of the broken-config table is itself valid") {
  ConfigDir d;
  auto config = d.parse(kValid);
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  CHECK(config->max_fanout == 4);
}

TEST_CASE("each broken config names file:line:column and what is wrong") {
  const std::string kOrphan =
      "context_window = 1000\n"
      "[models.orphan]\n"  // line 8
      "provider = \"sim\"\n"
      "context_window = 1000\n";
  const std::vector<BrokenConfig> cases = {
      {"unknown tier in a workload's fallback_tier",
       edit("fallback_tier = \"cheap\"", "fallback_tier = \"cheep\""),
       "bad.toml:12:17: workload 'w' fallback_tier: unknown tier 'cheep'"},
      {"a tier listing an unknown model",
       edit("models = [\"m\"]", "models = [\"m\", \"m-missing\"]"),
       "bad.toml:9:16: tier 'cheap' lists unknown model 'm-missing'"},
      {"a model in no tier",
       edit("context_window = 1000\n", kOrphan),
       "bad.toml:8:1: model 'orphan' is in no tier; add it to a tier's models"},
      {"a price written in the config instead of the catalog",
       edit("context_window = 1000\n", "context_window = 1000\nprice = { input = 1.0, output = 5.0 }\n"),
       "bad.toml:8:1: model 'm': prices are no longer written in the config; they live in the price "
       "catalog named by [routing] price_catalog"},
      {"no price catalog",
       edit("price_catalog = \"prices.toml\"\n", ""),
       "bad.toml:1:1: [routing] needs 'price_catalog', the prices file (e.g. \"prices.toml\", relative "
       "to this file)"},
      {"a price catalog that does not exist",
       edit("\"prices.toml\"", "\"prices/nowhere.toml\""),
       "bad.toml:2:17: [routing] price_catalog: file 'prices/nowhere.toml' does not exist"},
      {"a price catalog that is not a string",
       edit("\"prices.toml\"", "7"),
       "bad.toml:2:17: [routing]: 'price_catalog' must be a string"},
      {"a missing rules file",
       edit("rules = \"w.lua\"", "rules = \"missing.lua\""),
       "bad.toml:11:9: workload 'w': rules file 'missing.lua' does not exist"},
      {"an unknown provider",
       edit("provider = \"sim\"", "provider = \"openia\""),
       "bad.toml:6:12: model 'm': unknown provider 'openia' (expected openai, anthropic, gemini, "
       "openai-compatible or sim)"},
      {"a network provider with no endpoint",
       edit("provider = \"sim\"", "provider = \"openai\""),
       "bad.toml:5:1: model 'm': provider 'openai' needs an 'endpoint'"},
      {"an unknown key in a model (typo)",
       edit("context_window = 1000", "context_windo = 1000"),
       "bad.toml:7:1: model 'm': unknown key 'context_windo' (expected one of: provider, model_id, endpoint, "
       "api_key_env, context_window, default_output_tokens, max_output_tokens, thinking_budget, capabilities, "
       "auto_cache, kind, dimensions, tokenizer, calibration_floor, requests_per_minute, tokens_per_minute)"},
      {"a rate limit of zero",
       edit("fallback_tier = \"cheap\"\n", "fallback_tier = \"cheap\"\nrequests_per_minute = 0\n"),
       "bad.toml:13:23: workload 'w': 'requests_per_minute' must be positive"},
      {"a rate limit that is not a whole number",
       edit("context_window = 1000", "context_window = 1000\ntokens_per_minute = 1.5e5"),
       "bad.toml:8:21: model 'm': 'tokens_per_minute' must be a whole number"},
      {"a rate limit misspelt",
       edit("fallback_tier = \"cheap\"\n", "fallback_tier = \"cheap\"\nrequest_per_minute = 10\n"),
       "bad.toml:13:1: workload 'w': unknown key 'request_per_minute' (expected one of: rules, shadow_rules, "
       "fallback_tier, budget_usd, budget_period, over_budget_tier, untrusted_tools, shadow_calls, requests_per_minute, "
       "tokens_per_minute)"},
      {"an unknown tokenizer",
       edit("provider = \"sim\"", "provider = \"sim\"\ntokenizer = \"p50k_base\""),
       "bad.toml:7:13: model 'm': unknown tokenizer 'p50k_base' (expected o200k_base or cl100k_base)"},
      {"a calibration floor on a model counted exactly",
       edit("provider = \"sim\"", "provider = \"sim\"\ncalibration_floor = 1.2"),
       "bad.toml:7:21: model 'm': calibration_floor is for models whose tokenizer is not public (providers "
       "anthropic, gemini, openai-compatible); 'sim' models are counted exactly"},
      {"a calibration floor below 1",
       edit("provider = \"sim\"", "provider = \"anthropic\"\nendpoint = \"http://x\"\ncalibration_floor = 0.9"),
       "bad.toml:8:21: model 'm': calibration_floor must be a number from 1.0 to 10.0"},
      {"an unknown top-level table (typo)",
       edit("[workloads.w]", "[workload.w]"),
       "bad.toml:10:2: the config: unknown key 'workload' (expected one of: routing, sandbox, "
       "rule_cost, calls, sim, ledger, shadow, gateway, models, tiers, workloads, embeddings, health, sessions, budgets, state)"},
      {"a wrong value type",
       edit("context_window = 1000", "context_window = \"1000\""),
       "bad.toml:7:18: model 'm': 'context_window' must be a whole number"},
      {"a string where a tier table belongs",
       edit("[tiers.cheap]\nmodels = [\"m\"]\n", "[tiers]\ncheap = \"m\"\n"),
       "bad.toml:9:9: tier 'cheap' must be a table"},
      {"a tier named like a model",
       edit("models = [\"m\"]\n", "models = [\"m\"]\n[tiers.m]\nmodels = [\"m\"]\n"),
       "bad.toml:10:1: tier 'm' has the name of a model; a rule's answer would be ambiguous"},
      {"max_fanout above 64",
       edit("max_fanout = 4", "max_fanout = 65"),
       "bad.toml:4:14: [routing] max_fanout is at most 64"},
      {"max_fanout of zero",
       edit("max_fanout = 4", "max_fanout = 0"),
       "bad.toml:4:14: [routing]: 'max_fanout' must be positive"},
      {"a premium_tier that is not a tier",
       edit("premium_tier = \"cheap\"", "premium_tier = \"gold\""),
       "bad.toml:3:16: [routing] premium_tier: unknown tier 'gold'"},
      {"a duplicate model in one tier",
       edit("models = [\"m\"]", "models = [\"m\", \"m\"]"),
       "bad.toml:9:16: tier 'cheap' lists model 'm' twice"},
      {"a negative budget",
       edit("fallback_tier = \"cheap\"\n", "fallback_tier = \"cheap\"\nbudget_usd = -5.0\n"),
       "bad.toml:13:14: workload 'w': budget_usd must be a non-negative number"},
      {"a [rule_cost] budget of zero",
       kValid + "[rule_cost]\nmax_bytes = 0\n",
       "bad.toml:14:13: [rule_cost]: 'max_bytes' must be positive"},
      {"a [rule_cost] budget that is not a whole number",
       kValid + "[rule_cost]\nmax_ns = 1.5e6\n",
       "bad.toml:14:10: [rule_cost]: 'max_ns' must be a whole number"},
      {"an unknown key in [rule_cost] (typo)",
       kValid + "[rule_cost]\nmax_instruction = 5\n",
       "bad.toml:14:1: [rule_cost]: unknown key 'max_instruction' (expected one of: max_instructions, "
       "max_bytes, max_ns)"},
      {"a [ledger] durability that is not a known level",
       kValid + "[ledger]\ndurability = \"disk\"\n",
       "bad.toml:14:14: [ledger] durability must be \"process\" or \"power\", not \"disk\""},
      {"a [ledger] durability that is not a string",
       kValid + "[ledger]\ndurability = 1\n",
       "bad.toml:14:14: [ledger]: 'durability' must be a string"},
      {"a [ledger] url that is not a PostgreSQL URL",
       kValid + "[ledger]\nurl = \"ledger.db\"\n",
       "bad.toml:14:7: [ledger] url must be a PostgreSQL URL (postgresql://...); a SQLite ledger is "
       "[gateway] ledger or --ledger"},
      {"a [ledger] spool without a url",
       kValid + "[ledger]\nspool = \"spool.jsonl\"\n",
       "bad.toml:14:9: [ledger] spool applies to a PostgreSQL ledger only: set [ledger] url too"},
      {"a [ledger] spool_limit_mb that is not positive",
       kValid + "[ledger]\nurl = \"postgresql://db.example/ledger\"\nspool_limit_mb = 0\n",
       "bad.toml:15:18: [ledger]: 'spool_limit_mb' must be positive"},
      {"no workloads table",
       edit("[workloads.w]\nrules = \"w.lua\"\nfallback_tier = \"cheap\"\n", ""),
       "bad.toml:1:1: the config defines no [workloads]"},
  };
  ConfigDir d;
  for (const BrokenConfig& c : cases) {
    INFO(std::string(c.what));
    auto config = d.parse(c.text);
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().code() == Status::Code::kInvalidArgument);
    CHECK(config.status().message() == c.error);
  }
}

TEST_CASE("a model's tokenizer defaults from its model_id, and a stand-in's factor starts at its floor") {
  ConfigDir d;
  auto plain = d.parse(kValid);
  REQUIRE_MESSAGE(plain.ok(), plain.status().message());
  CHECK(plain->find_model("m")->tokenizer == "o200k_base");
  CHECK(plain->find_model("m")->token_factor == 1.0);  // sim: counted as OpenAI counts

  auto gpt4 = d.parse(edit("provider = \"sim\"", "provider = \"sim\"\nmodel_id = \"gpt-4-turbo\""));
  REQUIRE_MESSAGE(gpt4.ok(), gpt4.status().message());
  CHECK(gpt4->find_model("m")->tokenizer == "cl100k_base");

  auto named = d.parse(edit("provider = \"sim\"", "provider = \"sim\"\ntokenizer = \"cl100k_base\""));
  REQUIRE_MESSAGE(named.ok(), named.status().message());
  CHECK(named->find_model("m")->tokenizer == "cl100k_base");

  const std::string claude = "provider = \"anthropic\"\nendpoint = \"http://x\"";
  auto by_default = d.parse(edit("provider = \"sim\"", claude));
  REQUIRE_MESSAGE(by_default.ok(), by_default.status().message());
  CHECK(by_default->find_model("m")->calibration_floor == 1.10);
  CHECK(by_default->find_model("m")->token_factor == 1.10);
  auto floored = d.parse(edit("provider = \"sim\"", claude + "\ncalibration_floor = 1.25"));
  REQUIRE_MESSAGE(floored.ok(), floored.status().message());
  CHECK(floored->find_model("m")->token_factor == 1.25);
}

TEST_CASE("the ledger's durability is process by default and power when asked") {
  ConfigDir d;
  auto by_default = d.parse(kValid);
  REQUIRE_MESSAGE(by_default.ok(), by_default.status().message());
  CHECK(by_default->ledger.durability == LedgerDurability::kProcess);
  for (const LedgerDurability level : {LedgerDurability::kProcess, LedgerDurability::kPower}) {
    auto config = d.parse(kValid + "[ledger]\ndurability = \"" + std::string(to_string(level)) + "\"\n");
    REQUIRE_MESSAGE(config.ok(), config.status().message());
    CHECK(config->ledger.durability == level);
  }
}

TEST_CASE("[ledger] url names a PostgreSQL ledger, its spool beside the config unless set") {
  ConfigDir d;
  auto sqlite = d.parse(kValid);
  REQUIRE_MESSAGE(sqlite.ok(), sqlite.status().message());
  CHECK(sqlite->ledger.url.empty());
  CHECK(ledger_location(sqlite->ledger, "x.db") == "x.db");
  auto pg = d.parse(kValid + "[ledger]\nurl = \"postgres://sb@db.example:5433/ledger\"\n"
                             "spool = \"spool/a.jsonl\"\nspool_limit_mb = 3\n");
  REQUIRE_MESSAGE(pg.ok(), pg.status().message());
  CHECK(pg->ledger.url == "postgres://sb@db.example:5433/ledger");
  CHECK(ledger_location(pg->ledger, "x.db") == "postgres://sb@db.example:5433/ledger");
  CHECK(pg->ledger.spool == (std::filesystem::path(pg->base_dir) / "spool/a.jsonl").lexically_normal().string());
  CHECK(pg->ledger.spool_limit_bytes == 3u << 20);
}

TEST_CASE("malformed TOML syntax names the line and column where parsing stopped") {
  ConfigDir d;
  auto config = d.parse(edit("context_window = 1000", "context_window = "));
  REQUIRE_FALSE(config.ok());
  const std::string& message = config.status().message();
  CHECK(message.starts_with("bad.toml:7:18: "));
  CHECK(message.find("expected value") != std::string::npos);

  auto unclosed = d.parse(edit("[tiers.cheap]", "[tiers.cheap"));
  REQUIRE_FALSE(unclosed.ok());
  CHECK(unclosed.status().message().starts_with("bad.toml:8:"));
}

TEST_CASE("load_config names the file it read in every message") {
  ConfigDir d;
  const std::string path =
      d.dir.write("switchboard.toml", edit("fallback_tier = \"cheap\"", "fallback_tier = \"cheep\""));
  auto config = load_config(path);
  REQUIRE_FALSE(config.ok());
  CHECK(config.status().message() == path + ":12:17: workload 'w' fallback_tier: unknown tier 'cheep'");

  const std::string missing = (d.dir.path() / "nowhere.toml").string();
  auto absent = load_config(missing);
  REQUIRE_FALSE(absent.ok());
  CHECK(absent.status().code() == Status::Code::kIoError);
  CHECK(absent.status().message() == missing + ": cannot open the config file");
}

TEST_CASE("rules paths resolve against the config file's directory") {
  ConfigDir d;
  const std::string path = d.dir.write("switchboard.toml", kValid);
  auto config = load_config(path);
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  const Workload& w = *config->find_workload("w");
  CHECK(w.rules_path == "w.lua");
  CHECK(std::filesystem::equivalent(w.rules_file, d.dir.path() / "w.lua"));
}

TEST_CASE("shadow_rules resolves against the config file's directory and [shadow] has defaults") {
  ConfigDir d;
  d.dir.write("rules/w.next.lua", R"lua(function classify(step, ctx) return "cheap" end)lua");
  const std::string path = d.dir.write(
      "switchboard.toml", edit("fallback_tier = \"cheap\"\n", "fallback_tier = \"cheap\"\nshadow_rules = \"rules/w.next.lua\"\n"));
  auto config = load_config(path);
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  const Workload& w = *config->find_workload("w");
  CHECK(w.shadow_rules_path == "rules/w.next.lua");
  CHECK(std::filesystem::equivalent(w.shadow_rules_file, d.dir.path() / "rules/w.next.lua"));
  CHECK(config->shadow.queue == 4096);
  CHECK(config->shadow.drain_timeout.count() == 5000);

  auto plain = d.parse(kValid);
  REQUIRE(plain.ok());
  CHECK(plain->find_workload("w")->shadow_rules_path.empty());
  CHECK(plain->find_workload("w")->shadow_rules_file.empty());

  auto tuned = d.parse(kValid + "[shadow]\nqueue = 16\ndrain_timeout_ms = 0\n");
  REQUIRE_MESSAGE(tuned.ok(), tuned.status().message());
  CHECK(tuned->shadow.queue == 16);
  CHECK(tuned->shadow.drain_timeout.count() == 0);
}

TEST_CASE("bad shadow rules and [shadow] settings name their place") {
  ConfigDir d;
  const auto shadow = [](const std::string& value) {
    return edit("fallback_tier = \"cheap\"\n", "fallback_tier = \"cheap\"\nshadow_rules = " + value + "\n");
  };
  const std::vector<BrokenConfig> cases = {
      {"a shadow rules file that does not exist", shadow("\"w.nxt.lua\""),
       "bad.toml:13:16: workload 'w': shadow rules file 'w.nxt.lua' does not exist"},
      {"shadow rules naming the workload's own rules", shadow("\"./w.lua\""),
       "bad.toml:13:16: workload 'w': shadow_rules names the workload's own rules file; a candidate is another "
       "file (a copy to edit, say)"},
      {"shadow rules that are not a string", shadow("5"), "bad.toml:13:16: workload 'w': 'shadow_rules' must be a string"},
      {"a shadow queue of zero", kValid + "[shadow]\nqueue = 0\n", "bad.toml:14:9: [shadow]: 'queue' must be positive"},
      {"a shadow queue too long", kValid + "[shadow]\nqueue = 2_000_000\n",
       "bad.toml:14:9: [shadow] queue is at most 1000000"},
      {"a negative drain timeout", kValid + "[shadow]\ndrain_timeout_ms = -1\n",
       "bad.toml:14:20: [shadow] drain_timeout_ms must not be negative"},
      {"an unknown key in [shadow] (typo)", kValid + "[shadow]\nqueu = 5\n",
       "bad.toml:14:1: [shadow]: unknown key 'queu' (expected one of: queue, drain_timeout_ms)"},
  };
  for (const BrokenConfig& c : cases) {
    INFO(std::string(c.what));
    auto config = d.parse(c.text);
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().message() == c.error);
  }
}

TEST_CASE("untrusted_tools are read in order, names and patterns, and none by default") {
  ConfigDir d;
  auto plain = d.parse(kValid);
  REQUIRE_MESSAGE(plain.ok(), plain.status().message());
  CHECK(plain->find_workload("w")->untrusted_tools.empty());

  auto listed = d.parse(edit("fallback_tier = \"cheap\"\n",
                             "fallback_tier = \"cheap\"\nuntrusted_tools = [\"web_fetch\", \"read-email\", \"browser_.*\"]\n"));
  REQUIRE_MESSAGE(listed.ok(), listed.status().message());
  CHECK(listed->find_workload("w")->untrusted_tools ==
        std::vector<std::string>{"web_fetch", "read-email", "browser_.*"});
}

TEST_CASE("a bad untrusted_tools entry names its file:line:column and why") {
  ConfigDir d;
  const auto tools = [](const std::string& value) {
    return edit("fallback_tier = \"cheap\"\n", "fallback_tier = \"cheap\"\nuntrusted_tools = " + value + "\n");
  };
  const std::vector<BrokenConfig> cases = {
      {"a string, not an array", tools("\"web_fetch\""),
       "bad.toml:13:19: workload 'w': 'untrusted_tools' must be an array of strings"},
      {"an entry that is not a string", tools("[\"a\", 5]"),
       "bad.toml:13:25: workload 'w': 'untrusted_tools' must be an array of strings"},
      {"an empty entry", tools("[\"\"]"),
       "bad.toml:13:20: workload 'w': untrusted_tools entry '': an empty name matches no tool"},
      {"a set left open", tools("[\"web_fetch\", \"fetch_[a\"]"),
       "bad.toml:13:33: workload 'w': untrusted_tools entry 'fetch_[a': malformed pattern (missing ']')"},
      {"a trailing escape", tools("[\"web%\"]"),
       "bad.toml:13:20: workload 'w': untrusted_tools entry 'web%': malformed pattern (ends with '%')"},
      {"a capture", tools("[\"(web)_.*\"]"),
       "bad.toml:13:20: workload 'w': untrusted_tools entry '(web)_.*': captures ('(' and ')') have no meaning "
       "here; write '%(' for the character"},
  };
  for (const BrokenConfig& c : cases) {
    INFO(std::string(c.what));
    auto config = d.parse(c.text);
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().message() == c.error);
  }
}

TEST_CASE("a model's list price comes from its catalog entry") {
  ConfigDir d;
  auto config = d.parse(kValid);
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  const ModelSpec& m = *config->find_model("m");
  CHECK(m.price.input == 1'000'000);
  CHECK(m.price.cached_input == 250'000);
  CHECK(m.price.output == 5'000'000);
  REQUIRE(config->prices != nullptr);
  CHECK(config->prices->version() == "t-1");
  CHECK(std::filesystem::equivalent(config->price_catalog_path, d.catalog_path()));
  // The config keeps the whole catalog, for exact costs after a call.
  Usage usage;
  usage.input_tokens = 1'000;
  usage.cached_input_tokens = 2'000;
  usage.output_tokens = 100;
  auto cost = config->prices->cost("m", usage);
  REQUIRE(cost.ok());
  CHECK(*cost == 1'000 + 500 + 500);
}

TEST_CASE("a model the catalog does not price is a config error naming the model and the catalog") {
  ConfigDir d("version = \"t-1\"\n[models.other]\ninput = 1.0\noutput = 5.0\n");
  auto config = d.parse(kValid);
  REQUIRE_FALSE(config.ok());
  CHECK(config.status().code() == Status::Code::kInvalidArgument);
  CHECK(config.status().message() == "bad.toml:5:1: model 'm' has no price in the catalog " + d.catalog_path() +
                                         "; a model without a price cannot be routed to");
}

TEST_CASE("an error in the price catalog is reported at its place in the catalog") {
  ConfigDir d("version = \"t-1\"\n[models.m]\ninput = -1.0\noutput = 5.0\n");
  auto config = d.parse(kValid);
  REQUIRE_FALSE(config.ok());
  CHECK(config.status().message() == d.catalog_path() + ":3:9: model 'm': 'input' must not be negative");
}

TEST_CASE("the price catalog path resolves against the config file's directory") {
  ConfigDir d;
  d.dir.write("conf/w.lua", R"lua(function classify(step, ctx) return "cheap" end)lua");
  std::string text = kValid;
  text.replace(text.find("\"prices.toml\""), 13, "\"../prices.toml\"");
  auto config = load_config(d.dir.write("conf/switchboard.toml", text));
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  CHECK(std::filesystem::equivalent(config->price_catalog_path, d.catalog_path()));
}

TEST_CASE("a budget in dollars converts exactly to micro-dollars") {
  ConfigDir d;
  auto config = d.parse(edit("fallback_tier = \"cheap\"\n", "fallback_tier = \"cheap\"\nbudget_usd = 0.07\n"));
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  CHECK(config->find_workload("w")->budget == std::optional<MicroUsd>(70'000));
}

TEST_CASE("effective_provider is sim while the key variable is unset or empty") {
  constexpr const char* kVar = "SWITCHBOARD_CONFIG_TEST_KEY_7C1E";
  ModelSpec model;
  model.name = "m";
  model.provider = "openai";
  model.endpoint = "https://api.openai.com/v1";
  model.api_key_env = kVar;
  Config config;

  unsetenv(kVar);
  CHECK(config.effective_provider(model) == "sim");
  setenv(kVar, "", 1);
  CHECK(config.effective_provider(model) == "sim");
  setenv(kVar, "sk-test", 1);
  CHECK(config.effective_provider(model) == "openai");
  unsetenv(kVar);
  CHECK(config.effective_provider(model) == "sim");

  ModelSpec sim = model;
  sim.provider = "sim";
  setenv(kVar, "sk-test", 1);
  CHECK(config.effective_provider(sim) == "sim");
  unsetenv(kVar);

  ModelSpec local = model;
  local.provider = "openai-compatible";
  local.api_key_env.clear();
  CHECK(config.effective_provider(local) == "openai-compatible");
  ModelSpec keyless = model;
  keyless.api_key_env.clear();
  CHECK(config.effective_provider(keyless) == "sim");
}

TEST_CASE("tier_of finds the first tier, in name order, that lists a model") {
  auto config = load_config(SWITCHBOARD_SOURCE_DIR "/switchboard.toml");
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  // gpt-5-mini is in "cheap" and "local"; sonnet in "balanced" and "premium"
  CHECK(config->tier_of("gpt-5-mini")->name == "cheap");
  CHECK(config->tier_of("claude-sonnet-4-5")->name == "balanced");
  CHECK(config->tier_of("claude-opus-4-1")->name == "premium");
  CHECK(config->tier_of("no-such-model") == nullptr);
}

TEST_CASE("rule_cost budgets are optional and each remembers where it was set") {
  ConfigDir d;
  auto none = d.parse(kValid);
  REQUIRE_MESSAGE(none.ok(), none.status().message());
  CHECK_FALSE(none->rule_cost.max_instructions.has_value());
  CHECK_FALSE(none->rule_cost.max_bytes.has_value());
  CHECK_FALSE(none->rule_cost.max_ns.has_value());

  auto config = d.parse(kValid + "[rule_cost]\nmax_instructions = 2_000\nmax_ns = 50_000\n");
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  REQUIRE(config->rule_cost.max_instructions.has_value());
  CHECK(config->rule_cost.max_instructions->value == 2000);
  CHECK(config->rule_cost.max_instructions->source == "bad.toml:14:20");
  CHECK_FALSE(config->rule_cost.max_bytes.has_value());
  REQUIRE(config->rule_cost.max_ns.has_value());
  CHECK(config->rule_cost.max_ns->value == 50'000);
  CHECK(config->rule_cost.max_ns->source == "bad.toml:15:10");
}

TEST_CASE("call settings sim latency model ids thinking budgets and auto_cache are read with their defaults") {
  ConfigDir d;
  auto defaults = d.parse(kValid);
  REQUIRE_MESSAGE(defaults.ok(), defaults.status().message());
  CHECK(defaults->calls.max_attempts == 3);
  CHECK(defaults->sim.base_latency.count() == 0);
  const ModelSpec& plain = *defaults->find_model("m");
  CHECK(plain.model_id == "m");
  CHECK(plain.thinking_budget.for_level(Reasoning::kMedium) == 4096);
  CHECK(plain.thinking_budget.for_level(Reasoning::kDefault) == 0);
  CHECK_FALSE(plain.auto_cache);

  std::string text = edit("context_window = 1000\n",
                          "context_window = 1000\nmodel_id = \"m-2026-01-01\"\n"
                          "thinking_budget = { low = 2048, high = 30000 }\nauto_cache = true\n") +
                     "[calls]\nmax_attempts = 5\nfirst_byte_timeout_ms = 1500\nretry_after_max_ms = 9000\n"
                     "[sim]\nbase_latency_ms = 7\nper_output_token_us = 50\n";
  auto config = d.parse(text);
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  CHECK(config->calls.max_attempts == 5);
  CHECK(config->calls.first_byte_timeout.count() == 1500);
  CHECK(config->calls.retry_after_max.count() == 9000);
  CHECK(config->calls.total_timeout.count() == 600'000);  // untouched default
  CHECK(config->sim.base_latency.count() == 7);
  CHECK(config->sim.per_output_token.count() == 50);
  const ModelSpec& m = *config->find_model("m");
  CHECK(m.model_id == "m-2026-01-01");
  CHECK(m.thinking_budget.low == 2048);
  CHECK(m.thinking_budget.medium == 4096);
  CHECK(m.thinking_budget.high == 30000);
  CHECK(m.auto_cache);
}

TEST_CASE("bad call settings and thinking budgets name their place") {
  ConfigDir d;
  struct Case {
    std::string text;
    std::string error;
  };
  const std::vector<Case> cases = {
      {kValid + "[calls]\nmax_attempts = 11\n", "bad.toml:14:16: [calls] max_attempts is at most 10"},
      {kValid + "[calls]\nretries = 2\n", "bad.toml:14:1: [calls]: unknown key 'retries'"},
      {kValid + "[sim]\nbase_latency_ms = -1\n", "bad.toml:13:1: [sim] latencies must not be negative"},
      {edit("context_window = 1000\n", "context_window = 1000\nthinking_budget = { low = 9000, medium = 10 }\n"),
       "bad.toml:8:19: model 'm' thinking_budget: low <= medium <= high is required"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    auto config = d.parse(c.text);
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().message().rfind(c.error, 0) == 0);
  }
}

TEST_CASE("the gateway section reads its listen address keys and limits") {
  ConfigDir d;
  auto defaults = d.parse(kValid);
  REQUIRE(defaults.ok());
  CHECK(defaults->gateway.listen_port == 8080);
  CHECK(defaults->gateway.default_workload == "w");  // "default" does not exist here: the first workload
  CHECK(defaults->gateway.keys.empty());

  auto config = d.parse(kValid +
                        "[gateway]\nlisten = \"0.0.0.0:9000\"\nmax_upstream_calls = 16\nledger = \"gw.db\"\n"
                        "[gateway.keys.team-a]\nkey_env = \"TEAM_A_KEY\"\nworkload = \"w\"\nbudget_usd = 2.5\n"
                        "budget_period = \"day\"\n");
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  const GatewaySettings& g = config->gateway;
  CHECK(g.listen_host == "0.0.0.0");
  CHECK(g.listen_port == 9000);
  CHECK(g.max_upstream_calls == 16);
  CHECK(std::filesystem::path(g.ledger).filename() == "gw.db");
  REQUIRE(g.keys.size() == 1);
  CHECK(g.keys[0].name == "team-a");
  CHECK(g.keys[0].key_env == "TEAM_A_KEY");
  CHECK(g.keys[0].budget == std::optional<MicroUsd>(2'500'000));
  CHECK(g.keys[0].budget_period == BudgetPeriod::kDay);

  auto bad = d.parse(kValid + "[gateway]\nlisten = \"localhost\"\n");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "bad.toml:14:10: [gateway] listen must be \"HOST:PORT\", e.g. \"127.0.0.1:8080\"");
  auto unknown = d.parse(kValid + "[gateway.keys.k]\nkey_env = \"K\"\nworkload = \"nope\"\n");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().message() == "bad.toml:15:12: gateway key 'k': unknown workload 'nope'");
}

TEST_CASE("busy_poll_us is off by default, read in microseconds and bounded to 10 ms") {
  ConfigDir d;
  auto defaults = d.parse(kValid);
  REQUIRE(defaults.ok());
  CHECK(defaults->gateway.busy_poll == std::chrono::microseconds(0));
  auto set = d.parse(kValid + "[gateway]\nbusy_poll_us = 50\n");
  REQUIRE_MESSAGE(set.ok(), set.status().message());
  CHECK(set->gateway.busy_poll == std::chrono::microseconds(50));
  for (const char* value : {"-1", "10001"}) {
    auto bad = d.parse(kValid + "[gateway]\nbusy_poll_us = " + value + "\n");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().message() == "bad.toml:14:16: [gateway] busy_poll_us must be 0..10000");
  }
}

TEST_CASE("passthrough_headers default to the two beta headers, lowercase what is listed and refuse the gateway's own") {
  ConfigDir d;
  auto defaults = d.parse(kValid);
  REQUIRE(defaults.ok());
  CHECK(defaults->gateway.passthrough_headers == std::vector<std::string>{"anthropic-beta", "openai-beta"});
  auto set = d.parse(kValid + "[gateway]\npassthrough_headers = [\"Anthropic-Beta\", \"x-team-flag\"]\n");
  REQUIRE_MESSAGE(set.ok(), set.status().message());
  CHECK(set->gateway.passthrough_headers == std::vector<std::string>{"anthropic-beta", "x-team-flag"});
  auto none = d.parse(kValid + "[gateway]\npassthrough_headers = []\n");
  REQUIRE(none.ok());
  CHECK(none->gateway.passthrough_headers.empty());

  const struct {
    std::string text;
    std::string error;
  } cases[] = {
      {"[gateway]\npassthrough_headers = \"anthropic-beta\"\n",
       "bad.toml:14:23: [gateway] passthrough_headers must be a list of header names, e.g. [\"anthropic-beta\"]"},
      {"[gateway]\npassthrough_headers = [\"Authorization\"]\n",
       "bad.toml:14:24: [gateway] passthrough_headers: 'Authorization' is the gateway's own to set"},
      {"[gateway]\npassthrough_headers = [\"x-switchboard-role\"]\n",
       "bad.toml:14:24: [gateway] passthrough_headers: 'x-switchboard-role' is the gateway's own to read"},
      {"[gateway]\npassthrough_headers = [\"bad header\"]\n",
       "bad.toml:14:24: [gateway] passthrough_headers: 'bad header' is not a header name"},
      {"[gateway]\npassthrough_headers = [\"openai-beta\", \"OpenAI-Beta\"]\n",
       "bad.toml:14:39: [gateway] passthrough_headers: 'OpenAI-Beta' is listed twice"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto bad = d.parse(kValid + c.text);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().message() == c.error);
  }
}

TEST_CASE("the gateway's parse and memory limits default to 64 levels 128 MiB and 512 MiB and errors name their place") {
  ConfigDir d;
  auto defaults = d.parse(kValid);
  REQUIRE(defaults.ok());
  CHECK(defaults->gateway.max_json_depth == 64);
  CHECK(defaults->gateway.max_request_memory == 128 * 1024 * 1024);
  CHECK(defaults->gateway.max_inflight_bytes == 512 * 1024 * 1024);

  auto set = d.parse(kValid + "[gateway]\nmax_json_depth = 16\nmax_request_memory = 1_000_000\n"
                              "max_inflight_bytes = 4_000_000\n");
  REQUIRE_MESSAGE(set.ok(), set.status().message());
  CHECK(set->gateway.max_json_depth == 16);
  CHECK(set->gateway.max_request_memory == 1'000'000);
  CHECK(set->gateway.max_inflight_bytes == 4'000'000);

  const struct {
    std::string text;
    std::string error;
  } cases[] = {
      {"[gateway]\nmax_json_depth = 0\n", "bad.toml:14:18: [gateway]: 'max_json_depth' must be positive"},
      {"[gateway]\nmax_json_depth = 20000\n",
       "bad.toml:14:18: [gateway] max_json_depth must be at most 10000 (a deeper tree overflows the stack)"},
      {"[gateway]\nmax_request_memory = \"1G\"\n",
       "bad.toml:14:22: [gateway]: 'max_request_memory' must be a whole number"},
      {"[gateway]\nmax_inflight_bytes = -1\n", "bad.toml:14:22: [gateway]: 'max_inflight_bytes' must be positive"},
      {"[gateway]\nmax_request_memory = 100\nmax_inflight_bytes = 10\n",
       "bad.toml:15:22: [gateway] max_inflight_bytes must be at least max_request_memory"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto bad = d.parse(kValid + c.text);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().message() == c.error);
  }
}
