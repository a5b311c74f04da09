-- attack: load a precompiled chunk (hand-made bytecode) with load
-- expect: attempt to call a nil value (global 'load')
function classify(step, ctx)
  local f = load("\27Lua\84\0\25\147\13\10\26\10\4\8\8", "=x", "b") -- <- error
  return f()
end
