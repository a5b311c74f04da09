#!/usr/bin/env bash
# Every test: builds, runs the doctest suites and the CLI checks with ctest,
# then the concurrency suites again in a ThreadSanitizer build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"

# ThreadSanitizer: the engine and the tests labelled "concurrency".
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSWITCHBOARD_SANITIZE=thread \
  -DSWITCHBOARD_BUILD_CLI=OFF -DSWITCHBOARD_BUILD_BENCH=OFF -DSWITCHBOARD_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-tsan -j "$(nproc)" --target switchboard_tests
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir build-tsan -L concurrency --output-on-failure -j "$(nproc)"
