-- attack: table.concat of a table of 200,000 empty strings, in a loop: one C call, no allocation, all CPU
-- expect: instruction budget of 1000000 exceeded
local t = {}
for i = 1, 200000 do t[i] = "" end
function classify(step, ctx)
  while true do table.concat(t) end -- <- error
end
