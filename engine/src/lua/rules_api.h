// The rule API table: every value a rules file can read (`step`, `ctx`, what
// ctx's metatable reaches) and every field `classify` may return, with its
// Lua type, when it is present, a description and an example. It is the one
// source of the rule API page (`switchboard rules-api`, docs/rules-api.md,
// rendered by rules/rules_api_page.cpp) and of the names the sandbox uses:
// sandbox.cpp takes every key it sets on step, ctx, ctx.models[name] and
// ctx.price(name), and every result field it reads, through key() below,
// which fails to compile for a name the table does not hold; and it checks at
// compile time that it interns every step key and reads every result field
// of the table. That the values it sets have the types, and the presence, the
// table says is tests/lua/rules_api_test.cpp's.
//
// Adding a field: add its row to the section's array here, then set or read
// it in sandbox.cpp through key(); regenerate docs/rules-api.md.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace switchboard::detail::rules_api {

// The Lua types a value may have, as a set. Integer and float are told apart
// as math.type tells them; kNil marks a value that may be absent.
enum LuaTypes : unsigned {
  kNil = 1u << 0,
  kBoolean = 1u << 1,
  kInteger = 1u << 2,
  kFloat = 1u << 3,
  kString = 1u << 4,
  kTable = 1u << 5,
  kFunction = 1u << 6,
  kUserdata = 1u << 7,
  kNumber = kInteger | kFloat,  // either: what lua_pushnumber and arithmetic give
};

// One value a rule reads (or, in the return section, may set).
struct Field {
  std::string_view path;         // how a rule spells it: "step.role", "ctx.models[name].healthy"
  unsigned types;                // LuaTypes it may have; kNil when it may be absent
  std::string_view shape;        // what a table, function or userdata holds, or the allowed values ("": none)
  std::string_view present;      // when it is there (non-nil)
  std::string_view description;  // one line
  // A Lua expression: a literal of one of `types`; for a function or
  // userdata, a use of it (a call, an index).
  std::string_view example;
};

// A group of fields with a common prefix. Every field's path is `prefix`
// followed by its key, except the section's own value row, whose path is
// `name` (the table ctx.models[name] itself, classify's return value).
struct Section {
  std::string_view name;    // "step", "ctx.models[name]", "return"
  std::string_view prefix;  // "step.", "ctx.models[name].", "return."
  std::string_view title;   // the page's heading (Markdown)
  std::string_view about;   // a paragraph under it
  std::span<const Field> fields;
};

// ---------------------------------------------------------------- step

inline constexpr Field kStepFields[] = {
    {"step.role", kString, "", "always",
     "What the step does, as the caller names it (derived steps: \"chat\").", "\"summarize\""},
    {"step.input_tokens", kInteger, "", "always",
     "Input tokens: the caller's count, else estimated from `prompt` (one token per 3 bytes, rounded up).",
     "8000"},
    {"step.prompt", kString | kNil, "", "when the caller sent the text", "The step's text.",
     "\"Summarize the attached contract.\""},
    {"step.expected_output_tokens", kInteger | kNil, "", "when the caller gave one",
     "The caller's expectation of the answer's length, in tokens.", "800"},
    {"step.needs_chain_of_thought", kBoolean, "", "always",
     "The caller's flag; derived: an explicit reasoning effort or a thinking budget above 0.", "true"},
    {"step.output_must_be_json", kBoolean, "", "always",
     "The caller's flag; derived: the output format is a JSON object or schema.", "false"},
    {"step.untrusted_input", kBoolean, "", "always",
     "The caller's flag; derived: a tool result from an untrusted tool, or one carrying media.", "false"},
    {"step.tool_depth", kInteger, "", "always",
     "Tool round-trips since the last user-authored message.", "2"},
    {"step.turns", kInteger, "", "always", "User-authored messages in the conversation.", "3"},
    {"step.has_tools", kBoolean, "", "always", "The model is offered tools.", "true"},
    {"step.tool_names", kTable, "array of strings", "always (empty and read-only when no tools)",
     "The tools offered, by name, in order.", "{ \"read_file\", \"grep\" }"},
    {"step.last_tool", kString | kNil, "", "when the step answers a tool's result",
     "The tool whose result this step answers.", "\"read_file\""},
    {"step.has_images", kBoolean, "", "always", "The conversation carries an image.", "false"},
    {"step.has_documents", kBoolean, "", "always", "The conversation carries a document.", "false"},
    {"step.agent", kString | kNil, "", "when the caller names it or the conversation has a system prompt",
     "Which agent asks: derived, the first 12 hex digits of the SHA-256 of its system prompt.",
     "\"3f9a1c0b7e21\""},
    {"step.meta", kTable, "string keys; string, number or boolean values", "always (empty when none)",
     "The caller's own fields, as sent (the gateway adds `client`).", "{ client = \"curl\" }"},
};

