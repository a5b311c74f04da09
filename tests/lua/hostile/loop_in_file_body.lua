-- attack: an endless loop in the file body, before classify exists
-- expect: instruction budget of 10000000 exceeded
-- phase: load
while true do end -- <- error
function classify(step, ctx) return "premium" end
