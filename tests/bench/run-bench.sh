#!/usr/bin/env bash
# run-bench.sh - issue 4's server benchmark: builds attune-server and loadgen,
# creates the rooms with `attune-server --create-room`, then for each mode
# starts a fresh server on that data directory pinned to one CPU (taskset -c
# $SERVER_CPU, store thread included), runs the load generator pinned to
# another CPU (taskset -c $GEN_CPU) and prints every figure.
#
#   closed  1,000 rooms, every client keeps $WINDOW commands in flight
#   open    3,000 commands/s in total over 1,000 other rooms (one a second
#           per person)
#   idle    19,000 connections in ceil(19,000/3) rooms, authenticated, idle
#
# The server runs with its per-connection rate limit raised (--rate/--burst)
# because a closed loop is meant to find the server's ceiling, not the
# limiter's; the open loop's one message a second per client is far below
# the default limit anyway. For the same reason the log's per-link and
# per-room event rates are off (a closed-loop room records ~50 events a
# second by design; the cap of 50,000 a room is not reached).
#
# Environment overrides: BUILD_DIR, PORT, SERVER_CPU, GEN_CPU, IDLE_CONNS,
# CLOSED_ROOMS, WINDOW, OPEN_ROOMS, OPEN_RATE, DURATION, WARMUP, MODES
# (e.g. MODES="open idle"; MODES=startup runs bench_startup, see below,
# with STARTUP_SESSIONS; MODES=review runs bench_review, with REVIEW_EVENTS,
# REVIEW_SESSIONS, REVIEW_LIVE), KEEP_DATA=1 to keep the temp data directory,
# SKIP_BUILD=1 to use the binaries already in BUILD_DIR, SERVER_ARGS for more
# attune-server flags (e.g. SERVER_ARGS="--commit-window-us 1000"), TLS=1 to
# serve and connect with TLS (a throwaway self-signed certificate made with
# the openssl command; attune-server --tls-cert/--tls-key, loadgen --tls).
#
# STORE=pg (issue 13): the rooms and the nodes on PostgreSQL. PG_URI is a
# libpq URI of a database this script may create databases from (e.g.
# tests/pg/cluster.sh's); the run gets a fresh database of its own (dropped
# at the end unless KEEP_DATA=1), one KEK and signing key shared by every
# node, the rooms made with `attune-server --create-room --store`. NODES=N
# (default 1) starts N nodes on ports PORT..PORT+N-1, all pinned to
# SERVER_CPU; loadgen connects room i to node i mod N directly (every member
# of a room to the same node, which takes the room's lease at the first
# hello) with ?room=ID in the URL, sums the nodes' CPU and shows the
# database's (the run's backends and PostgreSQL's WAL writer, checkpointer
# and background writer) apart. PostgreSQL runs where its caller started it
# (run-pg-bench.sh pins it to SERVER_CPU too). Modes closed and open only.
# tests/bench/run-pg-bench.sh runs SQLite, PostgreSQL with 1 node and with 3
# and prints them as one table.
#
# MODES=failover (STORE=pg, NODES >= 2): the open loop's load on its rooms,
# and meanwhile tests/bench/failover-time.mjs joins FAILOVER_ROOMS (30) other
# rooms, kill -9s node 0 and times every member of its rooms resumed on a
# survivor (loadgen does not reconnect: its own rooms on node 0 just end).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
PORT=${PORT:-18480}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
IDLE_CONNS=${IDLE_CONNS:-19000}
CLOSED_ROOMS=${CLOSED_ROOMS:-1000}
WINDOW=${WINDOW:-4}
OPEN_ROOMS=${OPEN_ROOMS:-1000}
OPEN_RATE=${OPEN_RATE:-3000}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
MODES=${MODES:-"closed open idle"}
FAILOVER_ROOMS=${FAILOVER_ROOMS:-30}
STORE=${STORE:-sqlite}
NODES=${NODES:-1}
case $STORE in
sqlite) [ "$NODES" = 1 ] || {
    echo "NODES=$NODES needs STORE=pg (one SQLite node per data directory)" >&2
    exit 2
} ;;
pg) [ -n "${PG_URI:-}" ] || {
    echo "STORE=pg needs PG_URI (e.g. from tests/pg/cluster.sh start DIR)" >&2
    exit 2
} ;;
*)
    echo "STORE must be sqlite or pg" >&2
    exit 2
    ;;
