#!/usr/bin/env bash
# The gateway benchmark, side by side on this machine with the same bounded load:
#   (a) straight to the fake provider (answering at once),
#   (n) through nginx (Debian's nginx-light) as a keep-alive reverse proxy
#       doing no work: the floor any proxy hop has on this machine,
#   (b) through switchboard-gateway (rules: format/summarize/extract -> cheap,
#       the rest -> premium; SQLite ledger on, in a temporary folder),
#   (c) through the Portkey AI gateway with the equivalent conditional config
#       (../shared/peers/portkey copied to a temporary folder, `npm ci` there).
# Each with wrk at 1 connection (1 thread), 16 and 64 connections (2 threads), a
# fixed duration, POST /v1/chat/completions not streamed, alternating the roles
# format and plan, and at 1 connection an agent's request after 32 turns
# (about 51 KB: 97 messages with code, tool calls and results, one tool;
# gateway-chat.lua's HISTORY); then streamed ("stream": true, one connection, the fake
# sending --chunks content events) with bench/gateway-stream.mjs, for the time
# to first token (TTFT) and to the last byte. Prints requests/s, p50/p99
# latency, the latency each gateway adds over (a), its throughput as a share
# of (a)'s, what switchboard adds over the floor (n), switchboard/portkey
# throughput ratios, the TTFT each gateway adds
# and its cost per streamed chunk, and switchboard's own
# x-switchboard-overhead-ms (from its /metrics histogram over the wrk rows,
# and from the streamed answers' headers and trailers); --json prints one
# JSON object instead. A measurement, not a test: nothing here asserts a time.
#
#   bash bench/gateway.sh [--duration SECONDS] [--json] [--build DIR] [--no-portkey] [--no-floor]
#                         [--durability process|power] [--chunks N] [--busy-poll-us N]
#                         [--replicas N --state redis]
#
# --duration  seconds per measurement (default 10); each path also gets a 2 s warm-up
# --build     the build folder with the programs (default build/, built if missing)
# --no-portkey  skip (c)
# --no-floor  skip (n)
# --durability  the gateway's [ledger] durability (default: the config default, "process");
#               every answer waits for its ledger records' group commit either way
# --chunks    content events per streamed answer (default 32)
# --busy-poll-us  the gateway's [gateway] busy_poll_us (default: the config default, 0):
#             its I/O threads poll that long after their last work before they sleep
# --state redis [--replicas N]  also measures shared state, after (c): (s1) one
#             gateway with a workload cap and a key cap kept in memory, then
#             (sN) N gateways (default 3) with the same caps shared through a
#             redis-server this script starts (Debian's; [state] backend = "redis",
#             so model health is shared too). Both get the same wrk load, at 1, 16
#             and 64 connections rounded down to a multiple of N, wrk running N
#             threads and (sN) thread i sending to gateway i (gateway-chat.lua's
#             ADDRS: a round-robin client, no load balancer hop of its own);
#             prints (sN)'s added p50/p99 and its throughput as a ratio of (s1)'s.
# Needs wrk and, for (n), nginx (both installed from Debian if missing), node and npm for (c).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/gateway_config.sh"

DURATION=10
JSON=0
BUILD=""
PORTKEY=1
FLOOR=1
DURABILITY=""
CHUNKS=32
BUSY_POLL=""
REPLICAS=""
STATE=memory
PORTKEY_SRC="${SWITCHBOARD_PORTKEY_DIR:-$ROOT/../shared/peers/portkey}"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=${2:?--duration takes seconds}; shift 2 ;;
    --duration=*) DURATION=${1#*=}; shift ;;
    --json) JSON=1; shift ;;
    --build) BUILD=${2:?--build takes a folder}; shift 2 ;;
    --no-portkey) PORTKEY=0; shift ;;
    --no-floor) FLOOR=0; shift ;;
    --durability) DURABILITY=${2:?--durability takes process or power}; shift 2 ;;
    --chunks) CHUNKS=${2:?--chunks takes a count}; shift 2 ;;
    --busy-poll-us) BUSY_POLL=${2:?--busy-poll-us takes microseconds}; shift 2 ;;
    --replicas) REPLICAS=${2:?--replicas takes a count}; shift 2 ;;
    --state) STATE=${2:?--state takes memory or redis}; shift 2 ;;
    -h|--help) sed -n '2,45p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gateway.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] && [ "$DURATION" -le 600 ] || { echo "gateway.sh: --duration takes 1..600 seconds" >&2; exit 2; }
