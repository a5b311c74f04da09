-- attack: utf8.len of a 6 MiB string of two-byte characters in a loop, tens of milliseconds per call
-- expect: time limit of 1000 ms exceeded
local big = string.rep("\u{e9}", 3 << 20)
function classify(step, ctx)
  while true do utf8.len(big) end -- <- error
end
