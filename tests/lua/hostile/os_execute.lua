-- attack: run a shell command with os.execute
-- expect: attempt to call a nil value (field 'execute')
function classify(step, ctx)
  os.execute("touch /tmp/switchboard-pwned") -- <- error
  return "premium"
end
