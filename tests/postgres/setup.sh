#!/usr/bin/env bash
# A throwaway PostgreSQL on 127.0.0.1 for the tests that need a PostgreSQL
# history or the HA lease: a fresh cluster in a temporary folder, listening
# on loopback only, with a role and a database `vbs` whose password is made
# anew at every start.
#
#   bash tests/postgres/setup.sh start    # a new cluster, started; prints VBS_PG_URL=... on stdout
#   bash tests/postgres/setup.sh status   # whether it runs and answers (and the URL when it does)
#   bash tests/postgres/setup.sh stop     # stop it (fast shutdown) and remove $BASE
#
# then: export "$(bash tests/postgres/setup.sh start | grep '^VBS_PG_URL=')"; cargo test
#
# `start` stops and removes a cluster left by an earlier start first, so it
# can be run again at any time; every start is a new, empty cluster. The
# role `vbs` has CREATEDB, so that a test can make a database of its own.
# Progress goes to stderr; stdout is the one line
# VBS_PG_URL=postgres://vbs:<password>@127.0.0.1:<port>/vbs?sslmode=disable
#
# PostgreSQL refuses to run as root: run as root, the script runs the server
# and its tools as the system user postgres (runuser, or su); run as anyone
# else, as that user. It uses the server of Debian's postgresql package
# (installed with apt-get on first use when missing, as root or with
# passwordless sudo). The cluster is for tests only: fsync is off.
#
# Environment: PG_BASE (state folder, default ${TMPDIR:-/tmp}/vbs-agent-postgres;
# its parents must let the user postgres through), PG_PORT (55432), PG_BIN (the
# folder of initdb and pg_ctl; found on PATH or under /usr/lib/postgresql).
set -euo pipefail

