-- attack: add __gc to a metatable after setmetatable, hoping the sandbox marks it for finalization later
-- expect: __gc metamethods are not allowed in rules
-- phase: load
local mt = {}
local keep = setmetatable({}, mt)
mt.__gc = function() while true do end end
function classify(step, ctx) return keep and "premium" end
