#!/usr/bin/env bash
# The main job: build, check the shipped rules against their test cases, then
# run the demo agent trace through the rules and the chosen models on the
# offline defaults (any model whose key variable is unset is served by the sim
# provider), record every call in switchboard.db and print the report. The
# trace's tasks are sessions: each re-sends its conversation, so the report
# shows what the prompt caches saved; the second run routes the same trace
# with rules/cache_aware.lua, which weighs each model's warm cache against the
# cheaper models (README: "The demo's sessions").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh demo
./build/hosts/cli/switchboard test
./build/hosts/cli/switchboard run --parallel 8 examples/agent-trace.jsonl
echo
./build/hosts/cli/switchboard run --parallel 8 --workload cache_aware examples/agent-trace.jsonl
