-- attack: run the loop in a coroutine, whose hook a naive sandbox would not set
-- expect: attempt to index a nil value (global 'coroutine')
function classify(step, ctx)
  local co = coroutine.wrap(function() while true do end end) -- <- error
  co()
end
