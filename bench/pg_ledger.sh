#!/usr/bin/env bash
# Runs bench_pg_ledger against a PostgreSQL server of its own: initdb on a
# temporary directory, postgres on 127.0.0.1 at a free port (as "nobody" when
# run as root: PostgreSQL refuses root), stopped and removed at exit.
#   bash bench/pg_ledger.sh BUILD_DIR [bench_pg_ledger options]
set -euo pipefail
build=${1:?usage: bench/pg_ledger.sh BUILD_DIR [options]}
shift
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL is not installed (bash scripts/deps.sh all)" >&2; exit 2; }
dir=$(mktemp -d)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  chown nobody "$dir"
  as_pg=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
fi
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$dir" && "${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
  >"$dir/initdb.log" 2>&1) || { cat "$dir/initdb.log" >&2; exit 1; }
(cd "$dir" && exec "${as_pg[@]}" "$bin/postgres" -D "$dir/data" -k "$dir" -h 127.0.0.1 -p "$port" \
  >"$dir/postgres.log" 2>&1) &
pid=$!
url="postgresql://postgres@127.0.0.1:$port/postgres"
for _ in $(seq 1 100); do
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
  sleep 0.1
done
"$build/bench/bench_pg_ledger" --url "$url" "$@"
