-- attack: an error message of 2.5 MiB with newlines and control bytes
-- expect: rules/w.lua:4: boom??[2J
function classify(step, ctx)
  error(string.rep("boom", 1 << 18, "\0\27[2J\n")) -- <- error
end
