// Folder lua/: the Lua sandbox. It owns every lua_State and all Lua C API
// code: loading text-only chunks, the instruction budget, the memory cap and
// the wall-clock limit, freezing the rules' state, Switchboard's own counted
// Lua patterns (patterns.cpp), the reader of compiled chunks' lines
// (chunk_lines.cpp) and the probes that trace a run. It may use the public
// value types it runs on (status.h, step.h, SandboxLimits from config.h, the
// health and session figures it shows) and nothing else of ours: no other
// folder's private header.
//
// LuaSandbox: one sandboxed lua_State running one rules file. All Lua/C pain
// lives in lua/sandbox.cpp (and the pattern functions in lua/patterns.cpp; the
// reader of Lua's binary chunk format, which needs no lua_State, in
// lua/chunk_lines.cpp).
//
// Contract:
//  - Only text chunks load; the file body runs under SandboxLimits::instructions_at_load.
//  - After the body has run, the rules' state is frozen: globals, every table
//    reachable from them, from a function's upvalues or from a metatable, and
//    the string metatable are read-only; upvalues a call reassigns, and
//    userdata it changes (a string.gmatch iterator), are restored after the
//    call (the upvalues that the code, read at load, can assign; a call of
//    rules that assign none restores none). No call can see what an earlier
//    call did.
//  - The body and each classify() call run under an instruction budget, a
//    wall-clock limit (one second) and the memory cap. Library loops that
//    neither allocate nor run Lua code (table.move/insert/remove/sort/concat/
//    unpack, the pattern functions) are charged to the budget as they go. A
//    run ends within the time limit plus 50 ms: the clock is read on calls,
//    on count events (every 1000 instructions, down to every one while the
//    state holds long strings, which make single instructions slow), in the
//    charged loops and on allocations of 64 KiB or more. A kill is final: once the budget, the time or the
//    memory is exceeded, every later instruction raises it again, so a pcall
//    in the rules cannot swallow it, and the call fails even if the rules
//    caught the error. After a kill the sandbox reports poisoned() and its
//    owner must discard it.
//  - No C++ object with a destructor lives in a frame a Lua error can cross.
//  - A run may be probed (CallProbe): traced line by line, its instructions
//    counted one by one, its allocations summed. The limits hold unchanged
//    under a probe; a run without one pays nothing for the possibility.
//
// Thread-safety: none. A sandbox is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/config.h"
#include "switchboard/health.h"
#include "switchboard/sessions.h"
#include "switchboard/status.h"
#include "switchboard/step.h"

struct lua_State;

namespace switchboard::detail {

// What classify() returned, before it is checked against the configuration.
// The views point into the sandbox and stay valid until its next call.
struct RawDecision {
  std::optional<std::string_view> name;  // set when classify returned a string
  std::optional<std::string_view> tier, model, reasoning, aggregate, reason;
  std::optional<std::int64_t> max_output_tokens, fanout;
  std::optional<bool> pin_reasoning;
};

// The `ctx` argument, as the rules see it. `config` and `health` (either may
// be null) are read only when a rule reads ctx.models, ctx.price or ctx.cost;
// `session` only when it reads ctx.session.
struct RulesContext {
  std::string_view workload;
  std::string_view rules_version;
  std::optional<double> budget_left_usd;
  double spent_usd = 0;
  std::optional<std::int64_t> rate_requests_left;  // ctx.rate_requests_left (nil: no limit)
  std::optional<std::int64_t> rate_tokens_left;    // ctx.rate_tokens_left (nil: no limit)
  const Config* config = nullptr;      // the models and prices ctx.models / price / cost know
  // Nonzero: names `config` for the sandbox's life (every call that passes
  // this number passes that same Config, alive and unchanged), so a model's
  // catalog entries found in one call serve the next. 0: found in each call.
  std::uint64_t config_epoch = 0;
  const HealthBook* health = nullptr;  // ctx.models[name]'s figures; null: every model healthy, no figures
  // ctx.session's figures: `session` when set; else, for a non-empty
  // `session_id`, `sessions`' view of it, taken when a rule first reads
  // ctx.session in the call (a rule that never reads it costs no lookup).
  // Neither: ctx.session is nil.
  const SessionView* session = nullptr;
  const SessionBook* sessions = nullptr;
  std::string_view session_id;
};

// CallProbe::trace keeps at most this many lines.
constexpr size_t kMaxTracedLines = 4096;

// Instruments one run of rules code: a classify() call, or the file body when
// given to create(). The caller sets what to record; the run fills the rest
// (reset at its start). For tools (coverage, cost, explain), not the hot
// path: a probed classify() first collects all garbage, so that what it
// allocates does not depend on what earlier calls left behind, and tracing
// takes a hook on every line (`lines`) or every instruction (`instructions`).
// The instruction budget stops a probed run at the same instruction as an
// unprobed one; the time and memory limits hold as well (a probed run is
// slower, so a long one meets the time limit sooner).
struct CallProbe {
  // What to record.
  bool lines = false;         // the lines of the rules chunk that run
  bool instructions = false;  // an exact count of VM instructions

