-- attack: reach native code through package.loadlib
-- expect: attempt to index a nil value (global 'package')
function classify(step, ctx)
  local system = package.loadlib("libc.so.6", "system") -- <- error
  system("touch /tmp/switchboard-pwned")
  return "premium"
end
