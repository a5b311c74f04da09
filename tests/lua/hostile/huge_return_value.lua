-- attack: return a tier name of 8 MiB
-- expect: names are at most 128 bytes
function classify(step, ctx)
  return string.rep("premium", 1 << 20)
end
