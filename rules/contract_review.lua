-- Rules for the `contract_review` workload: reading contracts, extracting
-- clauses and obligations, and assessing legal risk.
--
-- Here a wrong summary of a clause is expensive, so summarize is NOT cheap.
-- The rules run top to bottom; the first that matches decides:
--   1. format / tool_call_parse                      -> cheap (reasoning low)
--   2. summarize                                     -> balanced, premium over 50,000 input tokens
--   3. extract (clauses, obligations) as JSON        -> balanced
--   4. risk_assessment / reason                      -> premium (reasoning high); with more than
--      one jurisdiction (meta.jurisdiction_count > 1) three drafts are written in parallel
--      and a premium call reconciles them (fanout 3, aggregate premium)
--   5. anything else                                 -> balanced
--
-- Sandbox contract: classify is a pure function of (step, ctx). Lookup tables
-- are built here, at load time, and are frozen afterwards; classify only reads them.

local CHEAP_ROLES = { format = true, tool_call_parse = true }
local RISK_ROLES = { risk_assessment = true, reason = true }
local NO_META = {}

local LONG_SUMMARY_TOKENS = 50000 -- strictly more: summarize needs premium
local CONTEMPLATE_FANOUT = 3

function classify(step, ctx)
  local role = step.role
  local tokens = step.input_tokens or 0
  local meta = step.meta or NO_META

  if CHEAP_ROLES[role] then
    return { tier = "cheap", reasoning = "low", reason = "mechanical role: " .. role }
  end

  if role == "summarize" then
    if tokens > LONG_SUMMARY_TOKENS then
      return { tier = "premium", reason = "summary of a long contract: " .. tokens .. " tokens > 50000" }
    end
    return { tier = "balanced", reason = "clause summaries must be right: not cheap" }
  end

  if role == "extract" then
    if step.output_must_be_json then
      return { tier = "balanced", reason = "clause/obligation extraction to JSON" }
    end
    return { tier = "balanced", reason = "clause/obligation extraction" }
  end

  if RISK_ROLES[role] then
    -- Callers may send the count as a number or a numeric string.
    local jurisdictions = tonumber(meta.jurisdiction_count) or 1
    if jurisdictions > 1 then
      return { tier = "premium", reasoning = "high",
               fanout = CONTEMPLATE_FANOUT, aggregate = "premium",
               reason = role .. " across " .. jurisdictions .. " jurisdictions: 3 drafts + premium aggregate" }
    end
    return { tier = "premium", reasoning = "high", reason = role .. ": legal risk needs premium" }
  end

  return { tier = "balanced", reason = "default for contract_review: balanced" }
end
