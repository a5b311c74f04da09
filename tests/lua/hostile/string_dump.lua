-- attack: turn a function into bytecode with string.dump (to patch and load it)
-- expect: attempt to call a nil value (field 'dump')
function classify(step, ctx)
  local code = string.dump(classify) -- <- error
  return "premium"
end