// ---------------------------------------------------------------- ctx

inline constexpr Field kCtxFields[] = {
    {"ctx.workload", kString, "", "always", "The workload whose rules run.", "\"contracts\""},
    {"ctx.rules_version", kString, "", "always", "The SHA-256 of the rules file, in hex.",
     "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\""},
    {"ctx.budget_left_usd", kFloat | kNil, "", "when the workload has a budget",
     "Dollars left in the workload's budget; calls in flight count as spent.", "12.5"},
    {"ctx.spent_usd", kFloat, "", "always", "Dollars the workload has spent against its budget (the caller's figure when it passes one; else 0 "
     "without a budget).",
     "3.75"},
    {"ctx.rate_requests_left", kInteger | kNil, "", "when the step's key or workload limits requests per minute",
     "Requests left in the sliding minute of the tightest rate-limited scope of the step's key and workload, after "
     "this one (0: it was the last that fit).",
     "12"},
    {"ctx.rate_tokens_left", kInteger | kNil, "", "when the step's key or workload limits tokens per minute",
     "Tokens left in the sliding minute of the tightest token-limited scope of the step's key and workload, after "
     "this step's input estimate and output cap.",
     "48000"},
    {"ctx.models", kTable, "read-only map of model name to ctx.models[name]; `pairs` walks the models in name order",
     "always", "What is true of the config's models right now.", "ctx.models[\"gpt-5-mini\"]"},
    {"ctx.price", kFunction, "price(name) -> ctx.price(name)", "always", "A model's base prices.",
     "ctx.price(\"gpt-5-mini\")"},
    {"ctx.cost", kFunction,
     "cost(name, input_tokens, output_tokens[, cached_tokens]) -> ctx.cost(...)[1], ctx.cost(...)[2]",
     "always",
     "What a call would cost at the catalog's prices, long-context rates included; `cached_tokens` of the "
     "input are read from the cache.",
     "ctx.cost(\"gpt-5-mini\", 8000, 800)"},
    {"ctx.session", kUserdata | kNil, "read-only", "when the step belongs to a session",
     "The conversation this step continues: which model served it and whose prompt cache is warm.",
     "ctx.session.last_model"},
};

inline constexpr Field kSessionFields[] = {
    {"ctx.session.id", kString, "", "always",
     "The session: the caller's (header `x-switchboard-session`, metadata or STEPS.jsonl `session_id`), else "
     "`h-` and a hash of the conversation's system prompt and first user message.",
     "\"t-001\""},
    {"ctx.session.last_model", kString | kNil, "", "after the session's first answered call",
     "The model that answered the session's last call.", "\"claude-haiku-4-5\""},
    {"ctx.session.turn", kInteger, "", "always", "Calls the session has had answered so far.", "4"},
    {"ctx.session.cached_tokens", kUserdata, "read-only map of model name to integer; `pairs` walks the warm models",
     "always",
     "Prompt tokens expected to hit each model's cache now (0 for a cold model: never served, or its cache "
     "lifetime passed); price them with `ctx.cost(name, input, output, cached)`.",
     "ctx.session.cached_tokens[\"claude-haiku-4-5\"]"},
};

