// The Lua sandbox. Debian's liblua5.4 is compiled as C: a Lua error unwinds
// with longjmp. Every function below that a Lua error can cross (C functions
// called by Lua, the hook, the allocator, the protected helpers) therefore
// holds plain data only; C++ objects are built outside, after lua_pcall returns.
#include "lua/sandbox.h"

#include "lua/rules_api.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

namespace switchboard::detail {

namespace {

constexpr int kHookInterval = 1000;       // instructions between budget checks
// One VM instruction can take time in proportion to a long string it reads:
// comparing two strings, converting one to a number (a for-loop limit, a
// coercion). While the state holds a string of kTrackedStringBytes or more,
// the count events come often enough that an interval's instructions read at
// most about kStringBytesPerCheck bytes, whatever the longest such string:
// interval * longest <= kStringBytesPerCheck (about 20 ms of strtod here).
// The intervals divide kHookInterval, so a budget that is a multiple of one
// is charged exactly.
constexpr size_t kTrackedStringBytes = 16 * 1024;
constexpr size_t kStringBytesPerCheck = 16 * 1024 * 1024;
constexpr int kShorterIntervals[] = {500, 200, 100, 50, 20, 10, 5, 2, 1};
// Allocations and growths of this size or more read the clock: the work a C
// function does around a large block (copying, filling) is in proportion to it.
constexpr size_t kClockedAllocBytes = 64 * 1024;
constexpr int kBlocksPastDeadline = 4;  // large blocks given after the deadline, then refused
constexpr int kChargeChunk = 1024;        // elements a counted library loop moves between charges
constexpr int kProbeClockInterval = 64;   // instructions between clock reads when counting each
// Count events only. Work a count event cannot see is charged and timed
// where it is done: library loops charge the budget as they go (counted_*,
// the pattern functions), large allocations read the clock, and while the
// state holds a long string the interval shrinks so that no interval's
// instructions can read much of it. A call hook would add a clock read to
// every call, ctx's and step's C metamethods included, and stop nothing
// those do not.
constexpr int kHookMask = LUA_MASKCOUNT;
constexpr std::int64_t kElementsPerStep = 4;  // table.move/insert/remove: budget per element
constexpr size_t kMaxNameBytes = 128;     // tier, model, aggregate, reasoning
constexpr size_t kMaxReasonBytes = 512;   // the rule's reason, truncated beyond
constexpr size_t kMaxErrorBytes = 400;    // error messages, truncated beyond
constexpr size_t kShortStringBytes = 40;  // LUAI_MAXSHORTLEN: Lua interns strings up to this long
// Bytecode the freeze may dump to learn which upvalues a call can assign
// (about a millisecond's work); past it, every upvalue is restored.
constexpr std::int64_t kMaxFreezeDumpBytes = 4 << 20;

// Registry keys: addresses of these objects are unique light userdata.
char kFrozenMarkerKey;
char kRestoreUpvaluesKey;
char kRestoreFieldsKey;
char kRestoreUserdataKey;
char kNilSentinel;  // stands for nil in the restore lists, which must have no holes

// Why a run of Lua code was stopped. A kill is final: once set, every later
// instruction and call raises it again, so a pcall in the rules cannot swallow it.
enum class Kill { kNone, kInstructions, kTime, kMemory };

struct TextSlot {
  char data[kMaxReasonBytes];
  size_t len;
  bool present;
};

// Result of classify() as read inside protected code: plain data only.
struct ResultPod {
  bool is_name;
  TextSlot name, tier, model, reasoning, aggregate, reason;
  bool has_max_output_tokens, has_fanout;
  lua_Integer max_output_tokens, fanout;
  bool has_pin_reasoning, pin_reasoning;
};

// Arguments of one protected call.
struct CallFrame {
  const Step* step;
  std::int64_t input_tokens;
  const RulesContext* ctx;
  ResultPod* out;
  bool restored;  // the call itself put the rules' state back
};

namespace api = rules_api;

// The fields of a returned table, in the order field_refs holds their names.
// The names are the rule API table's (lua/rules_api.h): one it lacks does not
// compile, and one it has that is not read here fails the assertion below.
enum ResultField {
  kTier, kModel, kReasoning, kAggregate, kReason, kMaxOutputTokens, kFanout, kPinReasoning, kResultFieldCount
};
constexpr const char* kResultFieldNames[kResultFieldCount] = {
    api::key(api::kResult, "tier"),      api::key(api::kResult, "model"),
    api::key(api::kResult, "reasoning"), api::key(api::kResult, "aggregate"),
    api::key(api::kResult, "reason"),    api::key(api::kResult, "max_output_tokens"),
    api::key(api::kResult, "fanout"),    api::key(api::kResult, "pin_reasoning")};
// The table's result section is its value row ("return") and the fields.
static_assert(kResultFieldCount + 1 == api::kResult.fields.size(),
              "classify's result: read every field of the rule API table's return section (lua/rules_api.h)");

// The fields of the step table, in the order step_key_refs holds their names:
// the rule API table's, each of them once (as for the result fields above).
enum StepField {
  kRole, kInputTokens, kPrompt, kExpectedOutputTokens, kNeedsChainOfThought, kOutputMustBeJson,
  kUntrustedInput, kToolDepth, kTurns, kHasTools, kToolNames, kLastTool, kHasImages, kHasDocuments,
  kAgent, kMeta, kStepFieldCount
};
constexpr const char* kStepFieldNames[kStepFieldCount] = {
    api::key(api::kStep, "role"),          api::key(api::kStep, "input_tokens"),
    api::key(api::kStep, "prompt"),        api::key(api::kStep, "expected_output_tokens"),
    api::key(api::kStep, "needs_chain_of_thought"), api::key(api::kStep, "output_must_be_json"),
    api::key(api::kStep, "untrusted_input"), api::key(api::kStep, "tool_depth"),
    api::key(api::kStep, "turns"),         api::key(api::kStep, "has_tools"),
    api::key(api::kStep, "tool_names"),    api::key(api::kStep, "last_tool"),
    api::key(api::kStep, "has_images"),    api::key(api::kStep, "has_documents"),
    api::key(api::kStep, "agent"),         api::key(api::kStep, "meta")};
static_assert(kStepFieldCount == api::kStep.fields.size(),
              "the step table: intern every field of the rule API table's step section (lua/rules_api.h)");

// Each name of `names` is a different one (so, with the counts above, the
// sandbox's names are the table's, one for one).
constexpr bool all_different(const char* const* names, int n) {
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      if (std::string_view(names[i]) == std::string_view(names[j])) return false;
    }
  }
  return true;
}
static_assert(all_different(kResultFieldNames, kResultFieldCount), "a result field is named twice");
static_assert(all_different(kStepFieldNames, kStepFieldCount), "a step field is named twice");

// The fields of ctx, in the order ctx_key_refs holds their names.
// The fields of ctx a call sets (models, price and cost are set once), in
// the order ctx_key_refs holds their names.
enum CtxField {
  kWorkload, kRulesVersion, kBudgetLeftUsd, kSpentUsd, kSession, kRateRequestsLeft, kRateTokensLeft, kCtxFieldCount
};
constexpr const char* kCtxFieldNames[kCtxFieldCount] = {
    api::key(api::kCtx, "workload"), api::key(api::kCtx, "rules_version"), api::key(api::kCtx, "budget_left_usd"),
    api::key(api::kCtx, "spent_usd"), api::key(api::kCtx, "session"), api::key(api::kCtx, "rate_requests_left"),
    api::key(api::kCtx, "rate_tokens_left")};

// A number held in ctx's shadow, as last set (unset: nil).
struct CachedNumber {
  bool valid = false;
  std::optional<double> value;
};

// An integer held in ctx's shadow, as last set (unset: nil).
struct CachedInteger {
  bool valid = false;
  std::optional<std::int64_t> value;
};

// The fields of ctx.models[name], in the order model_key_refs holds their names.
enum ModelField {
  kHealthy, kState, kErrorRate, kCalls, kConsecutiveFailures, kP50Ms, kP95Ms, kRequestsLeft, kTokensLeft,
  kRequestsResetS, kTokensResetS, kModelFieldCount
};
constexpr const char* kModelFieldNames[kModelFieldCount] = {
    api::key(api::kModel, "healthy"),       api::key(api::kModel, "state"),
    api::key(api::kModel, "error_rate"),    api::key(api::kModel, "calls"),
    api::key(api::kModel, "consecutive_failures"), api::key(api::kModel, "p50_ms"),
    api::key(api::kModel, "p95_ms"),        api::key(api::kModel, "requests_left"),
    api::key(api::kModel, "tokens_left"),   api::key(api::kModel, "requests_reset_s"),
    api::key(api::kModel, "tokens_reset_s")};
// The table's section is its value row (ctx.models[name]) and the fields.
static_assert(kModelFieldCount + 1 == api::kModel.fields.size(),
              "ctx.models[name]: serve every field of the rule API table's section (lua/rules_api.h)");

// The fields of ctx.price(name)'s table.
constexpr int kPriceFieldCount = 3;
constexpr const char* kPriceFieldNames[kPriceFieldCount] = {
    api::key(api::kPrice, "input"), api::key(api::kPrice, "cached_input"), api::key(api::kPrice, "output")};
static_assert(kPriceFieldCount + 1 == api::kPrice.fields.size(),
              "ctx.price(name): set every field of the rule API table's section (lua/rules_api.h)");

enum RestoreList { kUpvalueList, kFieldList, kUserdataList, kRestoreListCount };

// One figure ctx.session.cached_tokens[model] read from the session book:
// the model's name as the rule gave it, and the tokens.
struct CachedRead {
  char model[kMaxNameBytes];
  size_t len;
  std::int64_t tokens;
};
constexpr int kCachedReads = 4;  // the models a call remembers; a rule weighs one or two

// A string held in the registry with a copy of its text for comparison.
struct CachedString {
  int ref = LUA_NOREF;
  bool valid = false;
  size_t len = 0;
  char text[kMaxNameBytes];
};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// A string of kTrackedStringBytes or more that the state holds (or held: a
// dead one counts until it is freed).
struct TrackedString {
  const void* block;
  size_t size;
};

struct LuaSandbox::Core {
  lua_State* L = nullptr;  // the main thread, once created; the only one (no coroutine library)
  // Memory. A refused request is not yet a kill: Lua answers a refusal with an
  // emergency collection and asks again for the same block. Only if that retry
  // is refused too, or Lua moves on without retrying, is the cap exceeded.
  std::int64_t memory_limit = 0;
  std::int64_t memory_used = 0;
  bool memory_refused = false;   // the last refused request has not been retried yet
  const void* refused_block = nullptr;
  size_t refused_size = 0;
  bool memory_exceeded = false;  // a request stayed refused
  // Instruction budget and deadline of the running call (or of the file body).
  std::int64_t budget_limit = 0;
  std::int64_t budget_remaining = 0;
  int hook_interval = kHookInterval;  // instructions per count event
  // A probe counting instructions: a count event per instruction, the budget
  // still charged per kHookInterval of them.
  bool count_each = false;
  std::int64_t instructions_run = 0;  // with count_each: since the run was armed
  std::int64_t deadline_ms = 0;
  std::int64_t time_limit_ms = 1000;  // SandboxLimits::time_limit_ms
  // A run is armed (arm_budget) until it ends: only then do large allocations
  // read the clock.
  bool timed = false;
  // A large allocation found the deadline passed. The next instruction raises
  // the time kill (where the hook can name the line); until then every
  // further large growth is refused, so a C function that keeps allocating
  // stops too. A run that returns with this set fails as well.
  bool time_expired = false;
  int blocks_past_deadline = 0;  // large blocks given since time_expired was set
  // The count-event interval the current run is charged by (the hook's
  // interval, or with count_each the interval an unprobed run would use), and
  // with count_each the instructions since the last charge.
  int charge_interval = kHookInterval;
  int since_charge = 0;
  int hook_mask = 0;        // the mask the run's hook was set with
  bool vm_started = false;  // the run's Lua code has started executing instructions
  // Strings of kTrackedStringBytes or more (see kStringBytesPerCheck), in an
  // array sized for the memory cap at creation, and the longest of them. An
  // allocation past the array's end (a cap larger than it) counts in
  // `untracked_longest`, which never shrinks.
  std::unique_ptr<TrackedString[]> string_storage;  // sized before the state exists
  TrackedString* strings = nullptr;
  size_t string_count = 0;
  size_t string_cap = 0;
  size_t longest_string = 0;
  size_t untracked_longest = 0;
  Kill kill = Kill::kNone;
  char kill_message[kMaxErrorBytes + 64] = {0};
  char chunk_name[kMaxNameBytes + 1] = {0};
  char short_src[LUA_IDSIZE] = {0};  // the chunk name as Lua prints it in positions
  std::int64_t per_call_limit = 0;
  int classify_ref = LUA_NOREF;
  // A frozen empty table: step.tool_names when the step lists no tools, so
  // the common call builds no table for it (and the rules still get a table).
  int empty_list_ref = LUA_NOREF;
  // ctx.models: one read-only proxy for the state's life (a userdata whose
  // metamethods read `call_ctx`), and the ctx of the classify call under way
  // (null outside one).
  int models_proxy_ref = LUA_NOREF;
  // ctx: one frozen table for the state's life and its shadow, which holds
  // the call's values (update_ctx), so a call builds nothing for it.
  int ctx_proxy_ref = LUA_NOREF;
  int ctx_shadow_ref = LUA_NOREF;
  CachedNumber budget_left_usd;
  CachedNumber spent_usd;
  CachedInteger rate_requests_left;
  CachedInteger rate_tokens_left;
  bool session_shown = false;  // ctx.session is in the shadow (the last call had one)
  std::optional<SessionView> session_taken;  // RulesContext::sessions' view, taken in call `session_call`
  std::uint64_t session_call = 0;
  // The figures ctx.session.cached_tokens[model] read from the session book
  // in call `cached_reads_call`: its first kCachedReads distinct models.
  CachedRead cached_reads[kCachedReads] = {};
  int cached_read_count = 0;
  std::uint64_t cached_reads_call = 0;
  // ctx.session and its cached_tokens: read-only proxies for the state's
  // life, reading call_ctx->session.
  int session_proxy_ref = LUA_NOREF;
  int cached_proxy_ref = LUA_NOREF;
  const RulesContext* call_ctx = nullptr;
  bool poisoned = false;
  ResultPod result;  // reused by every call
  // Strings every call pushes, kept in the registry so a call does not
  // allocate and hash them again: the result's and the step's field names,
  // and the ctx's workload and rules version (the same on every call in
  // practice). A key pushed from the registry also skips lua_setfield's
  // lookup of a C string, whose small cache the step's many names thrash.
  int field_refs[kResultFieldCount] = {};
  const char* field_names[kResultFieldCount] = {};
  int step_key_refs[kStepFieldCount] = {};
  // The same names' interned strings, to tell a key by its address, and the
  // metatable every call's step table gets (build_step).
  const char* step_key_names[kStepFieldCount] = {};
  int step_meta_ref = LUA_NOREF;
  int ctx_key_refs[kCtxFieldCount] = {};
  int model_key_refs[kModelFieldCount] = {};
  const char* model_key_names[kModelFieldCount] = {};
  int model_view_meta_ref = LUA_NOREF;  // every ctx.models[name] view's
  int models_shadow_ref = LUA_NOREF;    // name -> view, for models_config's models
  const Config* models_config = nullptr;  // and its model count: a config with others gets new views
  size_t models_count = 0;
  std::uint64_t call_serial = 0;        // classify calls so far: a view's snapshot is one call's
  int price_key_refs[kPriceFieldCount] = {};
  const char* price_key_names[kPriceFieldCount] = {};
  const char* ctx_key_names[kCtxFieldCount] = {};
  // The Step of the classify call under way, and what step.input_tokens
  // shows (null outside one).
  const Step* call_step = nullptr;
  std::int64_t call_input_tokens = 0;
  // The restore lists (upvalues, "__" fields, userdata) and their lengths.
  int restore_refs[kRestoreListCount] = {LUA_NOREF, LUA_NOREF, LUA_NOREF};
  lua_Integer restore_sizes[kRestoreListCount] = {};
  CachedString workload;
  CachedString rules_version;
  // Probes (CallProbe). bytes_allocated only ever grows, so a probe reads it
  // before and after the rules' code runs and the allocator needs no switch:
  // the sandbox marks where that code starts and, if it returns, where it ends.
  std::int64_t bytes_allocated = 0;
  std::int64_t bytes_at_rules_start = 0;
  std::int64_t bytes_at_rules_end = -1;  // -1: the rules' code has not returned
  const char* chunk_source = nullptr;  // the rules chunk's source: lines elsewhere are not traced
  // Set only during a run that traces lines: marks[line] for lines 1..line_count,
  // and the trace buffer, trace_len of trace_cap entries used.
  unsigned char* line_marks = nullptr;
  int line_count = 0;
  int* trace = nullptr;
  size_t trace_len = 0;
  size_t trace_cap = 0;
  bool trace_truncated = false;
};

