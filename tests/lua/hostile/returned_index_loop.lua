-- attack: return a table whose __index loops forever, hoping the host reads fields through it
-- expect: classify returned a table with neither 'tier' nor 'model'
function classify(step, ctx)
  return setmetatable({}, { __index = function() while true do end end })
end
