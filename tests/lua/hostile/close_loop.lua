-- attack: a to-be-closed variable whose __close loops forever
-- expect: instruction budget of 1000000 exceeded
function classify(step, ctx)
  local guard <close> = setmetatable({}, { __close = function()
    while true do end -- <- error
  end })
  return "premium"
end
