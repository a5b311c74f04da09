-- attack: keep a counter in an upvalue that only a closure made inside classify assigns, two levels down
-- expect-calls: premium premium premium
local calls = 0
local function counter()
  return function() return function() calls = calls + 1 end end
end
function classify(step, ctx)
  counter()()()
  if calls ~= 1 then
    error("call " .. step.meta.call .. " sees state from an earlier call")
  end
  return "premium"
end
