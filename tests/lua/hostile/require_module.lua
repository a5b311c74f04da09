-- attack: require a module (searchers would read files and native libraries)
-- expect: attempt to call a nil value (global 'require')
function classify(step, ctx)
  local io = require("io") -- <- error
  return "premium"
end
