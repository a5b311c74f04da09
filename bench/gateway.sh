#!/usr/bin/env bash
# The gateway benchmark, side by side on this machine with the same bounded load:
#   (a) straight to the fake provider (answering at once),
#   (b) through switchboard-gateway (rules: format/summarize/extract -> cheap,
#       the rest -> premium; SQLite ledger on, in a temporary folder),
#   (c) through the Portkey AI gateway with the equivalent conditional config
#       (../shared/peers/portkey copied to a temporary folder, `npm ci` there).
# Each with wrk at 1 connection (1 thread) and 16 connections (2 threads), a
# fixed duration, POST /v1/chat/completions not streamed, alternating the roles
# format and plan. Prints requests/s, p50/p99 latency, the latency each gateway
# adds over (a), and switchboard/portkey throughput ratios; --json prints one
# JSON object instead. A measurement, not a test: nothing here asserts a time.
#
#   bash bench/gateway.sh [--duration SECONDS] [--json] [--build DIR] [--no-portkey] [--durability process|power]
#
# --duration  seconds per measurement (default 10); each path also gets a 2 s warm-up
# --build     the build folder with the programs (default build/, built if missing)
# --no-portkey  measure (a) and (b) only
# --durability  the gateway's [ledger] durability (default: the config default, "process");
#               every answer waits for its ledger records' group commit either way
# Needs wrk (installed from Debian if missing), node and npm for (c).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

DURATION=10
JSON=0
BUILD=""
PORTKEY=1
DURABILITY=""
PORTKEY_SRC="${SWITCHBOARD_PORTKEY_DIR:-$ROOT/../shared/peers/portkey}"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=${2:?--duration takes seconds}; shift 2 ;;
    --duration=*) DURATION=${1#*=}; shift ;;
    --json) JSON=1; shift ;;
    --build) BUILD=${2:?--build takes a folder}; shift 2 ;;
    --no-portkey) PORTKEY=0; shift ;;
    --durability) DURABILITY=${2:?--durability takes process or power}; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gateway.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] && [ "$DURATION" -le 600 ] || { echo "gateway.sh: --duration takes 1..600 seconds" >&2; exit 2; }

# Progress goes to stderr, so --json leaves stdout one JSON object.
say() { echo "gateway.sh: $*" >&2; }

# ---------------------------------------------------------------- tools and programs
if ! command -v wrk >/dev/null; then
  say "installing wrk (Debian)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk >&2
fi
command -v node >/dev/null || { say "node is needed (for the numbers and for Portkey)"; exit 1; }

if [ -z "$BUILD" ]; then
  BUILD="$ROOT/build"
  if [ ! -x "$BUILD/hosts/gateway/switchboard-gateway" ] || [ ! -x "$BUILD/tests/fake_provider" ]; then
    say "building (scripts/build.sh)"
    bash "$ROOT/scripts/build.sh" >&2
  fi
fi
GATEWAY="$BUILD/hosts/gateway/switchboard-gateway"
FAKE="$BUILD/tests/fake_provider"
CLI="$BUILD/hosts/cli/switchboard"
for p in "$GATEWAY" "$FAKE"; do
  [ -x "$p" ] || { say "$p is missing: build it first"; exit 1; }
done
LUA_SCRIPT="$ROOT/bench/gateway-chat.lua"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench.XXXXXX")
PIDS=()
cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits for `listening on HOST:PORT` as the first line of $1 while process $2 lives; prints PORT.
wait_for_port() {
  local out=$1 pid=$2 name=$3 line=""
  for _ in $(seq 200); do
    line=$(head -n 1 "$out" 2>/dev/null || true)
    case "$line" in "listening on "*:*) echo "${line##*:}"; return 0 ;; esac
    kill -0 "$pid" 2>/dev/null || { say "$name exited before listening"; return 1; }
    sleep 0.05
  done
  say "$name printed no 'listening on HOST:PORT' in 10 s"
  return 1
}

# A free loopback port (for Portkey, which takes a port number, not 0).
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

# measure NAME URL TARGET: a 2 s warm-up, then 1 and 16 connections.
measure() {
  local name=$1 url=$2 target=$3
  say "warming up $name"
  TARGET=$target wrk -t2 -c16 -d2s --timeout 5s -s "$LUA_SCRIPT" "$url" >/dev/null
  say "measuring $name: 1 connection, ${DURATION} s"
  TARGET=$target RESULT_FILE="$WORK/$name-c1.json" \
    wrk -t1 -c1 -d"${DURATION}s" --timeout 5s -s "$LUA_SCRIPT" "$url" >"$WORK/$name-c1.txt"
  say "measuring $name: 16 connections, ${DURATION} s"
  TARGET=$target RESULT_FILE="$WORK/$name-c16.json" \
    wrk -t2 -c16 -d"${DURATION}s" --timeout 5s -s "$LUA_SCRIPT" "$url" >"$WORK/$name-c16.txt"
}

# ---------------------------------------------------------------- (a) the fake provider
"$FAKE" --port 0 >"$WORK/fake.out" 2>"$WORK/fake.err" &
PIDS+=($!)
FAKE_PORT=$(wait_for_port "$WORK/fake.out" "${PIDS[-1]}" fake_provider)
FAKE_URL="http://127.0.0.1:$FAKE_PORT"
measure direct "$FAKE_URL" direct

# ---------------------------------------------------------------- (b) switchboard-gateway
mkdir -p "$WORK/switchboard"
cp "$ROOT/prices.toml" "$WORK/switchboard/prices.toml"
cat >"$WORK/switchboard/rules.lua" <<'LUA'
-- format/summarize/extract -> cheap; everything else -> premium.
local CHEAP_ROLES = { format = true, summarize = true, extract = true }
function classify(step, ctx)
  if CHEAP_ROLES[step.role] then return { tier = "cheap", reason = "mechanical role" } end
  return { tier = "premium", reason = "everything else" }