inline constexpr Field kModelFields[] = {
    {"ctx.models[name]", kUserdata | kNil, "read-only; `pairs` walks its present fields",
     "for a name the config has a model of",
     "The model's health, taken when a call first reads it: every field read in one call agrees.",
     "ctx.models[name].healthy"},
    {"ctx.models[name].healthy", kBoolean, "", "always",
     "A call may go out now: the breaker is closed, or half-open with no probe out.", "true"},
    {"ctx.models[name].state", kString, "\"closed\", \"open\" or \"half_open\"", "always",
     "The circuit breaker's state.", "\"closed\""},
    {"ctx.models[name].error_rate", kFloat, "", "always",
     "Failures / calls in the `[health]` window; 0 with no calls.", "0.05"},
    {"ctx.models[name].calls", kInteger, "", "always", "Calls in the `[health]` window.", "40"},
    {"ctx.models[name].consecutive_failures", kInteger, "", "always", "Failures since the last success.", "0"},
    {"ctx.models[name].p50_ms", kFloat | kNil, "", "after the model's first answer",
     "Median latency of its last 64 answers, in milliseconds.", "850.0"},
    {"ctx.models[name].p95_ms", kFloat | kNil, "", "after the model's first answer",
     "95th percentile latency of its last 64 answers, in milliseconds.", "2400.0"},
    {"ctx.models[name].requests_left", kInteger | kNil, "", "when the provider's last answer said",
     "Requests left in the provider's rate-limit window.", "4999"},
    {"ctx.models[name].tokens_left", kInteger | kNil, "", "when the provider's last answer said",
     "Tokens left in the provider's rate-limit window.", "799000"},
    {"ctx.models[name].requests_reset_s", kFloat | kNil, "", "when the provider's last answer said",
     "Seconds until the request limit resets, counted down to now.", "12.5"},
    {"ctx.models[name].tokens_reset_s", kFloat | kNil, "", "when the provider's last answer said",
     "Seconds until the token limit resets, counted down to now.", "0.5"},
};

inline constexpr Field kPriceFields[] = {
    {"ctx.price(name)", kTable | kNil, "read-only", "for a name the config has a model of",
     "The model's base rates in the price catalog.",
     "{ input = 0.25, cached_input = 0.025, output = 2.0 }"},
    {"ctx.price(name).input", kFloat, "", "always", "Dollars per million input tokens.", "0.25"},
    {"ctx.price(name).cached_input", kFloat, "", "always",
     "Dollars per million input tokens read from the cache.", "0.025"},
    {"ctx.price(name).output", kFloat, "", "always", "Dollars per million output tokens.", "2.0"},
};

// ctx.cost's results, in order: their keys ("[1]", "[2]") are positions.
inline constexpr Field kCostResults[] = {
    {"ctx.cost(...)[1]", kInteger | kNil, "", "for a name the config has a model of (else one nil)",
     "First result: the cost in micro-dollars.", "3600"},
    {"ctx.cost(...)[2]", kFloat | kNil, "", "for a name the config has a model of",
     "Second result: the same cost in dollars.", "0.0036"},
};

// ---------------------------------------------------------------- classify's result

inline constexpr Field kResultFields[] = {
    {"return", kString | kTable, "", "always: anything else is a rule error (the fallback tier serves)",
     "A tier or model name (a tier picks its first model), or a table of the fields below.",
     "{ tier = \"cheap\", reasoning = \"low\", reason = \"mechanical role\" }"},
    {"return.tier", kString | kNil, "a tier of the config", "at least one of tier and model",
     "The tier to serve the step: its first model, unless `model` is set too.", "\"cheap\""},
    {"return.model", kString | kNil, "a model of the config", "at least one of tier and model",
     "The model to serve the step (with no `tier`, the tier that lists it).", "\"claude-haiku-4-5\""},
    {"return.reasoning", kString | kNil, "\"low\", \"medium\" or \"high\"", "optional",
     "Reasoning effort; a caller's own setting wins unless `pin_reasoning`.", "\"low\""},
    {"return.pin_reasoning", kBoolean | kNil, "", "optional (default false)",
     "The rules' `reasoning` wins over the caller's (then not sent).", "true"},
    {"return.max_output_tokens", kInteger | kNil, "1 to the model's context window", "optional",
     "Output cap, applied when the caller set none.", "1024"},
    {"return.fanout", kInteger | kNil, "1 to `[routing] max_fanout`", "optional (default 1)",
     "Branches to run in parallel; their answers are aggregated.", "3"},
    {"return.aggregate", kString | kNil, "a tier of the config", "optional (default: the decision's tier)",
     "The tier that writes the final answer of a fan-out.", "\"premium\""},
    {"return.reason", kString | kNil, "cut at 512 bytes", "optional",
     "Why: kept with the decision and in the ledger.", "\"mechanical role\""},
};

