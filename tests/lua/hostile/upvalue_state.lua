-- attack: keep a counter in an upvalue so each call routes differently
-- expect-calls: premium premium premium
local calls = 0
local last_step = nil
function classify(step, ctx)
  calls = calls + 1
  if calls ~= 1 or last_step ~= nil then
    error("call " .. step.meta.call .. " sees state from an earlier call")
  end
  last_step = step
  return "premium"
end
