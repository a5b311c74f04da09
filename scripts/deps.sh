#!/usr/bin/env bash
# Installs the Debian packages Switchboard needs, if any is missing; safe to
# run again.
#   bash scripts/deps.sh        what the library and the `switchboard` command build with (demo.sh)
#   bash scripts/deps.sh all    that, plus the gateway, the tests, the API reference and the .deb (test.sh)
set -euo pipefail

SWITCHBOARD_PACKAGES=(
  cmake ninja-build g++ pkg-config
  liblua5.4-dev libtomlplusplus-dev libspdlog-dev
  nlohmann-json3-dev libcli11-dev libssl-dev libsqlite3-dev
  libpq-dev              # the PostgreSQL ledger sink
  libcurl4-openssl-dev   # the model clients' HTTP transport
  libpcre2-dev           # the tokenizers' split patterns
  libboost-dev libboost-context-dev  # Boost.Asio and Boost.Context: FiberLoop; Boost.Beast: the gateway
  libhiredis-dev         # [state] backend = "redis": budgets shared by several processes
  libvalijson-dev        # JSON Schema validation: the json_schema and tool_call graders of evals
  libsimdjson-dev        # reading providers' answers and streamed events (json/read.h)
)
if [ "${1:-}" = all ]; then
  SWITCHBOARD_PACKAGES+=(
    doctest-dev
    libgoogle-perftools-dev  # tcmalloc, the gateway's allocator (SWITCHBOARD_GATEWAY_ALLOCATOR)
    chromium       # tests: report_test renders the --html page in headless Chromium
    doxygen        # the API reference; undocumented public members fail a test
    dpkg-dev       # cpack's dpkg-shlibdeps: the .deb's Depends
    curl           # tests/packaging/deb.sh asks the installed gateway
    postgresql     # tests: the PostgreSQL ledger suites start their own server (initdb, postgres)
    redis-server   # tests: the shared-state tests start their own redis-server
  )
fi

missing=()
for p in "${SWITCHBOARD_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
