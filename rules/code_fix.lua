-- Rules for the `code_fix` workload: an agent that reads a bug report, plans,
-- edits code and reviews its own patch.
--
-- The rules run top to bottom; the first that matches decides:
--   1. format / lint / tool_call_parse / extract / summarize -> cheap (reasoning low)
--   2. more than 100,000 input tokens                        -> model gemini-2.5-pro
--      (1M-token window at a balanced price; Opus/Sonnet stop at 200k)
--   3. plan / reason with chain of thought or tool_depth >= 3 -> premium (reasoning high)
--   4. patch / write_code                                     -> balanced (reasoning medium),
--      premium when input is over 60,000 tokens
--   5. review (of a patch)                                    -> balanced
--   6. anything else                                          -> balanced
-- Budget guard: when ctx.budget_left_usd is set and below $1.00, any premium
-- decision is served from balanced instead, and the reason says so.
--
-- Sandbox contract: classify is a pure function of (step, ctx). Lookup tables
-- are built here, at load time, and are frozen afterwards; classify only reads them.

local CHEAP_ROLES = {
  format = true, lint = true, tool_call_parse = true, extract = true, summarize = true,
}
local THINKING_ROLES = { plan = true, reason = true }
local CODING_ROLES = { patch = true, write_code = true }

local LONG_CONTEXT_TOKENS = 100000 -- strictly more: needs the 1M-token window
local LARGE_PATCH_TOKENS = 60000   -- strictly more: patch needs premium
local DEEP_TOOL_DEPTH = 3          -- at least this deep: plan/reason needs premium
local LOW_BUDGET_USD = 1.0         -- strictly below: no premium

-- Serves a premium decision from balanced when the budget is nearly spent.
-- Returns a new table; `d` is the caller's own fresh table, never a module one.
local function guard_budget(d, ctx)
  local left = ctx.budget_left_usd
  if d.tier == "premium" and left ~= nil and left < LOW_BUDGET_USD then
    return {
      tier = "balanced",
      reasoning = d.reasoning,
      reason = string.format("%s; budget low ($%.2f left < $1.00): premium downgraded to balanced",
                             d.reason, left),
    }
  end
  return d
end

function classify(step, ctx)
  local role = step.role
  local tokens = step.input_tokens or 0
  local depth = step.tool_depth or 0

  if CHEAP_ROLES[role] then
    return { tier = "cheap", reasoning = "low", reason = "mechanical role: " .. role }
  end

  if tokens > LONG_CONTEXT_TOKENS then
    return { model = "gemini-2.5-pro",
             reason = "long context: " .. tokens .. " tokens > 100000" }
  end

  if THINKING_ROLES[role] and (step.needs_chain_of_thought or depth >= DEEP_TOOL_DEPTH) then
    local why = step.needs_chain_of_thought and "needs chain of thought"
                or ("tool depth " .. depth .. " >= 3")
    return guard_budget({ tier = "premium", reasoning = "high", reason = role .. ": " .. why }, ctx)
  end

  if CODING_ROLES[role] then
    if tokens > LARGE_PATCH_TOKENS then
      return guard_budget({ tier = "premium", reasoning = "medium",
                            reason = role .. " over large input: " .. tokens .. " tokens > 60000" },
                          ctx)
    end
    return { tier = "balanced", reasoning = "medium", reason = role .. ": writing code" }
  end

  if role == "review" then
    return { tier = "balanced", reason = "review of a patch" }
  end

  return { tier = "balanced", reason = "default for code_fix: balanced" }
end
