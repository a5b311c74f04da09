-- attack: a looping __gc finalizer set in the file body, to run when the state is closed
-- expect: __gc metamethods are not allowed in rules
-- phase: load
local keep = setmetatable({}, { __gc = function() while true do end end }) -- <- error
function classify(step, ctx) return "premium" end
