#!/usr/bin/env bash
# run-pg-bench.sh - issue 13's benchmark in one run: durably committed
# events/s (closed loop) and open-loop p99 on SQLite (one node) and on
# PostgreSQL with one node and with three, then the time from kill -9 of a
# node to every member of its rooms resumed on a survivor (target <= 2 s).
#
# It starts a throwaway PostgreSQL 15 cluster (tests/pg/cluster.sh, pinned
# to SERVER_CPU like the nodes: the server side, store included, has one
# CPU, as SQLite's store thread has), and runs run-bench.sh three times with
# the same sizes: STORE=sqlite, STORE=pg NODES=1, STORE=pg NODES=3 (plus
# MODES=failover on the three), each on fresh rooms; every figure comes from
# run-bench.sh / loadgen / failover-time.mjs, printed in full, then as one
# table. On a 2-CPU machine the nodes and PostgreSQL share CPU 0 and the
# generator has CPU 1: three nodes have no more CPU than one, so the table
# compares the stores' costs, not a cluster's scaling.
#
# Environment: ROOMS (rooms per mode, 300), OPEN_RATE (commands/s, 3 x
# ROOMS: one a second per person), DURATION (10), WARMUP (3), WINDOW (4),
# FAILOVER_ROOMS (30), PORT (18480: nodes on PORT..PORT+2), PG_PORT
# (cluster.sh's choice), BUILD_DIR, SERVER_CPU, GEN_CPU, SKIP_BUILD=1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
export SERVER_CPU=${SERVER_CPU:-0} GEN_CPU=${GEN_CPU:-1}
ROOMS=${ROOMS:-300}
export CLOSED_ROOMS=$ROOMS OPEN_ROOMS=$ROOMS
export OPEN_RATE=${OPEN_RATE:-$((3 * ROOMS))}
export DURATION=${DURATION:-10} WARMUP=${WARMUP:-3} WINDOW=${WINDOW:-4}
export FAILOVER_ROOMS=${FAILOVER_ROOMS:-30}
export PORT=${PORT:-18480}

say() { printf '== %s\n' "$*"; }

PG_DIR=$(mktemp -d /tmp/attune-pg-bench.XXXXXX)
OUT=$(mktemp -d /tmp/attune-pg-bench-out.XXXXXX)
cleanup() {
    sh "$ROOT/tests/pg/cluster.sh" stop "$PG_DIR" || true
    rm -rf "$OUT"
}
trap cleanup EXIT

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "building attune-server and loadgen in $BUILD_DIR"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$BUILD_DIR" --target attune-server loadgen -j "$(nproc)" >/dev/null
fi
export SKIP_BUILD=1

PG_URI=$(taskset -c "$SERVER_CPU" sh "$ROOT/tests/pg/cluster.sh" start "$PG_DIR" ${PG_PORT:-})
export PG_URI
say "PostgreSQL 15 on $PG_URI (synchronous_commit on, fsync on), pinned to CPU $SERVER_CPU"
say "$(nproc) CPUs: the nodes and PostgreSQL share CPU $SERVER_CPU, the generator has CPU $GEN_CPU;" \
    "three nodes get no more CPU than one (figures as measured, other load on the machine included)"

run() {
    local name=$1
    shift
    say "run: $name"
    env "$@" bash "$ROOT/tests/bench/run-bench.sh" | tee "$OUT/$name.txt"
}

run sqlite-1 STORE=sqlite MODES="closed open"
run pg-1 STORE=pg NODES=1 MODES="closed open"
run pg-3 STORE=pg NODES=3 MODES="closed open failover"

# One row from a run's output: closed ev/s, the closed loop's CPU, open p99,
# the open loop's CPU (the nodes' summed; PostgreSQL's after a +).
row() {
    awk -v store="$1" -v nodes="$2" '
        /^== closed loop/ { mode = "closed" }
        /^== open loop/ { mode = "open" }
        /^== kill -9/ { mode = "" }
        mode == "closed" && /durably committed events\/s:/ { ev = $4 }
        mode == "open" && /latency, intended send time to delivery/ {
            for (i = 1; i <= NF; i++) if ($i == "p99") p99 = $(i + 1) " ms"
        }
        mode != "" && /server CPU: [0-9.]+ %/ {
            cpu = $3 " %"
            for (i = 1; i <= NF; i++) if ($i == "database" && $(i + 1) == "CPU:") cpu = cpu " + " $(i + 2) " %"
            if (mode == "closed") ccpu = cpu; else ocpu = cpu
        }
        END { printf "%-10s %5s %12s %-18s %12s %-18s\n", store, nodes, ev, ccpu, p99, ocpu }
    ' "$OUT/$3.txt"
}

echo
say "issue 13 benchmark: $ROOMS rooms per mode, closed window $WINDOW, open $OPEN_RATE commands/s," \
    "${DURATION} s measured after ${WARMUP} s warm-up"
printf '%-10s %5s %12s %-18s %12s %-18s\n' store nodes "closed ev/s" "closed CPU" "open p99" "open CPU"
row sqlite 1 sqlite-1
row postgresql 1 pg-1
row postgresql 3 pg-3
echo "(CPU: % of one core, the nodes' summed + PostgreSQL's backends and writers; all on CPU $SERVER_CPU)"
grep -E 'kill -9 to every member resumed|members resumed on a survivor|dropped meanwhile' "$OUT/pg-3.txt" |
    sed 's/^ */failover (3 nodes, kill -9 of one, '"$FAILOVER_ROOMS"' rooms): /'
