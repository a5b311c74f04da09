#!/usr/bin/env bash
# The cost of an https upstream, on the gateway's two paths, in the same run:
#   loop  the I/O thread's own HTTP/1.1 client with OpenSSL (the default),
#   curl  libcurl's multi interface on the same loop (forced by an
#         https_proxy that no_proxy='*' then bypasses: curl's path, no proxy).
# The fake provider sits behind its TLS front (fake_provider --tls 1: a test
# CA the gateway trusts through SSL_CERT_FILE). Each path gets a 2 s warm-up,
# then wrk at 1 connection and at 16, POST /v1/chat/completions not streamed;
# prints requests/s, p50/p99 and the gateway's CPU per request (its
# /proc/PID/stat user and system time over the row, divided by the requests),
# and loop/curl ratios. A measurement, not a test: nothing here asserts a time.
# The TLS front is a test's (a thread per connection): it caps both paths the
# same, and its CPU is not the gateway's.
#
# --front nghttpx puts Debian's nghttpx (nghttp2-proxy, installed if missing;
# one worker, a CA and certificate made here with openssl) before the plain
# fake provider instead: it offers HTTP/2 as well as HTTP/1.1 (ALPN h2,
# http/1.1), as the hosted providers do, so curl's path speaks HTTP/2, its
# calls multiplexed on one connection per I/O thread, against the loop's
# HTTP/1.1 with a kept connection per concurrent call. Each row also counts
# the gateway's connections to the front, halfway through it (ss).
#
#   bash bench/upstream_tls.sh [--duration SECONDS] [--build DIR] [--front test|nghttpx]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/gateway_config.sh"

DURATION=5
BUILD=""
FRONT=test
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=${2:?--duration takes seconds}; shift 2 ;;
    --build) BUILD=${2:?--build takes a folder}; shift 2 ;;
    --front) FRONT=${2:?--front takes test or nghttpx}; shift 2 ;;
    *) echo "usage: bash bench/upstream_tls.sh [--duration SECONDS] [--build DIR] [--front test|nghttpx]" >&2; exit 2 ;;
  esac
done
case "$FRONT" in test|nghttpx) ;; *) echo "upstream_tls: --front takes test or nghttpx" >&2; exit 2 ;; esac
say() { echo "upstream_tls: $*" >&2; }
bench_programs
bench_need_wrk
bench_work switchboard-bench-tls

# Waits until file $1 has $2 lines while process $3 lives.
wait_for_lines() {
  for _ in $(seq 200); do
    [ "$(wc -l <"$1")" -ge "$2" ] && return 0
    kill -0 "$3" 2>/dev/null || { say "$(basename "$1" .out) exited early: $(cat "${1%.out}.err")"; return 1; }
    sleep 0.05
  done
  say "$(basename "$1" .out) printed nothing in 10 s"
  return 1
}

