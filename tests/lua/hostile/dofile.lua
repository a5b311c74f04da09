-- attack: run another file with dofile (or loadfile)
-- expect: attempt to call a nil value (global 'dofile')
function classify(step, ctx)
  dofile("/etc/passwd") -- <- error
  return "premium"
end
