-- attack: table.sort whose comparator converts a 4 MiB numeric string on every comparison
-- expect: time limit of 1000 ms exceeded
local digits = string.rep("9", 4 << 20)
function classify(step, ctx)
  local t = {}
  for i = 1, 1000 do t[i] = i end
  while true do table.sort(t, function(a, b) return a + (digits * 0) < b end) end -- <- error
end
