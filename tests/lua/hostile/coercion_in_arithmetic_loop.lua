-- attack: arithmetic on a 4 MiB numeric string in a loop: every addition converts the whole string
-- expect: time limit of 1000 ms exceeded
local digits = string.rep("9", 4 << 20)
function classify(step, ctx)
  while true do local _ = digits + 0 end -- <- error
end
