-- attack: return a tier name with NUL, escape and high bytes
-- expect: which is neither a tier nor a model
function classify(step, ctx)
  return "prem\0ium\27[2J\255"
end
