-- attack: raise an error object whose __tostring loops forever, hoping the host converts it
-- expect: error object is a table value, not a string
function classify(step, ctx)
  error(setmetatable({}, { __tostring = function() while true do end end })) -- <- error
end
