-- attack: equality of two distinct 5 MiB strings with the same bytes, in a loop: a full memcmp per instruction
-- expect: time limit of 1000 ms exceeded
local a = string.rep("a", 5 << 20)
local b = string.rep("a", 5 << 20)
function classify(step, ctx)
  while true do local _ = a == b end -- <- error
end