BASE=${PG_BASE:-${TMPDIR:-/tmp}/vbs-agent-postgres}
case "$BASE" in
  /*) ;;
  *) BASE=$(pwd)/$BASE ;;
esac
PORT=${PG_PORT:-55432}
DATA=$BASE/data
SOCKETS=$BASE/sockets
LOG=$BASE/postgres.log
# Marks a folder as this script's, so that `stop` removes no other.
MARK=$BASE/.vbs-agent-postgres

log() { echo "[postgres $(date +%T)] $*" >&2; }

root() { [ "$(id -u)" = 0 ]; }

find_bin() {
  if [ -n "${PG_BIN:-}" ]; then
    return 0
  fi
  local initdb
  if initdb=$(command -v initdb); then
    PG_BIN=$(dirname "$(readlink -f "$initdb")")
    return 0
  fi
  # Debian's layout: /usr/lib/postgresql/<major>/bin, the newest first.
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$PG_BIN" ]
}

install() {
  find_bin && [ -x "$PG_BIN/initdb" ] && return 0
  log "installing the system package postgresql with apt-get"
  local sudo=
  root || sudo="sudo -n"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  PG_BIN=
  find_bin && [ -x "$PG_BIN/initdb" ] || {
    log "no initdb after installing postgresql; set PG_BIN"
    return 1
  }
}

# Runs a command in a folder as the owner of the cluster: postgres when the
# script runs as root, else the user running it. Never from the folder the
# script was started in, which postgres may not be allowed into.
as_owner_in() { # dir command...
  local dir=$1
  shift
  if ! root; then
    (cd "$dir" && "$@")
  elif command -v runuser >/dev/null; then
    (cd "$dir" && runuser -u postgres -- "$@")
  else
    (cd "$dir" && su postgres -s /bin/sh -c "$(printf '%q ' "$@")")
  fi
}

as_owner() { as_owner_in "$BASE" "$@"; }

listening() { # port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

password() { # 48 hex digits: safe in a URL and in SQL
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

url() {
  echo "VBS_PG_URL=postgres://vbs:$(cat "$BASE/vbs.password")@127.0.0.1:$PORT/vbs?sslmode=disable"
}

# The pid of this cluster's server from its pid file, when that process
# still runs and is the server of $DATA (not a process that got the pid
# of one gone since).
postmaster_pid() {
  local pid cmd
  pid=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  case "$cmd" in
    *" -D $DATA "*) echo "$pid" ;;
  esac
}

stop() {
  if [ -e "$BASE" ] && [ ! -e "$MARK" ]; then
    log "$BASE was not made by this script; not touching it"
    return 1
  fi
  [ -e "$BASE" ] || return 0
  find_bin || true
  local pid
  pid=$(postmaster_pid)
  if [ -n "$pid" ]; then
    log "stopping the server (pid $pid)"
    if ! as_owner "$PG_BIN/pg_ctl" -D "$DATA" stop -m fast -w -t 60 >&2; then
      log "pg_ctl stop failed; killing pid $pid"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$BASE"
  log "stopped; removed $BASE"
}

# Fails, naming the folder, when the user postgres cannot reach its folder.
check_reachable() {
  as_owner test -w "$BASE" 2>/dev/null && return 0
  local dir=$BASE
  while [ "$dir" != / ]; do
    dir=$(dirname "$dir")
    if ! as_owner_in / test -x "$dir" 2>/dev/null; then
      log "the user postgres cannot enter $dir; choose another PG_BASE (or TMPDIR)"
      return 1
    fi
  done
  log "the user postgres cannot write to $BASE"
  return 1
}

start() {
  stop
  if listening "$PORT"; then
    log "something else listens on 127.0.0.1:$PORT; set PG_PORT to a free port"
    return 1
  fi
  install
  if root && ! id postgres >/dev/null 2>&1; then
    log "there is no system user postgres to run the server as"
    return 1
  fi
  mkdir -p "$BASE"
  chmod 700 "$BASE"
  touch "$MARK"
  (umask 077 && password >"$BASE/vbs.password" && password >"$BASE/superuser.password")
  if root; then
    chown postgres: "$BASE" "$BASE/superuser.password"
    check_reachable
  fi
  log "initdb in $DATA ($("$PG_BIN/postgres" --version))"
  as_owner "$PG_BIN/initdb" -D "$DATA" -U postgres --pwfile="$BASE/superuser.password" \
    --locale=C --encoding=UTF8 --auth=scram-sha-256 --no-instructions >"$BASE/initdb.log" 2>&1 || {
    cat "$BASE/initdb.log" >&2
    return 1
  }
  as_owner mkdir -m 700 "$SOCKETS"
  cat >>"$DATA/postgresql.conf" <<EOF

# tests/postgres/setup.sh
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKETS'
max_connections = 200
fsync = off
EOF
  log "starting on 127.0.0.1:$PORT (log: $LOG)"
  if ! as_owner "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 120 start >&2; then
    tail -n 20 "$LOG" >&2 || true
    log "the server did not start; log: $LOG"
    return 1
  fi
  local i
  for i in $(seq 1 120); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
    if [ "$i" = 120 ]; then
      log "the server does not accept connections on 127.0.0.1:$PORT after 120 s; log: $LOG"
      return 1
    fi
    sleep 1
  done
  # Over TCP with the superuser's password; SQL on stdin, so that no
  # password stands in a command line.
  PGPASSWORD=$(cat "$BASE/superuser.password") "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$PORT" -U postgres -d postgres >&2 <<EOF
CREATE ROLE vbs LOGIN CREATEDB PASSWORD '$(cat "$BASE/vbs.password")';
CREATE DATABASE vbs OWNER vbs;
EOF
  log "ready: role vbs, database vbs on 127.0.0.1:$PORT; password in $BASE/vbs.password"
  url
}

status() {
  find_bin || true
  local pid
  pid=$(postmaster_pid)
  if [ -n "$pid" ]; then
    echo "postgres: running (pid $pid, data $DATA)"
  else
    echo "postgres: not running"
    return 1
  fi
  if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
    echo "127.0.0.1:$PORT accepts connections"
    url
  else
    echo "127.0.0.1:$PORT does not accept connections; log: $LOG"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
