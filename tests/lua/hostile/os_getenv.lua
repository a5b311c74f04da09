-- attack: read the host's environment (API keys) with os.getenv
-- expect: attempt to call a nil value (field 'getenv')
function classify(step, ctx)
  local key = os.getenv("OPENAI_API_KEY") -- <- error
  return { tier = "premium", reason = key }
end
