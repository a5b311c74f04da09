-- attack: overwrite a string library function outright (no pcall)
-- expect: cannot modify a table of the rules' loaded state
function classify(step, ctx)
  string.lower = function() return "premium" end -- <- error
  return ("CHEAP"):lower()
end
