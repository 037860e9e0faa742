#!/bin/sh
# Sets up, builds and runs the server with the demo room on the embedded
# store (data in ./data). It prints one invitation link per role, and a
# therapist login ("demo", password kept in data/demo-login) whose dashboard
# holds the demo room, for its live view, replay and report.
set -eu
cd "$(dirname "$0")/.."
sh deploy/setup.sh
sh deploy/build.sh
mkdir -p data
chmod 700 data
# Both binaries refuse to run as root; a fresh machine's demo often is root.
allow_root=
if [ "$(id -u)" -eq 0 ]; then
  allow_root=--allow-root
  echo "running as root (--allow-root): for real use, run attune-server as its own user (deploy/attune-server.service)" >&2
fi
if [ ! -s data/demo-login ]; then
  password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  printf '%s\n' "$password" | ./build/client/attune therapist add demo --data ./data $allow_root >/dev/null
  (umask 077 && printf 'demo %s\n' "$password" > data/demo-login)
fi
echo "therapist login: user $(cut -d' ' -f1 data/demo-login), password $(cut -d' ' -f2 data/demo-login) (kept in data/demo-login), at /login.html"
exec ./build/server/attune-server --demo --demo-owner demo --data ./data $allow_root "$@"
