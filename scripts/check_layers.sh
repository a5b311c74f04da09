#!/usr/bin/env bash
# Checks that includes point one way between the engine's folders (README,
# "Layout"): exits 1 naming every include that breaks a rule. Run by ctest.
#
#   util/       includes only public headers, json/ and util/ (every folder but lua/ and async/
#               may include json/: engine/internal/json/)
#   async/      includes only public headers and async/ (fibers, curl on the loop)
#   lua/        includes only public headers and lua/ (no other folder's private header)
#   state/      includes public headers, util/ and state/ (Redis: what several processes share)
#   cost/       includes public headers, util/, state/ and cost/
#   eval/       includes public headers, util/ and eval/ (it calls models through the public Dispatcher)
#   health/     includes public headers, util/ and health/
#   sessions/   includes public headers, util/ and sessions/
#   ledger/     includes public headers, util/, async/ (yields on a fiber) and ledger/
#   providers/  includes public headers, util/, async/, cost/ and providers/
#   rules/      never includes providers/ or ledger/
#   tokenize/   includes public headers, util/ and tokenize/
#   engine/include/switchboard/  includes only switchboard/ and standard headers
#   engine/internal/json/        includes only public headers and json/ (every folder
#                                and this repository's hosts may use it)
#   hosts/, examples/, bench/    include no private engine header (json/ is not one)
set -euo pipefail
cd "$(dirname "$0")/.."

failures=0
# check DIR ALLOWED_REGEX: every quoted include in DIR must match ALLOWED_REGEX.
check() {
  local dir=$1 allowed=$2
  while IFS= read -r hit; do
    local file=${hit%%:*} rest=${hit#*:}
    local line=${rest%%:*} include=${rest#*:}
    local target
    target=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]+"([^"]+)".*/\1/' <<<"$include")
    if ! [[ $target =~ $allowed ]]; then
      echo "$file:$line: includes \"$target\", which $dir may not use"
      failures=$((failures + 1))
    fi
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"' "$dir" --include='*.h' --include='*.cpp' || true)
}

check engine/src/util      '^(switchboard|json|util)/'
check engine/src/async     '^(switchboard|async)/'
check engine/src/lua       '^(switchboard|lua)/'
check engine/src/state     '^(switchboard|json|util|async|state)/'
check engine/src/cost      '^(switchboard|json|util|state|cost)/'
check engine/src/eval      '^(switchboard|json|util|eval)/'
check engine/src/health    '^(switchboard|json|util|health)/'
check engine/src/sessions  '^(switchboard|json|util|sessions)/'
check engine/src/ledger    '^(switchboard|json|util|async|ledger)/'
check engine/src/providers '^(switchboard|json|util|async|cost|providers)/'
check engine/src/rules     '^(switchboard|json|util|lua|cost|rules)/'
check engine/src/tokenize  '^(switchboard|json|util|tokenize)/'
check engine/include/switchboard '^switchboard/'
check engine/internal/json '^(switchboard|json)/'
private='^(util|async|lua|state|cost|eval|health|sessions|ledger|providers|rules|tokenize)/'
for dir in hosts examples bench; do
  while IFS= read -r hit; do
    echo "$hit: a host includes a private engine header"
    failures=$((failures + 1))
  done < <(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]+\"(util|async|lua|state|cost|eval|health|sessions|ledger|providers|rules|tokenize)/" "$dir" \
             --include='*.h' --include='*.cpp' || true)
done
# No third-party header leaks through the public headers.
while IFS= read -r hit; do
  echo "$hit: a public header includes a third-party header"
  failures=$((failures + 1))
done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]+<(lua|lauxlib|lualib|toml\+\+|nlohmann|valijson|spdlog|curl|sqlite3|boost|openssl|CLI|hiredis)' \
           engine/include || true)
# No source file in engine/src's root but the top floor.
for f in engine/src/*; do
  [ -f "$f" ] || continue
  case "$(basename "$f")" in
    config.cpp|dispatch.cpp|engine.cpp) ;;
    *) echo "$f: engine/src's root holds only the top floor (config, dispatch, engine)"; failures=$((failures + 1)) ;;
  esac
done

if [ "$failures" -gt 0 ]; then
  echo "$failures include(s) break the layering"
  exit 1
fi
echo "layers: every include points one way"
