-- attack: runaway table growth inside pcall; the caught memory error must still end the call
-- expect: memory limit of 16777216 bytes exceeded
-- check-memory
function classify(step, ctx)
  local ok = pcall(function()
    local t = {}
    for i = 1, math.maxinteger do t[i] = { i, i, i, i, i, i, i, i } end
  end)
  return "premium"
end
