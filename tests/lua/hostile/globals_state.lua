-- attack: every way to leave a mark in _G or a loaded table in call 1, read back in call 2
-- expect-calls: premium premium premium
local LIMITS = { cheap = 1 }
function classify(step, ctx)
  if step.meta.call == 1 then
    local attempts = {
      function() seen = true end,
      function() _G.seen = true end,
      function() rawset(_G, "seen", true) end,
      function() LIMITS.cheap = 99 end,
      function() rawset(LIMITS, "premium", 1) end,
      function() table.insert(LIMITS, "x") end,
      function() setmetatable(LIMITS, nil) end,
      function() getmetatable(_G).__newindex = nil end,
    }
    for i, attempt in ipairs(attempts) do
      if pcall(attempt) then error("tampering attempt " .. i .. " was allowed") end
    end
  end
  if rawget(_G, "seen") ~= nil or LIMITS.cheap ~= 1 or #LIMITS ~= 0 then
    error("call " .. step.meta.call .. " sees what an earlier call did")
  end
  return "premium"
end
