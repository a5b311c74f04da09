-- attack: an xpcall message handler that never returns
-- expect: instruction budget of 1000000 exceeded
function classify(step, ctx)
  local ok = xpcall(error, function(e) while true do end end, "boom") -- <- error
  while not ok do end
  return "premium"
end
