#!/usr/bin/env bash
# Installs what `npm start`, `npm test` and `npm run bench` need and is missing:
# nats-server, redis-server and flock (util-linux) from Debian, the npm packages, and a fresh build.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
has nats-server || missing+=(nats-server)
has redis-server || missing+=(redis-server)
has flock || missing+=(util-linux) # the data-directory lock (src/node/membership/identity.ts)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing npm packages (npm ci)" >&2
  npm ci --no-audit --no-fund
fi

# Build from scratch so that a removed source file leaves no stale test behind.
rm -rf dist
node_modules/.bin/tsc -p tsconfig.json