namespace {

using Core = LuaSandbox::Core;

Core* core_of(lua_State* L) { return *static_cast<Core**>(lua_getextraspace(L)); }

bool memory_killed(const Core* core) { return core->memory_exceeded || core->memory_refused; }

void sandbox_hook(lua_State* L, lua_Debug* ar);

// The count-event interval for a state whose longest string is `longest` bytes.
int interval_for(size_t longest) {
  if (longest < kTrackedStringBytes) return kHookInterval;
  for (const int interval : kShorterIntervals) {
    if (static_cast<size_t>(interval) * longest <= kStringBytesPerCheck) return interval;
  }
  return 1;
}

size_t longest_string(const Core* core) { return std::max(core->longest_string, core->untracked_longest); }

// Makes the next instruction of the run call the hook. lua_sethook only sets
// fields of the state (Lua allows it even from a signal handler), so the
// allocator may call it whatever Lua is doing.
void hook_next_instruction(Core* core) {
  core->hook_interval = 1;
  if (!core->count_each) lua_sethook(core->L, sandbox_hook, core->hook_mask, 1);
}

// Shortens the running run's interval when the state's longest string needs
// it. Instructions run since the last count event cannot be known unprobed,
// so a shortening after the Lua code started charges a whole interval, probed
// or not: a probe still stops a run where an unprobed one stops.
void fit_interval(Core* core) {
  const int wanted = interval_for(longest_string(core));
  if (wanted >= core->charge_interval) return;
  if (core->vm_started) core->budget_remaining -= core->charge_interval;  // the next check may kill
  core->charge_interval = wanted;
  core->since_charge = 0;
  if (!core->count_each && core->hook_interval != 1) {
    core->hook_interval = wanted;
    lua_sethook(core->L, sandbox_hook, core->hook_mask, wanted);
  }
}

void track_string(Core* core, const void* block, size_t size) {
  if (core->string_count < core->string_cap) {
    core->strings[core->string_count++] = TrackedString{block, size};
    core->longest_string = std::max(core->longest_string, size);
  } else {
    core->untracked_longest = std::max(core->untracked_longest, size);
  }
  if (core->timed) fit_interval(core);
}

void forget_string(Core* core, const void* block) {
  for (size_t i = 0; i < core->string_count; ++i) {
    if (core->strings[i].block != block) continue;
    const size_t size = core->strings[i].size;
    core->strings[i] = core->strings[--core->string_count];
    if (size == core->longest_string) {
      core->longest_string = 0;
      for (size_t j = 0; j < core->string_count; ++j) {
        core->longest_string = std::max(core->longest_string, core->strings[j].size);
      }
    }
    return;
  }
}

// ---------------------------------------------------------------- allocator

void* capped_alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
  Core* core = static_cast<Core*>(ud);
  const std::int64_t old_size = ptr ? static_cast<std::int64_t>(osize) : 0;
  if (ptr != nullptr && osize >= kTrackedStringBytes) forget_string(core, ptr);
  if (nsize == 0) {
    std::free(ptr);
    core->memory_used -= old_size;
    return nullptr;
  }
  const std::int64_t growth = static_cast<std::int64_t>(nsize) - old_size;
  if (growth > 0 && nsize >= kClockedAllocBytes && core->timed) {
    // Past the deadline, a few large blocks are still given (the C function
    // asking finishes its work on them, in proportion to their size, and the
    // next instruction raises the kill, naming its line); after them they are
    // refused, so a C function that keeps allocating stops too. Counted, not
    // timed: where the error points must not depend on the machine's load.
    if (core->time_expired) {
      if (++core->blocks_past_deadline > kBlocksPastDeadline) return nullptr;
    } else if (now_ms() > core->deadline_ms) {
      core->time_expired = true;
      core->blocks_past_deadline = 1;
      hook_next_instruction(core);
    }
  }
  const bool retry = core->memory_refused && ptr == core->refused_block && nsize == core->refused_size;
  if (core->memory_refused && !retry && growth > 0) {
    // Lua went on to something else: the refusal stood.
    core->memory_refused = false;
    core->memory_exceeded = true;
  }
  // Lua assumes shrinking never fails, so only growth is refused.
  if (growth > 0 && core->memory_used + growth > core->memory_limit) {
    if (retry) {
      core->memory_refused = false;
      core->memory_exceeded = true;
    } else {
      core->memory_refused = true;
      core->refused_block = ptr;
      core->refused_size = nsize;
    }
    return nullptr;
  }
  void* block = std::realloc(ptr, nsize);
  if (block == nullptr) return nullptr;
  if (retry) core->memory_refused = false;  // the emergency collection made room
  core->memory_used += growth;
  if (growth > 0) core->bytes_allocated += growth;
  // A new object: `osize` is its type. Long strings are the operands that
  // make single instructions slow.
  if (ptr == nullptr && nsize >= kTrackedStringBytes && (osize & 0x0f) == LUA_TSTRING) {
    track_string(core, block, nsize);
  }
  return block;
}

// ---------------------------------------------------------------- budget

// Fills `buf` with "chunk:line" of the innermost Lua function running.
void where_now(lua_State* L, char* buf, size_t size) {
  lua_Debug ar;
  for (int level = 0; lua_getstack(L, level, &ar); ++level) {
    if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
      std::snprintf(buf, size, "%s:%d", ar.short_src, ar.currentline);
      return;
    }
  }
  std::snprintf(buf, size, "%s", core_of(L)->chunk_name);
}

// Records the first kill and its message. A memory kill names no line: the
// allocation that failed may be long gone from the stack when it is noticed.
void set_kill(lua_State* L, Kill kind) {
  Core* core = core_of(L);
  core->poisoned = true;
  if (core->kill != Kill::kNone) return;
  core->kill = kind;
  char where[256];
  if (kind == Kill::kMemory) {
    std::snprintf(core->kill_message, sizeof core->kill_message,
                  "%s: memory limit of %lld bytes exceeded", core->chunk_name,
                  static_cast<long long>(core->memory_limit));
    return;
  }
  where_now(L, where, sizeof where);
  if (kind == Kill::kTime) {
    std::snprintf(core->kill_message, sizeof core->kill_message,
                  "%s: time limit of %lld ms exceeded", where, static_cast<long long>(core->time_limit_ms));
  } else {
    std::snprintf(core->kill_message, sizeof core->kill_message,
                  "%s: instruction budget of %lld exceeded", where,
                  static_cast<long long>(core->budget_limit));
  }
}

[[noreturn]] void raise_kill(lua_State* L, Kill kind) {
  set_kill(L, kind);
  // From now on the hook fires on every instruction, so the error comes back
  // at once if a pcall in the rules catches it. Tracing stops here.
  core_of(L)->hook_interval = 1;
  core_of(L)->count_each = false;
  lua_sethook(L, sandbox_hook, kHookMask, 1);
  lua_pushstring(L, core_of(L)->kill_message);
  lua_error(L);
  std::abort();  // not reached: lua_error does not return
}

// Raises the kill that is due, if any. `instructions` were run since the last check.
void check_limits(lua_State* L, std::int64_t instructions) {
  Core* core = core_of(L);
  if (core->kill != Kill::kNone) raise_kill(L, core->kill);
  if (core->time_expired) raise_kill(L, Kill::kTime);
  if (memory_killed(core)) raise_kill(L, Kill::kMemory);
  if (instructions >= core->budget_remaining) {
    core->budget_remaining = 0;
    raise_kill(L, Kill::kInstructions);
  }
  core->budget_remaining -= instructions;
  if (now_ms() > core->deadline_ms) raise_kill(L, Kill::kTime);
}

// A line event of a traced run: marks the line and appends it to the trace
// unless it repeats the last entry. Lines of any other chunk are not traced
// (the sandbox loads no other, but nothing here should rely on that).
void trace_line(lua_State* L, Core* core, lua_Debug* ar) {
  if (core->line_marks == nullptr) return;
  const int line = ar->currentline;
  if (line <= 0 || line > core->line_count) return;
  // The line just traced, again (a loop on one line): whichever chunk it is
  // from, there is nothing to add, so the lookup is skipped.
  if (core->trace_len > 0 && core->trace[core->trace_len - 1] == line) return;
  if (!lua_getinfo(L, "S", ar) || ar->source != core->chunk_source) return;
  core->line_marks[line] = 1;
  if (core->trace_len == core->trace_cap) {
    core->trace_truncated = true;
    return;
  }
  core->trace[core->trace_len++] = line;
}

void sandbox_hook(lua_State* L, lua_Debug* ar) {
  Core* core = core_of(L);
  switch (ar->event) {
    case LUA_HOOKCOUNT:
      if (core->count_each) {
        // Counted one by one, charged as an unprobed run is charged: every
        // charge_interval instructions, so a probe never moves the point
        // where the budget stops a run. The clock is read more often in
        // between: a probed run is slower, and one instruction may take
        // milliseconds (converting a long string).
        if (core->time_expired) raise_kill(L, Kill::kTime);
        ++core->instructions_run;
        if (++core->since_charge >= core->charge_interval) {
          core->since_charge = 0;
          check_limits(L, core->charge_interval);
        } else if (core->instructions_run % kProbeClockInterval == 0 && now_ms() > core->deadline_ms) {
          raise_kill(L, Kill::kTime);
        }
        return;
      }
      check_limits(L, core->hook_interval);  // each event stands for hook_interval instructions
      return;
    case LUA_HOOKLINE:
      trace_line(L, core, ar);  // charges nothing: count events do
      return;
    default:
      check_limits(L, 0);
  }
}

// Arms the budget and the deadline for one run of rules code: a count event
// every kHookInterval instructions, or fewer while the state holds a long
// string (interval_for). A probed run may take one per instruction
// (`count_each`, to count them exactly) and line events (`lines`).
void arm_budget(lua_State* L, std::int64_t limit, bool count_each = false, bool lines = false) {
  Core* core = core_of(L);
  core->budget_limit = limit;
  core->budget_remaining = limit;
  core->deadline_ms = now_ms() + core->time_limit_ms;
  core->timed = true;
  core->time_expired = false;
  core->vm_started = false;
  core->kill = Kill::kNone;
  core->memory_refused = core->memory_exceeded = false;
  core->charge_interval = interval_for(longest_string(core));
  core->since_charge = 0;
  core->hook_interval = count_each ? 1 : core->charge_interval;
  core->count_each = count_each;
  core->instructions_run = 0;
  core->hook_mask = lines ? kHookMask | LUA_MASKLINE : kHookMask;
  // lua_sethook also restarts the count.
  lua_sethook(L, sandbox_hook, core->hook_mask, core->hook_interval);
}

// Ends the clock of a run: no large allocation reads it until the next arm_budget.
void end_run(Core* core) { core->timed = false; }

// ---------------------------------------------------------------- errors

// Message handler for every protected call. It never runs a metamethod: a
// non-string error object is described by its type, with the position of the
// Lua function that raised it. A message that does not start with the rules
// file's name (error("...", 0), or a level pointing outside the rules) gets
// that position too, so every error names its place.
int message_handler(lua_State* L) {
  char where[256];
  if (lua_type(L, 1) == LUA_TSTRING) {
    const Core* core = core_of(L);
    const char* src = core->short_src[0] != '\0' ? core->short_src : core->chunk_name;
    const size_t src_len = std::strlen(src);
    size_t len = 0;
    const char* msg = lua_tolstring(L, 1, &len);
    if (len > src_len && std::memcmp(msg, src, src_len) == 0 && msg[src_len] == ':') return 1;
    where_now(L, where, sizeof where);
    lua_pushfstring(L, "%s: %s", where, msg);
    return 1;
  }
  where_now(L, where, sizeof where);
  lua_pushfstring(L, "%s: error object is a %s value, not a string", where,
                  luaL_typename(L, 1));
  return 1;
}

