-- attack: table.move of 500,000 elements onto itself in the file body, in a loop: no allocation, all CPU in C
-- expect: instruction budget of 10000000 exceeded
-- phase: load
local t = {}
for i = 1, 500000 do t[i] = i end
while true do table.move(t, 1, 500000, 2) end -- <- error
function classify(step, ctx) return "premium" end