  // With `lines`: the lines in execution order, consecutive repeats collapsed,
  // at most kMaxTracedLines (then `trace_truncated`); and every line that ran,
  // ascending, however long the run. Only lines of the rules chunk itself.
  std::vector<int> trace;
  bool trace_truncated = false;
  std::vector<int> lines_hit;
  // With `instructions`: the VM instructions the run executed.
  std::int64_t instruction_count = 0;
  // Always: bytes of the blocks the rules' code allocated or grew while it ran
  // (a grown block counts its growth), whatever a collection gave back
  // meanwhile. Not the step and ctx tables the sandbox builds for a call, nor
  // the libraries it opens before the file body.
  std::int64_t bytes_allocated = 0;
};

class LuaSandbox {
 public:
  // Compiles `source` (named `chunk_name` in messages, e.g. "rules/x.lua") and
  // runs its body. Errors read "rules/x.lua:12: message". With `load_probe`,
  // the body's run is probed.
  static Result<std::unique_ptr<LuaSandbox>> create(const SandboxLimits& limits,
                                                    std::string_view chunk_name,
                                                    std::string_view source,
                                                    CallProbe* load_probe = nullptr);
  ~LuaSandbox();
  LuaSandbox(const LuaSandbox&) = delete;
  LuaSandbox& operator=(const LuaSandbox&) = delete;

  // Calls classify(step, ctx). `input_tokens` is what step.input_tokens shows.
  // A failure is a rule error: "rules/x.lua:12: message" in one line. With
  // `probe` (may be null), the call is probed; the probe is filled even when
  // the call fails.
  Result<RawDecision> classify(const Step& step, std::int64_t input_tokens,
                               const RulesContext& ctx, CallProbe* probe = nullptr);

  // What the last classify() call showed the rules of `model`'s cached
  // tokens in ctx.session, read from RulesContext::sessions: the figure of
  // the view ctx.session took, or of ctx.session.cached_tokens[model] when
  // the rules read it (one of the first four models read); else nullopt,
  // as when the call had a RulesContext::session (which the caller has).
  // So a decision prices the figure its rules weighed, without asking the
  // book again.
  std::optional<std::int64_t> cached_tokens_read(std::string_view model) const;

  // True after a budget, time or memory kill: the state must not be used again.
  bool poisoned() const;
  // Bytes the state holds now.
  std::int64_t memory_used() const;

  struct Core;  // allocator, budget and call bookkeeping (plain data)

 private:
  LuaSandbox();
  // Arms the hook and the recorders for a probed run under `limit` instructions.
  void begin_probe(CallProbe* probe, std::int64_t limit);
  // Fills `probe` from the recorders and disarms them.
  void end_probe(CallProbe* probe);

  std::unique_ptr<Core> core_;
  lua_State* L_ = nullptr;  // owned; closed in the destructor
  int line_count_ = 0;      // lines of the source
  // Per line: whether the probed run executed it. Sized on the first probe
  // that traces lines; all zero between runs.
  std::vector<unsigned char> line_marks_;
};

// The lines of `source` that hold VM instructions, in every function of the
// chunk: the file body and every nested function, called or not, local or
// not. Per function they are the lines lua_getinfo(">L") reports (a vararg
// function's VARARGPREP does not count); across functions, their union,
// ascending. Compiles `source` on a fresh state under `limits` (text only,
// max_source_bytes, memory_bytes) and runs none of it. Fails as create() does
// when the source does not compile.
Result<std::vector<int>> executable_lines(const SandboxLimits& limits, std::string_view chunk_name,
                                          std::string_view source);

// One function prototype of a binary chunk, and the lines it holds code on.
struct PrototypeLines {
  int line_defined = 0;       // 0 for the main chunk
  int last_line_defined = 0;
  bool is_vararg = false;
  std::vector<int> lines;     // as lua_getinfo(">L") reports them: distinct, ascending
};

// Every prototype of a Lua 5.4 binary chunk as lua_dump(strip = 0) writes it,
// the main chunk first, then depth first in the order they appear in the
// source (lua/chunk_lines.cpp). A chunk that is truncated, stripped of line
// information or not of this Lua version is an error, never a crash.
Result<std::vector<PrototypeLines>> read_chunk_lines(std::string_view chunk);

// A set of a function's upvalues, by the VM's 0-based index (lua_getupvalue's n - 1).
struct UpvalueSet {
  std::uint64_t words[4] = {};
  void set(size_t i) { words[i / 64] |= std::uint64_t{1} << (i % 64); }
  bool test(size_t i) const { return ((words[i / 64] >> (i % 64)) & 1) != 0; }
};

// The upvalues of the function a Lua 5.4 binary chunk holds (lua_dump of one
// function, stripped or not) that running it can assign: those its own code
// sets (SETUPVAL), and those a function nested in it, at any depth, shares
// and sets. False when the chunk cannot be read (malformed, another Lua
// version, nesting deeper than the scan goes): then assume every upvalue can
// be. Allocates nothing and raises nothing, so a protected Lua frame may call
// it (lua/chunk_lines.cpp).
bool assignable_upvalues(std::string_view chunk, UpvalueSet* out);

// Charges `steps` units of work done inside a C function (pattern matching)
// to the running call's instruction budget; raises the kill error once the
// budget is spent, the time is up or the memory cap was hit.
// Inside a sandbox only; on a plain lua_State whose extra space holds a null
// pointer it charges nothing.
void charge_budget(lua_State* L, std::int64_t steps);

// Installs step-counted string.find/match/gmatch/gsub into the table on top of
// the stack (lua/patterns.cpp).
void install_counted_patterns(lua_State* L);

}  // namespace switchboard::detail