// Runs `fn(L)` with `arg` as its one argument, in protected mode. Leaves
// nothing on the stack; on failure writes a one-line message to `err`. A kill
// (budget, time, memory) fails the call even if the rules caught its error.
bool protected_call(lua_State* L, lua_CFunction fn, void* arg, char* err, size_t err_size) {
  const int base = lua_gettop(L);
  if (!lua_checkstack(L, 8)) {
    std::snprintf(err, err_size, "Lua stack exhausted");
    return false;
  }
  lua_pushcfunction(L, message_handler);
  lua_pushcfunction(L, fn);
  lua_pushlightuserdata(L, arg);
  const int status = lua_pcall(L, 1, 0, base + 1);
  Core* core = core_of(L);
  // A run that passed its deadline fails even if it then returned; a refusal
  // for time is a time kill, not a memory one.
  if (core->time_expired) set_kill(L, Kill::kTime);
  if (status == LUA_ERRMEM || memory_killed(core)) set_kill(L, Kill::kMemory);
  if (core->kill != Kill::kNone) {
    std::snprintf(err, err_size, "%s", core->kill_message);
    lua_settop(L, base);
    return false;
  }
  if (status == LUA_OK) {
    lua_settop(L, base);
    return true;
  }
  size_t len = 0;
  const char* msg = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : nullptr;
  if (msg == nullptr) {
    std::snprintf(err, err_size, "%s: error without a message", core->chunk_name);
  } else {
    // One line: cut at the first newline (a traceback never gets here) and bound it.
    size_t n = 0;
    while (n < len && n + 1 < err_size && n < kMaxErrorBytes && msg[n] != '\n') {
      const unsigned char c = static_cast<unsigned char>(msg[n]);
      err[n] = (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
      ++n;
    }
    err[n] = '\0';
  }
  lua_settop(L, base);
  return false;
}

// Keeps `n` names in the registry (refs[i]) and their interned strings'
// addresses (names_out[i]), by which a key is told without comparing text.
void intern_keys(lua_State* L, const char* const* names, int n, int* refs, const char** names_out) {
  for (int i = 0; i < n; ++i) {
    lua_pushstring(L, names[i]);
    names_out[i] = lua_tostring(L, -1);  // the registry keeps the string alive
    refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
}

// Which of `n` interned names (by address: short strings are interned) the
// string at `idx` is, or -1.
int interned_index(lua_State* L, int idx, const char* const* names, int n) {
  if (lua_type(L, idx) != LUA_TSTRING) return -1;
  const char* key = lua_tostring(L, idx);
  for (int i = 0; i < n; ++i) {
    if (names[i] == key) return i;
  }
  return -1;
}

// ---------------------------------------------------------------- frozen tables
//
// A frozen table keeps its identity but its contents move to a "shadow" table
// reached through __index. Keys starting with "__" stay in place (the table may
// be used as a metatable, where Lua reads them raw) and are restored after each
// call. Writes of new keys hit __newindex and fail.

bool is_frozen(lua_State* L, int idx) {
  if (!lua_getmetatable(L, idx)) return false;
  lua_pushlightuserdata(L, &kFrozenMarkerKey);
  lua_rawget(L, -2);
  const bool frozen = lua_toboolean(L, -1);
  lua_pop(L, 2);
  return frozen;
}

// Pushes the shadow of the frozen table at `idx`.
void push_shadow(lua_State* L, int idx) {
  lua_getmetatable(L, idx);
  lua_pushliteral(L, "__index");
  lua_rawget(L, -2);
  lua_remove(L, -2);
}

int frozen_newindex(lua_State* L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  const bool is_globals = lua_rawequal(L, 1, -1);
  lua_pop(L, 1);
  if (is_globals && lua_type(L, 2) == LUA_TSTRING) {
    return luaL_error(L, "cannot set global '%s': globals are read-only once the rules file "
                         "has loaded (use a local)", lua_tostring(L, 2));
  }
  return luaL_error(L, "cannot modify a table of the rules' loaded state: it is read-only "
                       "once the rules file has loaded (build a new table inside classify)");
}

int frozen_len(lua_State* L) {
  push_shadow(L, 1);
  lua_pushinteger(L, static_cast<lua_Integer>(lua_rawlen(L, -1)));
  return 1;
}

// next() over a frozen table: the shadow's keys, then the "__" keys kept in place.
int frozen_next(lua_State* L, int table_idx) {
  lua_settop(L, 2);
  push_shadow(L, table_idx);  // 3
  bool in_shadow = lua_isnil(L, 2);
  if (!in_shadow) {
    lua_pushvalue(L, 2);
    in_shadow = lua_rawget(L, 3) != LUA_TNIL;
    lua_pop(L, 1);
  }
  if (in_shadow) {
    lua_pushvalue(L, 2);
    if (lua_next(L, 3)) return 2;
    lua_pushnil(L);
  } else {
    lua_pushvalue(L, 2);
  }
  if (lua_next(L, table_idx)) return 2;
  lua_pushnil(L);
  return 1;
}

int frozen_pairs_iter(lua_State* L) { return frozen_next(L, 1); }

int frozen_pairs(lua_State* L) {
  lua_pushcfunction(L, frozen_pairs_iter);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

// Pushes a read-only table of the host's: empty, its metatable's __index the
// table at `shadow` (which the rules cannot reach: __metatable hides it), so
// reads are plain lookups, and marked frozen, so rawset refuses it and next,
// rawget and rawlen read the shadow. `newindex` says why a write fails;
// `pairs` (null: the shadow's keys) walks it.
void push_read_only_table(lua_State* L, int shadow, lua_CFunction newindex, lua_CFunction pairs = nullptr) {
  shadow = lua_absindex(L, shadow);
  lua_newtable(L);
  lua_createtable(L, 0, 6);
  lua_pushvalue(L, shadow);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, pairs != nullptr ? pairs : frozen_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushcfunction(L, frozen_len);
  lua_setfield(L, -2, "__len");
  lua_pushliteral(L, "read-only");
  lua_setfield(L, -2, "__metatable");
  lua_pushlightuserdata(L, &kFrozenMarkerKey);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_setmetatable(L, -2);
}

// The restore lists are flat arrays of records in the registry. nil is stored
// as a sentinel: a hole would make lua_rawlen (and so every later record) wrong.
void push_restore_list(lua_State* L, void* key) {
  lua_pushlightuserdata(L, key);
  lua_rawget(L, LUA_REGISTRYINDEX);
}

void append_value(lua_State* L, int list, lua_Integer* n, int value_idx) {
  if (lua_isnil(L, value_idx)) {
    lua_pushlightuserdata(L, &kNilSentinel);
  } else {
    lua_pushvalue(L, value_idx);
  }
  lua_rawseti(L, list, ++*n);
}

// Pushes element `i` of a restore list, turning the sentinel back into nil.
void push_recorded(lua_State* L, int list, lua_Integer i) {
  lua_rawgeti(L, list, i);
  if (lua_touserdata(L, -1) == &kNilSentinel) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

// Records (table, key, value) in the restore list for a "__" key kept in place.
void record_field(lua_State* L, int table_idx, int key_idx, int value_idx) {
  push_restore_list(L, &kRestoreFieldsKey);
  const int list = lua_gettop(L);
  lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, list));
  append_value(L, list, &n, table_idx);
  append_value(L, list, &n, key_idx);
  append_value(L, list, &n, value_idx);
  lua_pop(L, 1);
}

bool starts_with_dunder(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TSTRING) return false;
  size_t len = 0;
  const char* s = lua_tolstring(L, idx, &len);
  return len >= 2 && s[0] == '_' && s[1] == '_';
}

// The walk over the loaded state. It keeps its own stack of values still to
// freeze (a Lua table), so nesting depth costs no C stack: a state nested a
// million levels deep must not overflow a host thread's stack.
struct FreezeWalk {
  int visited;     // stack index of the set of values already queued
  int pending;     // stack index of the array of values still to freeze
  lua_Integer n;   // number of values in `pending`
  std::int64_t dump_bytes_left;  // of kMaxFreezeDumpBytes (upvalues_assigned)
};

// Queues the value at `idx` if it can hold state (tables, functions,
// userdata) and has not been seen yet.
void enqueue(lua_State* L, int idx, FreezeWalk* walk) {
  idx = lua_absindex(L, idx);
  const int type = lua_type(L, idx);
  if (type != LUA_TTABLE && type != LUA_TFUNCTION && type != LUA_TUSERDATA) return;
  lua_pushvalue(L, idx);
  if (lua_rawget(L, walk->visited) != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, walk->visited);
  lua_pushvalue(L, idx);
  lua_rawseti(L, walk->pending, ++walk->n);
}

void freeze_table(lua_State* L, int t, FreezeWalk* walk) {
  // What the table holds, and its metatable (whose metamethods may be
  // closures with state of their own), are frozen too, later.
  lua_pushnil(L);
  while (lua_next(L, t)) {
    enqueue(L, -2, walk);
    enqueue(L, -1, walk);
    lua_pop(L, 1);
  }
  if (lua_getmetatable(L, t)) {
    // The metatable moves to the shadow below, and setting it there would mark
    // the shadow for finalization: a __gc added after setmetatable would then
    // run at close, with hooks off.
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, -2) != LUA_TNIL) {
      luaL_error(L, "%s: __gc metamethods are not allowed in rules (a metatable got one after "
                    "setmetatable)", core_of(L)->chunk_name);
    }
    lua_pop(L, 1);
    enqueue(L, -1, walk);
    lua_pop(L, 1);
  }
  lua_newtable(L);  // shadow
  const int shadow = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (!starts_with_dunder(L, -2)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, shadow);  // shadow[k] = v, leaves k
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, t);       // t[k] = nil: allowed during traversal
    } else {
      record_field(L, t, lua_gettop(L) - 1, lua_gettop(L));
      lua_pop(L, 1);
    }
  }
  // The new metatable; an existing one moves to the shadow, so lookups that
  // miss still reach its __index, and its operators stay on the table.
  lua_newtable(L);
  const int mt = lua_gettop(L);
  if (lua_getmetatable(L, t)) {
    const int old_mt = lua_gettop(L);
    lua_pushvalue(L, old_mt);
    lua_setmetatable(L, shadow);
    lua_pushnil(L);
    while (lua_next(L, old_mt)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, mt);
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, shadow);
  lua_setfield(L, mt, "__index");
  lua_pushcfunction(L, frozen_newindex);
  lua_setfield(L, mt, "__newindex");
  lua_pushcfunction(L, frozen_len);
  lua_setfield(L, mt, "__len");
  lua_pushcfunction(L, frozen_pairs);
  lua_setfield(L, mt, "__pairs");
  lua_pushliteral(L, "read-only");
  lua_setfield(L, mt, "__metatable");
  lua_pushnil(L);
  lua_setfield(L, mt, "__gc");
  lua_pushnil(L);
  lua_setfield(L, mt, "__mode");
  lua_pushlightuserdata(L, &kFrozenMarkerKey);
  lua_pushboolean(L, 1);
  lua_rawset(L, mt);
  lua_setmetatable(L, t);  // pops mt
  lua_pop(L, 1);           // shadow
}

// lua_dump's writer into a luaL_Buffer, begun on the first write (as
// string.dump's: the function must stay on top until lua_dump has it).
// A dump that would pass `room` bytes stops (lua_dump returns non-zero).
struct DumpBuffer {
  luaL_Buffer buffer;
  bool begun;
  std::int64_t room;
};

int dump_to_buffer(lua_State* L, const void* bytes, size_t size, void* ud) {
  auto* out = static_cast<DumpBuffer*>(ud);
  out->room -= static_cast<std::int64_t>(size);
  if (out->room < 0) return 1;
  if (!out->begun) {
    out->begun = true;
    luaL_buffinit(L, &out->buffer);
  }
  luaL_addlstring(&out->buffer, static_cast<const char*>(bytes), size);
  return 0;
}

// The upvalues of the Lua function at `f` that a call can assign
// (assignable_upvalues of its stripped dump); false when that is not known,
// and then any can be. Dumps cost time no budget counts, so the freeze dumps
// at most kMaxFreezeDumpBytes in all (many closures of one big function
// would otherwise dump it over and over); and a dump takes at most a quarter
// of the memory left under the cap (its buffer and string, at most three
// times that, never reach the cap). Past either, nothing is known.
bool upvalues_assigned(lua_State* L, int f, FreezeWalk* walk, UpvalueSet* out) {
  const Core* core = core_of(L);
  const std::int64_t room = std::min(walk->dump_bytes_left, (core->memory_limit - core->memory_used) / 4);
  if (room <= 0) return false;
  const int top = lua_gettop(L);
  DumpBuffer dump;
  dump.begun = false;
  dump.room = room;
  lua_pushvalue(L, f);
  const bool dumped = lua_dump(L, dump_to_buffer, &dump, 1) == 0 && dump.begun;
  walk->dump_bytes_left -= room - std::max<std::int64_t>(dump.room, 0);
  if (!dumped) {
    lua_settop(L, top);  // the buffer, if begun, goes with the stack
    return false;
  }
  luaL_pushresult(&dump.buffer);
  size_t size = 0;
  const char* chunk = lua_tolstring(L, -1, &size);
  const bool known = assignable_upvalues(std::string_view(chunk, size), out);
  lua_settop(L, top);
  return known;
}

// Records (function, upvalue index, value) for each upvalue of a Lua
// function that a call can assign (upvalues_assigned), to put back after each
// call: a call that assigns none costs the restore nothing. A C closure's
// upvalues cannot be reassigned from Lua, but what they hold is frozen like
// the rest (a string.gmatch iterator keeps its position in a userdata upvalue).
void freeze_function(lua_State* L, int f, FreezeWalk* walk) {
  const bool is_lua = !lua_iscfunction(L, f);
  UpvalueSet assigned;
  const bool known = is_lua && upvalues_assigned(L, f, walk, &assigned);
  for (int i = 1;; ++i) {
    if (lua_getupvalue(L, f, i) == nullptr) break;
    const int value = lua_gettop(L);
    if (is_lua && (!known || assigned.test(static_cast<size_t>(i - 1)))) {
      push_restore_list(L, &kRestoreUpvaluesKey);
      const int list = lua_gettop(L);
      lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, list));
      append_value(L, list, &n, f);
      lua_pushinteger(L, i);
      lua_rawseti(L, list, ++n);
      append_value(L, list, &n, value);
      lua_pop(L, 1);
    }
    enqueue(L, value, walk);
    lua_pop(L, 1);
  }
}

