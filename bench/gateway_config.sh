# The benchmarks' switchboard-gateway setup, sourced by bench/gateway.sh and
# bench/upstream_tls.sh so that both measure the same gateway.
#
#   bench_need_wrk                            wrk, installed from Debian if missing
#   bench_need COMMAND PACKAGE                any command, its Debian package installed if missing
#   bench_gateway_folder DIR                  prices.toml and rules.lua into DIR
#   bench_gateway_config ENDPOINT [BUDGET_USD] [BUSY_POLL_US] > DIR/switchboard.toml
#
# Rules: format/summarize/extract -> cheap (gpt-5-mini), the rest -> premium
# (gpt-5), both at ENDPOINT (an OpenAI-compatible base URL) with the key in
# SWITCHBOARD_BENCH_UPSTREAM_KEY; one attempt per call; the SQLite ledger
# ledger.db in the folder the gateway runs in.

bench_need() {
  command -v "$1" >/dev/null && return 0
  echo "$(basename "$0"): installing $2 (Debian) for $1" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$2" >&2
}

bench_need_wrk() { bench_need wrk wrk; }

bench_gateway_folder() {
  mkdir -p "$1"
  cp "$ROOT/prices.toml" "$1/prices.toml"
  cat >"$1/rules.lua" <<'LUA'
-- format/summarize/extract -> cheap; everything else -> premium.
local CHEAP_ROLES = { format = true, summarize = true, extract = true }
function classify(step, ctx)
  if CHEAP_ROLES[step.role] then return { tier = "cheap", reason = "mechanical role" } end
  return { tier = "premium", reason = "everything else" }
end
LUA
}

bench_gateway_config() {
  local endpoint=$1 budget=${2:-} busy_poll=${3:-}
  cat <<TOML
[routing]
price_catalog = "prices.toml"
premium_tier = "premium"

[calls]
max_attempts = 1

[models.gpt-5-mini]
provider = "openai"
endpoint = "$endpoint"
api_key_env = "SWITCHBOARD_BENCH_UPSTREAM_KEY"
context_window = 400_000
default_output_tokens = 16

[models.gpt-5]
provider = "openai"
endpoint = "$endpoint"
api_key_env = "SWITCHBOARD_BENCH_UPSTREAM_KEY"
context_window = 400_000
default_output_tokens = 16

[tiers.cheap]
models = ["gpt-5-mini"]

[tiers.premium]
models = ["gpt-5"]

[workloads.default]
rules = "rules.lua"
fallback_tier = "cheap"
${budget:+budget_usd = $budget}

[gateway]
ledger = "ledger.db"
max_upstream_calls = 1024
${busy_poll:+busy_poll_us = $busy_poll}
TOML
}
