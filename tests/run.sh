#!/bin/sh
# Sets up and runs every test: unit tests (ctest) in a release build and
# under AddressSanitizer + UndefinedBehaviorSanitizer, the libFuzzer targets
# for a bounded time, the protocol schema tests, the server's integration
# tests and the browser tests. Exits non-zero on the first failure.
set -eu
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}

step() { printf '\n=== %s\n' "$*"; }

step "setup"
sh deploy/setup.sh --browser
npm ci --no-audit --no-fund --loglevel=error

step "build and unit tests (release)"
sh deploy/build.sh
ctest --test-dir build --output-on-failure -j2

step "build and unit tests (AddressSanitizer + UndefinedBehaviorSanitizer)"
cmake -S . -B build-asan -DCMAKE_C_COMPILER=clang -DATTUNE_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)"
ctest --test-dir build-asan --output-on-failure -j2

step "fuzz: replay saved inputs, then fuzz each target for ${FUZZ_SECONDS}s"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DATTUNE_FUZZ=ON -DATTUNE_SERVER=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_msg fuzz_room fuzz_blame
ctest --test-dir build-fuzz --output-on-failure -R '^fuzz_'
for t in fuzz_msg fuzz_room fuzz_blame; do
  work=$(mktemp -d)
  case $t in fuzz_msg) cp tests/corpus/valid/* "$work"/ ;; fuzz_room) cp tests/fuzz/room-seeds/* "$work"/ ;; *) cp tests/corpus/blame/*.tsv "$work"/ ;; esac
  # A crash makes libFuzzer exit non-zero and save the input in crashers/.
  if ! ./build-fuzz/tests/fuzz/$t -max_total_time="$FUZZ_SECONDS" -max_len=8192 \
      -print_final_stats=1 -artifact_prefix="tests/fuzz/crashers/${t#fuzz_}-" "$work" >"$work.log" 2>&1; then
    tail -40 "$work.log"
    echo "fuzz: $t failed (saved input in tests/fuzz/crashers/)"
    exit 1
  fi
  echo "$t: $(grep -E '^stat::number_of_executed_units' "$work.log" | awk '{print $2}') inputs, no crash"
  rm -rf "$work" "$work.log"
done

# The protocol schema tests, the server integration tests and the command
# line tests run inside ctest above (twice: release and sanitizers); the
# browser tests run once, against the release build.
step "browser tests (Chromium, playwright-core)"
ATTUNE_BUILD_DIR="$PWD/build" node --test tests/e2e/

echo
echo "all tests passed"
