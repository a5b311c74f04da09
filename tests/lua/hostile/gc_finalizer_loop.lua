-- attack: a __gc finalizer that loops forever (finalizers run with hooks off)
-- expect: __gc metamethods are not allowed in rules
function classify(step, ctx)
  setmetatable({}, { __gc = function() while true do end end }) -- <- error
  return "premium"
end