// Records the bytes of a full userdata, to put back after each call. The
// sandbox's userdata hold plain data only (see lua/patterns.cpp).
void freeze_userdata(lua_State* L, int u, FreezeWalk* walk) {
  const size_t size = lua_rawlen(L, u);
  push_restore_list(L, &kRestoreUserdataKey);
  const int list = lua_gettop(L);
  lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, list));
  lua_pushvalue(L, u);
  lua_rawseti(L, list, ++n);
  lua_pushlstring(L, static_cast<const char*>(lua_touserdata(L, u)), size);
  lua_rawseti(L, list, ++n);
  lua_pop(L, 1);
  if (lua_getmetatable(L, u)) {
    enqueue(L, -1, walk);
    lua_pop(L, 1);
  }
}

// Freezes everything reachable from the value at `idx`.
void freeze_reachable(lua_State* L, int idx, FreezeWalk* walk) {
  enqueue(L, idx, walk);
  while (walk->n > 0) {
    if (!lua_checkstack(L, 16)) luaL_error(L, "rules state too large to freeze");
    lua_rawgeti(L, walk->pending, walk->n);
    lua_pushnil(L);
    lua_rawseti(L, walk->pending, walk->n--);
    const int v = lua_gettop(L);
    switch (lua_type(L, v)) {
      case LUA_TTABLE: freeze_table(L, v, walk); break;
      case LUA_TFUNCTION: freeze_function(L, v, walk); break;
      default: freeze_userdata(L, v, walk); break;
    }
    lua_pop(L, 1);
  }
}

void create_models_proxy(lua_State* L, Core* core);  // with ctx.models, below: also the ctx proxy
void create_step_meta(lua_State* L, Core* core);     // with the step table, below

// Protected: freezes everything reachable from the globals and resolves classify.
int protected_freeze(lua_State* L) {
  Core* core = static_cast<Core*>(lua_touserdata(L, 1));
  intern_keys(L, kResultFieldNames, kResultFieldCount, core->field_refs, core->field_names);
  intern_keys(L, kStepFieldNames, kStepFieldCount, core->step_key_refs, core->step_key_names);
  for (void* key : {static_cast<void*>(&kRestoreUpvaluesKey), static_cast<void*>(&kRestoreFieldsKey),
                    static_cast<void*>(&kRestoreUserdataKey)}) {
    lua_pushlightuserdata(L, key);
    lua_newtable(L);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }

  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  const int globals = lua_gettop(L);
  lua_pushliteral(L, "classify");
  if (lua_rawget(L, globals) != LUA_TFUNCTION) {
    return luaL_error(L, "%s: the rules file defines no global function 'classify(step, ctx)'",
                      core->chunk_name);
  }
  core->classify_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  FreezeWalk walk;
  lua_newtable(L);
  walk.visited = lua_gettop(L);
  lua_newtable(L);
  walk.pending = lua_gettop(L);
  walk.n = 0;
  walk.dump_bytes_left = kMaxFreezeDumpBytes;
  // The string metatable is used raw by the VM, so it is hidden rather than
  // frozen: getmetatable("") returns a string and nothing can reach the table.
  lua_pushliteral(L, "");
  if (lua_getmetatable(L, -1)) {
    lua_pushliteral(L, "read-only");
    lua_setfield(L, -2, "__metatable");
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, walk.visited);
    lua_pushnil(L);
    while (lua_next(L, -2)) {  // __index (the string table) and the arithmetic metamethods
      freeze_reachable(L, -1, &walk);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  freeze_reachable(L, globals, &walk);
  lua_newtable(L);
  freeze_table(L, lua_gettop(L), &walk);
  core->empty_list_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  create_models_proxy(L, core);
  create_step_meta(L, core);
  // The restore lists are final now: keep them where a call finds them fastest.
  void* keys[kRestoreListCount] = {&kRestoreUpvaluesKey, &kRestoreFieldsKey, &kRestoreUserdataKey};
  for (int i = 0; i < kRestoreListCount; ++i) {
    push_restore_list(L, keys[i]);
    core->restore_sizes[i] = static_cast<lua_Integer>(lua_rawlen(L, -1));
    core->restore_refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 0;
}

// Protected: puts back every upvalue, "__" field and userdata a call may have changed.
int protected_restore(lua_State* L) {
  const Core* core = core_of(L);
  if (const lua_Integer nu = core->restore_sizes[kUpvalueList]; nu > 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, core->restore_refs[kUpvalueList]);
    const int upvalues = lua_gettop(L);
    for (lua_Integer i = 1; i + 2 <= nu; i += 3) {
      lua_rawgeti(L, upvalues, i + 1);
      const int n = static_cast<int>(lua_tointeger(L, -1));
      lua_pop(L, 1);
      lua_rawgeti(L, upvalues, i);         // function
      push_recorded(L, upvalues, i + 2);   // recorded value
      lua_getupvalue(L, -2, n);            // current value
      if (lua_rawequal(L, -1, -2)) {
        lua_pop(L, 3);
      } else {
        lua_pop(L, 1);
        lua_setupvalue(L, -2, n);          // pops the recorded value
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  if (const lua_Integer nf = core->restore_sizes[kFieldList]; nf > 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, core->restore_refs[kFieldList]);
    const int fields = lua_gettop(L);
    for (lua_Integer i = 1; i + 2 <= nf; i += 3) {
      lua_rawgeti(L, fields, i);
      lua_rawgeti(L, fields, i + 1);
      push_recorded(L, fields, i + 2);
      lua_pushvalue(L, -2);
      lua_rawget(L, -4);                   // current value
      if (lua_rawequal(L, -1, -2)) {
        lua_pop(L, 4);
      } else {
        lua_pop(L, 1);
        lua_rawset(L, -3);                 // table[key] = recorded value
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  if (const lua_Integer nd = core->restore_sizes[kUserdataList]; nd > 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, core->restore_refs[kUserdataList]);
    const int userdata = lua_gettop(L);
    for (lua_Integer i = 1; i + 1 <= nd; i += 2) {
      lua_rawgeti(L, userdata, i);
      lua_rawgeti(L, userdata, i + 1);
      size_t size = 0;
      const char* saved = lua_tolstring(L, -1, &size);
      void* block = lua_touserdata(L, -2);
      if (std::memcmp(block, saved, size) != 0) std::memcpy(block, saved, size);
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
  }
  return 0;
}

// ---------------------------------------------------------------- safe builtins
//
// Each materializes a lazy step table first (see build_step): whatever looks
// at a table raw sees the table an eager build would have made.

void materialize_if_lazy(lua_State* L, int idx);

int safe_rawset(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  materialize_if_lazy(L, 1);
  if (is_frozen(L, 1)) return frozen_newindex(L);
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

int safe_rawget(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  materialize_if_lazy(L, 1);
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, 1) == LUA_TNIL && is_frozen(L, 1)) {
    lua_pop(L, 1);
    push_shadow(L, 1);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
  }
  return 1;
}

int safe_rawlen(lua_State* L) {
  const int t = lua_type(L, 1);
  luaL_argexpected(L, t == LUA_TTABLE || t == LUA_TSTRING, 1, "table or string");
  if (t == LUA_TTABLE && is_frozen(L, 1)) {
    push_shadow(L, 1);
    lua_pushinteger(L, static_cast<lua_Integer>(lua_rawlen(L, -1)));
  } else {
    lua_pushinteger(L, static_cast<lua_Integer>(lua_rawlen(L, 1)));
  }
  return 1;
}

int safe_next(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  materialize_if_lazy(L, 1);
  if (is_frozen(L, 1)) return frozen_next(L, 1);
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  lua_pushnil(L);
  return 1;
}

// setmetatable without finalizers: a __gc metamethod runs with hooks off, so
// an endless one could not be stopped.
int safe_setmetatable(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  materialize_if_lazy(L, 1);
  const int t = lua_type(L, 2);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL) {
      return luaL_error(L, "__gc metamethods are not allowed in rules");
    }
    lua_pop(L, 1);
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL) {
    return luaL_error(L, "cannot change a protected metatable");
  }
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

// getmetatable as Lua's, but a lazy step table shows none: it is plain first.
int safe_getmetatable(lua_State* L) {
  luaL_checkany(L, 1);
  materialize_if_lazy(L, 1);
  if (!lua_getmetatable(L, 1)) {
    lua_pushnil(L);
    return 1;
  }
  luaL_getmetafield(L, 1, "__metatable");
  return 1;
}

int safe_collectgarbage(lua_State* L) {
  const char* opt = luaL_optstring(L, 1, "count");
  if (std::strcmp(opt, "count") != 0) {
    return luaL_error(L, "collectgarbage('%s') is not allowed in rules (only 'count')", opt);
  }
  const int kb = lua_gc(L, LUA_GCCOUNT);
  const int b = lua_gc(L, LUA_GCCOUNTB);
  lua_pushnumber(L, static_cast<lua_Number>(kb) + static_cast<lua_Number>(b) / 1024);
  return 1;
}

// xpcall whose handler runs after the failed call has unwound. Lua calls a
// message handler at the point of the error; when that point is the budget
// hook, hooks are off and an endless handler could never be stopped. Without
// the debug library the handler cannot see the difference.
int safe_xpcall(lua_State* L) {
  const int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 1);  // f, h, f, args...
  if (lua_pcall(L, n - 2, LUA_MULTRET, 0) == LUA_OK) {
    lua_pushboolean(L, 1);
    lua_insert(L, 3);  // f, h, true, results...
    return lua_gettop(L) - 2;
  }
  lua_pushvalue(L, 2);
  lua_insert(L, 3);  // f, h, h, err
  lua_pcall(L, 1, 1, 0);  // a failing handler's own error is returned instead
  lua_pushboolean(L, 0);
  lua_insert(L, 3);  // f, h, false, handler's result
  return 2;
}

// ---------------------------------------------------------------- counted library loops
//
// A few library functions loop in C for as long as their arguments say, with
// no allocation to hit the memory cap and no instruction for the hook to count.
// These versions return the same results and charge the loop to the budget.

// Calls the stock library function that is upvalue 1 of the running closure,
// in the same frame (so its error messages name the function as before).
int call_stock(lua_State* L) { return lua_tocfunction(L, lua_upvalueindex(1))(L); }

// Charges a loop over `count` table elements.
void charge_elements(lua_State* L, lua_Unsigned count) {
  const lua_Unsigned steps = count / kElementsPerStep + 1;
  charge_budget(L, static_cast<std::int64_t>(
                       std::min<lua_Unsigned>(steps, static_cast<lua_Unsigned>(INT64_MAX))));
}

// string.rep: the stock loop runs n times even when every copy is empty.
int counted_rep(lua_State* L) {
  size_t len = 0, sep_len = 0;
  luaL_checklstring(L, 1, &len);
  const lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &sep_len);
  if (n > 0 && len == 0 && sep_len == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  return call_stock(L);  // the result's size is bounded by the memory cap
}

// table.move(a1, f, e, t [, a2]), as Lua 5.4's ltablib.c, charged every
// kChargeChunk elements as it goes: charged up front, a long move would run
// unclocked to its end.
int counted_move(lua_State* L) {
  const lua_Integer f = luaL_checkinteger(L, 2);
  const lua_Integer e = luaL_checkinteger(L, 3);
  const lua_Integer t = luaL_checkinteger(L, 4);
  const int tt = !lua_isnoneornil(L, 5) ? 5 : 1;  // destination table
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, tt, LUA_TTABLE);
  if (e >= f) {
    luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
    const lua_Integer n = e - f + 1;  // number of elements to move
    luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
    if (t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ))) {
      for (lua_Integer i = 0; i < n; i++) {
        if (i % kChargeChunk == 0) charge_elements(L, static_cast<lua_Unsigned>(std::min<lua_Integer>(n - i, kChargeChunk)));
        lua_geti(L, 1, f + i);
        lua_seti(L, tt, t + i);
      }
    } else {
      for (lua_Integer i = n - 1; i >= 0; i--) {
        if ((n - 1 - i) % kChargeChunk == 0) charge_elements(L, static_cast<lua_Unsigned>(std::min<lua_Integer>(i + 1, kChargeChunk)));
        lua_geti(L, 1, f + i);
        lua_seti(L, tt, t + i);
      }
    }
  }
  lua_pushvalue(L, tt);  // return destination table
  return 1;
}

// table.concat and table.unpack: a loop over the elements, charged up front
// (one C call reads the clock as it starts; its elements are bounded by the
// memory cap, and the bytes it joins by the allocations they need).
int counted_concat(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const lua_Integer i = luaL_optinteger(L, 3, 1);
  const lua_Integer last = luaL_opt(L, luaL_checkinteger, 4, luaL_len(L, 1));
  if (last >= i) charge_elements(L, static_cast<lua_Unsigned>(last) - static_cast<lua_Unsigned>(i));
  return call_stock(L);
}

int counted_unpack(lua_State* L) {
  const lua_Integer i = luaL_optinteger(L, 2, 1);
  const lua_Integer last = luaL_opt(L, luaL_checkinteger, 3, luaL_len(L, 1));
  if (last >= i) charge_elements(L, static_cast<lua_Unsigned>(last) - static_cast<lua_Unsigned>(i));
  return call_stock(L);
}

// table.sort, as Lua 5.4's ltablib.c (quicksort, median of three) with every
// comparison charged, and more for two long strings (their bytes, as
// string.find charges them): a sort of a big table is one C call, and its
// comparisons of long strings are slow ones. The pivot of a badly split
// range is chosen by a fixed mix rather than the clock: an adversarial input
// makes the sort quadratic, which the budget then stops.
struct SortRun {
  lua_State* L;
  std::int64_t pending;  // steps not yet charged
};

constexpr std::int64_t kSortChargeEvery = 256;
constexpr size_t kCompareBytesPerStep = 8;

bool sort_less(SortRun* run, int a, int b) {
  lua_State* L = run->L;
  std::int64_t cost = 1;
  if (lua_type(L, a) == LUA_TSTRING && lua_type(L, b) == LUA_TSTRING) {
    cost += static_cast<std::int64_t>(std::min(lua_rawlen(L, a), lua_rawlen(L, b)) / kCompareBytesPerStep);
  }
  run->pending += cost;
  if (run->pending >= kSortChargeEvery) {
    charge_budget(L, run->pending);  // before the comparison: a long one is clocked first
    run->pending = 0;
  }
  if (lua_isnil(L, 2)) return lua_compare(L, a, b, LUA_OPLT);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, a - 1);
  lua_pushvalue(L, b - 2);
  lua_call(L, 2, 1);
  const bool less = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return less;
}

