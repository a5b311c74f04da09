/// @file
/// Configuration: models, tiers, workloads and sandbox limits, read from a TOML
/// file (switchboard.toml), and the price catalog it names ([routing]
/// price_catalog, see pricing.h). Every error names "file:line:column: what is wrong".
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/budget.h"
#include "switchboard/decision.h"
#include "switchboard/health.h"
#include "switchboard/ledger.h"
#include "switchboard/money.h"
#include "switchboard/pricing.h"
#include "switchboard/sessions.h"
#include "switchboard/status.h"

namespace switchboard {

/// Limits for every sandboxed lua_State. Defaults suit rules of a few hundred lines.
struct SandboxLimits {
  std::int64_t instructions_per_call = 1'000'000;   ///< VM instructions per classify() call
  std::int64_t instructions_at_load = 10'000'000;   ///< for running the file body once
  std::int64_t memory_bytes = 16 * 1024 * 1024;     ///< per lua_State, libraries included
  std::int64_t max_source_bytes = 256 * 1024;       ///< size of a rules file
  /// Wall-clock bound on one run of Lua code (the file body, or one call). The
  /// instruction budget is the bound that matters; this one catches work the
  /// budget cannot see: instructions and library calls whose cost grows with
  /// their operands (comparing or converting long strings, sorting a big
  /// table). A run ends within this limit plus 50 ms whatever it does: the
  /// clock is read every 1000 instructions (more often while the state
  /// holds a string of 16 KiB or more), inside the
  /// library loops the sandbox charges (patterns, table.move/insert/remove/
  /// sort) and on every allocation of 64 KiB or more.
  std::int64_t time_limit_ms = 1000;
};

/// One per-call cost limit, and where it was set.
struct CostLimit {
  std::int64_t value = 0;  ///< instructions, bytes or ns, by the field that holds it
  std::string source;  ///< "file:line:column" of the value, for messages
};

/// Budgets for one classify() call of a rules file, averaged over its test
/// cases, checked by `switchboard test --bench` ([rule_cost]; a test file's own
/// [rule_cost] table overrides single fields). Unset: not checked.
struct RuleCostBudget {
  std::optional<CostLimit> max_instructions;  ///< VM instructions: exact, the same on every machine
  std::optional<CostLimit> max_bytes;         ///< bytes allocated: exact for one build of Lua
  std::optional<CostLimit> max_ns;            ///< wall clock: depends on the machine and its load
};

/// A model's base list rates, copied from its price-catalog entry: what the
/// estimate before a call uses. Exact costs after a call use the catalog itself
/// (Config::prices), which also knows cache writes, reasoning and long context.
struct Price {
  MicroUsdPerMtok input = 0;         ///< the catalog's base input rate
  MicroUsdPerMtok cached_input = 0;  ///< the catalog's base cached-input rate
  MicroUsdPerMtok output = 0;        ///< the catalog's base output rate
};

/// Thinking-token budgets that a decision's reasoning level maps to, for the
/// providers whose control is a budget (Anthropic `thinking.budget_tokens`,
/// Gemini `thinkingConfig.thinkingBudget`). OpenAI-style providers send the
/// level itself as `reasoning_effort`. `[models.X] thinking_budget = {...}`.
struct ThinkingBudgets {
  std::int64_t low = 1024;     ///< for Reasoning::kLow
  std::int64_t medium = 4096;  ///< for Reasoning::kMedium
  std::int64_t high = 16384;   ///< for Reasoning::kHigh
  std::int64_t for_level(Reasoning r) const;  ///< 0 for Reasoning::kDefault
};

/// What a model can take beyond text ([models.NAME.capabilities]). A request
/// that needs one the model lacks is not sent to it: the adapter refuses the
/// model with the reason, and the dispatcher falls back to the next one.
/// Defaults by provider: gemini and sim all; openai and anthropic all but
/// audio; openai-compatible tools and json_schema only.
struct Capabilities {
  bool vision = true;       ///< image blocks
  bool documents = true;    ///< document blocks (PDF, text files)
  bool audio = false;       ///< audio blocks
  bool tools = true;        ///< tools and tool choice
  bool thinking = true;     ///< reasoning control and thinking blocks sent back
  bool json_schema = true;  ///< OutputFormat::kJsonSchema (translated where the API has no native form)
};

/// What a model does ([models.NAME] kind).
enum class ModelKind {
  kChat,       ///< "chat" (the default): answers model calls
  kEmbedding,  ///< "embedding": turns inputs into vectors (embedding.h); never a chat call's model
};

/// Requests and tokens per minute (rate_limit.h: a sliding minute, shared by
/// every replica through [state] when it is Redis): `requests_per_minute` and
/// `tokens_per_minute` beside a key's, workload's or model's other caps in
/// [gateway.keys.NAME], [workloads.NAME] and [models.NAME]. 0 (unset) leaves
/// that dimension unlimited. A request counts once in each: its key's and
/// workload's before the rules run, a model's when that model is about to
/// be called (Engine::admit_rate, dispatch.h).
struct PerMinuteLimits {
  std::int64_t requests_per_minute = 0;  ///< requests in any 60 s; 0 = unlimited
  std::int64_t tokens_per_minute = 0;    ///< input estimate + caller's output cap, in any 60 s; 0 = unlimited
  /// Whether either dimension is limited.
  bool limited() const { return requests_per_minute > 0 || tokens_per_minute > 0; }
};

/// One model ([models.NAME]): how to call it, and its list rates.
struct ModelSpec {
  std::string name;           ///< NAME in [models.NAME]: what tiers, decisions and clients call the model
  std::string model_id;       ///< the provider's name for the model; defaults to `name`
  std::string provider;       ///< "openai" | "anthropic" | "gemini" | "openai-compatible" | "sim"
  /// Chat or embedding. An embedding model sits in tiers of embedding models
  /// only; the rules, a workload's tiers and chat calls never reach it.
  ModelKind kind = ModelKind::kChat;
  /// Embedding models: the length of their vectors (what the sim makes, and
  /// the most a request may ask for); 0 for chat models.
  std::int64_t dimensions = 0;
  std::string endpoint;       ///< base URL; empty for "sim"
  std::string api_key_env;    ///< environment variable holding the key; empty for "sim"
  Price price;                ///< from the price catalog: every model has an entry
  std::int64_t context_window = 0;  ///< the model's context window, in tokens
  std::int64_t default_output_tokens = 1024;  ///< expected output when nothing else says
  /// The most output (thinking included) the model can produce in one answer:
  /// the cap Anthropic gets when the caller sets none, and the ceiling a cap
  /// plus a thinking budget is clamped to.
  std::int64_t max_output_tokens = 8192;
  ThinkingBudgets thinking_budget;  ///< what each reasoning level maps to
  Capabilities capabilities;        ///< what it can take beyond text
  /// Anthropic only: when the caller set no cache breakpoint, place them on
  /// the system prompt and the conversation prefix. (The last tool gets one
  /// too; the next turn reads that prefix from the prompt cache.) Accepted
  /// and without effect for the other providers: their caching is automatic.
  bool auto_cache = false;
  /// The tokenizer its input is counted with (switchboard/tokens.h):
  /// "o200k_base" or "cl100k_base"; when the config names none,
  /// default_tokenizer(model_id).
  std::string tokenizer;
  /// Models counted with a stand-in tokenizer (counted_with_stand_in()): the
  /// least factor their count is scaled by, however low the calibration
  /// from the ledger comes out. 1.0 to 10.0.
  double calibration_floor = 1.10;
  /// What count_request_tokens multiplies the count by: 1 for a model counted
  /// exactly; for a stand-in, calibration_floor at load, raised by the engine
  /// at start-up to the factor `switchboard calibrate` stored, if larger.
  double token_factor = 1.0;
  PerMinuteLimits rate;       ///< requests_per_minute, tokens_per_minute: counted when it is about to be called
  std::string source;         ///< "file:line:column" of the definition, for messages

