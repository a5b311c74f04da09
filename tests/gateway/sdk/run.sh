#!/usr/bin/env bash
# The official npm SDKs (openai, @anthropic-ai/sdk), the Vercel AI SDK (ai,
# @ai-sdk/openai, @ai-sdk/anthropic) and LangChain (@langchain/openai) against
# switchboard-gateway, with the fake provider (behind recorder.mjs, which keeps
# what reached it) as every model's upstream; then the ledger must hold
# one record per request the tests made. Registered with ctest as gateway_sdk.
#
#   bash tests/gateway/sdk/run.sh GATEWAY FAKE_PROVIDER SWITCHBOARD_CLI
#
# Copies tests/gateway/sdk to a temporary folder and runs `npm ci` there (so no
# node_modules is ever left in the source tree), starts both servers on
# 127.0.0.1 with free ports, runs `node --test`, stops the gateway with SIGTERM
# (it drains and flushes the ledger) and reads the ledger with `switchboard
# report --json`. Needs node >= 20 and npm, and the npm registry.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 GATEWAY FAKE_PROVIDER SWITCHBOARD_CLI" >&2
  exit 2
fi
GATEWAY=$(realpath "$1")
FAKE=$(realpath "$2")
CLI=$(realpath "$3")
HERE=$(cd "$(dirname "$0")" && pwd)
SOURCE_DIR=$(cd "$HERE/../../.." && pwd)

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "gateway_sdk: $tool is not installed" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-sdk.XXXXXX")
FAKE_PID=""
RECORDER_PID=""
GATEWAY_PID=""
cleanup() {
  local status=$?
  for pid in "$GATEWAY_PID" "$RECORDER_PID" "$FAKE_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [ "$status" -ne 0 ]; then
    for log in gateway.err recorder.err fake.err; do
      if [ -s "$WORK/$log" ]; then
        echo "---- $log (last 40 lines)" >&2
        tail -n 40 "$WORK/$log" >&2
      fi
    done
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits for `listening on HOST:PORT` as the first line of $1 while process $2
# lives; prints PORT.
wait_for_port() {
  local out=$1 pid=$2 name=$3 line=""
  for _ in $(seq 200); do
    line=$(head -n 1 "$out" 2>/dev/null || true)
    case "$line" in
      "listening on "*:*) echo "${line##*:}"; return 0 ;;
    esac
    kill -0 "$pid" 2>/dev/null || { echo "gateway_sdk: $name exited before listening" >&2; return 1; }
    sleep 0.05
  done
  echo "gateway_sdk: $name printed no 'listening on HOST:PORT' in 10 s (got: '$line')" >&2
  return 1
}

