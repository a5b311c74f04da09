-- attack: write to ctx, ctx.models and a model's view every way Lua offers (assignment, rawset, setmetatable, a stolen metatable), and check on the next call that nothing stuck
-- expect-calls: premium premium
local function must_fail(what, fn)
  local ok, err = pcall(fn)
  if ok then error("call could " .. what) end
  return err
end

function classify(step, ctx)
  if step.meta.call == 1 then
    local view = ctx.models["m-cheap"]
    local errors = {
      must_fail("set ctx.workload", function() ctx.workload = "x" end),
      must_fail("add a ctx field", function() ctx.extra = 1 end),
      must_fail("replace ctx.models", function() ctx.models = {} end),
      must_fail("rawset ctx", function() rawset(ctx, "workload", "x") end),
      must_fail("rawset ctx.models", function() rawset(ctx.models, "m-cheap", false) end),
      must_fail("add a model", function() ctx.models["m-fake"] = view end),
      must_fail("set a view's field", function() view.healthy = false end),
      must_fail("setmetatable ctx", function() setmetatable(ctx, {}) end),
      must_fail("setmetatable ctx.models", function() setmetatable(ctx.models, {}) end),
      must_fail("replace ctx.price", function() ctx.price = function() return {} end end),
    }
    for _, err in ipairs(errors) do
      if not (tostring(err):find("read-only", 1, true) or tostring(err):find("protected metatable", 1, true)) then
        error("unexpected message: " .. tostring(err))
      end
    end
    if getmetatable(ctx) ~= "read-only" or getmetatable(ctx.models) ~= "read-only"
        or getmetatable(view) ~= "read-only" then
      error("a metatable of ctx is reachable")
    end
    return "premium"
  end
  -- call 2: everything reads as before
  local names = {}
  for name, view in pairs(ctx.models) do
    if view.healthy ~= true or view.state ~= "closed" then error(name .. " looks tampered with") end
    names[#names + 1] = name
  end
  if table.concat(names, ",") ~= "m-cheap,m-premium" then error("models: " .. table.concat(names, ",")) end
  if ctx.workload ~= "w" or ctx.extra ~= nil or type(ctx.price) ~= "function" then error("ctx tampered with") end
  if ctx.price("m-cheap") == nil or ctx.models["m-fake"] ~= nil then error("price or models tampered with") end
  return "premium"
end
