-- attack: return a table whose __index, __pairs and __len loop, with no raw fields
-- expect: classify returned a table with neither 'tier' nor 'model'
local function spin() while true do end end
function classify(step, ctx)
  return setmetatable({}, { __index = spin, __pairs = spin, __len = spin, __tostring = spin, __eq = spin })
end
