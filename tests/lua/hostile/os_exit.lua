-- attack: os.exit, which would end the host process
-- expect: attempt to call a nil value (field 'exit')
function classify(step, ctx)
  os.exit(3) -- <- error
  return "premium"
end
