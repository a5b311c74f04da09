-- attack: a backtracking pattern inside gsub, on a longer subject
-- expect: instruction budget of 1000000 exceeded
function classify(step, ctx)
  local s = string.gsub(string.rep("a", 2000), "a-a-a-a-b", "x") -- <- error
  return "premium"
end
