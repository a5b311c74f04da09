-- attack: slow library calls in a loop in the file body (utf8.len of 4 MiB each)
-- expect: time limit of 1000 ms exceeded
-- phase: load
local big = string.rep("a", 4 << 20)
while true do utf8.len(big) end -- <- error
function classify(step, ctx) return "premium" end
