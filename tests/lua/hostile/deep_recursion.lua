-- attack: unbounded (non-tail) recursion; the Lua stack grows until the memory cap stops it
-- expect: memory limit of 16777216 bytes exceeded
local function down(n) return 1 + down(n + 1) end
function classify(step, ctx)
  return down(1) > 0 and "premium" or "cheap"
end
