-- Rules for the `cache_aware` workload: default.lua's tiers, with the model
-- within a tier chosen by what the call costs now, the prompt cache counted.
--
-- An agent re-sends its whole conversation every turn, and a model that has
-- it in its prompt cache reads it at a tenth of the input rate. So the
-- cheapest model for a step depends on where the conversation is warm:
-- moving a long conversation off a warm model can cost more than staying.
--
--   1. The tier is default.lua's (the quality decision, unchanged):
--        format / summarize / extract -> cheap   (reasoning low)
--        more than 30,000 input tokens -> premium
--        needs chain of thought        -> premium (reasoning high)
--        anything else                 -> cheap
--   2. The model (the cost decision): among the tier's models, and the
--      session's last model when its tier is at least as strong (it can
--      take any step a weaker tier can), the one whose call costs least
--      now, each priced with ctx.cost(model, input, output, cached) where
--      `cached` is ctx.session.cached_tokens[model]. So the warm model stays
--      unless switching saves more than the cache it loses; a tie stays.
--      Unhealthy models (open circuit breaker) are passed by.
--   3. Without a session (ctx.session == nil) every cache is cold: the
--      cheapest model of the tier.
--
-- TIERS and STRENGTH mirror switchboard.toml's [tiers] (rules see models,
-- not tiers); a model the config does not have is skipped (ctx.cost is nil).
--
-- Sandbox contract: classify is a pure function of (step, ctx). Lookup tables
-- are built here, at load time, and are frozen afterwards; classify only reads them.

local CHEAP_ROLES = { format = true, summarize = true, extract = true }

local LONG_INPUT_TOKENS = 30000 -- strictly more than this is "long"
local DEFAULT_OUTPUT_TOKENS = 1000 -- when the step does not say

-- The models of each tier default.lua uses, in the config's call order.
local TIERS = {
  cheap = { "claude-haiku-4-5", "gpt-5-mini", "gemini-2.5-flash" },
  premium = { "claude-opus-4-1", "claude-sonnet-4-5" },
}

-- How strong each tier is (cheap 1, balanced 2, premium 3), and each model:
-- the strongest tier that lists it. A session may stay on a model at least
-- as strong as the tier the step needs.
local TIER_STRENGTH = { cheap = 1, balanced = 2, premium = 3 }
local STRENGTH = {
  ["claude-haiku-4-5"] = 1, ["gpt-5-mini"] = 1, ["gemini-2.5-flash"] = 1, ["llama-3.3-70b"] = 1,
  ["gpt-5"] = 2, ["gemini-2.5-pro"] = 2,
  ["claude-sonnet-4-5"] = 3, ["claude-opus-4-1"] = 3,
}

-- IN_TIER[tier][model]: whether the tier lists the model.
local IN_TIER = {}
for tier, models in pairs(TIERS) do
  IN_TIER[tier] = {}
  for _, model in ipairs(models) do IN_TIER[tier][model] = true end
end

-- default.lua's decision: the tier, its reasoning and why.
local function tier_for(step)
  local tokens = step.input_tokens or 0
  if CHEAP_ROLES[step.role] then
    return "cheap", "low", "mechanical role: " .. step.role
  end
  if tokens > LONG_INPUT_TOKENS then
    return "premium", nil, "long input: " .. tokens .. " tokens > 30000"
  end
  if step.needs_chain_of_thought then
    return "premium", "high", "needs chain of thought"
  end
  return "cheap", nil, "default: no rule asks for more than cheap"
end

-- What a call to `model` costs now (micro-dollars), its cached tokens and
-- whether it may be called; nil when the config has no such model.
local function price_now(ctx, session, model, input, output)
  local health = ctx.models[model]
  if health == nil or not health.healthy then return nil end
  local cached = 0
  if session ~= nil then cached = session.cached_tokens[model] end
  if cached > input then cached = input end
  local micro = ctx.cost(model, input, output, cached)
  if micro == nil then return nil end
  return micro, cached
end

function classify(step, ctx)
  local tier, reasoning, why = tier_for(step)
  local input = step.input_tokens or 0
  local output = step.expected_output_tokens or DEFAULT_OUTPUT_TOKENS
  local session = ctx.session

  local best, best_cost, best_cached
  local function consider(model)
    local micro, cached = price_now(ctx, session, model, input, output)
    if micro ~= nil and (best_cost == nil or micro < best_cost) then
      best, best_cost, best_cached = model, micro, cached
    end
  end

  -- The warm model first, so that a tie keeps the session where it is.
  local last = session and session.last_model
  local stays = last ~= nil and (STRENGTH[last] or 0) >= TIER_STRENGTH[tier]
  if stays then consider(last) end
  for _, model in ipairs(TIERS[tier]) do
    if model ~= last then consider(model) end
  end
  -- No model of the tier known and healthy: the tier's own order decides.
  if best == nil then return { tier = tier, reasoning = reasoning, reason = why } end

  local note
  if best_cached > 0 then
    note = string.format("%s warm (%d cached tokens)", best, best_cached)
  else
    note = best .. " cold"
  end
  if best == last then
    note = "stays on " .. note
  elseif last ~= nil then
    note = "leaves " .. last .. " for " .. note
  end
  local decision = { model = best, reasoning = reasoning,
                     reason = string.format("%s; %s: $%.4f", why, note, best_cost / 1e6) }
  if IN_TIER[tier][best] then decision.tier = tier end  -- else the warm model's own tier falls back
  return decision
end
