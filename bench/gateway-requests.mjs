// Sends a fixed number of POST /v1/chat/completions one after another on one
// kept-alive connection, with the bodies and headers of gateway-chat.lua (the
// roles format and plan in turn; HISTORY=N: an agent's request after N turns),
// and exits once the last answer is read. bench/gateway_instructions.sh counts
// a program's instructions over exactly these requests.
//
//   node bench/gateway-requests.mjs URL COUNT [switchboard|direct]
//
// Exits 1 naming the first answer that was not a 200.
import http from 'node:http';

const [url, countText, target = 'switchboard'] = process.argv.slice(2);
const count = Number(countText);
if (!url || !Number.isInteger(count) || count < 1) {
  console.error('usage: node bench/gateway-requests.mjs URL COUNT [switchboard|direct]');
  process.exit(2);
}

// The same bodies as gateway-chat.lua.
function body() {
  const history = Number(process.env.HISTORY || '0');
  if (history <= 0) {
    return '{"model":"auto","max_tokens":16,"messages":[' +
      '{"role":"system","content":"You are a helpful assistant."},' +
      '{"role":"user","content":"Summarize: the quick brown fox jumps over the lazy dog."}]}';
  }
  const code = 'def f(x):\\n    return x * 2  # \\"doubled\\"\\n'.repeat(15);
  const parts = ['{"model":"auto","max_tokens":16,"messages":[' +
    '{"role":"system","content":"You are a coding agent. Read files with read_file; answer briefly."}'];
  for (let i = 1; i <= history; ++i) {
    parts.push(`,{"role":"user","content":"Look at src/m${i}.py and explain it:\\n${code}"}`);
    parts.push(`,{"role":"assistant","content":null,"tool_calls":[{"id":"call_${i}",` +
      `"type":"function","function":{"name":"read_file","arguments":"{\\"path\\":\\"src/m${i}.py\\"}"}}]}`);
    parts.push(`,{"role":"tool","tool_call_id":"call_${i}","content":"${code}"}`);
  }
  parts.push('],"tools":[{"type":"function","function":{"name":"read_file","description":"Reads a file",' +
    '"parameters":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}}}]}');
  return parts.join('');
}

const payload = body();
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const target_url = new URL('/v1/chat/completions', url);

function send(n) {
  return new Promise((resolve, reject) => {
    const headers = { 'Content-Type': 'application/json', 'Authorization': 'Bearer sk-mock',
                      'Content-Length': Buffer.byteLength(payload) };
    if (target === 'switchboard') headers['x-switchboard-role'] = n % 2 === 0 ? 'format' : 'plan';
    const req = http.request(target_url, { method: 'POST', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve()
        : reject(new Error(`request ${n + 1} answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

try {
  for (let n = 0; n < count; ++n) await send(n);
  agent.destroy();
} catch (e) {
  console.error(`gateway-requests.mjs: ${e.message}`);
  process.exit(1);
}
