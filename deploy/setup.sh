#!/bin/sh
# Installs what Attune needs to build, run and test on Debian 12 (as root):
# the C toolchain and libraries, Node.js for the protocol and browser tests,
# and Debian's Chromium for the browser tests. Idempotent and quick when
# everything is already there.
set -eu
cd "$(dirname "$0")/.."

PKGS="build-essential dpkg-dev cmake pkg-config clang libclang-rt-14-dev libjansson-dev libssl-dev
  libsqlite3-dev sqlite3 libpq-dev libwebsockets-dev libwebsockets-evlib-ev libev-dev nodejs npm
  ca-certificates"
# The tests also need a PostgreSQL server (the multi-node store's tests run
# a throwaway cluster) and nginx (the cluster's proxy).
[ "${1:-}" = "--browser" ] && PKGS="$PKGS chromium postgresql-15 nginx-light"

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# nodejs/npm may come from elsewhere (e.g. NodeSource): accept working binaries.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  missing=$(echo "$missing" | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' ')
fi
missing=$(echo "$missing" | xargs)
if [ -n "$missing" ]; then
  echo "setup: installing $missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
