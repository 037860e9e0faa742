#!/bin/sh
# Configures and builds Attune in build/ (release with debug info). The
# compiler's output goes to build/build.log and is shown only on failure.
# ATTUNE_WERROR=ON makes warnings errors (tests/run.sh sets it); it is off by
# default so that a compiler newer than the project's does not stop a build
# someone only wants to run.
set -eu
cd "$(dirname "$0")/.."
mkdir -p build
echo "build: compiling (log in build/build.log)"
if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATTUNE_WERROR="${ATTUNE_WERROR:-OFF}" &&
       cmake --build build -j"$(nproc)"; } >build/build.log 2>&1; then
  tail -40 build/build.log
  echo "build: failed (see build/build.log)"
  exit 1
fi
echo "build: done"
