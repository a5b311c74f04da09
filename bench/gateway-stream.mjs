// Streamed client for bench/gateway.sh: POST /v1/chat/completions with
// "stream": true, one request at a time on one kept-alive connection, for a
// fixed duration, alternating the roles format and plan as gateway-chat.lua
// does. Per request it takes the time to the first token (the first SSE event
// whose delta has non-empty content: a gateway's response head and empty
// first event do not count), the time to the last byte, and the number of
// content events; with TARGET=switchboard also x-switchboard-overhead-ms
// (header: up to the head; trailer: the whole request).
//
//   node bench/gateway-stream.mjs URL TARGET SECONDS RESULT_FILE
//
// TARGET: direct | switchboard | portkey (PORTKEY_CONFIG from the environment).
// Writes one JSON object: requests, rps, ttft/total/after-first-token
// percentiles in milliseconds, content events per answer, errors, and the
// overhead medians (null unless switchboard).
import http from 'node:http';
import fs from 'node:fs';

const [url, target, seconds, resultFile] = process.argv.slice(2);
const base = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const body = JSON.stringify({
  model: 'auto',
  max_tokens: 16,
  stream: true,
  messages: [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'Summarize: the quick brown fox jumps over the lazy dog.' },
  ],
});
const headersFor = (role) => {
  const h = { 'content-type': 'application/json', authorization: 'Bearer sk-mock', 'content-length': Buffer.byteLength(body) };
  if (target === 'switchboard') h['x-switchboard-role'] = role;
  if (target === 'portkey') {
    h['x-portkey-config'] = process.env.PORTKEY_CONFIG;
    h['x-portkey-metadata'] = JSON.stringify({ role });
  }
  return h;
};
// A content delta with at least one character: the first token.
const TOKEN = /"content":"[^"]/;
const TOKENS = /"content":"[^"]/g;

function once(role) {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - start) / 1e6;
    const req = http.request({ host: base.hostname, port: base.port, path: '/v1/chat/completions', method: 'POST', agent, headers: headersFor(role) }, (res) => {
      let text = '';
      let ttft = null;
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
        if (ttft === null && TOKEN.test(text)) ttft = ms();
      });
      res.on('end', () => {
        const total = ms();
        resolve({
          ok: res.statusCode === 200 && ttft !== null && text.includes('[DONE]'),
          ttft, total,
          chunks: (text.match(TOKENS) || []).length,
          head: res.headers['x-switchboard-overhead-ms'],
          trailer: res.trailers['x-switchboard-overhead-ms'],
        });
      });
      res.on('error', () => resolve({ ok: false }));
    });
    req.on('error', () => resolve({ ok: false }));
    req.end(body);
  });
}

const pct = (xs, p) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const ok = [];
let errors = 0;
const began = process.hrtime.bigint();
const until = began + BigInt(Math.round(Number(seconds) * 1e9));
for (let n = 0; process.hrtime.bigint() < until; ++n) {
  const r = await once(n % 2 === 0 ? 'format' : 'plan');
  if (r.ok) ok.push(r); else ++errors;
}
const elapsed = Number(process.hrtime.bigint() - began) / 1e9;
agent.destroy();
const ttft = ok.map((r) => r.ttft);
const total = ok.map((r) => r.total);
const after = ok.map((r) => r.total - r.ttft);
const heads = ok.map((r) => Number(r.head)).filter((x) => Number.isFinite(x));
const trailers = ok.map((r) => Number(r.trailer)).filter((x) => Number.isFinite(x));
const out = {
  requests: ok.length,
  errors,
  duration_s: elapsed,
  rps: ok.length / elapsed,
  chunks: pct(ok.map((r) => r.chunks), 50),
  ttft_p50_ms: pct(ttft, 50), ttft_p99_ms: pct(ttft, 99),
  total_p50_ms: pct(total, 50), total_p99_ms: pct(total, 99),
  after_first_token_p50_ms: pct(after, 50),
  overhead_head_p50_ms: pct(heads, 50),
  overhead_trailer_p50_ms: pct(trailers, 50),
};
fs.writeFileSync(resultFile, JSON.stringify(out) + '\n');
