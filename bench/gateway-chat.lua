-- wrk script for bench/gateway.sh: POST /v1/chat/completions (not streamed),
-- alternating two roles so a conditional router takes both branches
-- (format -> cheap, plan -> premium), as the Portkey peer's wrk-chat.lua does.
-- Env:
--   TARGET        direct | switchboard | portkey: how the role is sent
--                 (direct: not at all; switchboard: x-switchboard-role;
--                 portkey: x-portkey-metadata, with PORTKEY_CONFIG as x-portkey-config)
--   PORTKEY_CONFIG  minified JSON for x-portkey-config (TARGET=portkey)
--   MAX_REQUESTS  hard cap per wrk thread (default 2000000); the thread stops after it
--   RESULT_FILE   where done() writes one JSON object: requests, duration, req/s,
--                 latency percentiles (microseconds), errors
--   HISTORY       N > 0: an agent's request after N turns instead (each a user
--                 message with some code, the assistant's tool call, the
--                 tool's result: about 1.7 KB a turn), with one tool defined
--   ADDRS         "HOST:PORT,HOST:PORT,...": wrk's threads take these in turn
--                 (thread i connects to the i-th, round robin), so one wrk
--                 spreads its connections over several gateways and keeps one
--                 latency histogram; unset: every thread uses the URL's host
local target = os.getenv("TARGET") or "direct"
local cfg = os.getenv("PORTKEY_CONFIG")
local cap = tonumber(os.getenv("MAX_REQUESTS") or "2000000")
local result_file = os.getenv("RESULT_FILE")

-- "auto": switchboard routes it by the rules; the fake provider echoes any
-- name; Portkey's config overrides it per target.
local body = '{"model":"auto","max_tokens":16,"messages":[' ..
  '{"role":"system","content":"You are a helpful assistant."},' ..
  '{"role":"user","content":"Summarize: the quick brown fox jumps over the lazy dog."}]}'

local history = tonumber(os.getenv("HISTORY") or "0")
if history > 0 then
  local code = string.rep('def f(x):\\n    return x * 2  # \\"doubled\\"\\n', 15)
  local parts = { '{"model":"auto","max_tokens":16,"messages":[' ..
    '{"role":"system","content":"You are a coding agent. Read files with read_file; answer briefly."}' }
  for i = 1, history do
    parts[#parts + 1] = string.format(',{"role":"user","content":"Look at src/m%d.py and explain it:\\n%s"}', i, code)
    parts[#parts + 1] = string.format(',{"role":"assistant","content":null,"tool_calls":[{"id":"call_%d",' ..
      '"type":"function","function":{"name":"read_file","arguments":"{\\"path\\":\\"src/m%d.py\\"}"}}]}', i, i)
    parts[#parts + 1] = string.format(',{"role":"tool","tool_call_id":"call_%d","content":"%s"}', i, code)
  end
  parts[#parts + 1] = '],"tools":[{"type":"function","function":{"name":"read_file","description":"Reads a file",' ..
    '"parameters":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}}}]}'
  body = table.concat(parts)
end

local reqs = {}
local n = 0

local addrs = {}
for hostport in string.gmatch(os.getenv("ADDRS") or "", "[^,]+") do
  local host, port = string.match(hostport, "^(.+):(%d+)$")
  addrs[#addrs + 1] = wrk.lookup(host, port)[1]
end
local threads = 0

function setup(thread)
  if #addrs > 0 then
    thread.addr = addrs[(threads % #addrs) + 1]
    threads = threads + 1
  end
end

function init(args)
  for i, role in ipairs({ "format", "plan" }) do
    local h = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer sk-mock" }
    if target == "switchboard" then
      h["x-switchboard-role"] = role
    elseif target == "portkey" then
      h["x-portkey-config"] = cfg
      h["x-portkey-metadata"] = '{"role":"' .. role .. '"}'
    end
    reqs[i] = wrk.format("POST", "/v1/chat/completions", h, body)
  end
end

function request()
  n = n + 1
  if n > cap then wrk.thread:stop() end
  return reqs[(n % 2) + 1]
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  local json = string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout)
  if result_file then
    local f = assert(io.open(result_file, "w"))
    f:write(json, "\n")
    f:close()
  else
    io.write(json, "\n")
  end
end
