-- attack: comparisons of two 5 MiB strings in a loop: each VM instruction takes a fraction of a millisecond
-- expect: time limit of 1000 ms exceeded
local a = string.rep("a", 5 << 20)
local b = string.rep("a", 5 << 20)
function classify(step, ctx)
  while true do local _ = a < b end -- <- error
end
