#!/usr/bin/env bash
# The Debian package: `cpack -G DEB` from BUILD (configured with prefix /usr by
# scripts/build.sh) gives switchboard_VERSION_ARCH.deb whose control names its
# shared-library dependencies and whose files are where packaging/ says. As
# root, with no switchboard package installed already, it is also installed:
# postinst makes the user and /etc/switchboard, the gateway runs from it as
# that user and drains on SIGTERM, and a purge removes what postinst made.
# Usage: deb.sh BUILD_DIR VERSION
set -euo pipefail
build=$1 version=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work" >/dev/null
arch=$(dpkg --print-architecture)
deb=$work/switchboard_${version}_${arch}.deb
[ -f "$deb" ] || fail "no $(basename "$deb") in: $(ls "$work")"

info=$(dpkg-deb --info "$deb")
depends=$(sed -n 's/^ Depends: //p' <<<"$info")
echo "Depends: $depends"
for dep in adduser libc6 'libstdc\+\+6' libcurl4 libpcre2-8-0 'liblua5\.4-0' libsqlite3-0 libpq5 libssl3 libspdlog libtomlplusplus libhiredis libsimdjson; do
  grep -Eq "(^|, )$dep" <<<"$depends" || fail "Depends does not name $dep: $depends"
done
# Extracted, not piped: tar stops reading at the archive's end marker, and
# dpkg-deb writing the padding after it would fail a pipeline (pipefail).
dpkg-deb --control "$deb" "$work/control"
for script in postinst prerm postrm; do
  [ -x "$work/control/$script" ] || fail "no executable $script in the control archive"
done

files=$(dpkg-deb --contents "$deb" | awk '{print $6}')
libdir=usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for f in usr/bin/switchboard usr/bin/switchboard-gateway \
         usr/include/switchboard/switchboard.h usr/include/switchboard/version.h \
         "$libdir/libswitchboard.a" "$libdir/pkgconfig/switchboard.pc" \
         "$libdir/cmake/switchboard/switchboardConfig.cmake" "$libdir/cmake/switchboard/switchboardConfigVersion.cmake" \
         usr/share/switchboard/switchboard.toml usr/share/switchboard/prices.toml \
         usr/share/switchboard/rules/default.lua usr/share/switchboard/rules/default.test.toml \
         usr/share/switchboard/tokenizers/o200k_base.json usr/share/switchboard/tokenizers/LICENSE \
         usr/lib/systemd/system/switchboard-gateway.service; do
  grep -qx "\./$f" <<<"$files" || fail "$f is not in the package"
done
if grep -E '^\./(home|root|tmp|work)/|/build/' <<<"$files"; then fail "the package holds build-machine paths"; fi

dpkg-deb -x "$deb" "$work/root"
unit=$work/root/usr/lib/systemd/system/switchboard-gateway.service
for line in 'User=switchboard' 'ExecStart=/usr/bin/switchboard-gateway --config /etc/switchboard/switchboard.toml' \
            'ExecReload=/bin/kill -HUP $MAINPID' 'KillSignal=SIGTERM' 'StateDirectory=switchboard'; do
  grep -qxF "$line" "$unit" || fail "the unit has no line '$line'"
done

if [ "$(id -u)" -ne 0 ] || dpkg-query -W -f='${Status}' switchboard 2>/dev/null | grep -q "install ok installed" ||
   [ -e /etc/switchboard ] || getent passwd switchboard >/dev/null; then
  echo "deb: built and inspected; not installed (needs root and a machine without switchboard installed)"
  exit 0
fi
had_state=0
[ -e /var/lib/switchboard ] && had_state=1
cleanup_install() {
  dpkg --purge switchboard >/dev/null 2>&1 || true
  [ "$had_state" = 1 ] || rm -rf /var/lib/switchboard
  rm -rf "$work"
}
trap cleanup_install EXIT
dpkg -i "$deb" >/dev/null
getent passwd switchboard >/dev/null || fail "postinst made no switchboard user"
grep -q '^ledger = "/var/lib/switchboard/switchboard.db"' /etc/switchboard/switchboard.toml ||
  fail "/etc/switchboard/switchboard.toml does not put the ledger in /var/lib/switchboard"
[ "$(stat -c %U /var/lib/switchboard)" = switchboard ] || fail "/var/lib/switchboard is not the service user's"
/usr/bin/switchboard test --config /etc/switchboard/switchboard.toml >/dev/null ||
  fail "the shipped rules fail their cases from /etc/switchboard"

# The gateway as the unit runs it, drained by SIGTERM.
setpriv --reuid=switchboard --regid=switchboard --init-groups -- env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY -u GEMINI_API_KEY -u LOCAL_LLM_API_KEY \
  /usr/bin/switchboard-gateway --config /etc/switchboard/switchboard.toml --listen 127.0.0.1:0 \
  >"$work/gateway.out" 2>"$work/gateway.err" &
pid=$!
for _ in $(seq 100); do grep -q '^listening on' "$work/gateway.out" && break; sleep 0.1; done
grep -q '^listening on' "$work/gateway.out" || { cat "$work/gateway.err"; fail "the gateway did not start"; }
address=$(sed -n 's/^listening on //p' "$work/gateway.out")
answer=$(curl -s -X POST "http://$address/v1/chat/completions" -H 'content-type: application/json' \
  -d '{"model":"auto","messages":[{"role":"user","content":"Format this as JSON."}]}')
grep -q '"choices"' <<<"$answer" || fail "the installed gateway answered: $answer"
kill -TERM "$pid"
wait "$pid" || fail "the gateway did not exit 0 on SIGTERM: $(cat "$work/gateway.err")"
[ -s /var/lib/switchboard/switchboard.db ] || fail "no ledger in /var/lib/switchboard"

dpkg --purge switchboard >/dev/null
getent passwd switchboard >/dev/null && fail "purge left the switchboard user"
[ -e /etc/switchboard ] && fail "purge left /etc/switchboard"
echo "deb: $(basename "$deb") built, inspected, installed, served, purged"
