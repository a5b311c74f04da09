-- bench_decide's second rule: default.lua's decisions, after reading what a
-- rule that weighs the world reads: the candidates' health, their prices,
-- the session's warm caches and what this step would cost on each. Its cost
-- against the bare Lua call is the price of a rich ctx (goal: at most 2x).

local CHEAP, PREMIUM = "claude-haiku-4-5", "claude-opus-4-1"
local CHEAP_ROLES = { format = true, summarize = true, extract = true }

function classify(step, ctx)
  local tokens = step.input_tokens or 0
  local out = step.expected_output_tokens or 500
  local cheap_ok = ctx.models[CHEAP].healthy
  local premium = ctx.models[PREMIUM]
  local premium_ok = premium.healthy and (premium.p95_ms or 0) < 30000
  local session = ctx.session
  local warm = session and session.cached_tokens[CHEAP] or 0
  if warm > tokens then warm = tokens end
  local cheap_micro = ctx.cost(CHEAP, tokens, out, warm)
  local premium_micro = ctx.cost(PREMIUM, tokens, out)
  local rate = ctx.price(CHEAP).input

  if CHEAP_ROLES[step.role] and cheap_ok then
    return { tier = "cheap", reasoning = "low", reason = "mechanical role: " .. step.role }
  end
  if tokens > 30000 and premium_ok then
    return { tier = "premium", reason = "long input: " .. tokens .. " tokens > 30000" }
  end
  if step.needs_chain_of_thought and premium_ok and premium_micro < 100 * cheap_micro + rate then
    return { tier = "premium", reasoning = "high", reason = "needs chain of thought" }
  end
  return { tier = "cheap", reason = "default: no rule asks for more than cheap" }
end
