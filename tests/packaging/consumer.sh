#!/usr/bin/env bash
# The installed package works for a project outside the source tree:
#   static  `cmake --install` of BUILD into a temporary prefix; examples/consumer
#           built against it with find_package and with pkg-config, and run
#   shared  the engine built with BUILD_SHARED_LIBS=ON, installed, the consumer
#           built against it and run (it must load libswitchboard.so.MAJOR.MINOR)
# Usage: consumer.sh static|shared BUILD_DIR SOURCE_DIR VERSION
set -euo pipefail
mode=$1 build=$2 src=$3 version=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
offline=(env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY -u GEMINI_API_KEY -u LOCAL_LLM_API_KEY)

if [ "$mode" = shared ]; then
  cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DSWITCHBOARD_BUILD_CLI=OFF -DSWITCHBOARD_BUILD_GATEWAY=OFF -DSWITCHBOARD_BUILD_TESTS=OFF \
    -DSWITCHBOARD_BUILD_EXAMPLES=OFF -DSWITCHBOARD_BUILD_BENCH=OFF >/dev/null
  cmake --build "$work/build" >/dev/null
  build=$work/build
fi
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null

# What was installed.
libdir=$(dirname "$(find "$prefix" -name 'switchboard.pc' -path '*/pkgconfig/*')")
libdir=${libdir%/pkgconfig}
[ -d "$libdir" ] || fail "no switchboard.pc under $prefix"
for f in include/switchboard/switchboard.h include/switchboard/version.h \
         share/switchboard/switchboard.toml share/switchboard/prices.toml share/switchboard/rules/default.lua \
         share/switchboard/tokenizers/o200k_base.json share/switchboard/tokenizers/cl100k_base.json \
         share/switchboard/tokenizers/LICENSE; do
  [ -f "$prefix/$f" ] || fail "$f is not installed"
done
for f in cmake/switchboard/switchboardConfig.cmake cmake/switchboard/switchboardConfigVersion.cmake \
         cmake/switchboard/switchboardTargets.cmake; do
  [ -f "$libdir/$f" ] || fail "${libdir#"$prefix"/}/$f is not installed"
done
[ "$(ls "$prefix/include")" = switchboard ] || fail "include/ holds more than switchboard/: $(ls "$prefix/include")"
if [ "$mode" = static ]; then
  [ -f "$libdir/libswitchboard.a" ] || fail "libswitchboard.a is not installed"
  for b in switchboard switchboard-gateway; do
    [ -x "$prefix/bin/$b" ] || fail "bin/$b is not installed"
    [ "$("$prefix/bin/$b" --version)" = "$b $version" ] || fail "$b --version does not say $version"
  done
else
  soname=libswitchboard.so.$(cut -d. -f1,2 <<<"$version")
  [ -f "$libdir/libswitchboard.so.$version" ] || fail "libswitchboard.so.$version is not installed"
  [ -L "$libdir/$soname" ] && [ -L "$libdir/libswitchboard.so" ] || fail "the .so links are missing"
  readelf -d "$libdir/libswitchboard.so.$version" | grep -q "SONAME.*\[$soname\]" || fail "soname is not $soname"
fi

# find_package(switchboard 0.2 CONFIG REQUIRED) from examples/consumer.
cmake -S "$src/examples/consumer" -B "$work/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
cmake --build "$work/consumer" >/dev/null
# Private dependencies stay private: the consumer compiles with no Lua, toml++
# or spdlog header path or definition.
if grep -E 'lua5\.4|TOML_|SPDLOG_|tomlplusplus' "$work/consumer/compile_commands.json"; then
  fail "a private dependency leaks into the consumer's compile line"
fi
out=$("${offline[@]}" "$work/consumer/consumer" "$prefix/share/switchboard/switchboard.toml")
echo "$out"
[[ $out =~ ^switchboard\ $version:\ cheap\ [a-z0-9.-]+\ \$[0-9.]+\ estimated,\ \$[0-9.]+\ billed$ ]] ||
  fail "the consumer's answer is not as expected: $out"
if [ "$mode" = shared ]; then
  readelf -d "$work/consumer/consumer" | grep -q "NEEDED.*\[$soname\]" || fail "the consumer does not load $soname"
fi

# An older minor version is not accepted: 0.2 and 0.1 differ in API.
mkdir -p "$work/old"
cat > "$work/old/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.20)
project(old LANGUAGES CXX)
find_package(switchboard 0.1 CONFIG QUIET)
if(switchboard_FOUND)
  message(FATAL_ERROR "switchboard ${switchboard_VERSION} accepted a request for 0.1")
endif()
CMAKE
cmake -S "$work/old" -B "$work/old/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null || fail "0.1 was accepted"

if [ "$mode" = static ]; then
  # pkg-config: the same program from one compiler line.
  export PKG_CONFIG_PATH=$libdir/pkgconfig
  [ "$(pkg-config --modversion switchboard)" = "$version" ] || fail "pkg-config --modversion is not $version"
  cflags=$(pkg-config --cflags switchboard)
  if grep -E 'lua5\.4|TOML_|SPDLOG_' <<<"$cflags"; then fail "pkg-config --cflags names a private dependency"; fi
  # shellcheck disable=SC2046
  g++ -o "$work/pc-consumer" "$src/examples/consumer/main.cpp" $cflags $(pkg-config --libs switchboard)
  out=$("${offline[@]}" "$work/pc-consumer" "$prefix/share/switchboard/switchboard.toml")
  [[ $out =~ ^switchboard\ $version:\ cheap ]] || fail "the pkg-config build answered: $out"
fi
echo "package ($mode): installed, found by CMake and pkg-config, consumer ran"
