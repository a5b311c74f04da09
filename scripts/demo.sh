#!/usr/bin/env bash
# The main job: build, then route the demo agent trace through the shipped
# rules on the offline defaults (no model is called, no key is needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
./build/hosts/cli/switchboard test
./build/hosts/cli/switchboard route examples/agent-trace.jsonl
