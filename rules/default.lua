-- Rules for the `default` workload: any caller that names no workload of its own.
--
-- The rules run top to bottom; the first that matches decides:
--   1. format / summarize / extract          -> cheap   (reasoning low)
--   2. more than 30,000 input tokens         -> premium
--   3. needs chain of thought                -> premium (reasoning high)
--   4. anything else                         -> cheap
--
-- Sandbox contract: classify is a pure function of (step, ctx). Lookup tables
-- are built here, at load time, and are frozen afterwards; classify only reads them.

local CHEAP_ROLES = { format = true, summarize = true, extract = true }

local LONG_INPUT_TOKENS = 30000 -- strictly more than this is "long"

function classify(step, ctx)
  local tokens = step.input_tokens or 0

  if CHEAP_ROLES[step.role] then
    return { tier = "cheap", reasoning = "low", reason = "mechanical role: " .. step.role }
  end

  if tokens > LONG_INPUT_TOKENS then
    return { tier = "premium", reason = "long input: " .. tokens .. " tokens > 30000" }
  end

  if step.needs_chain_of_thought then
    return { tier = "premium", reasoning = "high", reason = "needs chain of thought" }
  end

  return { tier = "cheap", reason = "default: no rule asks for more than cheap" }
end
