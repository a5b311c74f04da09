-- attack: string.rep of 6 MiB, near the 16 MiB memory cap, in a loop: each call fills and copies megabytes
-- expect: time limit of 1000 ms exceeded
function classify(step, ctx)
  while true do local s = string.rep("x", 6 << 20) end -- <- error
end
