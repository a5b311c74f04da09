-- attack: setmetatable(_G, ...) to capture every global read
-- expect: cannot change a protected metatable
function classify(step, ctx)
  setmetatable(_G, { __index = function() return "cheap" end }) -- <- error
  return "premium"
end
