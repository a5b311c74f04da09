-- attack: string.rep of a gigabyte
-- expect: memory limit of 16777216 bytes exceeded
-- check-memory
function classify(step, ctx)
  local s = string.rep("x", 1 << 30)
  return #s > 0 and "premium" or "cheap"
end
