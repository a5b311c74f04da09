-- attack: a backtracking pattern that takes minutes: string.find(string.rep('a', 400), '.-.-.-b')
-- expect: instruction budget of 1000000 exceeded
function classify(step, ctx)
  local hit = string.find(string.rep("a", 400), ".-.-.-b") -- <- error
  return hit and "premium" or "cheap"
end
