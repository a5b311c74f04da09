-- attack: a loop whose every iteration converts a 4 MiB numeric string (a for-loop limit), milliseconds per VM instruction
-- expect: time limit of 1000 ms exceeded
local digits = string.rep("9", 4 << 20)
function classify(step, ctx)
  while true do for i = 1, digits do break end end -- <- error
end