# ---------------------------------------------------------------- the SDKs
mkdir -p "$WORK/sdk"
cp "$HERE"/package.json "$HERE"/package-lock.json "$HERE"/*.mjs "$WORK/sdk/"
(cd "$WORK/sdk" && npm ci --no-audit --no-fund --loglevel=error >"$WORK/npm.log" 2>&1) || {
  cat "$WORK/npm.log" >&2
  echo "gateway_sdk: npm ci failed (is the npm registry reachable?)" >&2
  exit 1
}

# ---------------------------------------------------------------- fake provider
"$FAKE" --port 0 --threads 2 >"$WORK/fake.out" 2>"$WORK/fake.err" &
FAKE_PID=$!
FAKE_PORT=$(wait_for_port "$WORK/fake.out" "$FAKE_PID" fake_provider)

# ---------------------------------------------------------------- recorder
# A pass-through in front of the fake that keeps every request (recorder.mjs),
# so the tests can check what reached the upstream. Every model points at it.
node "$WORK/sdk/recorder.mjs" "$FAKE_PORT" >"$WORK/recorder.out" 2>"$WORK/recorder.err" &
RECORDER_PID=$!
UPSTREAM_PORT=$(wait_for_port "$WORK/recorder.out" "$RECORDER_PID" recorder)

# ---------------------------------------------------------------- config
# Every model points at the fake provider and has its key variable set, so none
# is served by sim. Tier cheap = [gpt-5-mini, claude-haiku-4-5], premium =
# [gpt-5, claude-opus-4-5] (helpers.mjs names them). Two gateway keys: one
# without a budget, one with $0 (every request refused with 429).
cp "$SOURCE_DIR/prices.toml" "$WORK/prices.toml"
cat >"$WORK/rules.lua" <<'LUA'
-- format/summarize/extract -> cheap; JSON output -> cheap; everything else -> premium.
local CHEAP_ROLES = { format = true, summarize = true, extract = true }
function classify(step, ctx)
  if CHEAP_ROLES[step.role] then return { tier = "cheap", reason = "mechanical role: " .. step.role } end
  if step.output_must_be_json then return { tier = "cheap", reason = "JSON output" } end
  return { tier = "premium", reason = "everything else" }
end
LUA
cat >"$WORK/switchboard.toml" <<TOML
[routing]
price_catalog = "prices.toml"
premium_tier = "premium"
default_fallback_tier = "cheap"

[calls]
connect_timeout_ms = 2_000
first_byte_timeout_ms = 10_000
total_timeout_ms = 20_000
stall_timeout_ms = 10_000
max_attempts = 1

[models.gpt-5-mini]
provider = "openai"
endpoint = "http://127.0.0.1:$UPSTREAM_PORT/v1"
api_key_env = "SWITCHBOARD_SDK_UPSTREAM_KEY"
context_window = 400_000
default_output_tokens = 800

[models.gpt-5]
provider = "openai"
endpoint = "http://127.0.0.1:$UPSTREAM_PORT/v1"
api_key_env = "SWITCHBOARD_SDK_UPSTREAM_KEY"
context_window = 400_000
default_output_tokens = 2_000

# Alone in tier "sampling" (the rules never choose it): a model the SDKs do not
# treat as a reasoning model, so they send every sampling parameter (named by
# the Vercel AI SDK and LangChain tests).
[models."gpt-4.1"]
provider = "openai"
endpoint = "http://127.0.0.1:$UPSTREAM_PORT/v1"
api_key_env = "SWITCHBOARD_SDK_UPSTREAM_KEY"
context_window = 1_000_000
default_output_tokens = 800

[models.claude-haiku-4-5]
provider = "anthropic"
endpoint = "http://127.0.0.1:$UPSTREAM_PORT"
api_key_env = "SWITCHBOARD_SDK_UPSTREAM_KEY"
context_window = 200_000
default_output_tokens = 800

[models.claude-opus-4-5]
provider = "anthropic"
endpoint = "http://127.0.0.1:$UPSTREAM_PORT"
api_key_env = "SWITCHBOARD_SDK_UPSTREAM_KEY"
context_window = 200_000
default_output_tokens = 2_000

[tiers.cheap]
models = ["gpt-5-mini", "claude-haiku-4-5"]

[tiers.premium]
models = ["gpt-5", "claude-opus-4-5"]

[tiers.sampling]
models = ["gpt-4.1"]

[workloads.default]
rules = "rules.lua"
fallback_tier = "cheap"

[gateway]
default_workload = "default"
ledger = "ledger.db"

[gateway.keys.main]
key_env = "SWITCHBOARD_SDK_KEY"
workload = "default"

[gateway.keys.broke]
key_env = "SWITCHBOARD_SDK_BROKE_KEY"
workload = "default"
budget_usd = 0.0
TOML

export SWITCHBOARD_SDK_UPSTREAM_KEY="sk-fake-upstream"
export SWITCHBOARD_SDK_KEY="sk-sb-sdk-main-$RANDOM$RANDOM"
export SWITCHBOARD_SDK_BROKE_KEY="sk-sb-sdk-broke-$RANDOM$RANDOM"

# ---------------------------------------------------------------- gateway
"$GATEWAY" --config "$WORK/switchboard.toml" --listen 127.0.0.1:0 --threads 2 \
  >"$WORK/gateway.out" 2>"$WORK/gateway.err" &
GATEWAY_PID=$!
GATEWAY_PORT=$(wait_for_port "$WORK/gateway.out" "$GATEWAY_PID" switchboard-gateway)
GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT"
echo "fake provider on 127.0.0.1:$FAKE_PORT (recorder on $UPSTREAM_PORT), gateway on 127.0.0.1:$GATEWAY_PORT"

# ---------------------------------------------------------------- the tests
export SWITCHBOARD_GATEWAY_URL="$GATEWAY_URL"
export SWITCHBOARD_UPSTREAM_URL="http://127.0.0.1:$UPSTREAM_PORT"
export SWITCHBOARD_SDK_CALLS="$WORK/calls.log"
: >"$SWITCHBOARD_SDK_CALLS"
(cd "$WORK/sdk" && env -u OPENAI_API_KEY -u OPENAI_BASE_URL -u ANTHROPIC_API_KEY -u ANTHROPIC_BASE_URL \
  -u ANTHROPIC_AUTH_TOKEN NODE_OPTIONS= node --test --test-concurrency=1 openai.test.mjs anthropic.test.mjs \
  vercel-ai.test.mjs langchain.test.mjs)

# /metrics counts what was served (the SDKs cannot read it).
METRICS_STATUS=$(node -e '
  fetch(process.argv[1] + "/metrics").then(async (r) => {
    const text = await r.text();
    console.log(r.status === 200 && /^switchboard_/m.test(text) ? "ok" : "status " + r.status + ": " + text.slice(0, 200));
  }, (e) => console.log(String(e)));' "$GATEWAY_URL")
[ "$METRICS_STATUS" = ok ] || { echo "gateway_sdk: GET /metrics: $METRICS_STATUS" >&2; exit 1; }

# ---------------------------------------------------------------- drain, then the ledger
kill -TERM "$GATEWAY_PID"
GATEWAY_STATUS=0
wait "$GATEWAY_PID" || GATEWAY_STATUS=$?
GATEWAY_PID=""
[ "$GATEWAY_STATUS" -eq 0 ] || { echo "gateway_sdk: switchboard-gateway exited $GATEWAY_STATUS on SIGTERM" >&2; exit 1; }

[ -f "$WORK/ledger.db" ] || { echo "gateway_sdk: no ledger at $WORK/ledger.db" >&2; exit 1; }
"$CLI" report --json "$WORK/ledger.db" --config "$WORK/switchboard.toml" --by model >"$WORK/report.json"
node - "$WORK/report.json" "$SWITCHBOARD_SDK_CALLS" <<'JS'
// Every answered request: one ok record for the model that served it; every
// budget refusal: one refused_by_budget record; nothing else.
const fs = require('node:fs');
const [reportFile, callsFile] = process.argv.slice(2);
const report = JSON.parse(fs.readFileSync(reportFile, 'utf8'));
const lines = fs.readFileSync(callsFile, 'utf8').split('\n').filter(Boolean);
const okByModel = {};
let refused = 0;
for (const line of lines) {
  const [kind, model] = line.split(' ');
  if (kind === 'ok') okByModel[model] = (okByModel[model] || 0) + 1;
  else refused++;
}
const ok = lines.length - refused;
const problems = [];
const total = report.total.statuses;
if (total.ok !== ok) problems.push(`${total.ok} ok records, ${ok} answered requests`);
if (total.refused_by_budget !== refused) problems.push(`${total.refused_by_budget} refused_by_budget records, ${refused} refusals`);
if (total.error !== 0 || total.fallback !== 0) problems.push(`${total.error} error and ${total.fallback} fallback records`);
const ledgerOk = {};
for (const g of report.groups) if (g.statuses.ok) ledgerOk[g.key] = g.statuses.ok;
for (const model of new Set([...Object.keys(okByModel), ...Object.keys(ledgerOk)])) {
  if ((okByModel[model] || 0) !== (ledgerOk[model] || 0)) {
    problems.push(`${model}: ${ledgerOk[model] || 0} ok records, ${okByModel[model] || 0} answered requests`);
  }
}
if (problems.length) {
  console.error('gateway_sdk: the ledger does not match the requests made:\n  ' + problems.join('\n  '));
  process.exit(1);
}
console.log(`ledger: ${ok} ok records (${Object.entries(okByModel).map(([m, n]) => `${m} ${n}`).join(', ')}), ` +
            `${refused} refused_by_budget, as requested`);
JS
