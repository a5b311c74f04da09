-- attack: a pattern back reference (%1) over a 4 MiB subject: every step compares a capture of up to megabytes
-- expect: exceeded
local s = string.rep("a", 4 << 20)
function classify(step, ctx)
  while true do string.find(s, "(.-)%1b") end -- <- error
end
