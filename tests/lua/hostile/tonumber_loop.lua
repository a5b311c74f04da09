-- attack: tonumber of a 3 MiB numeric string in a loop, each call milliseconds of strtod
-- expect: time limit of 1000 ms exceeded
local digits = string.rep("1", 3 << 20) .. ".5"
function classify(step, ctx)
  while true do tonumber(digits) end -- <- error
end
