-- attack: runaway table growth, doubling a table until memory runs out
-- expect: memory limit of 16777216 bytes exceeded
-- check-memory
function classify(step, ctx)
  local t = { 1 }
  while true do table.move(t, 1, #t, #t + 1) end
end