[[ "$CHUNKS" =~ ^[1-9][0-9]*$ ]] && [ "$CHUNKS" -le 10000 ] || { echo "gateway.sh: --chunks takes 1..10000" >&2; exit 2; }
[ -z "$BUSY_POLL" ] || { [[ "$BUSY_POLL" =~ ^[0-9]+$ ]] && [ "$BUSY_POLL" -le 10000 ]; } ||
  { echo "gateway.sh: --busy-poll-us takes 0..10000" >&2; exit 2; }
case "$STATE" in
  memory) [ -z "$REPLICAS" ] || [ "$REPLICAS" = 1 ] ||
            { echo "gateway.sh: --replicas needs --state redis (in memory each replica would keep its own caps)" >&2; exit 2; } ;;
  redis) REPLICAS=${REPLICAS:-3} ;;
  *) echo "gateway.sh: --state takes memory or redis" >&2; exit 2 ;;
esac
[ -z "$REPLICAS" ] || { [[ "$REPLICAS" =~ ^[1-8]$ ]] || { echo "gateway.sh: --replicas takes 1..8" >&2; exit 2; }; }

# Progress goes to stderr, so --json leaves stdout one JSON object.
say() { echo "gateway.sh: $*" >&2; }

# ---------------------------------------------------------------- tools and programs
bench_need_wrk
command -v node >/dev/null || { say "node is needed (for the numbers and for Portkey)"; exit 1; }

bench_programs
CLI="$BUILD/hosts/cli/switchboard"
LUA_SCRIPT="$ROOT/bench/gateway-chat.lua"
STREAM_CLIENT="$ROOT/bench/gateway-stream.mjs"

bench_work switchboard-bench



# warm_up NAME URL TARGET: 2 s at 16 connections, not kept.
warm_up() {
  say "warming up $1"
  TARGET=$3 wrk -t2 -c16 -d2s --timeout 5s -s "$LUA_SCRIPT" "$2" >/dev/null
}

# measure NAME URL TARGET: 1, 16 and 64 connections, not streamed; then the
# agent's long request (HISTORY turns) at 1 connection.
HISTORY_TURNS=32
measure() {
  local name=$1 url=$2 target=$3 c
  for c in 1 16 64; do
    say "measuring $name: $c connection(s), ${DURATION} s"
    TARGET=$target RESULT_FILE="$WORK/$name-c$c.json" \
      wrk -t"$([ "$c" -eq 1 ] && echo 1 || echo 2)" -c"$c" -d"${DURATION}s" --timeout 5s -s "$LUA_SCRIPT" "$url" \
      >"$WORK/$name-c$c.txt"
  done
  say "measuring $name: an agent's request after $HISTORY_TURNS turns, 1 connection, ${DURATION} s"
  TARGET=$target HISTORY=$HISTORY_TURNS RESULT_FILE="$WORK/$name-h1.json" \
    wrk -t1 -c1 -d"${DURATION}s" --timeout 5s -s "$LUA_SCRIPT" "$url" >"$WORK/$name-h1.txt"
}

# measure_stream NAME URL TARGET: streamed, one connection.
measure_stream() {
  say "measuring $1: streamed, 1 connection, ${DURATION} s"
  node "$STREAM_CLIENT" "$2" "$3" "$DURATION" "$WORK/$1-stream.json"
}

# ---------------------------------------------------------------- (a) the fake provider
"$FAKE" --port 0 --stream-chunks "$CHUNKS" >"$WORK/fake.out" 2>"$WORK/fake.err" &
PIDS+=($!)
FAKE_PORT=$(wait_for_port "$WORK/fake.out" "${PIDS[-1]}" fake_provider)
FAKE_URL="http://127.0.0.1:$FAKE_PORT"
warm_up direct "$FAKE_URL" direct
measure direct "$FAKE_URL" direct
measure_stream direct "$FAKE_URL" direct

# ---------------------------------------------------------------- (n) the floor: nginx, no work
# A keep-alive reverse proxy to the same fake provider (bench_nginx_conf).
if bench_floor "$(nproc)"; then
  nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" >"$WORK/nginx/out.log" 2>&1 &
  PIDS+=($!)
  wait_until_answers "$FLOOR_URL/" "${PIDS[-1]}" 10 || true
  if curl -s -o /dev/null -f -H 'content-type: application/json' \
       --data '{"model":"auto","messages":[{"role":"user","content":"hi"}]}' "$FLOOR_URL/v1/chat/completions"; then
    warm_up floor "$FLOOR_URL" direct
    measure floor "$FLOOR_URL" direct
    measure_stream floor "$FLOOR_URL" direct
  else
    FLOOR_NOTE="nginx did not answer: $(cat "$WORK/nginx/out.log" "$WORK/nginx/error.log" 2>/dev/null | tail -n 3 | tr '\n' ' ')"
  fi
  kill -TERM "${PIDS[-1]}" 2>/dev/null || true