end
LUA
cat >"$WORK/switchboard/switchboard.toml" <<TOML
[routing]
price_catalog = "prices.toml"
premium_tier = "premium"

[calls]
max_attempts = 1

[models.gpt-5-mini]
provider = "openai"
endpoint = "$FAKE_URL/v1"
api_key_env = "SWITCHBOARD_BENCH_UPSTREAM_KEY"
context_window = 400_000
default_output_tokens = 16

[models.gpt-5]
provider = "openai"
endpoint = "$FAKE_URL/v1"
api_key_env = "SWITCHBOARD_BENCH_UPSTREAM_KEY"
context_window = 400_000
default_output_tokens = 16

[tiers.cheap]
models = ["gpt-5-mini"]

[tiers.premium]
models = ["gpt-5"]

[workloads.default]
rules = "rules.lua"
fallback_tier = "cheap"

[gateway]
ledger = "ledger.db"
max_upstream_calls = 1024
TOML
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
measure switchboard "$GATEWAY_URL" switchboard
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
    for _ in $(seq 300); do
      curl -s -o /dev/null "$PORTKEY_URL/" && break
      kill -0 "${PIDS[-1]}" 2>/dev/null || break
      sleep 0.1
    done
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
    [ -n "$PORTKEY_NOTE" ] || measure portkey "$PORTKEY_URL" portkey
  fi
  [ -z "$PORTKEY_NOTE" ] || say "$PORTKEY_NOTE; measured (a) and (b) only"
else
  PORTKEY_NOTE="skipped (--no-portkey)"
fi

# ---------------------------------------------------------------- the numbers
node - "$WORK" "$DURATION" "$JSON" "$LEDGER_CALLS" "$PORTKEY_NOTE" "$(nproc)" <<'JS'
const fs = require('node:fs');
const [dir, duration, json, ledgerCalls, portkeyNote, cores] = process.argv.slice(2);
const read = (name, c) => {
  const f = `${dir}/${name}-c${c}.json`;
  return fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : null;
};
const paths = [
  ['direct', '(a) straight to the fake provider'],
  ['switchboard', '(b) through switchboard-gateway (ledger on)'],
  ['portkey', '(c) through Portkey, conditional config'],
];
const out = { duration_s: Number(duration), cores: Number(cores), load: 'wrk, POST /v1/chat/completions, not streamed, roles format/plan alternating; 1 connection (1 thread), 16 connections (2 threads)', paths: {} };
for (const [name] of paths) {
  const c1 = read(name, 1), c16 = read(name, 16);
  if (!c1 || !c16) continue;
  out.paths[name] = { c1, c16 };
}
const ms = (us) => us / 1000;
const direct = out.paths.direct;
for (const [name, p] of Object.entries(out.paths)) {
  if (name === 'direct') continue;
  for (const c of ['c1', 'c16']) {
    p[c].added_p50_ms = ms(p[c].p50_us - direct[c].p50_us);
    p[c].added_p99_ms = ms(p[c].p99_us - direct[c].p99_us);
  }
}
const sb = out.paths.switchboard, pk = out.paths.portkey;
out.ratios = pk && sb ? {
  switchboard_over_portkey_rps_c1: sb.c1.rps / pk.c1.rps,
  switchboard_over_portkey_rps_c16: sb.c16.rps / pk.c16.rps,
} : null;
out.switchboard_ledger_records = ledgerCalls === 'null' ? null : Number(ledgerCalls);
out.portkey = portkeyNote || 'measured';
if (json === '1') {
  console.log(JSON.stringify(out));
  process.exit(0);
}
const f = (x, d = 3) => x.toFixed(d);
const signed = (x) => (x < 0 ? '' : '+') + f(x);
const errs = (r) => Object.values(r.errors).reduce((a, b) => a + b, 0);
const rows = [];
for (const [name, label] of paths) {
  const p = out.paths[name];
  if (!p) continue;
  const cell = (r) => [Math.round(r.rps).toLocaleString('en-US'), f(ms(r.p50_us)), f(ms(r.p99_us)),
    r.added_p50_ms === undefined ? '' : `${signed(r.added_p50_ms)} / ${signed(r.added_p99_ms)}`];
  rows.push([label, ...cell(p.c1), ...cell(p.c16)]);
  const e = errs(p.c1) + errs(p.c16);
  if (e) rows.push([`   ${e} errors or non-2xx answers!`, '', '', '', '', '', '', '', '']);
}
const head = ['path', '1 conn req/s', 'p50 ms', 'p99 ms', 'added p50/p99 ms', '16 conns req/s', 'p50 ms', 'p99 ms', 'added p50/p99 ms'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
console.log(`gateway benchmark: ${duration} s per measurement, ${cores} cores shared by wrk, the gateway and the fake provider`);
console.log(line(head));
for (const r of rows) console.log(line(r));
if (out.ratios) {
  console.log(`switchboard / portkey throughput: ${f(out.ratios.switchboard_over_portkey_rps_c1, 1)}x at 1 connection, ` +
              `${f(out.ratios.switchboard_over_portkey_rps_c16, 1)}x at 16 connections`);
} else {
  console.log(`portkey: ${out.portkey}`);
}
if (out.switchboard_ledger_records !== null) {
  const sent = sb ? sb.c1.requests + sb.c16.requests : 0;
  console.log(`switchboard ledger: ${out.switchboard_ledger_records} records (${sent} measured requests, plus warm-up)`);
}
JS
