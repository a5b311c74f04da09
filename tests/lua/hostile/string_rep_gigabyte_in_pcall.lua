-- attack: string.rep of a gigabyte inside pcall, then carrying on as if nothing happened
-- expect: memory limit of 16777216 bytes exceeded
-- check-memory
function classify(step, ctx)
  for i = 1, 10 do pcall(string.rep, "x", 1 << 30) end
  return "premium"
end
