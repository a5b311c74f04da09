#!/usr/bin/env bash
# Every test: builds, then runs the doctest suites and the CLI checks with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
