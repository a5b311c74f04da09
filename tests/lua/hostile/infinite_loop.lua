-- attack: a plain endless loop in classify
-- expect: instruction budget of 1000000 exceeded
function classify(step, ctx)
  while true do end -- <- error
end
