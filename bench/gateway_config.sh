# The benchmarks' switchboard-gateway setup, sourced by bench/gateway.sh and
# bench/upstream_tls.sh so that both measure the same gateway.
#
#   bench_need_wrk                            wrk, installed from Debian if missing
#   bench_need COMMAND PACKAGE                any command, its Debian package installed if missing
#   bench_programs                            GATEWAY and FAKE from BUILD (default build/, built if missing)
#   bench_work NAME                           a temporary folder WORK; at exit the processes in PIDS
#                                             are stopped and WORK removed
#   wait_for_port OUT PID NAME [SECONDS]      prints PORT once OUT's first line is "listening on HOST:PORT"
#   free_port                                 a free loopback port (for servers that take a number, not 0)
#   bench_nginx_conf DIR PORT UPSTREAM_PORT WORKERS [one]  > DIR/nginx.conf: the floor, nginx as a
#                                             keep-alive reverse proxy doing no work; "one": a single
#                                             process (no master), for callgrind
#   bench_floor WORKERS [one]                 with FLOOR 1 and nginx there (installed if missing):
#                                             WORK/nginx/nginx.conf to FAKE_PORT, FLOOR_PORT, FLOOR_URL;
#                                             else false, FLOOR_NOTE saying why
#   wait_until_answers URL PID SECONDS        polls URL until it answers, PID ends, or SECONDS pass
#
# The scripts define say() (their progress on stderr) before using these.
#   bench_gateway_folder DIR                  prices.toml and rules.lua into DIR
#   bench_gateway_config ENDPOINT [BUDGET_USD] [BUSY_POLL_US] > DIR/switchboard.toml
#
# Rules: format/summarize/extract -> cheap (gpt-5-mini), the rest -> premium
# (gpt-5), both at ENDPOINT (an OpenAI-compatible base URL) with the key in
# SWITCHBOARD_BENCH_UPSTREAM_KEY; one attempt per call; the SQLite ledger
# ledger.db in the folder the gateway runs in.

bench_need() {
  command -v "$1" >/dev/null && return 0
  echo "$(basename "$0"): installing $2 (Debian) for $1" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$2" >&2
}

bench_need_wrk() { bench_need wrk wrk; }

bench_programs() {
  if [ -z "${BUILD:-}" ]; then
    BUILD="$ROOT/build"
    if [ ! -x "$BUILD/hosts/gateway/switchboard-gateway" ] || [ ! -x "$BUILD/tests/fake_provider" ]; then
      say "building (scripts/build.sh)"
      bash "$ROOT/scripts/build.sh" >&2
    fi
  fi
  GATEWAY="$BUILD/hosts/gateway/switchboard-gateway"
  FAKE="$BUILD/tests/fake_provider"
  local p
  for p in "$GATEWAY" "$FAKE"; do
    [ -x "$p" ] || { say "$p is missing: build it first (bash scripts/build.sh)"; exit 1; }
  done
}

bench_work() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# Each process in PIDS gets TERM, then KILL if it still runs 10 s later.
bench_cleanup() {
  local status=$? pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
  exit "$status"
}

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

# A worker per core in bench/gateway.sh (as the gateway has an I/O thread per
# core), the request body kept in memory (the 51 KB row), answers passed on as
# they come (the streamed row), no access log (the gateway's ledger is its
# work, not the floor's).
bench_nginx_conf() {
  local dir=$1 port=$2 upstream=$3 workers=$4 one=${5:-}
  cat <<NGINX
daemon off;
${one:+master_process off;}
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  client_max_body_size 4m;
  client_body_buffer_size 4m;
  upstream fake { server 127.0.0.1:$upstream; keepalive 128; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://fake;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGINX
}

bench_floor() {
  FLOOR_NOTE=""
  if [ "$FLOOR" -ne 1 ]; then
    FLOOR_NOTE="skipped (--no-floor)"
    return 1
  fi
  PATH="$PATH:/usr/sbin"
  if ! bench_need nginx nginx-light || ! command -v nginx >/dev/null; then
    FLOOR_NOTE="nginx could not be installed"
    return 1
  fi
  mkdir -p "$WORK/nginx"
  FLOOR_PORT=$(free_port)
  FLOOR_URL="http://127.0.0.1:$FLOOR_PORT"
  bench_nginx_conf "$WORK/nginx" "$FLOOR_PORT" "$FAKE_PORT" "$1" "${2:-}" >"$WORK/nginx/nginx.conf"
}

wait_until_answers() {
  for _ in $(seq $(($3 * 20))); do
    curl -s -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

wait_for_port() {
  local out=$1 pid=$2 name=$3 seconds=${4:-10} line=""
  for _ in $(seq $((seconds * 20))); do
    line=$(head -n 1 "$out" 2>/dev/null || true)
    case "$line" in "listening on "*:*) echo "${line##*:}"; return 0 ;; esac
    kill -0 "$pid" 2>/dev/null || { say "$name exited before listening"; return 1; }
    sleep 0.05
  done
  say "$name printed no 'listening on HOST:PORT' in $seconds s"
  return 1
}

bench_gateway_folder() {
  mkdir -p "$1"
  cp "$ROOT/prices.toml" "$1/prices.toml"
  cat >"$1/rules.lua" <<'LUA'
-- format/summarize/extract -> cheap; everything else -> premium.
local CHEAP_ROLES = { format = true, summarize = true, extract = true }
function classify(step, ctx)
  if CHEAP_ROLES[step.role] then return { tier = "cheap", reason = "mechanical role" } end
  return { tier = "premium", reason = "everything else" }
end
LUA
}

bench_gateway_config() {
  local endpoint=$1 budget=${2:-} busy_poll=${3:-}
  cat <<TOML
[routing]
price_catalog = "prices.toml"
premium_tier = "premium"

[calls]
max_attempts = 1

[models.gpt-5-mini]
provider = "openai"
endpoint = "$endpoint"
api_key_env = "SWITCHBOARD_BENCH_UPSTREAM_KEY"
context_window = 400_000
default_output_tokens = 16

[models.gpt-5]
provider = "openai"
endpoint = "$endpoint"
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
${budget:+budget_usd = $budget}

[gateway]
ledger = "ledger.db"
max_upstream_calls = 1024
${busy_poll:+busy_poll_us = $busy_poll}
TOML
}