fi
[ "$FLOOR" -ne 1 ] || [ -z "$FLOOR_NOTE" ] || say "$FLOOR_NOTE; no floor row"

# ---------------------------------------------------------------- (b) switchboard-gateway
bench_gateway_folder "$WORK/switchboard"
# The gateway's config (b); (s1) and (sN) add caps and [state] to it.
switchboard_config() { bench_gateway_config "$FAKE_URL/v1" "${1:-}" "$BUSY_POLL"; }
switchboard_config >"$WORK/switchboard/switchboard.toml"
if [ -n "$DURABILITY" ]; then
  printf '\n[ledger]\ndurability = "%s"\n' "$DURABILITY" >>"$WORK/switchboard/switchboard.toml"
fi
SWITCHBOARD_BENCH_UPSTREAM_KEY=sk-mock \
  "$GATEWAY" --config "$WORK/switchboard/switchboard.toml" --listen 127.0.0.1:0 \
  >"$WORK/gateway.out" 2>"$WORK/gateway.err" &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
GATEWAY_PORT=$(wait_for_port "$WORK/gateway.out" "$GATEWAY_PID" switchboard-gateway)
GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT"
# The rules must route as intended before anything is timed.
for pair in format:gpt-5-mini plan:gpt-5; do
  got=$(curl -s -o /dev/null -D - -H 'content-type: application/json' -H "x-switchboard-role: ${pair%%:*}" \
        --data '{"model":"auto","messages":[{"role":"user","content":"hi"}]}' "$GATEWAY_URL/v1/chat/completions" |
        tr -d '\r' | sed -n 's/^x-switchboard-model: //Ip')
  [ "$got" = "${pair##*:}" ] || { say "switchboard-gateway routed role ${pair%%:*} to '$got', not ${pair##*:}"; exit 1; }
done
warm_up switchboard "$GATEWAY_URL" switchboard
# Its own x-switchboard-overhead-ms over the wrk rows: the histogram before and after.
curl -s "$GATEWAY_URL/metrics" >"$WORK/switchboard-metrics-before.txt"
measure switchboard "$GATEWAY_URL" switchboard
curl -s "$GATEWAY_URL/metrics" >"$WORK/switchboard-metrics-after.txt"
measure_stream switchboard "$GATEWAY_URL" switchboard
# SIGTERM drains and flushes the ledger; count what it recorded.
kill -TERM "$GATEWAY_PID"
wait "$GATEWAY_PID" || say "switchboard-gateway exited $? on SIGTERM"
LEDGER_CALLS=null
if [ -x "$CLI" ] && [ -f "$WORK/switchboard/ledger.db" ]; then
  LEDGER_CALLS=$("$CLI" report --json "$WORK/switchboard/ledger.db" --config "$WORK/switchboard/switchboard.toml" |
                 node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).total.calls))')
fi