void sort_set2(lua_State* L, lua_Unsigned i, lua_Unsigned j) {
  lua_seti(L, 1, static_cast<lua_Integer>(i));
  lua_seti(L, 1, static_cast<lua_Integer>(j));
}

lua_Unsigned sort_partition(SortRun* run, lua_Unsigned lo, lua_Unsigned up) {
  lua_State* L = run->L;
  lua_Unsigned i = lo;
  lua_Unsigned j = up - 1;
  for (;;) {
    while (lua_geti(L, 1, static_cast<lua_Integer>(++i)), sort_less(run, -1, -2)) {
      if (i == up - 1) luaL_error(L, "invalid order function for sorting");
      lua_pop(L, 1);
    }
    while (lua_geti(L, 1, static_cast<lua_Integer>(--j)), sort_less(run, -3, -1)) {
      if (j < i) luaL_error(L, "invalid order function for sorting");
      lua_pop(L, 1);
    }
    if (j < i) {
      lua_pop(L, 1);
      sort_set2(L, up - 1, i);
      return i;
    }
    sort_set2(L, i, j);
  }
}

void sort_range(SortRun* run, lua_Unsigned lo, lua_Unsigned up, unsigned rnd) {
  lua_State* L = run->L;
  constexpr lua_Unsigned kRandomLimit = 100;
  while (lo < up) {
    lua_geti(L, 1, static_cast<lua_Integer>(lo));
    lua_geti(L, 1, static_cast<lua_Integer>(up));
    if (sort_less(run, -1, -2)) {
      sort_set2(L, lo, up);
    } else {
      lua_pop(L, 2);
    }
    if (up - lo == 1) break;
    lua_Unsigned p = (lo + up) / 2;
    if (up - lo >= kRandomLimit && rnd != 0) {
      const lua_Unsigned r4 = (up - lo) / 4;
      p = rnd % (r4 * 2) + (lo + r4);
    }
    lua_geti(L, 1, static_cast<lua_Integer>(p));
    lua_geti(L, 1, static_cast<lua_Integer>(lo));
    if (sort_less(run, -2, -1)) {
      sort_set2(L, p, lo);
    } else {
      lua_pop(L, 1);
      lua_geti(L, 1, static_cast<lua_Integer>(up));
      if (sort_less(run, -1, -2)) {
        sort_set2(L, p, up);
      } else {
        lua_pop(L, 2);
      }
    }
    if (up - lo == 2) break;
    lua_geti(L, 1, static_cast<lua_Integer>(p));
    lua_pushvalue(L, -1);
    lua_geti(L, 1, static_cast<lua_Integer>(up - 1));
    sort_set2(L, p, up - 1);
    p = sort_partition(run, lo, up);
    lua_Unsigned n;
    if (p - lo < up - p) {
      sort_range(run, lo, p - 1, rnd);
      n = p - lo;
      lo = p + 1;
    } else {
      sort_range(run, p + 1, up, rnd);
      n = up - p;
      up = p - 1;
    }
    if ((up - lo) / 128 > n) rnd = static_cast<unsigned>((lo * 2654435761u) ^ (up * 40503u) ^ n) | 1u;
  }
}

int counted_sort(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const lua_Integer n = luaL_len(L, 1);
  if (n > 1) {
    luaL_argcheck(L, n < INT32_MAX, 1, "array too big");
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    SortRun run{L, 0};
    sort_range(&run, 1, static_cast<lua_Unsigned>(n), 0);
    if (run.pending > 0) charge_budget(L, run.pending);
  }
  return 0;
}

// table.insert and table.remove follow Lua 5.4's ltablib.c, reading the length
// once: the stock versions read it through __len, which may lie, and shift
// that many elements.
lua_Integer table_length(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  return luaL_len(L, 1);
}

int counted_insert(lua_State* L) {
  const lua_Integer e = static_cast<lua_Integer>(static_cast<lua_Unsigned>(table_length(L)) + 1u);
  lua_Integer pos = e;  // first empty element
  switch (lua_gettop(L)) {
    case 2:
      break;
    case 3: {
      pos = luaL_checkinteger(L, 2);
      luaL_argcheck(L, static_cast<lua_Unsigned>(pos) - 1u < static_cast<lua_Unsigned>(e), 2,
                    "position out of bounds");
      for (lua_Integer i = e; i > pos; i--) {  // move up elements
        if ((e - i) % kChargeChunk == 0) charge_elements(L, static_cast<lua_Unsigned>(std::min<lua_Integer>(i - pos, kChargeChunk)));
        lua_geti(L, 1, i - 1);
        lua_seti(L, 1, i);
      }
      break;
    }
    default:
      return luaL_error(L, "wrong number of arguments to 'insert'");
  }
  lua_seti(L, 1, pos);  // t[pos] = v
  return 0;
}

int counted_remove(lua_State* L) {
  const lua_Integer size = table_length(L);
  lua_Integer pos = luaL_optinteger(L, 2, size);
  if (pos != size) {
    luaL_argcheck(L, static_cast<lua_Unsigned>(pos) - 1u <= static_cast<lua_Unsigned>(size), 2,
                  "position out of bounds");
  }
  lua_geti(L, 1, pos);  // result = t[pos]
  for (const lua_Integer first = pos; pos < size; pos++) {
    if ((pos - first) % kChargeChunk == 0) charge_elements(L, static_cast<lua_Unsigned>(std::min<lua_Integer>(size - pos, kChargeChunk)));
    lua_geti(L, 1, pos + 1);
    lua_seti(L, 1, pos);
  }
  lua_pushnil(L);
  lua_seti(L, 1, pos);  // remove entry t[pos]
  return 1;
}

// Replaces lib[name] by `wrapper`, a closure over the stock function.
void wrap_stock(lua_State* L, int lib, const char* name, lua_CFunction wrapper) {
  lua_getfield(L, lib, name);
  lua_pushcclosure(L, wrapper, 1);
  lua_setfield(L, lib, name);
}

void set_nil(lua_State* L, int table, const char* name) {
  lua_pushnil(L);
  lua_setfield(L, table, name);
}

// Protected: opens the allowed libraries and removes or wraps the rest.
int protected_open_libs(lua_State* L) {
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  const int g = lua_gettop(L);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
  const int str = lua_gettop(L);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
  const int tab = lua_gettop(L);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
  const int math = lua_gettop(L);
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
  luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
  const int os_full = lua_gettop(L);

  for (const char* name : {"dofile", "loadfile", "load", "loadstring", "print", "warn", "require",
                           "module", "setfenv", "getfenv"}) {
    set_nil(L, g, name);
  }
  lua_pushcfunction(L, safe_rawset);
  lua_setfield(L, g, "rawset");
  lua_pushcfunction(L, safe_rawget);
  lua_setfield(L, g, "rawget");
  lua_pushcfunction(L, safe_rawlen);
  lua_setfield(L, g, "rawlen");
  lua_pushcfunction(L, safe_next);
  lua_setfield(L, g, "next");
  lua_pushcfunction(L, safe_setmetatable);
  lua_setfield(L, g, "setmetatable");
  lua_pushcfunction(L, safe_getmetatable);
  lua_setfield(L, g, "getmetatable");
  lua_pushcfunction(L, safe_collectgarbage);
  lua_setfield(L, g, "collectgarbage");
  lua_pushcfunction(L, safe_xpcall);
  lua_setfield(L, g, "xpcall");

  set_nil(L, str, "dump");
  wrap_stock(L, str, "rep", counted_rep);
  lua_pushcfunction(L, counted_move);
  lua_setfield(L, tab, "move");
  wrap_stock(L, tab, "concat", counted_concat);
  wrap_stock(L, tab, "unpack", counted_unpack);
  lua_pushcfunction(L, counted_sort);
  lua_setfield(L, tab, "sort");
  lua_pushcfunction(L, counted_insert);
  lua_setfield(L, tab, "insert");
  lua_pushcfunction(L, counted_remove);
  lua_setfield(L, tab, "remove");
  lua_pushvalue(L, str);
  install_counted_patterns(L);
  lua_pop(L, 1);

  set_nil(L, math, "random");
  set_nil(L, math, "randomseed");

  lua_createtable(L, 0, 2);  // os: time and clock only
  lua_getfield(L, os_full, "time");
  lua_setfield(L, -2, "time");
  lua_getfield(L, os_full, "clock");
  lua_setfield(L, -2, "clock");
  lua_setfield(L, g, "os");
  return 0;
}

// ---------------------------------------------------------------- one call

void push_text(lua_State* L, const std::string& s) { lua_pushlstring(L, s.data(), s.size()); }

// Pushes step field `f` of the call under way; returns false (pushing
// nothing) when the step does not have it (the rules see nil).
bool push_step_field(lua_State* L, const Core* core, StepField f) {
  const Step* step = core->call_step;
  switch (f) {
    case kRole:
      push_text(L, step->role);
      return true;
    case kInputTokens:
      lua_pushinteger(L, core->call_input_tokens);
      return true;
    case kPrompt:
      if (!step->prompt) return false;
      push_text(L, *step->prompt);
      return true;
    case kExpectedOutputTokens:
      if (!step->expected_output_tokens) return false;
      lua_pushinteger(L, *step->expected_output_tokens);
      return true;
    case kNeedsChainOfThought: lua_pushboolean(L, step->needs_chain_of_thought); return true;
    case kOutputMustBeJson: lua_pushboolean(L, step->output_must_be_json); return true;
    case kUntrustedInput: lua_pushboolean(L, step->untrusted_input); return true;
    case kToolDepth: lua_pushinteger(L, step->tool_depth); return true;
    case kTurns: lua_pushinteger(L, step->turns); return true;
    case kHasTools: lua_pushboolean(L, step->has_tools); return true;
    case kHasImages: lua_pushboolean(L, step->has_images); return true;
    case kHasDocuments: lua_pushboolean(L, step->has_documents); return true;
    case kLastTool:  // absent (nil) when empty
      if (step->last_tool.empty()) return false;
      push_text(L, step->last_tool);
      return true;
    case kAgent:
      if (step->agent.empty()) return false;
      push_text(L, step->agent);
      return true;
    case kToolNames:
      if (step->tool_names.empty()) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, core->empty_list_ref);
        return true;
      }
      lua_createtable(L, static_cast<int>(step->tool_names.size()), 0);
      for (size_t i = 0; i < step->tool_names.size(); ++i) {
        push_text(L, step->tool_names[i]);
        lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
      }
      return true;
    case kMeta:
      lua_createtable(L, 0, static_cast<int>(step->meta.size()));
      for (size_t i = 0; i < step->meta.size(); ++i) {
        const MetaValue& v = step->meta[i].second;
        if (const auto* s = std::get_if<std::string>(&v)) {
          push_text(L, *s);
        } else if (const auto* n = std::get_if<std::int64_t>(&v)) {
          lua_pushinteger(L, *n);
        } else if (const auto* d = std::get_if<double>(&v)) {
          lua_pushnumber(L, *d);
        } else {
          lua_pushboolean(L, *std::get_if<bool>(&v));
        }
        lua_setfield(L, -2, step->meta[i].first.c_str());
      }
      return true;
    case kStepFieldCount: break;
  }
  return false;
}

bool is_lazy_step(lua_State* L, int idx) {
  if (!lua_getmetatable(L, idx)) return false;
  lua_rawgeti(L, LUA_REGISTRYINDEX, core_of(L)->step_meta_ref);
  const bool lazy = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return lazy;
}

