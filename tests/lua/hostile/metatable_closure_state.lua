-- attack: keep a counter in the upvalue of an __index closure reachable only through a metatable
-- expect-calls: premium premium premium
local tiers = setmetatable({}, { __index = (function()
  local n = 0
  return function(t, key)
    n = n + 1
    return n == 1 and "premium" or "cheap"
  end
end)() })
function classify(step, ctx)
  return tiers.anything
end
