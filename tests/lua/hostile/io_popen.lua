-- attack: run a shell command with io.popen
-- expect: attempt to index a nil value (global 'io')
function classify(step, ctx)
  local p = io.popen("id") -- <- error
  return "premium"
end
