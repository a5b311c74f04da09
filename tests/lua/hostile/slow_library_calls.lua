-- attack: cheap-looking library calls that each take milliseconds (utf8.len of 4 MiB), in a loop
-- expect: time limit of 1000 ms exceeded
local big = string.rep("a", 4 << 20)
function classify(step, ctx)
  while true do utf8.len(big) end -- <- error
end
