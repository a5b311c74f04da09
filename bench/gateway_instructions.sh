#!/usr/bin/env bash
# The gateway's work per request in instructions, which the host's noise does
# not move: switchboard-gateway runs under valgrind's callgrind while a fixed
# number of requests (bench/gateway-requests.mjs: gateway-chat.lua's bodies, the
# roles format and plan in turn, one kept-alive connection) go through it to
# the fake provider; instrumentation is on for those requests only (after a
# warm-up). The floor, nginx as a keep-alive reverse proxy doing no work (as
# bench/gateway.sh's (n)), is counted the same way in the same run.
#
# Prints instructions per request: the gateway's in all (its I/O threads and
# the ledger's background threads), each stage's (inclusive: reading the
# request, the rules, the token count, the upstream body, the exchange, the
# answer, the ledger's lines, SQLite's inserts...), nginx's, and the gateway's
# as a multiple of nginx's. User-space instructions only: the kernel's work
# (the sends and receives, the wake-ups) is not counted, nor is time.
# A measurement, not a test: nothing here asserts a count.
#
#   bash bench/gateway_instructions.sh [--requests N] [--history TURNS] [--api API] [--build DIR]
#                                      [--no-floor] [--profile FILE] [--json]
#
# --requests  requests counted (default 1000; 100 more warm up first)
# --history   an agent's request after TURNS turns instead (gateway-chat.lua's HISTORY; 32: about 51 KB)
# --api       the client's API: chat (default, /v1/chat/completions), messages
#             (Anthropic's /v1/messages) or responses (OpenAI's /v1/responses);
#             the same conversation each way (bench/gateway-requests.mjs)
# --build     the build folder with the programs (default build/, built if missing)
# --no-floor  skip nginx
# --profile   also keep the gateway's callgrind profile as FILE (callgrind_annotate reads it)
# Needs valgrind, node and, for the floor, nginx (installed from Debian if missing).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/gateway_config.sh"

REQUESTS=1000
WARM=100
HISTORY=0
API=chat
BUILD=""
FLOOR=1
JSON=0
PROFILE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) REQUESTS=${2:?--requests takes a count}; shift 2 ;;
    --history) HISTORY=${2:?--history takes turns}; shift 2 ;;
    --api) API=${2:?--api takes chat, messages or responses}; shift 2 ;;
    --build) BUILD=${2:?--build takes a folder}; shift 2 ;;
    --no-floor) FLOOR=0; shift ;;
    --profile) PROFILE=${2:?--profile takes a file}; shift 2 ;;
    --json) JSON=1; shift ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gateway_instructions.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$REQUESTS" =~ ^[1-9][0-9]*$ ]] && [ "$REQUESTS" -le 100000 ] ||
  { echo "gateway_instructions.sh: --requests takes 1..100000" >&2; exit 2; }
[[ "$HISTORY" =~ ^[0-9]+$ ]] && [ "$HISTORY" -le 1000 ] ||
  { echo "gateway_instructions.sh: --history takes 0..1000 turns" >&2; exit 2; }
case "$API" in chat|messages|responses) ;; *)
  echo "gateway_instructions.sh: --api takes chat, messages or responses" >&2; exit 2 ;;
esac
export HISTORY API

say() { echo "gateway_instructions.sh: $*" >&2; }

bench_need valgrind valgrind
command -v node >/dev/null || { say "node is needed (it sends the requests)"; exit 1; }
bench_programs
CLIENT="$ROOT/bench/gateway-requests.mjs"
bench_work switchboard-instructions

# count NAME URL TARGET PID OUT: the warm-up, then REQUESTS requests with
# callgrind's instrumentation on in process PID; its profile is OUT.
count() {
  local name=$1 url=$2 target=$3 pid=$4 out=$5
  node "$CLIENT" "$url" "$WARM" "$target" || { say "$name: the warm-up failed"; return 1; }
  callgrind_control -i on "$pid" >/dev/null 2>&1
  node "$CLIENT" "$url" "$REQUESTS" "$target" || { say "$name: the requests failed"; return 1; }
  callgrind_control -d "$pid" >/dev/null 2>&1
  callgrind_control -i off "$pid" >/dev/null 2>&1
  for _ in $(seq 100); do [ -s "$out.1" ] && break; sleep 0.1; done
  [ -s "$out.1" ] || { say "$name: callgrind wrote no profile"; return 1; }
}