esac

say() { printf '== %s\n' "$*"; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "building attune-server and loadgen in $BUILD_DIR"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$BUILD_DIR" --target attune-server loadgen -j "$(nproc)" >/dev/null
fi
SERVER=$BUILD_DIR/server/attune-server
LOADGEN=$BUILD_DIR/tests/bench/loadgen

# startup (not in the default MODES): bench_startup builds its own data
# directories through the store API (1,000 and $STARTUP_SESSIONS ended
# sessions, default 10,000) and starts its own servers: time to listening,
# RSS, the dashboard's room list, rooms touched and evicted, a restart.
if [[ " $MODES " == *" startup "* ]]; then
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        cmake --build "$BUILD_DIR" --target bench_startup -j "$(nproc)" >/dev/null
    fi
    say "start-up and memory with stored sessions"
    root_arg=()
    [ "$(id -u)" = 0 ] && root_arg=(--server-arg --allow-root)
    "$BUILD_DIR/tests/bench/bench_startup" --server "$SERVER" \
        --sessions "${STARTUP_SESSIONS:-10000}" "${root_arg[@]}"
    MODES=$(echo " $MODES " | sed 's/ startup / /; s/^ *//; s/ *$//')
    [ -z "$MODES" ] && exit 0
fi

# review (not in the default MODES): bench_review makes $REVIEW_SESSIONS
# (default 10) sessions of $REVIEW_EVENTS (default 20,000) events through the
# core and the store API, starts its own server with $REVIEW_LIVE (default
# 50) live rooms, and prints the time to load one session's whole replay
# (every page, parsed) and the live rooms' ping p50/p99/max, idle and while
# all the sessions' replays load at once.
if [[ " $MODES " == *" review "* ]]; then
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        cmake --build "$BUILD_DIR" --target bench_review attune -j "$(nproc)" >/dev/null
    fi
    say "session review: replay load and other rooms' pings"
    "$BUILD_DIR/tests/bench/bench_review" run --server "$SERVER" --cli "$BUILD_DIR/client/attune" \
        --events "${REVIEW_EVENTS:-20000}" --reviews "${REVIEW_SESSIONS:-10}" \
        --live "${REVIEW_LIVE:-50}"
    MODES=$(echo " $MODES " | sed 's/ review / /; s/^ *//; s/ *$//')
    [ -z "$MODES" ] && exit 0
fi

# attune-server refuses root unless asked (a benchmark machine often is root).
if [ "$(id -u)" -eq 0 ]; then export ATTUNE_ALLOW_ROOT=1; fi

# One fd per connection on both sides; 19,000 connections need the hard limit.
ulimit -n "$(ulimit -Hn)"

DATA=$(mktemp -d /tmp/attune-bench.XXXXXX)
SERVER_PID=
SERVER_PIDS=()
PG_DB=
cleanup() {
    for pid in "${SERVER_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [ "${KEEP_DATA:-0}" = 1 ]; then
        echo "data kept in $DATA${PG_DB:+ and database $PG_DB}"
    else
        # DATA.kek: the key-encryption key attune-server keeps beside its data
        # directory by default (none before issue 12).
        rm -rf "$DATA" "$DATA.kek" "$DATA.tls"
        if [ -n "$PG_DB" ]; then
            psql -X -q "$PG_URI" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null || true
        fi
    fi
}
trap cleanup EXIT

# The store's flags, for --create-room and for every node.
STORE_ARGS=()
if [ "$STORE" = pg ]; then
    PG_DB=attune_bench_$$
    psql -X -q "$PG_URI" -c "CREATE DATABASE $PG_DB" >/dev/null
    RUN_URI=$(printf '%s' "$PG_URI" | sed -E "s#/[^/?]*(\?|$)#/$PG_DB\1#")
    openssl rand -hex 32 >"$DATA.kek"
    chmod 600 "$DATA.kek"
    STORE_ARGS=(--store "$RUN_URI" --kek-file "$DATA.kek" --key-file "$DATA/secret.key")
fi

# The idle mode's rooms only when it runs (they are the most).
idle_rooms=0
[[ " $MODES " == *" idle "* ]] && idle_rooms=$(((IDLE_CONNS + 2) / 3))
need=$((CLOSED_ROOMS + OPEN_ROOMS))
[[ " $MODES " == *" failover "* ]] && need=$((need + FAILOVER_ROOMS))
[ "$idle_rooms" -gt "$need" ] && need=$idle_rooms
say "creating $need rooms (enactment) in $DATA"
start=$(date +%s%N)
"$SERVER" --data "$DATA" --port "$PORT" "${STORE_ARGS[@]}" --create-room enactment \
    >"$DATA/tokens.txt" 2>>"$DATA/create.log"
seq $((need - 1)) | xargs -P 4 -I{} "$SERVER" --data "$DATA" --port "$PORT" "${STORE_ARGS[@]}" \
    --create-room enactment >>"$DATA/tokens.txt" 2>>"$DATA/create.log"
echo "   $(grep -c '^room ' "$DATA/tokens.txt") rooms in $((($(date +%s%N) - start) / 1000000)) ms"

TLS_SERVER_ARGS=()
TLS_LOADGEN_ARGS=()
if [ "${TLS:-0}" = 1 ]; then
    mkdir -m 700 "$DATA.tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$DATA.tls/key.pem" -out "$DATA.tls/cert.pem" 2>/dev/null
    TLS_SERVER_ARGS=(--tls-cert "$DATA.tls/cert.pem" --tls-key "$DATA.tls/key.pem")
    TLS_LOADGEN_ARGS=(--tls)
    say "TLS on (self-signed P-256 certificate)"
fi

# Node k (0-based) of NODES: port PORT+k; on SQLite the one node is the
# data directory's server as before.
start_node() {
    local k=$1 port=$((PORT + $1)) data=$DATA log=$DATA/server.log out=$DATA/server.out
    if [ "$STORE" = pg ]; then
        data=$DATA/node$k
        log=$DATA/node$k.log
        out=$DATA/node$k.out
    fi
    taskset -c "$SERVER_CPU" "$SERVER" --data "$data" --port "$port" "${STORE_ARGS[@]}" \
        --rate 1000000 --burst 1000000 --link-events-per-minute 0 --room-events-per-minute 0 \
        "${TLS_SERVER_ARGS[@]}" ${SERVER_ARGS:-} >"$out" 2>>"$log" &
    SERVER_PIDS+=($!)
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "attune-server did not start listening; its log:" >&2
    tail -20 "$log" >&2
    exit 1
}

start_server() {
    SERVER_PIDS=()
    for k in $(seq 0 $((NODES - 1))); do
        start_node "$k"
    done
    SERVER_PID=${SERVER_PIDS[0]}
}

stop_server() {
    for pid in "${SERVER_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true # failover: node 0 is gone
    done
    for pid in "${SERVER_PIDS[@]}"; do
        local rc=0
        wait "$pid" || rc=$?
        [ "$rc" -eq 0 ] || echo "   (attune-server $pid exited with status $rc after SIGTERM)"
    done
    SERVER_PIDS=()
    SERVER_PID=
}

# PostgreSQL's processes that work for this run: its backends (the nodes'
# connections) and the shared writers.
db_pid_args() {
    [ "$STORE" = pg ] || return 0
    psql -X -At "$RUN_URI" -c "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()
        AND (datname = current_database()
             OR backend_type IN ('walwriter', 'checkpointer', 'background writer'))" |
        sed 's/^/--db-pid /'
}

loadgen() {
    # Each mode connects from its own loopback source addresses (loadgen
    # spreads them, 200 a source, under the server's per-address cap), so one
    # run's TIME_WAIT ports never block the next run's connections.
    local nodes=(--server-pid "$SERVER_PID")
    if [ "$STORE" = pg ]; then
        local ports=$PORT
        nodes=()
        for k in $(seq 0 $((NODES - 1))); do
            [ "$k" -gt 0 ] && ports=$ports,$((PORT + k))
            nodes+=(--server-pid "${SERVER_PIDS[$k]}")
        done
        # shellcheck disable=SC2207 # pids: no spaces
        nodes+=(--ports "$ports" --room-in-url $(db_pid_args))
    fi
    taskset -c "$GEN_CPU" "$LOADGEN" --tokens "$DATA/tokens.txt" --port "$PORT" \
        "${nodes[@]}" "${TLS_LOADGEN_ARGS[@]}" "$@"
}

say "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), " \
    "Linux $(uname -r); server on CPU $SERVER_CPU, generator on CPU $GEN_CPU"
[ "$STORE" = pg ] && say "store: PostgreSQL ($NODES node(s) on CPU $SERVER_CPU, all sharing it)"
for mode in $MODES; do
    start_server
    case $mode in
    closed)
        say "closed loop"
        loadgen --mode closed --rooms "$CLOSED_ROOMS" --window "$WINDOW" \
            --duration "$DURATION" --warmup "$WARMUP" --bind-ip 127.1.0.1
        ;;
    open)
        say "open loop"
        loadgen --mode open --rooms "$OPEN_ROOMS" --room-offset "$CLOSED_ROOMS" \
            --rate "$OPEN_RATE" --duration "$DURATION" --warmup "$WARMUP" --bind-ip 127.2.0.1
        ;;
    failover)
        if [ "$STORE" != pg ] || [ "$NODES" -lt 2 ]; then
            echo "mode failover needs STORE=pg and NODES >= 2" >&2
            exit 2
        fi
        say "kill -9 of node 0 (pid $SERVER_PID) under the open loop's load"
        loadgen --mode open --rooms "$OPEN_ROOMS" --room-offset "$CLOSED_ROOMS" \
            --rate "$OPEN_RATE" --duration "$DURATION" --warmup "$WARMUP" --bind-ip 127.4.0.1 \
            >"$DATA/failover-load.txt" &
        load_pid=$!
        until grep -q '^setup:' "$DATA/failover-load.txt" 2>/dev/null; do
            kill -0 "$load_pid" 2>/dev/null || break
            sleep 0.2
        done
        sleep "$WARMUP"
        ports=$PORT
        for k in $(seq 1 $((NODES - 1))); do ports=$ports,$((PORT + k)); done
        fo_rc=0
        taskset -c "$GEN_CPU" node "$ROOT/tests/bench/failover-time.mjs" --tokens "$DATA/tokens.txt" \
            --ports "$ports" --kill-pid "$SERVER_PID" --rooms "$FAILOVER_ROOMS" \
            --room-offset $((CLOSED_ROOMS + OPEN_ROOMS)) || fo_rc=$?
        wait "$load_pid" || true
        echo "   the load meanwhile (its rooms on node 0 end at the kill):"
        sed 's/^/   /' "$DATA/failover-load.txt"
        [ "$fo_rc" -eq 0 ] || echo "   (failover-time.mjs exited with status $fo_rc)"
        ;;
    idle)
        say "idle connections"
        loadgen --mode idle --connections "$IDLE_CONNS" --duration "$DURATION" \
            --settle 3 --bind-ip 127.3.0.1
        ;;
    *)
        echo "unknown mode $mode" >&2
        exit 2
        ;;
    esac
    stop_server
done
