-- attack: a 4 MiB numeric string built inside the call, then converted as a for-loop limit on every iteration
-- expect: time limit of 1000 ms exceeded
function classify(step, ctx)
  local digits = string.rep("9", 4 << 20)
  while true do for i = 1, digits do break end end -- <- error
end
