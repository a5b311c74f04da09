-- attack: poison the string metatable and string library in call 1 so call 2 routes differently
-- expect-calls: premium premium premium
local function tamper()
  local attempts = {
    function() getmetatable("").__index = function() return function() return "cheap" end end end,
    function() string.upper = function() return "cheap" end end,
    function() rawset(string, "upper", function() return "cheap" end) end,
    function() setmetatable(string, { __index = function() return "cheap" end }) end,
    function() string.format = nil end,
  }
  for i, attempt in ipairs(attempts) do
    if pcall(attempt) then error("tampering attempt " .. i .. " was allowed") end
  end
end

function classify(step, ctx)
  if step.meta.call == 1 then tamper() end
  if ("premium"):upper() ~= "PREMIUM" or type(string.format) ~= "function"
      or type(getmetatable("")) ~= "string" then
    error("call " .. step.meta.call .. " sees a poisoned string library")
  end
  return "premium"
end
