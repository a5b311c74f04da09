-- Rules for the `web_research` workload: searching, reading fetched pages
-- and writing up findings.
--
-- Fetched pages can carry prompt injection, so any step over untrusted input
-- never runs on the cheap or local tiers, whatever its role.
-- The rules run top to bottom; the first that matches decides:
--   1. untrusted input with chain of thought   -> premium (reasoning high)
--   2. untrusted input                         -> balanced
--   3. format / extract / summarize            -> cheap (reasoning low)
--   4. plan with chain of thought              -> premium (reasoning high)
--   5. anything else                           -> cheap
--
-- Sandbox contract: classify is a pure function of (step, ctx). Lookup tables
-- are built here, at load time, and are frozen afterwards; classify only reads them.

local CHEAP_ROLES = { format = true, extract = true, summarize = true }

function classify(step, ctx)
  local role = step.role

  if step.untrusted_input then
    if step.needs_chain_of_thought then
      return { tier = "premium", reasoning = "high",
               reason = "untrusted input with chain of thought: premium, never cheap/local" }
    end
    return { tier = "balanced", reason = "untrusted input: at least balanced, never cheap/local" }
  end

  if CHEAP_ROLES[role] then
    return { tier = "cheap", reasoning = "low", reason = "trusted mechanical role: " .. role }
  end

  if role == "plan" and step.needs_chain_of_thought then
    return { tier = "premium", reasoning = "high", reason = "trusted plan with chain of thought" }
  end

  return { tier = "cheap", reason = "default for web_research: cheap" }
end
