-- attack: errors whose message names no place (level 0, a level outside the rules) or another file
-- expect: routing failed
-- expect-calls: error error error
local MESSAGES = { "routing failed", "routing failed", "other.lua:1: routing failed" }
local LEVELS = { 0, 3, 0 }
function classify(step, ctx)
  error(MESSAGES[step.meta.call], LEVELS[step.meta.call]) -- <- error
end
