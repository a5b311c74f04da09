#!/usr/bin/env bash
# Configures and builds into build/ (Release with debug info, warnings on).
#   bash scripts/build.sh        everything: library, both hosts, tests, examples, benchmarks, API reference
#   bash scripts/build.sh demo   only what the demo runs: the library and the `switchboard` command
# The install prefix is /usr, so `cpack -G DEB` in build/ makes the Debian
# package; install by hand with `cmake --install build --prefix /usr/local`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = demo ]; then
  bash scripts/deps.sh
  parts=(-DSWITCHBOARD_BUILD_GATEWAY=OFF -DSWITCHBOARD_BUILD_TESTS=OFF -DSWITCHBOARD_BUILD_EXAMPLES=OFF
         -DSWITCHBOARD_BUILD_BENCH=OFF -DSWITCHBOARD_BUILD_DOCS=OFF)
  targets=(--target switchboard)
else
  bash scripts/deps.sh all
  parts=(-DSWITCHBOARD_BUILD_GATEWAY=ON -DSWITCHBOARD_BUILD_TESTS=ON -DSWITCHBOARD_BUILD_EXAMPLES=ON
         -DSWITCHBOARD_BUILD_BENCH=ON -DSWITCHBOARD_BUILD_DOCS=ON)
  targets=()
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSWITCHBOARD_WERROR=ON \
  -DCMAKE_INSTALL_PREFIX=/usr "${parts[@]}" >/dev/null
cmake --build build -j "$(nproc)" "${targets[@]}"