// Turns the lazy step table at `idx` into the plain table an eager build
// would have made: every field the rules have not read or set yet goes in,
// and the metatable goes. Anything that looks at the table raw (next, pairs,
// rawget, getmetatable, setmetatable, a write) sees exactly that table.
void materialize_step(lua_State* L, int idx) {
  const Core* core = core_of(L);
  if (core->call_step == nullptr) luaL_error(L, "step is only readable inside classify");
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 4, "building the step table");
  for (int i = 0; i < kStepFieldCount; ++i) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, core->step_key_refs[i]);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, idx) != LUA_TNIL) {  // read and kept already (step_index)
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    if (push_step_field(L, core, static_cast<StepField>(i))) {
      lua_rawset(L, idx);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pushnil(L);
  lua_setmetatable(L, idx);
}

void materialize_if_lazy(lua_State* L, int idx) {
  if (lua_type(L, idx) == LUA_TTABLE && is_lazy_step(L, idx)) materialize_step(L, idx);
}

// step[key] for a key the table does not hold raw: the step's field. A table
// (step.meta, step.tool_names) is kept in the step table, so every read gets
// the same one, and so is a long string (step.prompt), which each push would
// copy. A number, a boolean or a short string (interned: pushed again, it is
// the same value) is not: most fields are read once, and keeping one costs
// more than a second read. materialize_step puts in whatever is not kept.
int step_index(lua_State* L) {
  const Core* core = core_of(L);
  const int f = interned_index(L, 2, core->step_key_names, kStepFieldCount);
  if (f < 0) return 0;  // not a step field: nil
  if (core->call_step == nullptr) return luaL_error(L, "step is only readable inside classify");
  if (!push_step_field(L, core, static_cast<StepField>(f))) return 0;
  const int type = lua_type(L, -1);
  if (type == LUA_TTABLE || (type == LUA_TSTRING && lua_rawlen(L, -1) > kShortStringBytes)) {
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
  }
  return 1;
}

// A write: the table becomes plain first, so a field the rule sets to nil
// stays nil.
int step_newindex(lua_State* L) {
  materialize_step(L, 1);
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 0;
}

int step_pairs(lua_State* L) {
  materialize_step(L, 1);
  lua_pushcfunction(L, safe_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

// The step table of one call: an empty table whose shared metatable reads
// the call's Step field by field when the rules ask (a rule that reads three
// fields pays for three), and materialize_step makes it the full table as
// soon as anything could tell the difference. The metatable is reachable
// from no rules code: getmetatable and setmetatable materialize first.
void build_step(lua_State* L) {
  lua_createtable(L, 0, 4);
  lua_rawgeti(L, LUA_REGISTRYINDEX, core_of(L)->step_meta_ref);
  lua_setmetatable(L, -2);
}

void create_step_meta(lua_State* L, Core* core) {
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, step_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, step_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, step_pairs);
  lua_setfield(L, -2, "__pairs");
  core->step_meta_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

// Pushes `text`, from the registry when it is the string pushed last time.
void push_cached(lua_State* L, CachedString* cache, std::string_view text) {
  if (cache->valid && cache->len == text.size() && std::memcmp(cache->text, text.data(), text.size()) == 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, cache->ref);
    return;
  }
  lua_pushlstring(L, text.data(), text.size());
  if (text.size() > sizeof cache->text) return;  // too long to cache: pushed every time
  cache->valid = false;  // until the registry holds the new string
  lua_pushvalue(L, -1);
  if (cache->ref == LUA_NOREF) {
    cache->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  } else {
    lua_rawseti(L, LUA_REGISTRYINDEX, cache->ref);
  }
  std::memcpy(cache->text, text.data(), text.size());
  cache->len = text.size();
  cache->valid = true;
}

// ---------------------------------------------------------------- ctx.models, ctx.price, ctx.cost
//
// Built only when a rule reads them, from the classify call's RulesContext
// (Core::call_ctx): ctx.models is one userdata for the state's life whose
// __index makes a fresh table for the model read, so a rule that reads
// nothing of it pays one field; price and cost are C functions. None of them
// runs rules code, and each table they make is the rule's own to change.

const RulesContext& call_ctx_of(lua_State* L, const char* what) {
  const RulesContext* ctx = core_of(L)->call_ctx;
  if (ctx == nullptr || ctx->config == nullptr) luaL_error(L, "%s is only readable inside classify", what);
  return *ctx;
}

// Pushes field `f` of a model's health; false (nothing pushed) when the
// snapshot has no such figure (the rules see nil).
bool push_model_field(lua_State* L, const ModelHealth& h, ModelField f) {
  const auto seconds = [&](const std::optional<std::chrono::milliseconds>& ms) {
    if (!ms) return false;
    lua_pushnumber(L, static_cast<double>(ms->count()) / 1000);
    return true;
  };
  const auto integer = [&](const std::optional<std::int64_t>& v) {
    if (!v) return false;
    lua_pushinteger(L, static_cast<lua_Integer>(*v));
    return true;
  };
  switch (f) {
    case kHealthy: lua_pushboolean(L, h.healthy); return true;
    case kState: {
      const std::string_view state = to_string(h.state);
      lua_pushlstring(L, state.data(), state.size());
      return true;
    }
    case kErrorRate: lua_pushnumber(L, h.error_rate); return true;
    case kCalls: lua_pushinteger(L, static_cast<lua_Integer>(h.calls)); return true;
    case kConsecutiveFailures: lua_pushinteger(L, h.consecutive_failures); return true;
    case kP50Ms:
      if (!h.p50_ms) return false;
      lua_pushnumber(L, *h.p50_ms);
      return true;
    case kP95Ms:
      if (!h.p95_ms) return false;
      lua_pushnumber(L, *h.p95_ms);
      return true;
    case kRequestsLeft: return integer(h.limits.requests_left);
    case kTokensLeft: return integer(h.limits.tokens_left);
    case kRequestsResetS: return seconds(h.limits.requests_reset);
    case kTokensResetS: return seconds(h.limits.tokens_reset);
    case kModelFieldCount: break;
  }
  return false;
}

// ctx.models is a frozen table whose shadow holds one view per model of the
// config (made when a call first sees that config: sync_models), so
// ctx.models[name] is a plain lookup that allocates nothing. A view is a
// userdata holding the model's name; the first call that reads it finds the
// model in that call's config and takes the model's health then, so the
// fields a rule reads in one call agree with each other, and nothing the
// view keeps outlives the call it was taken in.
struct ModelView {
  std::uint64_t call;      // the call `model` and `health` were taken in (0: none)
  std::uint64_t epoch;     // the RulesContext::config_epoch `model` and `prices` were found in (0: that call's)
  const ModelSpec* model;  // in that call's config; null when it has no such model
  const ModelPrices* prices;  // the catalog's entry of the model in that config, or null
  ModelHealth health;
  size_t name_len;         // the name's bytes follow the struct
  std::string_view name() const { return {reinterpret_cast<const char*>(this + 1), name_len}; }
};
static_assert(std::is_trivially_copyable_v<ModelView> && std::is_trivially_destructible_v<ModelView>,
              "a model view lives in a userdata, which Lua frees without a finalizer");

// The view at `idx`, brought to the call under way.
const ModelView& model_view_at(lua_State* L, int idx) {
  auto* view = static_cast<ModelView*>(lua_touserdata(L, idx));
  const Core* core = core_of(L);
  const RulesContext* ctx = core->call_ctx;
  if (ctx == nullptr || ctx->config == nullptr) luaL_error(L, "ctx.models is only readable inside classify");
  if (view->call != core->call_serial) {
    if (ctx->config_epoch == 0 || view->epoch != ctx->config_epoch) {
      view->model = ctx->config->find_model(view->name());
      view->prices = ctx->config->prices ? ctx->config->prices->find(view->name()) : nullptr;
      view->epoch = ctx->config_epoch;
    }
    view->health = ctx->health != nullptr ? ctx->health->snapshot(view->name()) : ModelHealth{};
    view->call = core->call_serial;
  }
  return *view;
}

const ModelHealth& model_health_at(lua_State* L, int idx) { return model_view_at(L, idx).health; }

int model_view_index(lua_State* L) {
  const int f = interned_index(L, 2, core_of(L)->model_key_names, kModelFieldCount);
  if (f < 0) return 0;
  return push_model_field(L, model_health_at(L, 1), static_cast<ModelField>(f)) ? 1 : 0;
}

int model_view_newindex(lua_State* L) {
  return luaL_error(L, "ctx.models[...] is read-only (it reports a model's health; build a table of your own)");
}

// next() over a model view: its present fields in kModelFieldNames order.
int model_view_next(lua_State* L) {
  const Core* core = core_of(L);
  const ModelHealth& h = model_health_at(L, 1);
  int i = 0;
  if (!lua_isnil(L, 2)) {
    i = interned_index(L, 2, core->model_key_names, kModelFieldCount);
    if (i < 0) return luaL_error(L, "invalid key to 'next' over a model's health");
    ++i;
  }
  for (; i < kModelFieldCount; ++i) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, core->model_key_refs[i]);
    if (push_model_field(L, h, static_cast<ModelField>(i))) return 2;
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  return 1;
}

int model_view_pairs(lua_State* L) {
  lua_pushcfunction(L, model_view_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

// Makes ctx.models' shadow hold a view of each model of `config` (a chat
// model or an embedding model alike), once per config: an engine that
// reloads its config gives the calls after it another.
void sync_models(lua_State* L, Core* core, const Config* config) {
  if (config == nullptr || (core->models_config == config && core->models_count == config->models.size())) return;
  lua_createtable(L, 0, static_cast<int>(config->models.size()));
  for (const auto& entry : config->models) {
    const std::string& name = entry.first;
    lua_pushlstring(L, name.data(), name.size());
    // Its user value: ctx.price(name)'s table, made on the first read.
    auto* view = static_cast<ModelView*>(lua_newuserdatauv(L, sizeof(ModelView) + name.size(), 1));
    view->call = 0;
    view->epoch = 0;
    view->model = nullptr;
    view->prices = nullptr;
    view->health = ModelHealth{};
    view->name_len = name.size();
    std::memcpy(view + 1, name.data(), name.size());
    lua_rawgeti(L, LUA_REGISTRYINDEX, core->model_view_meta_ref);
    lua_setmetatable(L, -2);
    lua_rawset(L, -3);
  }
  // The new shadow goes in ctx.models' metatable and the registry.
  lua_rawgeti(L, LUA_REGISTRYINDEX, core->models_proxy_ref);
  lua_getmetatable(L, -1);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 2);
  lua_rawseti(L, LUA_REGISTRYINDEX, core->models_shadow_ref);
  core->models_config = config;
  core->models_count = config->models.size();
}

// Pushes the view of the model named at `name_idx` (nil for a name the
// config has no model of) and returns it, or null.
const ModelView* push_view_of(lua_State* L, int name_idx) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, core_of(L)->models_shadow_ref);
  lua_pushvalue(L, name_idx);
  const int type = lua_rawget(L, -2);
  lua_remove(L, -2);
  if (type != LUA_TUSERDATA) return nullptr;
  const ModelView& view = model_view_at(L, -1);
  return view.model != nullptr ? &view : nullptr;
}

int models_newindex(lua_State* L) {
  return luaL_error(L, "ctx.models is read-only (it reports the models' health; build a table of your own)");
}

// next() over ctx.models: the config's models in name order.
int models_next(lua_State* L) {
  const RulesContext& ctx = call_ctx_of(L, "ctx.models");
  const auto& models = ctx.config->models;
  auto it = models.begin();
  if (!lua_isnil(L, 2)) {
    size_t len = 0;
    const char* key = luaL_checklstring(L, 2, &len);
    it = models.upper_bound(std::string_view(key, len));
  }
  if (it == models.end()) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushlstring(L, it->first.data(), it->first.size());
  push_view_of(L, lua_gettop(L));
  return 2;
}

int models_pairs(lua_State* L) {
  lua_pushcfunction(L, models_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

// ---------------------------------------------------------------- ctx.session
//
// nil when the step has no session; else a read-only proxy whose fields are
// read from the call's SessionView when the rule reads them: id, last_model
// (nil before any call), turn, and cached_tokens (a read-only proxy:
// cached_tokens[model] is the tokens expected to hit the model's cache, 0
// when cold; pairs() walks the warm models in name order). No allocation
// but the strings read.

const SessionView& call_session_of(lua_State* L, const char* what) {
  const RulesContext& ctx = call_ctx_of(L, what);
  if (ctx.session != nullptr) return *ctx.session;
  if (ctx.session_id.empty()) luaL_error(L, "%s is only readable inside classify, for a step with a session", what);
  Core* core = core_of(L);
  if (core->session_call != core->call_serial) {  // the first read in this call
    core->session_taken.reset();
    if (ctx.sessions != nullptr) core->session_taken = ctx.sessions->snapshot(ctx.session_id);
    if (!core->session_taken) {
      core->session_taken.emplace();
      core->session_taken->id.assign(ctx.session_id);
    }
    core->session_call = core->call_serial;
  }
  return *core->session_taken;
}

// "'name'" of a key being written, for the read-only errors.
const char* key_name(lua_State* L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) return lua_pushfstring(L, "'%s'", lua_tostring(L, idx));
  return lua_pushfstring(L, "a %s key", luaL_typename(L, idx));
}

// The session's id, and whether its figures come from the session book on
// demand (no view given, none taken yet in this call).
std::string_view session_id_of(lua_State* L, const char* what, bool* from_book) {
  const RulesContext& ctx = call_ctx_of(L, what);
  const Core* core = core_of(L);
  if (ctx.session != nullptr) {
    *from_book = false;
    return ctx.session->id;
  }
  if (ctx.session_id.empty()) luaL_error(L, "%s is only readable inside classify, for a step with a session", what);
  *from_book = ctx.sessions != nullptr && core->session_call != core->call_serial;
  return ctx.session_id;
}

// ctx.session's fields. `id` and `cached_tokens` need no view of the session
// (a rule that weighs caches reads only those); the others take it.
int session_index(lua_State* L) {
  size_t len = 0;
  const char* key = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : nullptr;
  const std::string_view k = key == nullptr ? std::string_view() : std::string_view(key, len);
  bool from_book = false;
  const std::string_view id = session_id_of(L, "ctx.session", &from_book);
  if (k == api::key(api::kSession, "id")) {
    lua_pushlstring(L, id.data(), id.size());
    return 1;
  }
  if (k == api::key(api::kSession, "cached_tokens")) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, core_of(L)->cached_proxy_ref);
    return 1;
  }
  const SessionView& s = call_session_of(L, "ctx.session");
  if (k == api::key(api::kSession, "last_model")) {
    if (s.last_model.empty()) {
      lua_pushnil(L);
    } else {
      lua_pushlstring(L, s.last_model.data(), s.last_model.size());
    }
  } else if (k == api::key(api::kSession, "turn")) {
    lua_pushinteger(L, static_cast<lua_Integer>(s.turns));
  } else {
    lua_pushnil(L);
  }
  return 1;
}

// next() over ctx.session: id, last_model (when there is one), turn, cached_tokens.
int session_next(lua_State* L) {
  const SessionView& s = call_session_of(L, "ctx.session");
  static constexpr const char* kKeys[] = {api::key(api::kSession, "id"), api::key(api::kSession, "last_model"),
                                          api::key(api::kSession, "turn"), api::key(api::kSession, "cached_tokens")};
  static_assert(std::size(kKeys) == api::kSession.fields.size(), "ctx.session: every field of its section");
  size_t i = 0;
  if (!lua_isnil(L, 2)) {
    const char* key = luaL_checkstring(L, 2);
    while (i < std::size(kKeys) && std::strcmp(kKeys[i], key) != 0) ++i;
    if (i == std::size(kKeys)) return luaL_error(L, "invalid key to 'next' over ctx.session");
    ++i;
  }
  if (i == 1 && s.last_model.empty()) ++i;
  if (i == std::size(kKeys)) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, kKeys[i]);
  lua_pushvalue(L, -1);
  lua_replace(L, 2);
  session_index(L);
  return 2;
}

