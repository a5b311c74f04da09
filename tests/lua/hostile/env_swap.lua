-- attack: replace _ENV (an upvalue shared by every function of the file) in call 1
-- expect-calls: premium premium premium
local function route() return "premium" end
function classify(step, ctx)
  if step.meta.call == 1 then
    local real = _ENV
    _ENV = { error = real.error, type = real.type, step = step }
    return route()
  end
  if type(tostring) ~= "function" or type(classify) ~= "function" then
    error("call " .. step.meta.call .. " runs with call 1's _ENV")
  end
  return route()
end
