-- attack: endless loops in nested pcall/xpcall, each level swallowing the error and looping again
-- expect: instruction budget of 1000000 exceeded
local function spin() while true do end end -- <- error
function classify(step, ctx)
  while true do
    pcall(function()
      while true do
        xpcall(function()
          while true do pcall(spin) end
        end, spin)
      end
    end)
  end
end
