#!/bin/sh
# Sets up and runs every test: unit tests (ctest) in a release build and
# under AddressSanitizer + UndefinedBehaviorSanitizer, the C unit tests again
# in an optimised Release build and in one with Debian's hardening flags, the
# libFuzzer targets for a bounded time, the protocol schema tests, the
# server's integration tests (on SQLite, then on PostgreSQL) and the browser
# tests (twice: over plain HTTP, then over TLS). Every build here treats
# warnings as errors (ATTUNE_WERROR). Exits non-zero on the first failure.
set -eu
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
# The node suites (ctest's server_integration, cli and schemas) already run
# in build/ and build-asan/; the extra builds run only the C unit tests.
# Anchored: a bare "cli" would also drop bench_test_ws_client.
C_UNIT_ONLY='^(server_integration|cli|schemas)$'

step() { printf '\n=== %s\n' "$*"; }

step "setup"
sh deploy/setup.sh --browser
npm ci --no-audit --no-fund --loglevel=error

# A throwaway PostgreSQL cluster on loopback for the PostgreSQL store's
# tests (ATTUNE_TEST_PG: each test makes a database of its own), stopped and
# removed however the run ends.
step "PostgreSQL for the tests"
PG_DIR=$(mktemp -d -u -t attune-pg.XXXXXX)
trap 'sh tests/pg/cluster.sh stop "$PG_DIR"' EXIT
ATTUNE_TEST_PG=$(sh tests/pg/cluster.sh start "$PG_DIR")
export ATTUNE_TEST_PG
echo "cluster at $ATTUNE_TEST_PG"

step "build and unit tests (release)"
ATTUNE_WERROR=ON sh deploy/build.sh
ctest --test-dir build --output-on-failure -j2

# ctest ran the integration suite on the embedded SQLite store; once more on
# the throwaway cluster (a database per data directory, tests/integration/
# harness.js), release build only: the tests about SQLite files themselves
# say why they skip.
step "integration tests against the PostgreSQL store (release)"
ATTUNE_TEST_STORE=pg ATTUNE_BUILD_DIR="$PWD/build" node --test tests/integration/

step "build and unit tests (AddressSanitizer + UndefinedBehaviorSanitizer)"
cmake -S . -B build-asan -DCMAKE_C_COMPILER=clang -DATTUNE_SANITIZE=ON -DATTUNE_WERROR=ON >/dev/null
cmake --build build-asan -j"$(nproc)"
ctest --test-dir build-asan --output-on-failure -j2

# gcc warns about more at -O3 (maybe-uninitialized through inlining) than at
# the -O2 of the build above, so the optimised build must be clean too.
step "build and C unit tests (Release, gcc)"
cmake -S . -B build-release -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Release -DATTUNE_WERROR=ON >/dev/null
cmake --build build-release -j"$(nproc)" >build-release/build.log 2>&1 || { tail -40 build-release/build.log; exit 1; }
ctest --test-dir build-release --output-on-failure -j2 -E "$C_UNIT_ONLY"

# What a Debian package build would use: dpkg-buildflags with every hardening
# feature (_FORTIFY_SOURCE=2, stack protector, format-security, relro/now).
# Build type None, as debhelper does, so these flags are the only ones.
step "build and C unit tests (Debian hardening flags)"
hardened_flags() { DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get "$1"; }
cmake -S . -B build-hardened -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=None -DATTUNE_WERROR=ON \
  -DCMAKE_C_FLAGS="$(hardened_flags CFLAGS) $(hardened_flags CPPFLAGS)" \
  -DCMAKE_EXE_LINKER_FLAGS="$(hardened_flags LDFLAGS)" \
  -DCMAKE_SHARED_LINKER_FLAGS="$(hardened_flags LDFLAGS)" >/dev/null
cmake --build build-hardened -j"$(nproc)" >build-hardened/build.log 2>&1 || { tail -40 build-hardened/build.log; exit 1; }
ctest --test-dir build-hardened --output-on-failure -j2 -E "$C_UNIT_ONLY"

