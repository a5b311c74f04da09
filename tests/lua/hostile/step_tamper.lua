-- attack: tamper with the step table every way Lua offers (clear fields, rawset, a metatable that raises on reads), and check on the next call that the new step is whole
-- expect-calls: premium premium premium
function classify(step, ctx)
  if step.meta.call ~= 1 then
    if step.role ~= "attack" or getmetatable(step) ~= nil or step.input_tokens == nil
        or type(step.meta) ~= "table" or step.meta.call == nil then
      error("call " .. tostring(step.meta.call) .. " got a tampered step")
    end
    local keys = 0
    for k in pairs(step) do keys = keys + 1 end
    if keys < 10 then error("step has " .. keys .. " fields") end
  end
  step.role = nil
  rawset(step, "input_tokens", nil)
  if step.role ~= nil or rawget(step, "input_tokens") ~= nil then error("a cleared field came back") end
  setmetatable(step, { __index = function() error("poisoned read") end })
  step.meta.call = -1
  return "premium"
end