# ---------------------------------------------------------------- the fake provider (not counted)
"$FAKE" --port 0 >"$WORK/fake.out" 2>"$WORK/fake.err" &
PIDS+=($!)
FAKE_PORT=$(wait_for_port "$WORK/fake.out" "${PIDS[-1]}" "the fake provider") || exit 1
FAKE_URL="http://127.0.0.1:$FAKE_PORT"

CALLGRIND=(valgrind --tool=callgrind --instr-atstart=no --dump-instr=no --compress-strings=no)

# ---------------------------------------------------------------- switchboard-gateway
bench_gateway_folder "$WORK/switchboard"
bench_gateway_config "$FAKE_URL/v1" >"$WORK/switchboard/switchboard.toml"
(cd "$WORK/switchboard" &&
  SWITCHBOARD_BENCH_UPSTREAM_KEY=sk-mock exec "${CALLGRIND[@]}" --callgrind-out-file="$WORK/gateway.cg" \
    "$GATEWAY" --config switchboard.toml --listen 127.0.0.1:0 >"$WORK/gateway.out" 2>"$WORK/gateway.err") &
PIDS+=($!)
GW_PID=${PIDS[-1]}
GW_PORT=$(wait_for_port "$WORK/gateway.out" "$GW_PID" "the gateway under callgrind" 60) ||
  { say "$(tail -n 3 "$WORK/gateway.err")"; exit 1; }
say "switchboard-gateway under callgrind: $WARM requests to warm up, then $REQUESTS counted"
count switchboard "http://127.0.0.1:$GW_PORT" switchboard "$GW_PID" "$WORK/gateway.cg"
kill -TERM "$GW_PID" 2>/dev/null || true
callgrind_annotate --inclusive=yes --threshold=100 "$WORK/gateway.cg.1" >"$WORK/gateway.txt" 2>/dev/null
[ -z "$PROFILE" ] || cp "$WORK/gateway.cg.1" "$PROFILE"

# ---------------------------------------------------------------- (n) the floor: nginx, no work
if bench_floor 1 one; then  # one process (no master), so callgrind counts the worker
  "${CALLGRIND[@]}" --callgrind-out-file="$WORK/nginx.cg" nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" \
    >"$WORK/nginx/out.log" 2>&1 &
  PIDS+=($!)
  NGINX_PID=${PIDS[-1]}
  if wait_until_answers "$FLOOR_URL/" "$NGINX_PID" 30 && count nginx "$FLOOR_URL" direct "$NGINX_PID" "$WORK/nginx.cg"; then
    callgrind_annotate --threshold=100 "$WORK/nginx.cg.1" >"$WORK/nginx.txt" 2>/dev/null
  else
    FLOOR_NOTE="nginx did not answer: $(tail -n 3 "$WORK/nginx/out.log" 2>/dev/null | tr '\n' ' ')"
  fi
  kill -TERM "$NGINX_PID" 2>/dev/null || true
fi
[ "$FLOOR" -ne 1 ] || [ -z "$FLOOR_NOTE" ] || say "$FLOOR_NOTE; no floor"

# ---------------------------------------------------------------- the report
REQUESTS="$REQUESTS" HISTORY="$HISTORY" API="$API" JSON="$JSON" FLOOR_NOTE="$FLOOR_NOTE" \
  node - "$WORK/gateway.txt" "$WORK/nginx.txt" <<'NODE'
const fs = require('fs');
const [gatewayFile, nginxFile] = process.argv.slice(2);
const n = Number(process.env.REQUESTS);

// callgrind_annotate's lines: "  12,345 (1.23%)  file:function [object]".
function read(file) {
  if (!fs.existsSync(file)) return null;
  const text = fs.readFileSync(file, 'utf8');
  const total = Number((text.match(/^\s*([\d,]+)\s+\(100\.0+%\)\s+PROGRAM TOTALS/m) || [0, '0'])[1].replace(/,/g, ''));
  const lines = [];
  for (const line of text.split('\n')) {
    const m = line.match(/^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$/);
    if (m) lines.push({ ir: Number(m[1].replace(/,/g, '')), what: m[2] });
  }
  return { total, lines };
}

