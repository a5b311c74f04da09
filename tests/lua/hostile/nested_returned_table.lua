-- attack: return a table nested 100,000 levels deep
-- expect: classify returned 'tier' as a table; expected a string
function classify(step, ctx)
  local t = "premium"
  for i = 1, 100000 do t = { tier = t } end
  return t
end
