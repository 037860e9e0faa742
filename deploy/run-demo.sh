#!/bin/sh
# Sets up, builds and runs the server with the demo room on the embedded
# store (data in ./data). It prints one invitation link per role.
set -eu
cd "$(dirname "$0")/.."
sh deploy/setup.sh
sh deploy/build.sh
exec ./build/server/attune-server --demo --data ./data "$@"