# The core's targets (the message decoder, the room engine, the blame
# classifier) fuzz for FUZZ_SECONDS each; the server's parsers (tokens,
# sealed payloads, API bodies, invitation URLs) for half that (plus one
# second, never zero) each.
step "fuzz: replay saved inputs, then fuzz each target (core ${FUZZ_SECONDS}s, server parsers $((FUZZ_SECONDS / 2 + 1))s)"
FUZZ_TARGETS="fuzz_msg fuzz_room fuzz_blame fuzz_token fuzz_unseal fuzz_api_body fuzz_invite_url"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DATTUNE_FUZZ=ON -DATTUNE_SERVER=ON -DATTUNE_WERROR=ON >/dev/null
# shellcheck disable=SC2086
cmake --build build-fuzz -j"$(nproc)" --target $FUZZ_TARGETS
ctest --test-dir build-fuzz --output-on-failure -R '^fuzz_'
for t in $FUZZ_TARGETS; do
  work=$(mktemp -d)
  seconds=$((FUZZ_SECONDS / 2 + 1))
  case $t in
    fuzz_msg) cp tests/corpus/valid/* "$work"/; seconds=$FUZZ_SECONDS ;;
    fuzz_room) cp tests/fuzz/room-seeds/* "$work"/; seconds=$FUZZ_SECONDS ;;
    fuzz_blame) cp tests/corpus/blame/*.tsv "$work"/; seconds=$FUZZ_SECONDS ;;
    *) cp tests/fuzz/"${t#fuzz_}"-seeds/* "$work"/ ;;
  esac
  # A crash makes libFuzzer exit non-zero and save the input in crashers/.
  if ! ./build-fuzz/tests/fuzz/$t -max_total_time="$seconds" -max_len=8192 \
      -print_final_stats=1 -artifact_prefix="tests/fuzz/crashers/${t#fuzz_}-" "$work" >"$work.log" 2>&1; then
    tail -40 "$work.log"
    echo "fuzz: $t failed (saved input in tests/fuzz/crashers/)"
    exit 1
  fi
  echo "$t: $(grep -E '^stat::number_of_executed_units' "$work.log" | awk '{print $2}') inputs in ${seconds}s, no crash"
  rm -rf "$work" "$work.log"
done

# The protocol schema tests, the server integration tests and the command
# line tests run inside ctest above (twice: release and sanitizers); the
# browser tests run against the release build twice: over http:// and ws://,
# then over https:// and wss:// (ATTUNE_E2E_TLS=1: the server's own TLS with
# a throwaway CA, Chromium pinned to that one certificate; tests/e2e/harness.mjs).
# The failure campaign on the throwaway cluster (tests/cluster/): two nodes
# (one node per room, room_moved for the other, kill -9 and SIGSTOP of the
# holder); three nodes behind nginx under load with kill -9 of a room's
# owner; PostgreSQL's own failover to a synchronous standby (a cluster of
# the test's own, cluster.sh standby/crash/promote).
step "several nodes on PostgreSQL (failover, fencing, nginx, standby)"
ATTUNE_BUILD_DIR="$PWD/build" node --test tests/cluster/

step "browser tests (Chromium, playwright-core)"
ATTUNE_BUILD_DIR="$PWD/build" node --test tests/e2e/
step "browser tests over TLS (https, wss; a test CA made for the run)"
ATTUNE_E2E_TLS=1 ATTUNE_BUILD_DIR="$PWD/build" node --test tests/e2e/
# Once more through nginx (deploy/nginx/attune-cluster.conf) in front of two
# nodes on the throwaway PostgreSQL cluster, a fresh database for each server
# a test starts (tests/e2e/harness.mjs, ATTUNE_E2E_CLUSTER=1): every file
# but therapist.test.mjs, whose dashboard must show a pause within 1 s (a
# room another node serves reaches a dashboard about 2 s late: README), and
# replay-long.test.mjs, which writes a SQLite data directory.
step "browser tests through nginx in front of two nodes on PostgreSQL"
ATTUNE_E2E_CLUSTER=1 ATTUNE_BUILD_DIR="$PWD/build" node --test tests/e2e/room.test.mjs \
  tests/e2e/password.test.mjs tests/e2e/erase.test.mjs tests/e2e/safety.test.mjs \
  tests/e2e/safety-exit.test.mjs

echo
echo "all tests passed"
