-- attack: walk every ctx proxy (pairs, next, rawget, #, price, cost) forever; the C metamethods must not escape the instruction budget
-- expect: instruction budget
function classify(step, ctx)
  local n = 0
  while true do for k, v in pairs(ctx) do n = n + 1 end for name, view in pairs(ctx.models) do for f, x in pairs(view) do n = n + 1 end n = n + ctx.price(name).input + ctx.cost(name, 1000, 100, 10) end n = n + #ctx + #ctx.models + rawget(ctx, "spent_usd") + (next(ctx) and 1 or 0) end -- <- error
end
