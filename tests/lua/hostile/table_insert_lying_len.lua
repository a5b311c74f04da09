-- attack: table.insert at position 1 of a table whose __len claims 2^50 elements
-- expect: instruction budget of 1000000 exceeded
function classify(step, ctx)
  local t = setmetatable({}, { __len = function() return 1 << 50 end })
  table.insert(t, 1, "x") -- <- error
  return "premium"
end
