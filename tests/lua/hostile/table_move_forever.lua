-- attack: table.move over 2^50 empty slots: no memory, all CPU inside one C call
-- expect: instruction budget of 1000000 exceeded
function classify(step, ctx)
  table.move({}, 1, 1 << 50, 1, {}) -- <- error
  return "premium"
end