// Each stage is a function's inclusive count: the largest line naming it (an
// inlined copy elsewhere counts less). Stages nest: they do not add up.
const READERS = {
  chat: /gateway::parse_openai_chat\(/,
  messages: /gateway::parse_anthropic_messages\(/,
  responses: /gateway::parse_openai_responses\(/,
};
const STAGES = [
  ['read the body into a ModelRequest', READERS[process.env.API]],
  ['  the step\'s fields (hashes, estimate)', /switchboard::derive_step\(/],
  ['decide (the Lua rules)', /switchboard::Engine::decide\(/],
  ['execute the decision', /switchboard::Dispatcher::execute\(/],
  ['  count the input tokens', /count_request_tokens_unscaled\(/],
  ['  reserve the call (count, budget)', /Dispatcher::Impl::reserve_attempt\(/],
  ['  write the upstream body', /OpenAIWire::build_request\(/],
  ['  the exchange (write, read, HTTP)', /switchboard::post_on_loop\(/],
  ['  read the answer', /OpenAIWire::parse_response\(/],
  ['  the decision\'s ledger line', /switchboard::Ledger::record\(switchboard::DecisionRecord/],
  ['  the call\'s ledger line', /Ledger::write_to_each<switchboard::CostRecord>/],
  ['the answer to the client', /gateway::render_response\(/],
  ['the journal append (flush)', /switchboard::Ledger::flush\(\)/],
  ['SQLite inserts (background threads)', /SqliteLedger::ingest_next\(/],
];

const gw = read(gatewayFile);
const floor = read(nginxFile);
const per = (ir) => Math.round(ir / n);
const stages = STAGES.map(([name, re]) => {
  const ir = Math.max(0, ...gw.lines.filter((l) => re.test(l.what)).map((l) => l.ir));
  return { stage: name.trim(), depth: name.startsWith('  ') ? 1 : 0, per_request: per(ir) };
});
const sqlite = stages[stages.length - 1].per_request;
const result = {
  requests: n,
  history_turns: Number(process.env.HISTORY),
  api: process.env.API,
  gateway_per_request: per(gw.total),
  // SQLite's share moves with how many records each transaction holds (the
  // pace of the run); the rest is the same run after run.
  request_path_per_request: per(gw.total) - sqlite,
  stages,
  floor_per_request: floor ? per(floor.total) : null,
  gateway_over_floor: floor && floor.total > 0 ? +(gw.total / floor.total).toFixed(2) : null,
  floor_note: process.env.FLOOR_NOTE || undefined,
};
if (process.env.JSON === '1') {
  console.log(JSON.stringify(result));
  process.exit(0);
}
const k = (v) => v.toLocaleString('en-US');
console.log(`Instructions per request (user space, callgrind; ${k(n)} requests` +
            `${result.api === 'chat' ? '' : ` to ${result.api === 'messages' ? '/v1/messages' : '/v1/responses'}`}` +
            `${result.history_turns ? `, an agent's request after ${result.history_turns} turns` : ''}):`);
console.log('  switchboard-gateway, all threads'.padEnd(46) + k(result.gateway_per_request).padStart(12));
console.log('  of them, all but the SQLite inserts'.padEnd(46) + k(result.request_path_per_request).padStart(12));
console.log('  stages (each with what it calls):');
for (const s of stages) {
  console.log(`    ${(s.depth ? '  ' : '') + s.stage}`.padEnd(46) + k(s.per_request).padStart(12));
}
if (floor) {
  console.log('  nginx, no work (the floor)'.padEnd(46) + k(result.floor_per_request).padStart(12));
  console.log('  switchboard over the floor'.padEnd(46) + (result.gateway_over_floor + 'x').padStart(12));
} else {
  console.log(`  the floor: ${process.env.FLOOR_NOTE}`);
}
NODE
