#!/usr/bin/env bash
# Runs the test suite under another Node.js major line than the one on PATH:
#   bash scripts/test-node.sh 24 [tiers...]      (npm run test:node24)
# The binary comes from the npm registry's node-linux-<arch> package (Node
# itself, shipped inside a registry package), installed once into
# ${GODDB_NODE_CACHE:-~/.cache/goddb}/node-<major>. The npm packages are the
# ones `npm ci` installed: their native parts (lmdb, cbor-extract,
# msgpackr-extract) ship N-API prebuilds, which load under every Node line.
set -euo pipefail
cd "$(dirname "$0")/.."

major="${1:?usage: scripts/test-node.sh <node major, e.g. 24> [tiers...]}"
shift
case "$major" in *[!0-9]*) echo "test-node: the major must be a number, got $major" >&2; exit 2 ;; esac
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "test-node: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac

prefix="${GODDB_NODE_CACHE:-${HOME:-/tmp}/.cache/goddb}/node-$major"
node="$prefix/node_modules/node-linux-$arch/bin/node"
if [ ! -x "$node" ] || [ "$("$node" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" != "$major" ]; then
  echo "test-node: installing node-linux-$arch@$major into $prefix" >&2
  rm -rf "$prefix"
  mkdir -p "$prefix"
  npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error --prefix "$prefix" "node-linux-$arch@$major" >&2
fi

bash scripts/ensure.sh # the same build `npm test` runs first
echo "test-node: $("$node" --version) ($node)" >&2
# Child processes the tests start (workers, load generators) use process.execPath; PATH is for anything else.
PATH="$(dirname "$node"):$PATH" exec "$node" scripts/run-tests.js "$@"
