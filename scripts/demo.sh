#!/usr/bin/env bash
# The main job: build, check the shipped rules against their test cases, then
# run the demo agent trace through the rules and the chosen models on the
# offline defaults (any model whose key variable is unset is served by the sim
# provider), record every call in switchboard.db and print the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh demo
./build/hosts/cli/switchboard test
./build/hosts/cli/switchboard run --parallel 8 examples/agent-trace.jsonl
