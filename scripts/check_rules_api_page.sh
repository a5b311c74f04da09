#!/usr/bin/env bash
# Checks that docs/rules-api.md is the page `switchboard rules-api` prints
# now, so the documentation of the rule API cannot drift from the engine's
# table (engine/src/lua/rules_api.h). Run by ctest: check_rules_api_page.sh CLI.
set -euo pipefail
cli=$1
cd "$(dirname "$0")/.."

page=$(mktemp)
trap 'rm -f "$page"' EXIT
"$cli" rules-api >"$page"
if ! diff -u docs/rules-api.md "$page"; then
  echo "docs/rules-api.md is stale: run \`switchboard rules-api > docs/rules-api.md\`"
  exit 1
fi
echo "docs/rules-api.md is current"
