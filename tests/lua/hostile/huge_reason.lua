-- attack: a valid decision whose reason is 4 MiB of control bytes (must be cut and cleaned, not fail)
-- expect-calls: premium premium
function classify(step, ctx)
  return { tier = "premium", reason = string.rep("\0\n\27[2J", 1 << 20) }
end
