#!/usr/bin/env bash
# Builds and runs every benchmark; with --json each prints one JSON object per line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
for b in bench_decide bench_reload bench_memory; do
  ./build/bench/$b "$@"
done
