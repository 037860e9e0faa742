#!/bin/sh
# A throwaway PostgreSQL 15 cluster on loopback for the tests (issue 13).
#
#   cluster.sh start DIR [PORT]     initdb + start a primary in DIR; prints its URI
#   cluster.sh standby DIR [PORT]   a synchronous streaming standby of it; prints its URI
#   cluster.sh promote DIR          the standby becomes the primary (after a primary crash)
#   cluster.sh crash DIR            the primary stops at once (pg_ctl -m immediate)
#   cluster.sh uri DIR              both servers as one libpq URI (read-write first)
#   cluster.sh stop DIR             stops whatever runs in DIR and removes DIR
#
# DIR is a directory of the caller's (missing or empty at start, e.g. from
# mktemp -d); everything lives inside it: the data directories, the logs, the
# Unix sockets and the ports chosen. The servers listen on 127.0.0.1 only and
# trust the superuser "attune" there: never for anything but tests. PORT
# defaults to the first free one from 25432 up. start and stop are
# idempotent: start on a running DIR prints the URI again, stop on a missing
# DIR does nothing. initdb refuses to run as root, so as root every
# PostgreSQL command runs as the postgres user (runuser), which owns DIR.
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGUSER_NAME=attune

usage() {
  echo "usage: $0 start|standby|promote|crash|uri|stop DIR [PORT]" >&2
  exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
port_arg=${3:-}

# Runs a PostgreSQL program as the postgres user when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Any socket on the port counts, not only listeners: a client connection
# whose ephemeral source port it is blocks the bind too.
port_in_use() {
  ss -tanH "sport = :$1" 2>/dev/null | grep -q .
}

free_port() {
  # Below the kernel's ephemeral range (32768-60999 on Debian), so no
  # outgoing connection takes the port between the check and the bind.
  p=25432
  while [ "$p" -lt 25532 ]; do
    if ! port_in_use "$p"; then
      echo "$p"
      return 0
    fi
    p=$((p + 1))
  done
  echo "cluster.sh: no free port in 25432-25531" >&2
  return 1
}

uri_for() {
  echo "postgresql://$PGUSER_NAME@127.0.0.1:$1/postgres"
}

# Whether the server of data directory $1 runs (pg_ctl status: 0 runs, 3 not).
running() {
  [ -f "$1/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$1" status >/dev/null 2>&1
}

# Starts the server of data directory $1 on port $2, logging to $3.
start_server() {
  as_pg "$PGBIN/pg_ctl" -D "$1" -l "$3" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $2 -c unix_socket_directories=$dir $4" start >/dev/null || {
    echo "cluster.sh: the server in $1 did not start; its log:" >&2
    tail -20 "$3" >&2
    return 1
  }
}

psql_at() {
  port=$1
  shift
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$PGUSER_NAME" -d postgres "$@"
}

prepare_dir() {
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$dir"
  fi
  chmod 0700 "$dir"
}

choose_port() {
  if [ -n "$port_arg" ]; then
    echo "$port_arg"
  else
    free_port
  fi
}

case $cmd in
  start)
    if [ -f "$dir/port" ] && running "$dir/data"; then
      uri_for "$(cat "$dir/port")"
      exit 0
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
        echo "cluster.sh: $dir is not empty and holds no cluster" >&2
        exit 1
      fi
      prepare_dir
      as_pg "$PGBIN/initdb" -D "$dir/data" -U "$PGUSER_NAME" --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
      }
    fi
    port=$(choose_port)
    echo "$port" >"$dir/port"
    # fsync stays on: the failure tests kill the server and count on its WAL.
    # max_connections: each attune-server holds about 7 connections and the
    # integration suite keeps up to ~20 servers of one file alive at once.
    start_server "$dir/data" "$port" "$dir/log" "-c max_connections=400"
    uri_for "$port"
    ;;
  standby)
    [ -f "$dir/port" ] && running "$dir/data" || {
      echo "cluster.sh: no primary runs in $dir (start first)" >&2
      exit 1
    }
    primary=$(cat "$dir/port")
    if [ -f "$dir/standby.port" ] && running "$dir/standby"; then
      uri_for "$(cat "$dir/standby.port")"
      exit 0
    fi
    if [ ! -f "$dir/standby/PG_VERSION" ]; then
      as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$primary" -U "$PGUSER_NAME" \
        -D "$dir/standby" -R -X stream -C -S standby1 >"$dir/basebackup.log" 2>&1 || {
        cat "$dir/basebackup.log" >&2
        exit 1
      }
    fi
    port=$(choose_port)
    echo "$port" >"$dir/standby.port"
    start_server "$dir/standby" "$port" "$dir/standby.log" "-c cluster_name=standby1 -c max_connections=400"
    # Commits on the primary now wait for the standby's flush.
    psql_at "$primary" -c "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (standby1)'" \
      -c "SELECT pg_reload_conf()" >/dev/null
    tries=0
    until [ "$(psql_at "$primary" -Atc "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'")" = sync ]; do
      tries=$((tries + 1))
      if [ "$tries" -gt 100 ]; then
        echo "cluster.sh: the standby did not become synchronous in 10 s" >&2
        exit 1
      fi
      sleep 0.1
    done
    uri_for "$port"
    ;;
  promote)
    [ -f "$dir/standby.port" ] && running "$dir/standby" || {
      echo "cluster.sh: no standby runs in $dir" >&2
      exit 1
    }
    as_pg "$PGBIN/pg_ctl" -D "$dir/standby" -w -t 60 promote >/dev/null
    # A promoted server with synchronous_standby_names set would wait
    # forever for a standby it no longer has.
    psql_at "$(cat "$dir/standby.port")" -c "ALTER SYSTEM RESET synchronous_standby_names" \
      -c "SELECT pg_reload_conf()" >/dev/null
    uri_for "$(cat "$dir/standby.port")"
    ;;
  crash)
    if running "$dir/data"; then
      as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    fi
    ;;
  uri)
    [ -f "$dir/port" ] || {
      echo "cluster.sh: no cluster in $dir" >&2
      exit 1
    }
    if [ -f "$dir/standby.port" ]; then
      echo "postgresql://$PGUSER_NAME@127.0.0.1:$(cat "$dir/port"),127.0.0.1:$(cat "$dir/standby.port")/postgres?target_session_attrs=read-write&connect_timeout=2"
    else
      uri_for "$(cat "$dir/port")"
    fi
    ;;
  stop)
    [ -d "$dir" ] || exit 0
    for d in "$dir/standby" "$dir/data"; do
      if running "$d"; then
        as_pg "$PGBIN/pg_ctl" -D "$d" -m fast -w -t 60 stop >/dev/null ||
          as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null
      fi
    done
    rm -rf "$dir"
    ;;
  *)
    usage
    ;;
esac
