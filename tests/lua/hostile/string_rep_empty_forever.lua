-- attack: string.rep of the empty string math.maxinteger times: no memory, all CPU inside one C call
-- expect-calls: premium premium
function classify(step, ctx)
  local s = string.rep("", math.maxinteger)
  local t = string.rep("", math.maxinteger, "")
  return s == "" and t == "" and "premium" or "cheap"
end