int session_pairs(lua_State* L) {
  lua_pushcfunction(L, session_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

int session_newindex(lua_State* L) {
  return luaL_error(L, "ctx.session is read-only: cannot set %s (it reports the session; build a table of your own)",
                    key_name(L, 2));
}

// What the call under way (or the last call) read of `model` from the
// session book, or null.
const CachedRead* cached_read_of(const Core& core, std::string_view model) {
  if (core.cached_reads_call != core.call_serial) return nullptr;
  for (int i = 0; i < core.cached_read_count; ++i) {
    const CachedRead& read = core.cached_reads[i];
    if (std::string_view(read.model, read.len) == model) return &read;
  }
  return nullptr;
}

// The book's figure of `model`'s cache in session `id`, remembered for the
// call (LuaSandbox::cached_tokens_read): a rule's second read of a model, and
// the estimate of the decision, get the figure of its first.
std::int64_t cached_from_book(Core* core, std::string_view id, std::string_view model) {
  if (core->cached_reads_call != core->call_serial) {
    core->cached_read_count = 0;
    core->cached_reads_call = core->call_serial;
  }
  if (const CachedRead* read = cached_read_of(*core, model)) return read->tokens;
  const std::int64_t tokens = core->call_ctx->sessions->cached_for(id, model);
  if (core->cached_read_count < kCachedReads && model.size() <= sizeof core->cached_reads[0].model) {
    CachedRead& read = core->cached_reads[core->cached_read_count++];
    std::memcpy(read.model, model.data(), model.size());
    read.len = model.size();
    read.tokens = tokens;
  }
  return tokens;
}

// ctx.session.cached_tokens[model]: an integer for any name (0 when cold); nil for a key that is no string.
// Read from the session book itself unless this call has a view of the
// session: one lookup, nothing copied.
int cached_index(lua_State* L) {
  bool from_book = false;
  const std::string_view id = session_id_of(L, "ctx.session.cached_tokens", &from_book);
  size_t len = 0;
  const char* name = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : nullptr;
  if (name == nullptr) {
    lua_pushnil(L);
  } else if (from_book) {
    lua_pushinteger(L, static_cast<lua_Integer>(cached_from_book(core_of(L), id, std::string_view(name, len))));
  } else {
    const SessionView& s = call_session_of(L, "ctx.session.cached_tokens");
    lua_pushinteger(L, static_cast<lua_Integer>(s.cached_for(std::string_view(name, len))));
  }
  return 1;
}

int cached_newindex(lua_State* L) {
  return luaL_error(L, "ctx.session.cached_tokens is read-only: cannot set %s (build a table of your own)",
                    key_name(L, 2));
}

// next() over cached_tokens: the warm models in name order.
int cached_next(lua_State* L) {
  const SessionView& s = call_session_of(L, "ctx.session.cached_tokens");
  const auto& entries = s.cached_tokens;
  auto it = entries.begin();
  if (!lua_isnil(L, 2)) {
    size_t len = 0;
    const char* key = luaL_checklstring(L, 2, &len);
    it = std::upper_bound(entries.begin(), entries.end(), std::string_view(key, len),
                          [](std::string_view name, const auto& entry) { return name < entry.first; });
  }
  if (it == entries.end()) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushlstring(L, it->first.data(), it->first.size());
  lua_pushinteger(L, static_cast<lua_Integer>(it->second));
  return 2;
}

int cached_pairs(lua_State* L) {
  lua_pushcfunction(L, cached_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

// A read-only proxy userdata whose metatable has these metamethods (`pairs` may be null); its registry ref.
int new_proxy(lua_State* L, lua_CFunction index, lua_CFunction newindex, lua_CFunction pairs) {
  lua_newuserdatauv(L, 0, 0);
  lua_createtable(L, 0, 4);
  lua_pushcfunction(L, index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, newindex);
  lua_setfield(L, -2, "__newindex");
  if (pairs != nullptr) {
    lua_pushcfunction(L, pairs);
    lua_setfield(L, -2, "__pairs");
  }
  lua_pushliteral(L, "read-only");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

int ctx_price(lua_State* L);
int ctx_cost(lua_State* L);
void create_ctx_proxy(lua_State* L, Core* core);

// Creates ctx.models (frozen, its shadow empty until sync_models), the
// views' metatable, and ctx.
void create_models_proxy(lua_State* L, Core* core) {
  core->session_proxy_ref = new_proxy(L, session_index, session_newindex, session_pairs);
  core->cached_proxy_ref = new_proxy(L, cached_index, cached_newindex, cached_pairs);
  lua_newtable(L);
  push_read_only_table(L, -1, models_newindex, models_pairs);  // ctx.models
  core->models_proxy_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  core->models_shadow_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  intern_keys(L, kModelFieldNames, kModelFieldCount, core->model_key_refs, core->model_key_names);
  lua_createtable(L, 0, 4);
  lua_pushcfunction(L, model_view_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, model_view_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, model_view_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushliteral(L, "read-only");
  lua_setfield(L, -2, "__metatable");
  core->model_view_meta_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  intern_keys(L, kPriceFieldNames, kPriceFieldCount, core->price_key_refs, core->price_key_names);
  create_ctx_proxy(L, core);
}

int price_newindex(lua_State* L) {
  return luaL_error(L, "ctx.price(...) is read-only (it reports the catalog; build a table of your own)");
}

// ctx.price(model): {input, cached_input, output} in dollars per million
// tokens (the catalog's base rates), read-only and made once per model and
// config; nil for a model the config has none of.
int ctx_price(lua_State* L) {
  call_ctx_of(L, "ctx.price");
  luaL_checktype(L, 1, LUA_TSTRING);
  const ModelView* view = push_view_of(L, 1);
  if (view == nullptr) {
    lua_pushnil(L);
    return 1;
  }
  const int view_idx = lua_gettop(L);
  if (lua_getiuservalue(L, view_idx, 1) == LUA_TTABLE) return 1;
  lua_pop(L, 1);
  const Core* core = core_of(L);
  const ModelSpec& model = *view->model;
  const MicroUsdPerMtok rates[kPriceFieldCount] = {model.price.input, model.price.cached_input, model.price.output};
  lua_createtable(L, 0, kPriceFieldCount);
  for (int i = 0; i < kPriceFieldCount; ++i) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, core->price_key_refs[i]);
    lua_pushnumber(L, to_usd(rates[i]));
    lua_rawset(L, -3);
  }
  push_read_only_table(L, -1, price_newindex);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, view_idx, 1);
  return 1;
}

// ctx.cost(model, input_tokens, output_tokens[, cached_tokens]): what a call
// would cost at the catalog's prices (long-context rates included), as
// micro-dollars (an integer) and dollars; `cached_tokens` of the input are
// read from the cache. nil for a model the config has none of.
int ctx_cost(lua_State* L) {
  call_ctx_of(L, "ctx.cost");
  luaL_checktype(L, 1, LUA_TSTRING);
  const lua_Integer input = luaL_checkinteger(L, 2);
  const lua_Integer output = luaL_checkinteger(L, 3);
  const lua_Integer cached = luaL_optinteger(L, 4, 0);
  luaL_argcheck(L, input >= 0, 2, "input_tokens must not be negative");
  luaL_argcheck(L, output >= 0, 3, "output_tokens must not be negative");
  luaL_argcheck(L, cached >= 0 && cached <= input, 4, "cached_tokens must be between 0 and input_tokens");
  const ModelView* view = push_view_of(L, 1);
  if (view == nullptr) {
    lua_pushnil(L);
    return 1;
  }
  const ModelSpec* model = view->model;
  Usage usage;
  usage.input_tokens = input - cached;
  usage.cached_input_tokens = cached;
  usage.output_tokens = output;
  MicroUsd micro = cost_of(usage.input_tokens, model->price.input) +
                   cost_of(usage.cached_input_tokens, model->price.cached_input) +
                   cost_of(usage.output_tokens, model->price.output);
  if (view->prices != nullptr) micro = view->prices->cost(usage);
  static_assert(api::kCost.fields.size() == 2, "ctx.cost returns what the rule API table's cost section lists");
  lua_pushinteger(L, static_cast<lua_Integer>(micro));
  lua_pushnumber(L, to_usd(micro));
  return 2;
}

// ctx is one frozen table for the state's life: empty, its metatable's
// __index a shadow table the rules cannot reach (__metatable hides it), so
// every read is a plain table lookup with no call, writes fail, and pairs,
// rawget and rawlen read the shadow as they read any frozen table's. The
// shadow holds models, price and cost from the start; a call updates only
// the fields that changed since the last one (update_ctx).
int ctx_newindex(lua_State* L) {
  return luaL_error(L, "ctx is read-only (it describes the call; keep your own values in locals)");
}

void create_ctx_proxy(lua_State* L, Core* core) {
  intern_keys(L, kCtxFieldNames, kCtxFieldCount, core->ctx_key_refs, core->ctx_key_names);
  lua_createtable(L, 0, kCtxFieldCount + 4);  // the shadow
  lua_rawgeti(L, LUA_REGISTRYINDEX, core->models_proxy_ref);
  lua_setfield(L, -2, api::key(api::kCtx, "models"));
  lua_pushcfunction(L, ctx_price);
  lua_setfield(L, -2, api::key(api::kCtx, "price"));
  lua_pushcfunction(L, ctx_cost);
  lua_setfield(L, -2, api::key(api::kCtx, "cost"));
  push_read_only_table(L, -1, ctx_newindex);
  core->ctx_proxy_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  core->ctx_shadow_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

// Sets shadow[key] = the number, or removes it, when that differs from what it holds.
void update_number(lua_State* L, int shadow, int key_ref, std::optional<double> value, CachedNumber* last) {
  if (last->valid && last->value == value) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, key_ref);
  if (value) {
    lua_pushnumber(L, *value);
  } else {
    lua_pushnil(L);
  }
  lua_rawset(L, shadow);
  last->value = value;
  last->valid = true;
}

void update_integer(lua_State* L, int shadow, int key_ref, std::optional<std::int64_t> value,
                    CachedInteger* last) {
  if (last->valid && last->value == value) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, key_ref);
  if (value) {
    lua_pushinteger(L, static_cast<lua_Integer>(*value));
  } else {
    lua_pushnil(L);
  }
  lua_rawset(L, shadow);
  last->value = value;
  last->valid = true;
}

void update_text(lua_State* L, int shadow, int key_ref, CachedString* cache, std::string_view text) {
  if (cache->valid && cache->len == text.size() && std::memcmp(cache->text, text.data(), text.size()) == 0) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, key_ref);
  push_cached(L, cache, text);
  lua_rawset(L, shadow);
}

// Pushes ctx, its shadow holding this call's values.
void update_ctx(lua_State* L, Core* core, const RulesContext& ctx) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, core->ctx_shadow_ref);
  const int shadow = lua_gettop(L);
  update_text(L, shadow, core->ctx_key_refs[kWorkload], &core->workload, ctx.workload);
  update_text(L, shadow, core->ctx_key_refs[kRulesVersion], &core->rules_version, ctx.rules_version);
  update_number(L, shadow, core->ctx_key_refs[kBudgetLeftUsd], ctx.budget_left_usd, &core->budget_left_usd);
  update_number(L, shadow, core->ctx_key_refs[kSpentUsd], ctx.spent_usd, &core->spent_usd);
  update_integer(L, shadow, core->ctx_key_refs[kRateRequestsLeft], ctx.rate_requests_left,
                 &core->rate_requests_left);
  update_integer(L, shadow, core->ctx_key_refs[kRateTokensLeft], ctx.rate_tokens_left, &core->rate_tokens_left);
  const bool has_session = ctx.session != nullptr || !ctx.session_id.empty();
  if (has_session != core->session_shown) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, core->ctx_key_refs[kSession]);
    if (has_session) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, core->session_proxy_ref);
    } else {
      lua_pushnil(L);
    }
    lua_rawset(L, shadow);
    core->session_shown = has_session;
  }
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, core->ctx_proxy_ref);
}

// Copies the string at `idx` into `slot`; names must fit, reasons are cut.
void read_text(lua_State* L, int idx, const char* field, TextSlot* slot, size_t max) {
  size_t len = 0;
  const char* s = lua_tolstring(L, idx, &len);
  if (len > max) {
    if (max == kMaxNameBytes) {
      luaL_error(L, "%s: classify returned a '%s' of %I bytes; names are at most %I bytes",
                 core_of(L)->chunk_name, field, static_cast<lua_Integer>(len),
                 static_cast<lua_Integer>(max));
    }
    len = max;
  }
  std::memcpy(slot->data, s, len);
  slot->len = len;
  slot->present = true;
}

// Copies the result table's known fields to the stack slots base+0..base+7,
// in kResultFieldNames order, without running a metamethod. A table of a
// few fields is walked once with lua_next; a big one is probed per field,
// so the cost stays bounded either way.
void collect_fields(lua_State* L, int t, int base) {
  constexpr int kMaxWalk = 16;
  const Core* core = core_of(L);
  int walked = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (++walked > kMaxWalk) {
      lua_pop(L, 2);
      for (int i = 0; i < kResultFieldCount; ++i) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, core->field_refs[i]);
        lua_rawget(L, t);
        lua_replace(L, base + i);
      }
      return;
    }
    const int field = interned_index(L, -2, core->field_names, kResultFieldCount);
    if (field >= 0) lua_copy(L, -1, base + field);
    lua_pop(L, 1);
  }
}

void read_text_field(lua_State* L, int base, ResultField id, TextSlot* slot, size_t max) {
  const char* field = kResultFieldNames[id];
  const int type = lua_type(L, base + id);
  if (type == LUA_TSTRING) {
    read_text(L, base + id, field, slot, max);
  } else if (type != LUA_TNIL) {
    luaL_error(L, "%s: classify returned '%s' as a %s; expected a string", core_of(L)->chunk_name,
               field, lua_typename(L, type));
  }
}

void read_integer_field(lua_State* L, int base, ResultField id, bool* has, lua_Integer* out) {
  const char* field = kResultFieldNames[id];
  const int idx = base + id;
  const int type = lua_type(L, idx);
  if (type == LUA_TNUMBER) {
    int is_integer = 0;
    *out = lua_tointegerx(L, idx, &is_integer);
    if (!is_integer) {
      luaL_error(L, "%s: classify returned '%s' = %f; expected a whole number",
                 core_of(L)->chunk_name, field, lua_tonumber(L, idx));
    }
    *has = true;
  } else if (type != LUA_TNIL) {
    luaL_error(L, "%s: classify returned '%s' as a %s; expected a whole number",
               core_of(L)->chunk_name, field, lua_typename(L, type));
  }
}

void read_boolean_field(lua_State* L, int base, ResultField id, bool* has, bool* out) {
  const int type = lua_type(L, base + id);
  if (type == LUA_TBOOLEAN) {
    *out = lua_toboolean(L, base + id) != 0;
    *has = true;
  } else if (type != LUA_TNIL) {
    luaL_error(L, "%s: classify returned '%s' as a %s; expected true or false", core_of(L)->chunk_name,
               kResultFieldNames[id], lua_typename(L, type));
  }
}

