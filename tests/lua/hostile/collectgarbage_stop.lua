-- attack: stop the garbage collector so garbage piles up until the host runs out of memory
-- expect: collectgarbage('stop') is not allowed in rules
function classify(step, ctx)
  collectgarbage("stop") -- <- error
  return "premium"
end
