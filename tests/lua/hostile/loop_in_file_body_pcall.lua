-- attack: an endless loop in the file body, inside a pcall that would swallow the budget error
-- expect: instruction budget of 10000000 exceeded
-- phase: load
pcall(function() while true do end end) -- <- error
function classify(step, ctx) return "premium" end