  /// True when no tokenizer of this model's provider is public (anthropic,
  /// gemini, openai-compatible): its count is o200k_base's times token_factor.
  bool counted_with_stand_in() const {
    return provider == "anthropic" || provider == "gemini" || provider == "openai-compatible";
  }
};

/// A tier ([tiers.NAME]): the models a decision for it may call.
struct Tier {
  std::string name;                 ///< NAME in [tiers.NAME]
  std::vector<std::string> models;  ///< call order = fallback order
  std::string source;               ///< "file:line:column" of the definition, for messages
};

/// Judged shadow calls on live traffic ([workloads.X] shadow_calls = { sample
/// = 0.02, target = "premium", judge = "MODEL", budget_usd = 5, period = "day"
/// }): for a sampled share of the workload's answered steps, after the answer
/// is returned, the dispatcher sends the same request to `target` and asks
/// `judge` which answer is better, in both orders (dispatch.h, "Judged shadow
/// calls"). Every key but `period` is required; an unknown key is an error.
struct ShadowCalls {
  double sample = 0;     ///< `sample`: the share of eligible steps shadowed, in (0, 1]
  std::string target;    ///< `target`: a chat model or a tier of the config
  std::string judge;     ///< `judge`: a chat model of the config
  /// `budget_usd`: the hard cap on the target and judge calls together, per
  /// period, in the budget scope shadow_calls_budget_scope(workload).
  MicroUsd budget = 0;
  BudgetPeriod period = BudgetPeriod::kDay;  ///< `period`: "day" (the default) or "month"
  std::string source;    ///< "file:line:column" of the table, for messages
};

/// A workload ([workloads.NAME]): its rules, fallback tier and budget.
struct Workload {
  std::string name;            ///< NAME in [workloads.NAME]
  std::string rules_path;      ///< as written in the config: used in error messages
  std::string rules_file;      ///< resolved against the config's directory
  std::string fallback_tier;   ///< the tier a decision falls back to when the rules fail
  std::optional<MicroUsd> budget;            ///< cap per period, when set
  BudgetPeriod budget_period = BudgetPeriod::kMonth;  ///< the period `budget` applies to
  std::string over_budget_tier;              ///< "" = refuse calls over the cap
  /// [workloads.X] shadow_rules: a candidate rules file the engine runs beside
  /// the active one on live traffic and never acts on (engine.h, "Shadow
  /// rules"). Both empty when the workload has none.
  std::string shadow_rules_path;             ///< as written in the config: used in messages
  std::string shadow_rules_file;             ///< resolved against the config's directory
  /// [workloads.X] untrusted_tools: the tools whose results make a step's
  /// input untrusted (derive_step.h). An entry matches a tool named exactly
  /// as it is, or one whose whole name it matches as a Lua pattern:
  /// characters, '.', '%a'-style classes, '%' escapes, '[sets]', each
  /// optionally followed by '*', '+', '-' or '?' ("browser_.*" matches every
  /// name that starts with "browser_"); no captures, '%b', '%f' or back
  /// references. load_config refuses any other entry, naming its file:line.
  std::vector<std::string> untrusted_tools;
  /// [workloads.X] shadow_calls: judged shadow calls on the workload's live
  /// traffic; unset when the workload has none.
  std::optional<ShadowCalls> shadow_calls;
  PerMinuteLimits rate;                      ///< requests_per_minute, tokens_per_minute of the workload's steps
  std::string source;                        ///< "file:line:column" of the definition, for messages
};

/// Shadow evaluation ([shadow]): the bound on the work the engine's shadow
/// worker may hold, so a slow candidate can never slow or block a decision.
/// The candidates run in sandboxes of their own under the [sandbox] limits.
struct ShadowSettings {
  /// Evaluations waiting for the worker; beyond this a new one is dropped and counted.
  std::int64_t queue = 4096;
  /// How long closing the engine waits for the waiting evaluations to be
  /// recorded; what is left then is dropped and counted.
  std::chrono::milliseconds drain_timeout{5000};
};

/// How model calls go out ([calls]): transport limits, retries and backoff.
struct CallSettings {
  std::chrono::milliseconds connect_timeout{10'000};       ///< longest wait for the connection
  std::chrono::milliseconds first_byte_timeout{120'000};  ///< request sent -> first response byte
  std::chrono::milliseconds total_timeout{600'000};       ///< the whole call
  std::chrono::milliseconds stall_timeout{60'000};        ///< longest silence inside a response
  std::int64_t max_response_bytes = 32 * 1024 * 1024;     ///< a bigger body is an upstream error
  int max_attempts = 3;                                   ///< per model, the first try included
  std::chrono::milliseconds backoff_initial{500};         ///< before the 2nd attempt (full jitter)
  std::chrono::milliseconds backoff_max{16'000};          ///< cap of the doubling backoff

  /// A Retry-After longer than this is not waited for: the call falls back to
  /// the tier's next model at once.
  std::chrono::milliseconds retry_after_max{30'000};

  /// The least output cap a call under a budget is made with: when the cap
  /// asked for does not fit what is left, it is lowered to what fits, but not
  /// below this (a smaller answer is not worth a call: it is refused).
  std::int64_t min_answer_tokens = 16;
};

/// The offline `sim` provider's latency model ([sim]): each answer takes
/// `base_latency` + `per_output_token` × its output tokens (0 = instant);
/// and its prompt cache (sim_client.cpp): a prefix it saw lives `cache_ttl`.
struct SimSettings {
  std::chrono::milliseconds base_latency{0};      ///< the fixed part of each answer's latency
  std::chrono::microseconds per_output_token{0};  ///< the latency added per output token
  std::chrono::seconds cache_ttl{300};            ///< `cache_ttl_s`: how long a prefix stays cached
  /// The time the cache lifetimes are measured on (not from the file: tests
  /// pass a scripted one).
  std::function<std::chrono::steady_clock::time_point()> clock = std::chrono::steady_clock::now;
};

/// What the ledger keeps of each step ([ledger]). Its decision records always
/// hold the step's fields as the rules saw them (for `whatif` replays); the
/// prompt text only when asked, since it may hold what must not be stored.
struct LedgerSettings {
  bool keep_prompts = false;  ///< keep the step's prompt text in decision records
  /// What an acknowledged record survives: "process" (default: a crash of the
  /// process; each commit is a write to the SQLite WAL, no fsync) or "power"
  /// (a power loss too; each commit fsyncs the WAL).
  LedgerDurability durability = LedgerDurability::kProcess;
  /// `url`: "" keeps the ledger in SQLite ([gateway] ledger, `--ledger`); a
  /// postgresql:// URL (is_postgres_url) writes it to PostgreSQL instead
  /// (open_postgres_ledger), for every host reading this config.
  std::string url;
  /// `spool`: the PostgreSQL sink's local spool file, relative to the
  /// config's directory; one per process. Only with `url`.
  std::string spool = "ledger-spool.jsonl";
  /// `spool_limit_mb`: the spool's size, at most (PostgresLedgerOptions). Only with `url`.
  std::uint64_t spool_limit_bytes = std::uint64_t{256} << 20;
};

/// The ledger sink `settings` name: the PostgreSQL sink when `url` is set
/// (its spool and durability from `settings`), else the SQLite ledger at
/// `sqlite_path` with `settings.durability`.
Result<std::shared_ptr<LedgerSink>> open_configured_ledger(const LedgerSettings& settings,
                                                           const std::string& sqlite_path);
/// Where the records of that ledger are read back from (read_ledger): `url`
/// when set, else `sqlite_path`.
std::string ledger_location(const LedgerSettings& settings, const std::string& sqlite_path);

/// A budget for one value of a tag ([budgets.NAME.VALUE]): a hard ceiling
/// for every call tagged NAME = VALUE (gateway header `x-switchboard-tag-NAME:
/// VALUE`; embedded: tag_budget_scope(NAME, VALUE) in StepCall::budget_scopes).
struct TagBudget {
  std::string name;   ///< the tag: lower-case letters, digits, '-' and '_' (a header name's part)
  std::string value;  ///< the tag's value, compared exactly
  MicroUsd cap = 0;   ///< `usd` (required), per period
  BudgetPeriod period = BudgetPeriod::kMonth;  ///< `period`: "day" or "month" (the default)
  std::string source;  ///< "file:line:column" of the table, for messages
};

/// A key of the HTTP gateway ([gateway.keys.NAME]): which workload a client
/// holding it is routed for, and an optional budget of its own (scope "key:NAME").
struct GatewayKey {
  std::string name;           ///< NAME in [gateway.keys.NAME]
  std::string key_env;        ///< the environment variable holding the key (never the key itself)
  std::string workload;       ///< the workload a client holding the key is routed for
  std::optional<MicroUsd> budget;                     ///< the key's cap per period, when set
  BudgetPeriod budget_period = BudgetPeriod::kMonth;  ///< the period `budget` applies to
  PerMinuteLimits rate;       ///< requests_per_minute, tokens_per_minute of the key's requests (scope "key:NAME")
  std::string source;         ///< "file:line:column" of the definition, for messages
};

/// The HTTP gateway host's settings ([gateway]); the engine itself ignores them.
struct GatewaySettings {
  std::string listen_host = "127.0.0.1";  ///< HOST of listen = "HOST:PORT"
  int listen_port = 8080;                 ///< PORT of listen = "HOST:PORT"
  /// With keys: a request's bearer/x-api-key picks its workload; unknown keys get 401.
  /// Without keys: the x-switchboard-workload header does, else default_workload.
  std::vector<GatewayKey> keys;
  std::string default_workload = "default";  ///< without keys: for a request without the header
  std::string ledger = "switchboard.db";      ///< SQLite ledger, relative to the config's directory
  std::int64_t max_body_bytes = 4 * 1024 * 1024;  ///< a bigger request body gets 413
  int max_header_count = 100;                  ///< a request with more headers gets 431
  std::chrono::milliseconds header_timeout{10'000};  ///< a client must send its headers within this
  std::chrono::milliseconds body_timeout{30'000};    ///< ... and its body within this
  std::chrono::milliseconds idle_timeout{60'000};    ///< a kept-alive connection with nothing to say
  int max_upstream_calls = 256;               ///< concurrent model calls; beyond: 503
  int threads = 0;                            ///< I/O threads; 0 = one per core

  /// An I/O thread keeps polling its sockets this long after its last work
  /// before it sleeps (busy_poll_us, 0..10000): an answer arriving meanwhile
  /// is taken without a sleep and a wake-up. Less latency for more CPU; for a
  /// gateway with cores to itself. 0 (the default): sleep at once.
  std::chrono::microseconds busy_poll{0};

  /// The deepest nesting of arrays and objects a request body may have, counted
  /// from the body itself (1); deeper gets 400 naming the field. Bounds every
  /// parse and every re-serialisation of a client's JSON (and of a model's tool
  /// arguments, which deeper are passed on as text).
  int max_json_depth = 64;
  /// One request's estimated memory (the body, its parsed tree and translated
  /// copies, estimated from its size and structure); bigger gets 413.
  std::int64_t max_request_memory = 128 * 1024 * 1024;
  /// The estimated memory of every request in flight together; a request that
  /// would exceed it gets 503 with Retry-After before it is parsed.
  std::int64_t max_inflight_bytes = 512 * 1024 * 1024;
  /// One request's deadline over all its attempts, fallbacks and backoffs,
  /// from its last byte read; a client may ask for less (never more) with
  /// x-switchboard-timeout-ms. When it passes, the upstream calls are
  /// cancelled and the client gets 504 in its API's shape.
  std::chrono::milliseconds request_timeout{600'000};
  /// POST /v1/responses keeps each answer (unless the request says store:
  /// false) for a later previous_response_id, in the ledger's database so it
  /// survives a restart: at most this many (the oldest go first; 0 keeps none)...
  std::int64_t stored_responses = 10'000;
  /// ... and none older than this (OpenAI's own keep 30 days).
  std::chrono::seconds stored_response_max_age{30 * 24 * 3600};
  /// A stream whose upstream is quiet this long gets a keep-alive (an SSE
  /// comment, Anthropic's ping), so proxies' idle timeouts do not cut long
  /// turns; 0 sends none.
  std::chrono::milliseconds stream_keepalive{15'000};
  /// The browser origins allowed to call the gateway (CORS): exact origins
  /// ("https://app.example.com", scheme://host[:port], compared ignoring
  /// case) or "*" alone for any. Empty (the default): CORS is off, no
  /// Access-Control-* header is sent and a preflight gets no grant.
  std::vector<std::string> cors_origins;
  /// Request headers forwarded verbatim, with the client's unmodelled fields,
  /// to a model of the API the client spoke (same-protocol passthrough:
  /// Passthrough in request.h), names lowercased. Any other client header is
  /// never forwarded. Headers the gateway sets itself (authorization, keys,
  /// content-*, accept, host, anthropic-version, x-switchboard-*) cannot be listed.
  std::vector<std::string> passthrough_headers{"anthropic-beta", "openai-beta"};
};

/// Embeddings ([embeddings]; embedding.h).
struct EmbeddingSettings {
  /// The tier of embedding models an embeddings call for "auto" uses (the
  /// order is the fallback order). Default: the first tier, by name, of
  /// embedding models; "" when the config has none.
  std::string tier;
};

/// A validated configuration (load_config, parse_config).
struct Config {
  std::string path;            ///< the file this came from ("" when parsed from text)
  std::string base_dir;        ///< directory that relative paths are resolved against
  std::string premium_tier = "premium";  ///< the "everything on premium" baseline
  std::string default_fallback_tier;     ///< for rules with no workload (tests, check)
  int max_fanout = 8;          ///< the largest `fanout` a decision may have ([routing] max_fanout)
  std::string price_catalog_path;  ///< [routing] price_catalog, resolved against base_dir

  /// The catalog named by [routing] price_catalog; prices every model in `models`.
  /// Shared and immutable, so a ledger or a budget may keep it past the Config.
  std::shared_ptr<const PriceCatalog> prices;
  SandboxLimits sandbox;       ///< [sandbox]
  RuleCostBudget rule_cost;    ///< [rule_cost]
  CallSettings calls;          ///< [calls]
  HealthSettings health;       ///< [health]: the models' circuit breakers (health.h)
  SessionSettings sessions;    ///< [sessions]: the session book's cache lifetimes and bound (sessions.h)
  SimSettings sim;             ///< [sim]
  LedgerSettings ledger;       ///< [ledger]
  ShadowSettings shadow;       ///< [shadow]
  GatewaySettings gateway;     ///< [gateway]
  EmbeddingSettings embeddings;  ///< [embeddings]
  StateSettings state;         ///< [state]: where budgets live when several processes share them (budget.h)
  std::map<std::string, ModelSpec, std::less<>> models;    ///< [models], by name
  std::map<std::string, Tier, std::less<>> tiers;          ///< [tiers], by name
  std::map<std::string, Workload, std::less<>> workloads;  ///< [workloads], by name
  std::vector<TagBudget> budgets;  ///< [budgets.NAME.VALUE], in name, then value order
  /// The budget of tag `name` = `value`, or nullptr.
  const TagBudget* find_tag_budget(std::string_view name, std::string_view value) const;

  /// The model named `name`, or nullptr.
  const ModelSpec* find_model(std::string_view name) const;
  /// The tier named `name`, or nullptr.
  const Tier* find_tier(std::string_view name) const;
  /// The workload named `name`, or nullptr.
  const Workload* find_workload(std::string_view name) const;
  /// The first tier (in name order) listing `model`; every model is in one.
  const Tier* tier_of(std::string_view model) const;
  /// "sim" when the model's key variable is unset or empty, else its provider.
  std::string effective_provider(const ModelSpec& model) const;
};

/// List-price cost of one call to `model`: input × input price + output × output
/// price, summed before rounding to micro-dollars.
MicroUsd estimate_call_cost(const ModelSpec& model, std::int64_t input_tokens,
                            std::int64_t output_tokens);

/// Reads and validates a config file, and the price catalog it names.
Result<Config> load_config(const std::string& path);
/// Parses config text; `source_name` appears in messages, `base_dir` resolves
/// paths (the rules files and the price catalog, which is read from disk).
Result<Config> parse_config(std::string_view text, std::string source_name, std::string base_dir);

}  // namespace switchboard