if [ "$FRONT" = test ]; then
  "$FAKE" --port 0 --tls 1 >"$WORK/fake.out" 2>"$WORK/fake.err" &
  PIDS+=($!)
  wait_for_lines "$WORK/fake.out" 2 "${PIDS[-1]}"
  line=$(sed -n 2p "$WORK/fake.out")  # https on localhost:PORT, trusting FILE
  TLS_PORT=$(echo "$line" | sed -n 's/^https on localhost:\([0-9]*\),.*/\1/p')
  CA_FILE=${line##*trusting }
else
  PATH="$PATH:/usr/sbin"
  bench_need nghttpx nghttp2-proxy
  bench_need openssl openssl
  "$FAKE" --port 0 >"$WORK/fake.out" 2>"$WORK/fake.err" &
  PIDS+=($!)
  wait_for_lines "$WORK/fake.out" 1 "${PIDS[-1]}"
  FAKE_PORT=$(head -n 1 "$WORK/fake.out" | sed 's/.*://')
  # A CA, and the front's certificate for localhost signed by it.
  (cd "$WORK" &&
     openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
       -keyout ca.key -out ca.pem 2>/dev/null &&
     openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
       -keyout front.key -out front.csr 2>/dev/null &&
     printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >front.ext &&
     openssl x509 -req -in front.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile front.ext \
       -out front.pem 2>/dev/null) || { say "openssl could not make the front's certificate"; exit 1; }
  CA_FILE="$WORK/ca.pem"
  TLS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  nghttpx --frontend="127.0.0.1,$TLS_PORT" --backend="127.0.0.1,$FAKE_PORT" --workers=1 \
    --no-ocsp --log-level=WARN --errorlog-file="$WORK/nghttpx.err" \
    "$WORK/front.key" "$WORK/front.pem" >"$WORK/nghttpx.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    curl -s -o /dev/null --cacert "$CA_FILE" "https://localhost:$TLS_PORT/" && break
    kill -0 "${PIDS[-1]}" 2>/dev/null || { say "nghttpx exited: $(tail -n 3 "$WORK/nghttpx.out")"; exit 1; }
    sleep 0.05
  done
  proto=$(curl -s -o /dev/null -w '%{http_version}' --cacert "$CA_FILE" "https://localhost:$TLS_PORT/")
  [ "$proto" = 2 ] || { say "nghttpx did not speak HTTP/2 to curl ($proto)"; exit 1; }
fi

# run_path NAME [ENV...]: a gateway with ENV, warmed up, then the two rows.
run_path() {
  local name=$1 c
  shift
  bench_gateway_folder "$WORK/$name"
  bench_gateway_config "https://localhost:$TLS_PORT/v1" >"$WORK/$name/switchboard.toml"
  (cd "$WORK/$name" && exec env "$@" SSL_CERT_FILE="$CA_FILE" SWITCHBOARD_BENCH_UPSTREAM_KEY=sk-mock \
    "$GATEWAY" --config switchboard.toml --listen 127.0.0.1:0 >gateway.out 2>gateway.err) &
  local pid=$!
  PIDS+=("$pid")
  wait_for_lines "$WORK/$name/gateway.out" 1 "$pid"
  local url="http://127.0.0.1:$(head -n 1 "$WORK/$name/gateway.out" | sed 's/.*://')"
  local status
  status=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    --data '{"model":"auto","messages":[{"role":"user","content":"hi"}]}' "$url/v1/chat/completions")
  [ "$status" = 200 ] || { say "$name: the gateway answered $status: $(tail -n 3 "$WORK/$name/gateway.err")"; exit 1; }
  say "warming up $name"
  TARGET=switchboard wrk -t2 -c16 -d2s --timeout 5s -s "$ROOT/bench/gateway-chat.lua" "$url" >/dev/null
  for c in 1 16; do
    say "measuring $name: $c connection(s), ${DURATION} s"
    local before after
    before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    # The gateway's connections to the front, counted halfway through the row.
    (sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')"
     ss -Htn state established "( dport = :$TLS_PORT )" | wc -l >"$WORK/$name-c$c.conns") &
    local counter=$!
    TARGET=switchboard RESULT_FILE="$WORK/$name-c$c.json" \
      wrk -t"$([ "$c" -eq 1 ] && echo 1 || echo 2)" -c"$c" -d"${DURATION}s" --timeout 5s \
      -s "$ROOT/bench/gateway-chat.lua" "$url" >/dev/null
    after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    wait "$counter"
    echo "$((after - before))" >"$WORK/$name-c$c.ticks"
  done
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
}

run_path loop
run_path curl https_proxy=http://127.0.0.1:9 no_proxy='*'

python3 - "$WORK" "$(getconf CLK_TCK)" "$FRONT" <<'PY'
import json, sys
work, hz, front = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = {}
for name in ("loop", "curl"):
    for c in (1, 16):
        r = json.load(open(f"{work}/{name}-c{c}.json"))
        ticks = int(open(f"{work}/{name}-c{c}.ticks").read())
        r["cpu_us"] = ticks / hz / max(r["requests"], 1) * 1e6
        r["upstream_conns"] = int(open(f"{work}/{name}-c{c}.conns").read() or 0)
        rows[(name, c)] = r
if front == "test":
    print("https upstream (fake provider behind the test's TLS front, HTTP/1.1), switchboard-gateway's two paths")
    protocol = {"loop": "http/1.1", "curl": "http/1.1"}
else:
    print("https upstream (fake provider behind nghttpx, offering h2 and http/1.1), switchboard-gateway's two paths")
    protocol = {"loop": "http/1.1", "curl": "h2"}
print(f"{'path':<6}{'proto':>9}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}"
      f"{'upstream conns':>16}{'errors':>8}")
for (name, c), r in rows.items():
    print(f"{name:<6}{protocol[name]:>9}{c:>6}{r['rps']:>10.0f}{r['p50_us']/1000:>9.3f}{r['p99_us']/1000:>9.3f}"
          f"{r['cpu_us']:>12.0f}{r['upstream_conns']:>16}{sum(r['errors'].values()):>8}")
for c in (1, 16):
    loop, curl = rows[("loop", c)], rows[("curl", c)]
    print(f"{c} conn(s): loop/curl throughput {loop['rps']/curl['rps']:.2f}x, "
          f"CPU per request {loop['cpu_us']/curl['cpu_us']:.2f}x, p50 {loop['p50_us']/curl['p50_us']:.2f}x")
PY
