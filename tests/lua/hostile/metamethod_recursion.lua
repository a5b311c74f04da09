-- attack: an __index metamethod that recurses through C (metamethod calls nest on the C stack)
-- expect: stack overflow
function classify(step, ctx)
  local t = setmetatable({}, { __index = function(t, k) return t[k .. "x"] end }) -- <- error
  return t.tier
end
