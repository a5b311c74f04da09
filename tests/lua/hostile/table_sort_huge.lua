-- attack: table.sort of 300,000 numbers in the file body: one C call of millions of comparisons
-- expect: instruction budget of 10000000 exceeded
-- phase: load
local t = {}
for i = 1, 300000 do t[i] = (i * 7919) % 300007 end
for _ = 1, 100 do table.sort(t, nil) t[1], t[#t] = t[#t], t[1] end -- <- error
function classify(step, ctx) return "premium" end
