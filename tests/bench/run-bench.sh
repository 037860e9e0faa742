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
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "${KEEP_DATA:-0}" = 1 ]; then
        echo "data kept in $DATA"
    else
        # DATA.kek: the key-encryption key attune-server keeps beside its data
        # directory by default (none before issue 12).
        rm -rf "$DATA" "$DATA.kek" "$DATA.tls"
    fi
}
trap cleanup EXIT

idle_rooms=$(((IDLE_CONNS + 2) / 3))
need=$((CLOSED_ROOMS + OPEN_ROOMS))
[ "$idle_rooms" -gt "$need" ] && need=$idle_rooms
say "creating $need rooms (enactment) in $DATA"
start=$(date +%s%N)
"$SERVER" --data "$DATA" --port "$PORT" --create-room enactment >"$DATA/tokens.txt" 2>>"$DATA/create.log"
seq $((need - 1)) | xargs -P 4 -I{} "$SERVER" --data "$DATA" --port "$PORT" \
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

start_server() {
    taskset -c "$SERVER_CPU" "$SERVER" --data "$DATA" --port "$PORT" \
        --rate 1000000 --burst 1000000 --link-events-per-minute 0 --room-events-per-minute 0 \
        "${TLS_SERVER_ARGS[@]}" ${SERVER_ARGS:-} >"$DATA/server.out" 2>>"$DATA/server.log" &
    SERVER_PID=$!
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "attune-server did not start listening; its log:" >&2
    tail -20 "$DATA/server.log" >&2
    exit 1
}

stop_server() {
    kill -TERM "$SERVER_PID"
    local rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=
    [ "$rc" -eq 0 ] || echo "   (attune-server exited with status $rc after SIGTERM)"
}

loadgen() {
    # Each mode connects from its own loopback source addresses (loadgen
    # spreads them, 200 a source, under the server's per-address cap), so one
    # run's TIME_WAIT ports never block the next run's connections.
    taskset -c "$GEN_CPU" "$LOADGEN" --tokens "$DATA/tokens.txt" --port "$PORT" \
        --server-pid "$SERVER_PID" "${TLS_LOADGEN_ARGS[@]}" "$@"
}

say "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), " \
    "Linux $(uname -r); server on CPU $SERVER_CPU, generator on CPU $GEN_CPU"
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
