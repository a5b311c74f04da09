// Sends a fixed number of POST requests one after another on one kept-alive
// connection, with the bodies and headers of gateway-chat.lua (the roles
// format and plan in turn; HISTORY=N: an agent's request after N turns), and
// exits once the last answer is read. bench/gateway_instructions.sh counts a
// program's instructions over exactly these requests.
//
//   node bench/gateway-requests.mjs URL COUNT [switchboard|direct]
//
// API=chat (default) sends them to /v1/chat/completions; API=messages the
// same conversation as Anthropic's /v1/messages, API=responses as OpenAI's
// /v1/responses (with "store": false, as agents that keep their own history
// send it). The direct target (the floor) always takes the Chat Completions
// body: the fake provider speaks that.
//
// Exits 1 naming the first answer that was not a 200.
import http from 'node:http';

const [url, countText, target = 'switchboard'] = process.argv.slice(2);
const count = Number(countText);
if (!url || !Number.isInteger(count) || count < 1) {
  console.error('usage: node bench/gateway-requests.mjs URL COUNT [switchboard|direct]');
  process.exit(2);
}

const API = process.env.API || 'chat';
if (!['chat', 'messages', 'responses'].includes(API)) {
  console.error(`gateway-requests.mjs: API is chat, messages or responses (not ${API})`);
  process.exit(2);
}

// The conversation of gateway-chat.lua: a system prompt and a question, or
// after HISTORY turns an agent's (each turn a question about a file, the
// model's read_file call and the file's text) with its one tool.
const SYSTEM_SHORT = 'You are a helpful assistant.';
const QUESTION = 'Summarize: the quick brown fox jumps over the lazy dog.';
const SYSTEM_AGENT = 'You are a coding agent. Read files with read_file; answer briefly.';
const CODE = 'def f(x):\\n    return x * 2  # \\"doubled\\"\\n'.repeat(15);  // JSON string text
const SCHEMA = '{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}';
const ARGUMENTS = (i) => `"{\\"path\\":\\"src/m${i}.py\\"}"`;  // a JSON string holding JSON

// The same bodies as gateway-chat.lua.
function chat_body(history) {
  if (history <= 0) {
    return '{"model":"auto","max_tokens":16,"messages":[' +
      `{"role":"system","content":"${SYSTEM_SHORT}"},{"role":"user","content":"${QUESTION}"}]}`;
  }
  const parts = [`{"model":"auto","max_tokens":16,"messages":[{"role":"system","content":"${SYSTEM_AGENT}"}`];
  for (let i = 1; i <= history; ++i) {
    parts.push(`,{"role":"user","content":"Look at src/m${i}.py and explain it:\\n${CODE}"}`);
    parts.push(`,{"role":"assistant","content":null,"tool_calls":[{"id":"call_${i}",` +
      `"type":"function","function":{"name":"read_file","arguments":${ARGUMENTS(i)}}}]}`);
    parts.push(`,{"role":"tool","tool_call_id":"call_${i}","content":"${CODE}"}`);
  }
  parts.push('],"tools":[{"type":"function","function":{"name":"read_file","description":"Reads a file",' +
    `"parameters":${SCHEMA}}}]}`);
  return parts.join('');
}

// The conversation as Anthropic's Messages API takes it.
function messages_body(history) {
  if (history <= 0) {
    return `{"model":"auto","max_tokens":16,"system":"${SYSTEM_SHORT}",` +
      `"messages":[{"role":"user","content":"${QUESTION}"}]}`;
  }
  const parts = [`{"model":"auto","max_tokens":16,"system":"${SYSTEM_AGENT}","messages":[`];
  for (let i = 1; i <= history; ++i) {
    const tool_result = i > 1 ? `{"type":"tool_result","tool_use_id":"call_${i - 1}","content":"${CODE}"},` : '';
    parts.push(`${i > 1 ? ',' : ''}{"role":"user","content":[${tool_result}` +
      `{"type":"text","text":"Look at src/m${i}.py and explain it:\\n${CODE}"}]}`);
    parts.push(`,{"role":"assistant","content":[{"type":"tool_use","id":"call_${i}","name":"read_file",` +
      `"input":{"path":"src/m${i}.py"}}]}`);
  }
  parts.push(`,{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_${history}","content":"${CODE}"}]}`);
  parts.push(`],"tools":[{"name":"read_file","description":"Reads a file","input_schema":${SCHEMA}}]}`);
  return parts.join('');
}

// The conversation as OpenAI's Responses API takes it.
function responses_body(history) {
  if (history <= 0) {
    return `{"model":"auto","max_output_tokens":16,"store":false,"instructions":"${SYSTEM_SHORT}",` +
      `"input":"${QUESTION}"}`;
  }
  const parts = [`{"model":"auto","max_output_tokens":16,"store":false,"instructions":"${SYSTEM_AGENT}","input":[`];
  for (let i = 1; i <= history; ++i) {
    parts.push(`${i > 1 ? ',' : ''}{"type":"message","role":"user","content":` +
      `[{"type":"input_text","text":"Look at src/m${i}.py and explain it:\\n${CODE}"}]}`);
    parts.push(`,{"type":"function_call","call_id":"call_${i}","name":"read_file","arguments":${ARGUMENTS(i)}}`);
    parts.push(`,{"type":"function_call_output","call_id":"call_${i}","output":"${CODE}"}`);
  }
  parts.push(`],"tools":[{"type":"function","name":"read_file","description":"Reads a file","parameters":${SCHEMA}}]}`);
  return parts.join('');
}

function body() {
  const history = Number(process.env.HISTORY || '0');
  if (target === 'direct' || API === 'chat') return chat_body(history);
  return API === 'messages' ? messages_body(history) : responses_body(history);
}

const payload = body();
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const PATHS = { chat: '/v1/chat/completions', messages: '/v1/messages', responses: '/v1/responses' };
const target_url = new URL(target === 'direct' ? PATHS.chat : PATHS[API], url);

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
