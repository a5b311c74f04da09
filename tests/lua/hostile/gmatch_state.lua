-- attack: keep position in a string.gmatch iterator created at load, so each call reads the next word
-- expect-calls: premium premium premium
local next_word = string.gmatch("premium cheap cheap cheap", "%a+")
function classify(step, ctx)
  return next_word()
end