# ---------------------------------------------------------------- (c) Portkey
PORTKEY_NOTE=""
if [ "$PORTKEY" -eq 1 ]; then
  if [ ! -f "$PORTKEY_SRC/package-lock.json" ]; then
    PORTKEY_NOTE="no Portkey setup at $PORTKEY_SRC"
  elif ! command -v npm >/dev/null; then
    PORTKEY_NOTE="npm is not installed"
  else
    cp -r "$PORTKEY_SRC" "$WORK/portkey"
    chmod -R u+w "$WORK/portkey"
    say "installing Portkey (npm ci)"
    if ! (cd "$WORK/portkey" && npm ci --no-audit --no-fund --loglevel=error >"$WORK/npm.log" 2>&1); then
      PORTKEY_NOTE="Portkey could not be installed (npm ci failed: no registry?): $(tail -n 3 "$WORK/npm.log" | tr '\n' ' ')"
    fi
  fi
  if [ -z "$PORTKEY_NOTE" ]; then
    # The peer's config points at the fake provider on 9101; ours has a free port.
    PORTKEY_CONFIG=$(node -e '
      const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      for (const t of c.targets) t.custom_host = t.custom_host.replace(/:\/\/127\.0\.0\.1:\d+/, "://127.0.0.1:" + process.argv[2]);
      console.log(JSON.stringify(c));' "$WORK/portkey/conditional.json" "$FAKE_PORT")
    export PORTKEY_CONFIG
    PORTKEY_PORT=$(free_port)
    (cd "$WORK/portkey" && BIND_HOST=127.0.0.1 exec node --require ./bind-loopback.cjs \
       node_modules/@portkey-ai/gateway/build/start-server.js --port="$PORTKEY_PORT" --headless) \
       >"$WORK/portkey.log" 2>&1 &
    PIDS+=($!)
    PORTKEY_URL="http://127.0.0.1:$PORTKEY_PORT"
    wait_until_answers "$PORTKEY_URL/" "${PIDS[-1]}" 30 || true
    for pair in format:mock-cheap-mini plan:mock-premium-large; do
      got=$(curl -s -H 'content-type: application/json' -H "x-portkey-config: $PORTKEY_CONFIG" \
            -H "x-portkey-metadata: {\"role\":\"${pair%%:*}\"}" \
            --data '{"model":"auto","messages":[{"role":"user","content":"hi"}]}' "$PORTKEY_URL/v1/chat/completions" |
            node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).model)}catch{console.log("?")}})' || true)
      if [ "$got" != "${pair##*:}" ]; then
        PORTKEY_NOTE="Portkey did not answer as configured (role ${pair%%:*} -> '$got'): $(tail -n 3 "$WORK/portkey.log" | tr '\n' ' ')"
        break
      fi
    done
    if [ -z "$PORTKEY_NOTE" ]; then
      warm_up portkey "$PORTKEY_URL" portkey
      measure portkey "$PORTKEY_URL" portkey
      measure_stream portkey "$PORTKEY_URL" portkey
    fi
  fi
  [ -z "$PORTKEY_NOTE" ] || say "$PORTKEY_NOTE; measured (a) and (b) only"
else
  PORTKEY_NOTE="skipped (--no-portkey)"
fi

