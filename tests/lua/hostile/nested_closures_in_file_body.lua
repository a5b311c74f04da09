-- attack: a chain of 100,000 closures, each holding the previous one as an upvalue
-- expect-calls: premium premium
local f = function() return "premium" end
for i = 1, 100000 do local g = f; f = function() return g() end end
local first = f
function classify(step, ctx)
  return "premium"
end
