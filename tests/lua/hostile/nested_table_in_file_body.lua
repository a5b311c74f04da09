-- attack: a table nested 30,000 levels deep at load, which the sandbox must walk to freeze
-- expect-calls: premium premium
local deep = "premium"
for i = 1, 30000 do deep = { deep } end
function classify(step, ctx)
  local t = deep
  while type(t) == "table" do t = t[1] end
  return t
end
