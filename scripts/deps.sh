#!/usr/bin/env bash
# Installs the Debian packages Switchboard builds with, if any is missing.
# Sourced by demo.sh and test.sh; safe to run again.
set -euo pipefail

SWITCHBOARD_PACKAGES=(
  cmake ninja-build g++ pkg-config
  liblua5.4-dev libtomlplusplus-dev libspdlog-dev doctest-dev
  nlohmann-json3-dev libcli11-dev libssl-dev libsqlite3-dev
  libcurl4-openssl-dev   # the model clients' HTTP transport
  libboost-dev           # Boost.Beast: the fake provider in tests, the gateway
  chromium    # tests: report_test renders the --html page in headless Chromium
)

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
