#!/usr/bin/env bash
# The tokenizers' parity test: the engine's o200k_base and cl100k_base counts
# against the npm package tiktoken (the version pinned in package-lock.json),
# on the corpus corpus.mjs generates (2,424 texts, the same on every run).
# Registered with ctest as tokenizer_parity.
#
#   bash tests/tokenize/parity/run.sh TOKENIZER_PARITY_PROGRAM
#
# Copies this folder to a temporary one and runs `npm ci` there (no
# node_modules is left in the source tree), checks that data/tokenizers'
# rank files are byte for byte the package's, writes the reference counts
# with node, and runs the program over them: it fails naming the first text
# whose count differs. Needs node >= 20 and npm, and the npm registry (or
# npm's cache).
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 TOKENIZER_PARITY_PROGRAM" >&2
  exit 2
fi
PROGRAM=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
SOURCE_DIR=$(cd "$HERE/../../.." && pwd)
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "tokenizer_parity: $tool is not installed" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-parity.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cp "$HERE"/package.json "$HERE"/package-lock.json "$HERE"/corpus.mjs "$WORK/"
(cd "$WORK" && npm ci --no-audit --no-fund --loglevel=error >"$WORK/npm.log" 2>&1) || {
  cat "$WORK/npm.log" >&2
  echo "tokenizer_parity: npm ci failed (is the npm registry reachable?)" >&2
  exit 1
}
for name in o200k_base cl100k_base; do
  if ! cmp -s "$SOURCE_DIR/data/tokenizers/$name.json" "$WORK/node_modules/tiktoken/encoders/$name.json"; then
    echo "tokenizer_parity: data/tokenizers/$name.json is not the pinned package's encoders/$name.json" >&2
    exit 1
  fi
done
(cd "$WORK" && node corpus.mjs >"$WORK/reference.jsonl")
SWITCHBOARD_TOKENIZERS_DIR="$SOURCE_DIR/data/tokenizers" "$PROGRAM" "$WORK/reference.jsonl"
