// LuaSandbox: one sandboxed lua_State running one rules file. All Lua/C pain
// lives in lua_sandbox.cpp (and the pattern functions in lua_patterns.cpp).
//
// Contract:
//  - Only text chunks load; the file body runs under SandboxLimits::instructions_at_load.
//  - After the body has run, the rules' state is frozen: globals, every table
//    reachable from them, from a function's upvalues or from a metatable, and
//    the string metatable are read-only; upvalues a call reassigns, and
//    userdata it changes (a string.gmatch iterator), are restored after the
//    call. No call can see what an earlier call did.
//  - The body and each classify() call run under an instruction budget, a
//    wall-clock limit (one second) and the memory cap. Library loops that
//    neither allocate nor run Lua code (table.move, table.insert/remove) are
//    charged to the budget. A kill is final: once the budget, the time or the
//    memory is exceeded, every later instruction raises it again, so a pcall
//    in the rules cannot swallow it, and the call fails even if the rules
//    caught the error. After a kill the sandbox reports poisoned() and its
//    owner must discard it.
//  - No C++ object with a destructor lives in a frame a Lua error can cross.
//
// Thread-safety: none. A sandbox is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "switchboard/config.h"
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
};

// The `ctx` argument, as the rules see it.
struct RulesContext {
  std::string_view workload;
  std::string_view rules_version;
  std::optional<double> budget_left_usd;
  double spent_usd = 0;
};

class LuaSandbox {
 public:
  // Compiles `source` (named `chunk_name` in messages, e.g. "rules/x.lua") and
  // runs its body. Errors read "rules/x.lua:12: message".
  static Result<std::unique_ptr<LuaSandbox>> create(const SandboxLimits& limits,
                                                    std::string_view chunk_name,
                                                    std::string_view source);
  ~LuaSandbox();
  LuaSandbox(const LuaSandbox&) = delete;
  LuaSandbox& operator=(const LuaSandbox&) = delete;

  // Calls classify(step, ctx). `input_tokens` is what step.input_tokens shows.
  // A failure is a rule error: "rules/x.lua:12: message" in one line.
  Result<RawDecision> classify(const Step& step, std::int64_t input_tokens,
                               const RulesContext& ctx);

  // True after a budget, time or memory kill: the state must not be used again.
  bool poisoned() const;
  // Bytes the state holds now.
  std::int64_t memory_used() const;

  struct Core;  // allocator, budget and call bookkeeping (plain data)

 private:
  LuaSandbox();
  std::unique_ptr<Core> core_;
  lua_State* L_ = nullptr;  // owned; closed in the destructor
};

// Charges `steps` units of work done inside a C function (pattern matching)
// to the running call's instruction budget; raises the kill error once the
// budget is spent, the time is up or the memory cap was hit.
// Inside a sandbox only; on a plain lua_State whose extra space holds a null
// pointer it charges nothing.
void charge_budget(lua_State* L, std::int64_t steps);

// Installs step-counted string.find/match/gmatch/gsub into the table on top of
// the stack (lua_patterns.cpp).
void install_counted_patterns(lua_State* L);

}  // namespace switchboard::detail
