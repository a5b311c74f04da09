-- attack: an endless loop inside pcall, retried forever by an outer loop
-- expect: instruction budget of 1000000 exceeded
function classify(step, ctx)
  while true do
    pcall(function() while true do end end) -- <- error
  end
end