// ---------------------------------------------------------------- the page

inline constexpr Section kSections[] = {
    {"step", "step.", "`step`",
     "The first argument of `classify(step, ctx)`: what is known about the step before a model is chosen, "
     "a new table per call.",
     kStepFields},
    {"ctx", "ctx.", "`ctx`",
     "The second argument, read-only: the workload and its budget, the models' health and prices. Nothing "
     "of it is built for a call: a call updates the fields that changed, and a model's health is taken when "
     "a rule first reads it.",
     kCtxFields},
    {"ctx.models[name]", "ctx.models[name].", "`ctx.models[name]`",
     "One model's health: its circuit breaker, latency and the provider's rate-limit headroom. `name` is a "
     "model of the config; `pairs(ctx.models)` gives each name with this table.",
     kModelFields},
    {"ctx.price(name)", "ctx.price(name).", "`ctx.price(name)`",
     "A model's base rates in the price catalog, in dollars per million tokens; read-only, the same table "
     "for the same model.",
     kPriceFields},
    {"ctx.cost(...)", "ctx.cost(...)", "`ctx.cost(name, input_tokens, output_tokens[, cached_tokens])`",
     "Two results; one nil for a name the config has no model of. Token counts must be whole and not "
     "negative, and `cached_tokens` at most `input_tokens`.",
     kCostResults},
    {"return", "return.", "What `classify` returns",
     "A string, or a table of these fields (other keys are ignored). A wrong type, an unknown tier or "
     "model or a value out of range is a rule error: the workload's `fallback_tier` serves, with the "
     "error attached to the decision.",
     kResultFields},
    {"ctx.session", "ctx.session.", "`ctx.session`",
     "The session's figures as the engine's session book has them when the call starts ([sessions] in the "
     "config: cache lifetimes, how many sessions are kept).",
     kSessionFields},
};

// ---------------------------------------------------------------- names for the sandbox

// The key of `field` in `section`: its path after the prefix. A C string:
// the path is a literal, so its tail ends with the literal's terminator.
constexpr const char* key_of(const Section& section, const Field& field) {
  return field.path.data() + section.prefix.size();
}

// The index in `section.fields` of the field whose key is `key`. Evaluated at
// compile time only: a key the table does not hold does not compile.
consteval std::size_t index_of(const Section& section, std::string_view key) {
  for (std::size_t i = 0; i < section.fields.size(); ++i) {
    const std::string_view path = section.fields[i].path;
    if (path.size() == section.prefix.size() + key.size() && path.starts_with(section.prefix) &&
        path.substr(section.prefix.size()) == key) {
      return i;
    }
  }
  throw "this key is not in the rule API table (lua/rules_api.h): add its row";
}

// The key `name` of `section`, as the C string the sandbox passes to Lua.
// A key the table does not hold does not compile.
consteval const char* key(const Section& section, std::string_view name) {
  return key_of(section, section.fields[index_of(section, name)]);
}

inline constexpr const Section& kStep = kSections[0];
inline constexpr const Section& kCtx = kSections[1];
inline constexpr const Section& kModel = kSections[2];
inline constexpr const Section& kPrice = kSections[3];
inline constexpr const Section& kCost = kSections[4];
inline constexpr const Section& kResult = kSections[5];
inline constexpr const Section& kSession = kSections[6];

}  // namespace switchboard::detail::rules_api
