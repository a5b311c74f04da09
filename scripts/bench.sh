#!/usr/bin/env bash
# Builds and runs every benchmark; with --json each prints one JSON object per line.
#
# The gateway benchmark is a separate command (it starts servers, installs wrk
# and the Portkey peer with npm, and takes about a minute):
#   bash scripts/bench.sh gateway [--duration SECONDS] [--json]   # = bash bench/gateway.sh ...
# and its count of instructions per request under callgrind (valgrind, installed if missing):
#   bash scripts/bench.sh instructions [--requests N] [--history TURNS] [--json]   # = bash bench/gateway_instructions.sh ...
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = gateway ]; then
  shift
  exec bash bench/gateway.sh "$@"
fi
if [ "${1:-}" = instructions ]; then
  shift
  exec bash bench/gateway_instructions.sh "$@"
fi
bash scripts/build.sh
for b in bench_decide bench_shadow bench_reload bench_memory bench_client; do
  ./build/bench/$b "$@"
done
