-- attack: remove the instruction-budget hook with debug.sethook
-- expect: attempt to index a nil value (global 'debug')
function classify(step, ctx)
  debug.sethook() -- <- error
  while true do end
end
