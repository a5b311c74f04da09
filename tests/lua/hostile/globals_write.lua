-- attack: define a global inside classify (state for the next call)
-- expect: cannot set global 'seen'
function classify(step, ctx)
  seen = (seen or 0) + 1 -- <- error
  return "premium"
end
