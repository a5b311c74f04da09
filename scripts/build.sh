#!/usr/bin/env bash
# Configures and builds into build/ (Release with debug info, warnings on).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSWITCHBOARD_WERROR=ON >/dev/null
cmake --build build -j "$(nproc)"
