-- attack: table.sort of 150 strings of 64 KiB that differ only at the end: every comparison reads 64 KiB
-- expect: exceeded
local t = {}
local prefix = string.rep("a", 64 << 10)
for i = 1, 150 do t[i] = prefix .. string.format("%03d", (i * 37) % 151) end
function classify(step, ctx)
  while true do
    local copy = {}
    for i = 1, #t do copy[i] = t[i] end
    table.sort(copy) -- <- error
  end
end