# ---------------------------------------------------------------- (s1), (sN) shared state
# start_gateway NAME DIR: a gateway on DIR/switchboard.toml; sets STARTED_URL.
start_gateway() {
  local name=$1 dir=$2 port
  SWITCHBOARD_BENCH_UPSTREAM_KEY=sk-mock SWITCHBOARD_BENCH_CLIENT_KEY=sk-mock \
    "$GATEWAY" --config "$dir/switchboard.toml" --listen 127.0.0.1:0 >"$dir/gateway.out" 2>"$dir/gateway.err" &
  PIDS+=($!)
  port=$(wait_for_port "$dir/gateway.out" "${PIDS[-1]}" "$name")
  STARTED_URL="http://127.0.0.1:$port"
  local got
  got=$(curl -s -o /dev/null -D - -H 'content-type: application/json' -H 'authorization: Bearer sk-mock' \
        -H 'x-switchboard-role: format' --data '{"model":"auto","messages":[{"role":"user","content":"hi"}]}' \
        "$STARTED_URL/v1/chat/completions" | tr -d '\r' | sed -n 's/^x-switchboard-model: //Ip')
  [ "$got" = gpt-5-mini ] || { say "$name routed role format to '$got', not gpt-5-mini"; exit 1; }
}
# stop_gateways: SIGTERM every gateway this section started (their ledgers flush).
stop_gateways() {
  local pid
  for pid in "${SECTION_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${SECTION_PIDS[@]}"; do wait "$pid" 2>/dev/null || say "a gateway exited $? on SIGTERM"; done
  SECTION_PIDS=()
}
# measure_spread NAME URL [ADDRS]: a warm-up, then as measure, at connections
# rounded down to a multiple of $REPLICAS on $REPLICAS wrk threads (ADDRS, when
# given, sends thread i to its i-th HOST:PORT).
measure_spread() {
  local name=$1 url=$2 c conns threads
  export ADDRS=${3:-}
  say "warming up $name"
  TARGET=switchboard wrk -t"$REPLICAS" -c"$((16 / REPLICAS * REPLICAS))" -d2s --timeout 5s -s "$LUA_SCRIPT" "$url" >/dev/null
  for c in 1 16 64; do
    if [ "$c" -eq 1 ]; then conns=1 threads=1; else conns=$(( c / REPLICAS * REPLICAS )) threads=$REPLICAS; fi
    say "measuring $name: $conns connection(s) on $threads thread(s), ${DURATION} s"
    TARGET=switchboard RESULT_FILE="$WORK/$name-c$c.json" \
      wrk -t"$threads" -c"$conns" -d"${DURATION}s" --timeout 5s -s "$LUA_SCRIPT" "$url" >"$WORK/$name-c$c.txt"
    echo "$conns" >"$WORK/$name-c$c.conns"
  done
  unset ADDRS
}
if [ "$STATE" = redis ]; then
  command -v redis-server >/dev/null || { say "redis-server is needed for --state redis (apt-get install redis-server)"; exit 1; }
  # Caps large enough never to refuse in the run, so every request reserves and
  # settles in both scopes (workload:default and key:bench) and none is refused.
  caps() {
    printf '\n[gateway.keys.bench]\nkey_env = "SWITCHBOARD_BENCH_CLIENT_KEY"\nworkload = "default"\nbudget_usd = 1000000.0\n'
  }
  SECTION_PIDS=()
  # (s1): one gateway, the caps in memory.
  mkdir -p "$WORK/s1"
  cp "$WORK/switchboard/prices.toml" "$WORK/switchboard/rules.lua" "$WORK/s1/"
  { switchboard_config 1000000.0; caps; } >"$WORK/s1/switchboard.toml"
  start_gateway "gateway (s1)" "$WORK/s1"
  SECTION_PIDS+=("${PIDS[-1]}")
  S1_URL=$STARTED_URL
  measure_spread s1 "$S1_URL"
  stop_gateways

  # (sN): N gateways sharing a redis-server.
  mkdir -p "$WORK/redis"
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/redis" \
    >"$WORK/redis/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
  redis-cli -p "$REDIS_PORT" ping | grep -q PONG || { say "redis-server did not start: $(tail -n 3 "$WORK/redis/redis.log")"; exit 1; }
  SN_ADDRS=""
  for i in $(seq "$REPLICAS"); do
    mkdir -p "$WORK/s$i-of-n"
    cp "$WORK/switchboard/prices.toml" "$WORK/switchboard/rules.lua" "$WORK/s$i-of-n/"
    { switchboard_config 1000000.0; caps
      printf '\n[state]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:%s/0"\nreplicas = %s\nkey_prefix = "bench:"\n' \
        "$REDIS_PORT" "$REPLICAS"; } >"$WORK/s$i-of-n/switchboard.toml"
    start_gateway "gateway $i of $REPLICAS (sN)" "$WORK/s$i-of-n"
    SECTION_PIDS+=("${PIDS[-1]}")
    SN_ADDRS="$SN_ADDRS${SN_ADDRS:+,}${STARTED_URL#http://}"
  done
  SN_URL="http://${SN_ADDRS%%,*}"
  measure_spread sN "$SN_URL" "$SN_ADDRS"
  # The shared state was used: budget keys in Redis, no replica degraded, each served.
  SN_BUDGET_KEYS=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'bench:budget:*' | wc -l)
  SN_HEALTH_KEYS=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'bench:health:*' | wc -l)
  SN_DEGRADED=0
  SN_SERVED=""
  for addr in ${SN_ADDRS//,/ }; do
    m=$(curl -s "http://$addr/metrics")
    grep -q '^switchboard_shared_state_degraded 0' <<<"$m" || SN_DEGRADED=$((SN_DEGRADED + 1))
    SN_SERVED="$SN_SERVED${SN_SERVED:+,}$(sed -n 's/^switchboard_requests_total{.*endpoint="\/v1\/chat\/completions".*status="200".*} //p' <<<"$m" | awk '{s+=$1} END {print s+0}')"
  done
  stop_gateways
  printf '{"replicas":%s,"budget_keys":%s,"health_keys":%s,"degraded_replicas":%s,"served_200":[%s]}\n' \
    "$REPLICAS" "$SN_BUDGET_KEYS" "$SN_HEALTH_KEYS" "$SN_DEGRADED" "$SN_SERVED" >"$WORK/sN-state.json"
fi

# ---------------------------------------------------------------- the numbers
node - "$WORK" "$DURATION" "$JSON" "$LEDGER_CALLS" "$PORTKEY_NOTE" "$(nproc)" "$CHUNKS" "$REPLICAS" "$FLOOR_NOTE" <<'JS'
const fs = require('node:fs');
const [dir, duration, json, ledgerCalls, portkeyNote, cores, chunks, replicas, floorNote] = process.argv.slice(2);
// c1, c16, c64: the short request at 1, 16, 64 connections; h1: the agent's
// long request (32 turns, about 51 KB) at 1 connection.
const CONNS = ['c1', 'c16', 'c64', 'h1'];
const connsLabel = (c) => (c === 'h1' ? '1, 51 KB' : c.slice(1));
const read = (file) => (fs.existsSync(`${dir}/${file}`) ? JSON.parse(fs.readFileSync(`${dir}/${file}`, 'utf8')) : null);
const paths = [
  ['direct', '(a) straight to the fake provider'],
  ['floor', '(n) through nginx, no work (the floor)'],
  ['switchboard', '(b) through switchboard-gateway (ledger on)'],
  ['portkey', '(c) through Portkey, conditional config'],
];
const out = {
  duration_s: Number(duration), cores: Number(cores),
  load: 'wrk, POST /v1/chat/completions, not streamed, roles format/plan alternating; 1 connection (1 thread), ' +
        '16 and 64 connections (2 threads); h1: an agent request after 32 turns (about 51 KB), 1 connection; ' +
        'streamed: bench/gateway-stream.mjs, 1 connection, ' +
        `${chunks} content events per answer`,
  paths: {},
};
for (const [name] of paths) {
  const p = {};
  for (const c of CONNS) p[c] = read(`${name}-${c}.json`);
  if (CONNS.some((c) => !p[c])) continue;
  p.stream = read(`${name}-stream.json`);
  out.paths[name] = p;
}
const ms = (us) => us / 1000;
const direct = out.paths.direct;
for (const [name, p] of Object.entries(out.paths)) {
  if (name === 'direct') continue;
  for (const c of CONNS) {
    p[c].added_p50_ms = ms(p[c].p50_us - direct[c].p50_us);
    p[c].added_p99_ms = ms(p[c].p99_us - direct[c].p99_us);
    p[c].rps_share_of_direct = p[c].rps / direct[c].rps;
  }
  const s = p.stream, d = direct.stream;
  if (s && d && s.requests && d.requests) {
    s.added_ttft_p50_ms = s.ttft_p50_ms - d.ttft_p50_ms;
    // The time after the first token, beyond the direct path's, per content event after the first.
    s.added_per_chunk_us = ((s.after_first_token_p50_ms - d.after_first_token_p50_ms) * 1000) / Math.max(1, d.chunks - 1);
    s.rps_share_of_direct = s.rps / d.rps;
  }
}
const sb = out.paths.switchboard, pk = out.paths.portkey, fl = out.paths.floor;
// What switchboard adds over a proxy doing no work (n), row by row.
out.floor = floorNote || 'measured';
out.switchboard_over_floor = null;
if (sb && fl) {
  const o = {};
  for (const c of CONNS) {
    o[c] = { added_p50_ms: ms(sb[c].p50_us - fl[c].p50_us), added_p99_ms: ms(sb[c].p99_us - fl[c].p99_us),
             rps_share_of_floor: sb[c].rps / fl[c].rps };
  }
  if (sb.stream && fl.stream && sb.stream.requests && fl.stream.requests) {
    o.stream = { added_ttft_p50_ms: sb.stream.ttft_p50_ms - fl.stream.ttft_p50_ms };
  }
  out.switchboard_over_floor = o;
}
out.ratios = null;
if (sb && pk) {
  out.ratios = {};
  for (const c of CONNS) out.ratios[`switchboard_over_portkey_rps_${c}`] = sb[c].rps / pk[c].rps;
  if (sb.stream && pk.stream && sb.stream.added_ttft_p50_ms !== undefined && pk.stream.added_ttft_p50_ms !== undefined) {
    out.ratios.portkey_over_switchboard_added_ttft = pk.stream.added_ttft_p50_ms / sb.stream.added_ttft_p50_ms;
    out.ratios.portkey_over_switchboard_per_chunk = pk.stream.added_per_chunk_us / sb.stream.added_per_chunk_us;
  }
}

// switchboard's own x-switchboard-overhead-ms over the wrk rows: the
// histogram's growth, its mean (sum / count) and its median (interpolated
// in the bucket holding it, as Prometheus' histogram_quantile does).
const histogram = (file) => {
  const f = `${dir}/${file}`;
  const h = { buckets: new Map(), sum: 0, count: 0 };
  if (!fs.existsSync(f)) return null;
  const ep = 'endpoint="/v1/chat/completions"';
  for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
    let m = line.match(/^switchboard_overhead_ms_bucket\{([^}]*)\} (\S+)$/);
    if (m && m[1].includes(ep)) h.buckets.set(m[1].match(/le="([^"]+)"/)[1], Number(m[2]));
    m = line.match(/^switchboard_overhead_ms_sum\{([^}]*)\} (\S+)$/);
    if (m && m[1].includes(ep)) h.sum = Number(m[2]);
    m = line.match(/^switchboard_overhead_ms_count\{([^}]*)\} (\S+)$/);
    if (m && m[1].includes(ep)) h.count = Number(m[2]);
  }
  return h;
};
const before = histogram('switchboard-metrics-before.txt'), after = histogram('switchboard-metrics-after.txt');
out.switchboard_overhead_ms = null;
if (before && after && after.count > before.count) {
  const n = after.count - before.count;
  const les = [...after.buckets.keys()];
  let median = null, lower = 0;
  for (const le of les) {
    const cum = after.buckets.get(le) - (before.buckets.get(le) || 0);
    if (cum >= n / 2) {
      if (le === '+Inf') { median = `> ${lower}`; break; }
      const bound = Number(le);
      const idx = les.indexOf(le);
      const below = idx === 0 ? 0 : after.buckets.get(les[idx - 1]) - (before.buckets.get(les[idx - 1]) || 0);
      const inBucket = cum - below;
      median = lower + (bound - lower) * (inBucket > 0 ? (n / 2 - below) / inBucket : 0);
      break;
    }
    if (le !== '+Inf') lower = Number(le);
  }
  out.switchboard_overhead_ms = {
    requests: n,
    mean: (after.sum - before.sum) / n,
    median_estimate: median,
    stream_head_median: sb && sb.stream ? sb.stream.overhead_head_p50_ms : null,
    stream_trailer_median: sb && sb.stream ? sb.stream.overhead_trailer_p50_ms : null,
  };
}
out.switchboard_ledger_records = ledgerCalls === 'null' ? null : Number(ledgerCalls);
out.portkey = portkeyNote || 'measured';
// --state redis: (sN) N gateways sharing caps (and health) through Redis against (s1) one with the caps in memory.
const state = read('sN-state.json');
if (state) {
  const shared = { replicas: Number(replicas), check: state, rows: {} };
  for (const c of CONNS) {
    const one = read(`s1-${c}.json`), many = read(`sN-${c}.json`);
    if (!one || !many) continue;
    const conns = Number(fs.readFileSync(`${dir}/sN-${c}.conns`, 'utf8'));
    shared.rows[c] = {
      connections: conns, one_gateway: one, replicas: many,
      added_p50_ms: ms(many.p50_us - one.p50_us), added_p99_ms: ms(many.p99_us - one.p99_us),
      p50_ratio: many.p50_us / one.p50_us, p99_ratio: many.p99_us / one.p99_us, rps_ratio: many.rps / one.rps,
    };
  }
  out.shared_state = shared;
}
if (json === '1') {
  console.log(JSON.stringify(out));
  process.exit(0);
}
const f = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));
const signed = (x) => (x < 0 ? '' : '+') + f(x);
const pct = (x) => (x === undefined ? '' : `${Math.round(x * 100)}%`);
const errs = (r) => Object.values(r.errors).reduce((a, b) => a + b, 0);
const rows = [];
for (const [name, label] of paths) {
  const p = out.paths[name];
  if (!p) continue;
  const cell = (r) => [Math.round(r.rps).toLocaleString('en-US'), pct(r.rps_share_of_direct), f(ms(r.p50_us)), f(ms(r.p99_us)),
    r.added_p50_ms === undefined ? '' : `${signed(r.added_p50_ms)} / ${signed(r.added_p99_ms)}`];
  for (const c of CONNS) rows.push([c === 'c1' ? label : '', connsLabel(c), ...cell(p[c])]);
  const e = CONNS.reduce((a, c) => a + errs(p[c]), 0);
  if (e) rows.push([`   ${e} errors or non-2xx answers!`, '', '', '', '', '', '']);
}
const head = ['path', 'conns', 'req/s', 'of (a)', 'p50 ms', 'p99 ms', 'added p50/p99 ms'];
const table = (head, rows) => {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
};
console.log(`gateway benchmark: ${duration} s per measurement, ${cores} cores shared by wrk, the gateway and the fake provider`);
table(head, rows);