// Reads classify's result without running any metamethod.
void read_result(lua_State* L, int idx, ResultPod* out) {
  const int type = lua_type(L, idx);
  if (type == LUA_TSTRING) {
    out->is_name = true;
    read_text(L, idx, "name", &out->name, kMaxNameBytes);
    return;
  }
  if (type != LUA_TTABLE) {
    luaL_error(L, "%s: classify returned %s; expected a tier or model name or a table",
               core_of(L)->chunk_name, type == LUA_TNONE ? "nothing" : lua_typename(L, type));
  }
  luaL_checkstack(L, kResultFieldCount + 4, "reading the result");
  const int base = lua_gettop(L) + 1;
  for (int i = 0; i < kResultFieldCount; ++i) lua_pushnil(L);
  collect_fields(L, idx, base);
  read_text_field(L, base, kTier, &out->tier, kMaxNameBytes);
  read_text_field(L, base, kModel, &out->model, kMaxNameBytes);
  read_text_field(L, base, kReasoning, &out->reasoning, kMaxNameBytes);
  read_text_field(L, base, kAggregate, &out->aggregate, kMaxNameBytes);
  read_text_field(L, base, kReason, &out->reason, kMaxReasonBytes);
  read_integer_field(L, base, kMaxOutputTokens, &out->has_max_output_tokens, &out->max_output_tokens);
  read_integer_field(L, base, kFanout, &out->has_fanout, &out->fanout);
  read_boolean_field(L, base, kPinReasoning, &out->has_pin_reasoning, &out->pin_reasoning);
}

int protected_classify(lua_State* L) {
  CallFrame* frame = static_cast<CallFrame*>(lua_touserdata(L, 1));
  Core* core = core_of(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, core->classify_ref);
  core->call_step = frame->step;
  core->call_input_tokens = frame->input_tokens;
  core->call_ctx = frame->ctx;
  sync_models(L, core, frame->ctx->config);
  build_step(L);
  update_ctx(L, core, *frame->ctx);
  core->bytes_at_rules_start = core->bytes_allocated;
  core->vm_started = true;
  lua_call(L, 2, 1);
  core->call_step = nullptr;
  core->call_ctx = nullptr;
  core->bytes_at_rules_end = core->bytes_allocated;
  read_result(L, lua_gettop(L), frame->out);
  lua_settop(L, 1);
  protected_restore(L);  // in the same protected call: the common path pays for one
  frame->restored = true;
  return 0;
}

struct LoadArgs {
  const char* source;
  size_t size;
  const char* chunk_name;  // with the leading '@'
};

int protected_load(lua_State* L) {
  const LoadArgs* args = static_cast<const LoadArgs*>(lua_touserdata(L, 1));
  if (luaL_loadbufferx(L, args->source, args->size, args->chunk_name, "t") != LUA_OK) {
    return lua_error(L);
  }
  Core* core = core_of(L);
  lua_Debug ar;
  lua_pushvalue(L, -1);
  if (lua_getinfo(L, ">S", &ar)) {
    std::snprintf(core->short_src, sizeof core->short_src, "%s", ar.short_src);
    // Every function of the chunk shares this one source string (the chunk
    // keeps it alive): a traced line is the chunk's when its source is this.
    core->chunk_source = ar.source;
  }
  core->bytes_at_rules_start = core->bytes_allocated;
  core->vm_started = true;
  lua_call(L, 0, 0);
  core->bytes_at_rules_end = core->bytes_allocated;
  return 0;
}

std::string_view text_of(const TextSlot& slot) { return std::string_view(slot.data, slot.len); }

// Brings the state to the same shape before every probed call, so that what
// the call allocates does not depend on what earlier calls did: no garbage,
// and as few spare call frames and as little spare stack as collections
// leave. Only an incremental cycle gives those back (half the spare frames
// per cycle; a generational collection keeps them), so collect incrementally
// until nothing more goes, then return to generational mode.
void settle_memory(lua_State* L) {
  const Core* core = core_of(L);
  lua_gc(L, LUA_GCINC, 0, 0, 0);
  for (int i = 0; i < 64; ++i) {
    const std::int64_t before = core->memory_used;
    lua_gc(L, LUA_GCCOLLECT);
    if (core->memory_used == before) break;
  }
  lua_gc(L, LUA_GCGEN, 0, 0);
}

}  // namespace

// ---------------------------------------------------------------- public

void charge_budget(lua_State* L, std::int64_t steps) {
  Core* core = core_of(L);
  if (core == nullptr) return;  // a plain lua_State (tests): nothing to charge
  check_limits(L, steps);
}

LuaSandbox::LuaSandbox() : core_(std::make_unique<Core>()) {}

LuaSandbox::~LuaSandbox() {
  if (L_ != nullptr) {
    // Keep the hook armed while finalising: nothing of the rules' runs unbounded.
    arm_budget(L_, kHookInterval);
    lua_gc(L_, LUA_GCCOLLECT);
    lua_close(L_);
  }
}

Result<std::unique_ptr<LuaSandbox>> LuaSandbox::create(const SandboxLimits& limits,
                                                       std::string_view chunk_name,
                                                       std::string_view source,
                                                       CallProbe* load_probe) {
  const std::string name(chunk_name.substr(0, kMaxNameBytes));
  if (static_cast<std::int64_t>(source.size()) > limits.max_source_bytes) {
    return Status::rule_error(name + ": source is " + std::to_string(source.size()) +
                              " bytes, over the limit of " +
                              std::to_string(limits.max_source_bytes));
  }
  if (!source.empty() && source[0] == LUA_SIGNATURE[0]) {
    return Status::rule_error(name + ": precompiled (binary) chunks are not accepted; rules are Lua text");
  }
  std::unique_ptr<LuaSandbox> box(new LuaSandbox());
  // At least the lines Lua can number (it also ends a line at a lone '\r').
  box->line_count_ = static_cast<int>(std::min<std::ptrdiff_t>(
      std::count(source.begin(), source.end(), '\n') + std::count(source.begin(), source.end(), '\r') + 1,
      INT32_MAX));
  Core* core = box->core_.get();
  core->memory_limit = limits.memory_bytes;
  core->time_limit_ms = limits.time_limit_ms;
  core->string_cap = static_cast<size_t>(std::max<std::int64_t>(limits.memory_bytes, 0)) / kTrackedStringBytes + 1;
  core->string_storage = std::make_unique<TrackedString[]>(core->string_cap);
  core->strings = core->string_storage.get();
  std::snprintf(core->chunk_name, sizeof core->chunk_name, "%s", name.c_str());
  box->L_ = lua_newstate(capped_alloc, core);
  if (box->L_ == nullptr) {
    return Status::rule_error(name + ": cannot create a Lua state within the memory limit");
  }
  lua_State* L = box->L_;
  core->L = L;
  *static_cast<Core**>(lua_getextraspace(L)) = core;

  char err[kMaxErrorBytes + 64];
  if (load_probe != nullptr) {
    box->begin_probe(load_probe, limits.instructions_at_load);
  } else {
    arm_budget(L, limits.instructions_at_load);
  }
  bool loaded = protected_call(L, protected_open_libs, nullptr, err, sizeof err);
  const std::string at_name = "@" + name;
  LoadArgs args{source.data(), source.size(), at_name.c_str()};
  loaded = loaded && protected_call(L, protected_load, &args, err, sizeof err) &&
           protected_call(L, protected_freeze, core, err, sizeof err);
  end_run(core);
  if (load_probe != nullptr) box->end_probe(load_probe);
  if (!loaded) return Status::rule_error(err);
  lua_gc(L, LUA_GCCOLLECT);
  lua_gc(L, LUA_GCGEN, 0, 0);  // per-call tables die young: generational mode suits them
  core->per_call_limit = limits.instructions_per_call;
  arm_budget(L, core->per_call_limit);
  end_run(core);
  return box;
}

Result<RawDecision> LuaSandbox::classify(const Step& step, std::int64_t input_tokens,
                                         const RulesContext& ctx, CallProbe* probe) {
  if (core_->poisoned) return Status::internal("sandbox used after a budget, time or memory kill");
  ResultPod* pod = &core_->result;
  pod->is_name = pod->has_fanout = pod->has_max_output_tokens = pod->has_pin_reasoning = false;
  for (TextSlot* slot : {&pod->name, &pod->tier, &pod->model, &pod->reasoning, &pod->aggregate,
                         &pod->reason}) {
    slot->present = false;
  }
  CallFrame frame{&step, input_tokens, &ctx, pod, false};
  ++core_->call_serial;  // before anything can fail: nothing read in an earlier call counts for this one
  char err[kMaxErrorBytes + 64];
  if (probe != nullptr) {
    settle_memory(L_);
    begin_probe(probe, core_->per_call_limit);
  } else {
    arm_budget(L_, core_->per_call_limit);
  }
  const bool ok = protected_call(L_, protected_classify, &frame, err, sizeof err);
  core_->call_ctx = nullptr;  // also when the call raised
  core_->call_step = nullptr;
  end_run(core_.get());
  if (probe != nullptr) end_probe(probe);
  if (!frame.restored && !core_->poisoned) {
    lua_sethook(L_, nullptr, 0, 0);  // the restore runs no rules code; no limit applies
    char restore_err[kMaxErrorBytes + 64];
    if (!protected_call(L_, protected_restore, nullptr, restore_err, sizeof restore_err)) {
      core_->poisoned = true;
    }
  }
  if (!ok) return Status::rule_error(err);

  RawDecision raw;
  if (pod->is_name) {
    raw.name = text_of(pod->name);
    return raw;
  }
  auto take = [](const TextSlot& slot, std::optional<std::string_view>& into) {
    if (slot.present) into = text_of(slot);
  };
  take(pod->tier, raw.tier);
  take(pod->model, raw.model);
  take(pod->reasoning, raw.reasoning);
  take(pod->aggregate, raw.aggregate);
  take(pod->reason, raw.reason);
  if (pod->has_max_output_tokens) raw.max_output_tokens = pod->max_output_tokens;
  if (pod->has_fanout) raw.fanout = pod->fanout;
  if (pod->has_pin_reasoning) raw.pin_reasoning = pod->pin_reasoning;
  return raw;
}

void LuaSandbox::begin_probe(CallProbe* probe, std::int64_t limit) {
  probe->trace.clear();
  probe->trace_truncated = false;
  probe->lines_hit.clear();
  probe->instruction_count = 0;
  probe->bytes_allocated = 0;
  core_->bytes_at_rules_start = core_->bytes_allocated;
  core_->bytes_at_rules_end = -1;
  if (probe->lines) {
    // The buffers exist before the run: the hook, which a Lua error may
    // cross, only writes into them.
    if (line_marks_.empty()) line_marks_.assign(static_cast<size_t>(line_count_) + 1, 0);
    probe->trace.resize(kMaxTracedLines);
    core_->line_marks = line_marks_.data();
    core_->line_count = line_count_;
    core_->trace = probe->trace.data();
    core_->trace_len = 0;
    core_->trace_cap = probe->trace.size();
    core_->trace_truncated = false;
  }
  arm_budget(L_, limit, probe->instructions, probe->lines);
}

void LuaSandbox::end_probe(CallProbe* probe) {
  const std::int64_t end = core_->bytes_at_rules_end >= 0 ? core_->bytes_at_rules_end : core_->bytes_allocated;
  probe->bytes_allocated = end - core_->bytes_at_rules_start;
  if (probe->instructions) probe->instruction_count = core_->instructions_run;
  if (probe->lines) {
    probe->trace.resize(core_->trace_len);
    probe->trace_truncated = core_->trace_truncated;
    for (size_t line = 1; line < line_marks_.size(); ++line) {
      if (line_marks_[line] != 0) {
        probe->lines_hit.push_back(static_cast<int>(line));
        line_marks_[line] = 0;
      }
    }
    core_->line_marks = nullptr;
    core_->trace = nullptr;
    core_->trace_len = core_->trace_cap = 0;
  }
}

std::optional<std::int64_t> LuaSandbox::cached_tokens_read(std::string_view model) const {
  const Core& core = *core_;
  if (core.call_serial == 0) return std::nullopt;
  if (core.session_call == core.call_serial && core.session_taken) return core.session_taken->cached_for(model);
  if (const CachedRead* read = cached_read_of(core, model)) return read->tokens;
  return std::nullopt;
}

bool LuaSandbox::poisoned() const { return core_->poisoned; }

std::int64_t LuaSandbox::memory_used() const { return core_->memory_used; }

Result<std::vector<int>> executable_lines(const SandboxLimits& limits, std::string_view chunk_name,
                                          std::string_view source) {
  const std::string name(chunk_name.substr(0, kMaxNameBytes));
  if (static_cast<std::int64_t>(source.size()) > limits.max_source_bytes) {
    return Status::rule_error(name + ": source is " + std::to_string(source.size()) +
                              " bytes, over the limit of " + std::to_string(limits.max_source_bytes));
  }
  // Compiled only, never run: a state with the memory cap and no libraries.
  Core core;
  core.memory_limit = limits.memory_bytes;
  std::snprintf(core.chunk_name, sizeof core.chunk_name, "%s", name.c_str());
  std::unique_ptr<lua_State, void (*)(lua_State*)> state(lua_newstate(capped_alloc, &core), lua_close);
  lua_State* L = state.get();
  if (L == nullptr) return Status::rule_error(name + ": cannot create a Lua state within the memory limit");
  *static_cast<Core**>(lua_getextraspace(L)) = &core;
  const std::string at_name = "@" + name;
  // luaL_loadbufferx is a protected parser: it returns a status, it never throws.
  if (luaL_loadbufferx(L, source.data(), source.size(), at_name.c_str(), "t") != LUA_OK) {
    const char* msg = lua_tostring(L, -1);
    return Status::rule_error(msg != nullptr ? std::string(msg).substr(0, kMaxErrorBytes) : name + ": cannot compile");
  }
  std::string chunk;
  const int dumped = lua_dump(
      L,
      [](lua_State*, const void* p, size_t n, void* ud) -> int {
        try {  // nothing may be thrown through lua_dump's C frames
          static_cast<std::string*>(ud)->append(static_cast<const char*>(p), n);
          return 0;
        } catch (...) {
          return 1;
        }
      },
      &chunk, 0);
  if (dumped != 0) return Status::internal(name + ": cannot dump the compiled chunk");
  auto protos = read_chunk_lines(chunk);
  if (!protos.ok()) return Status::internal(name + ": " + protos.status().message());
  std::vector<int> lines;
  for (const PrototypeLines& p : *protos) lines.insert(lines.end(), p.lines.begin(), p.lines.end());
  std::sort(lines.begin(), lines.end());
  lines.erase(std::unique(lines.begin(), lines.end()), lines.end());
  return lines;
}

}  // namespace switchboard::detail