console.log('');
console.log(`streamed, 1 connection, ${chunks} content events per answer (bench/gateway-stream.mjs):`);
const srows = [];
for (const [name, label] of paths) {
  const s = out.paths[name] && out.paths[name].stream;
  if (!s) continue;
  srows.push([label, Math.round(s.rps).toLocaleString('en-US'), pct(s.rps_share_of_direct), f(s.ttft_p50_ms), f(s.total_p50_ms),
    s.added_ttft_p50_ms === undefined ? '' : signed(s.added_ttft_p50_ms),
    s.added_per_chunk_us === undefined ? '' : signed(s.added_per_chunk_us), String(s.chunks), s.errors ? String(s.errors) : '0']);
}
table(['path', 'req/s', 'of (a)', 'TTFT p50 ms', 'total p50 ms', 'added TTFT ms', 'added µs/chunk', 'chunks', 'errors'], srows);

console.log('');
const of = out.switchboard_over_floor;
if (of) {
  console.log('switchboard over the floor (n): ' + CONNS.map((c) => `${connsLabel(c)}: ${signed(of[c].added_p50_ms)} / ` +
              `${signed(of[c].added_p99_ms)} ms, ${pct(of[c].rps_share_of_floor)} of its req/s`).join('; ') +
              (of.stream ? `; TTFT ${signed(of.stream.added_ttft_p50_ms)} ms` : '') + ' (connections; added p50 / p99)');
} else {
  console.log(`floor: ${out.floor}`);
}
if (out.ratios) {
  console.log(`switchboard / portkey throughput: ${CONNS.map((c) => `${f(out.ratios[`switchboard_over_portkey_rps_${c}`], 1)}x at ${connsLabel(c)}`).join(', ')} (connections)`);
  if (out.ratios.portkey_over_switchboard_added_ttft !== undefined) {
    console.log(`portkey / switchboard added TTFT: ${f(out.ratios.portkey_over_switchboard_added_ttft, 1)}x; ` +
                `added time per chunk: ${f(out.ratios.portkey_over_switchboard_per_chunk, 1)}x`);
  }
} else {
  console.log(`portkey: ${out.portkey}`);
}
const o = out.switchboard_overhead_ms;
if (o) {
  const med = typeof o.median_estimate === 'number' ? f(o.median_estimate) : o.median_estimate;
  console.log(`switchboard x-switchboard-overhead-ms over the ${o.requests} wrk requests: median ~${med} (histogram), ` +
              `mean ${f(o.mean)}; streamed: median ${f(o.stream_head_median)} up to the head, ` +
              `${f(o.stream_trailer_median)} for the whole request`);
}
if (out.switchboard_ledger_records !== null) {
  const sent = sb ? CONNS.reduce((a, c) => a + sb[c].requests, 0) + (sb.stream ? sb.stream.requests : 0) : 0;
  console.log(`switchboard ledger: ${out.switchboard_ledger_records} records (${sent} measured requests, plus warm-up)`);
}
const sh = out.shared_state;
if (sh) {
  console.log('');
  console.log(`shared state: (s1) one gateway, workload and key caps in memory; (s${sh.replicas}) ${sh.replicas} gateways, ` +
              'the same caps (and model health) shared through one redis-server; the same wrk load, thread i to gateway i:');
  const rrows = [];
  for (const c of CONNS) {
    const r = sh.rows[c];
    if (!r) continue;
    const e = errs(r.one_gateway) + errs(r.replicas);
    rrows.push([String(r.connections), Math.round(r.one_gateway.rps).toLocaleString('en-US'), Math.round(r.replicas.rps).toLocaleString('en-US'),
      f(r.rps_ratio, 2), `${f(ms(r.one_gateway.p50_us))} / ${f(ms(r.one_gateway.p99_us))}`,
      `${f(ms(r.replicas.p50_us))} / ${f(ms(r.replicas.p99_us))}`, `${signed(r.added_p50_ms)} / ${signed(r.added_p99_ms)}`,
      `${f(r.p50_ratio, 2)} / ${f(r.p99_ratio, 2)}`, String(e)]);
  }
  table(['conns', '(s1) req/s', `(s${sh.replicas}) req/s`, 'req/s ratio', '(s1) p50/p99 ms', `(s${sh.replicas}) p50/p99 ms`,
         'added p50/p99 ms', 'p50/p99 ratio', 'errors'], rrows);
  console.log(`Redis after the run: ${sh.check.budget_keys} budget keys, ${sh.check.health_keys} health keys; ` +
              `replicas degraded: ${sh.check.degraded_replicas}; 200s served per replica: ${sh.check.served_200.join(', ')}`);
}
JS
