#!/usr/bin/env bash
# A real OpenStack Cinder on 127.0.0.1 for the tests in tests/cloud/cinder_peer.rs:
# cinder-api, -scheduler, -volume and -backup (the stock POSIX backup driver)
# with RabbitMQ and an SQLite database, all bound to loopback.
#
#   bash tests/cinder/setup.sh start    # install on first use, configure, start, wait until ready
#   bash tests/cinder/setup.sh status   # what runs, and whether the API answers
#   bash tests/cinder/setup.sh stop     # stop everything it started, by PID
#
# then: VBS_CINDER_URL=http://127.0.0.1:8776 cargo test
#
# First start on a fresh machine: installs the Debian package rabbitmq-server
# with apt-get (root, or passwordless sudo) and Cinder 29.0.0 with the pinned
# Python packages of requirements.lock into a virtualenv under $BASE; about
# 3 minutes, ~400 MB of disk. Later starts take ~30 s.
#
# Only storage and auth are stand-ins: volumes are sparse files
# (peer_localfile.py) named $BASE/vols/volume-<volume id>, which the restore
# tests write and read (set VBS_CINDER_VOLUMES=$BASE/vols for them when BASE
# is not the default), and the project id is taken from the URL without
# checking X-Auth-Token (peer_auth.py). The API, scheduler, backup manager,
# database and backup driver are Cinder's own code.
#
# Environment: BASE (state folder, default ${TMPDIR:-/tmp}/vbs-agent-cinder),
# API_PORT (8776), AMQP_PORT (5672), DIST_PORT (25672), EPMD_PORT (4369),
# PYTHON (python3).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BASE=${BASE:-${TMPDIR:-/tmp}/vbs-agent-cinder}
CINDER_VERSION=29.0.0
API_PORT=${API_PORT:-8776}
AMQP_PORT=${AMQP_PORT:-5672}
DIST_PORT=${DIST_PORT:-25672}
EPMD_PORT=${EPMD_PORT:-4369}
PYTHON=${PYTHON:-python3}
VENV=$BASE/venv
RUN=$BASE/run
CONF=$BASE/etc/cinder.conf

log() { echo "[cinder $(date +%T)] $*" >&2; }

listening() { # port
  "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null
}

wait_port() { # port seconds
  local i
  for i in $(seq 1 "$2"); do
    listening "$1" && return 0
    sleep 1
  done
  log "nothing listens on 127.0.0.1:$1 after $2 s; logs: $BASE/logs"
  return 1
}

rabbit_env() {
  export HOME=$BASE/rabbit RABBITMQ_NODENAME=rabbit@localhost
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$AMQP_PORT
  export RABBITMQ_DIST_PORT=$DIST_PORT ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=$EPMD_PORT
  export RABBITMQ_MNESIA_BASE=$BASE/rabbit/mnesia RABBITMQ_LOG_BASE=$BASE/rabbit/log
  export RABBITMQ_CONFIG_FILE=$BASE/rabbit/rabbitmq.conf
  export RABBITMQ_ENABLED_PLUGINS_FILE=$BASE/rabbit/enabled_plugins
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

install() {
  if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    log "installing the system package rabbitmq-server with apt-get"
    local sudo=
    [ "$(id -u)" = 0 ] || sudo="sudo -n"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  if [ ! -x "$VENV/bin/cinder-api" ]; then
    log "installing cinder==$CINDER_VERSION (pinned by requirements.lock) into $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q -c "$HERE/requirements.lock" "cinder==$CINDER_VERSION"
  fi
}

configure() {
  mkdir -p "$BASE"/{lib,etc,logs,state,locks,vols,backups,run,rabbit/mnesia,rabbit/log}
  cp -r "$VENV"/etc/cinder/* "$BASE/etc/"
  cp "$HERE/peer_localfile.py" "$HERE/peer_auth.py" "$BASE/lib/"
  # api-paste: token-less auth with the project id from the URL, and /v2
  # served by the v3 handlers (as the vendor's endpoints do).
  "$VENV/bin/python" - "$BASE" <<'PY'
import sys
base = sys.argv[1]
p = base + '/etc/api-paste.ini'
s = open(p).read()
s = s.replace("use = call:cinder.api:root_app_factory",
              "use = call:paste.urlmap:urlmap_factory")
s = s.replace("/v3: openstack_volume_api_v3\n",
              "/v3: openstack_volume_api_v3\n/v2: openstack_volume_api_v3\n")
s = s.replace("paste.filter_factory = cinder.api.middleware.auth:NoAuthMiddleware.factory",
              "paste.filter_factory = peer_auth:PeerNoAuth.factory")
s = s.replace("/etc/cinder/healthcheck_disable", base + "/etc/healthcheck_disable")
open(p, 'w').write(s)
PY
  local helper="$VENV/bin/privsep-helper --config-file $CONF"
  [ "$(id -u)" = 0 ] || helper="sudo -n $helper"
  cat > "$CONF" <<EOF
[DEFAULT]
auth_strategy = noauth
transport_url = rabbit://guest:guest@127.0.0.1:$AMQP_PORT/
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = $API_PORT
osapi_volume_workers = 1
api_paste_config = $BASE/etc/api-paste.ini
resource_query_filters_file = $BASE/etc/resource_filters.json
rootwrap_config = $BASE/etc/rootwrap.conf
state_path = $BASE/state
log_dir = $BASE/logs
debug = True
host = cinderpeer
my_ip = 127.0.0.1
storage_availability_zone = nova
default_availability_zone = nova
enabled_backends = peer
backup_driver = cinder.backup.drivers.posix.PosixBackupDriver
backup_posix_path = $BASE/backups
backup_compression_algorithm = zlib
periodic_interval = 10
report_interval = 5
service_down_time = 60

[database]
connection = sqlite:///$BASE/cinder.sqlite

[oslo_concurrency]
lock_path = $BASE/locks

[coordination]
backend_url = file://$BASE/locks

[peer]
volume_driver = peer_localfile.LocalFileDriver
volume_backend_name = peer
peer_file_dir = $BASE/vols
target_helper = fake

[privsep_osbrick]
helper_command = $helper

[cinder_sys_admin]
helper_command = $helper
EOF
  cat > "$BASE/rabbit/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
loopback_users.guest = true
EOF
  echo '[].' > "$BASE/rabbit/enabled_plugins"
}

start_bg() { # name command...
  local name=$1
  shift
  nohup "$@" >"$BASE/logs/$name.stdout" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

services_up() {
  "$VENV/bin/cinder-manage" --config-file "$CONF" service list 2>/dev/null | grep -c ':-)' || true
}

start() {
  if listening "$API_PORT"; then
    log "something already listens on 127.0.0.1:$API_PORT; run '$0 stop' first"
    return 1
  fi
  install
  configure
  rabbit_env
  if ! listening "$AMQP_PORT"; then
    log "starting RabbitMQ on 127.0.0.1:$AMQP_PORT"
    start_bg epmd /usr/bin/epmd -address 127.0.0.1 -port "$EPMD_PORT"
    sleep 1
    start_bg rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server
    wait_port "$AMQP_PORT" 90
  fi
  export PYTHONPATH=$BASE/lib PYTHONWARNINGS=ignore HOME=$BASE
  "$VENV/bin/cinder-manage" --config-file "$CONF" db sync >/dev/null
  local s
  for s in api scheduler volume backup; do
    start_bg "cinder-$s" "$VENV/bin/cinder-$s" --config-file "$CONF"
  done
  wait_port "$API_PORT" 90
  local i up=0
  for i in $(seq 1 90); do
    up=$(services_up)
    [ "$up" -ge 3 ] && break
    sleep 1
  done
  if [ "$up" -lt 3 ]; then
    log "scheduler, volume and backup services are not all up; logs: $BASE/logs"
    return 1
  fi
  log "ready: VBS_CINDER_URL=http://127.0.0.1:$API_PORT VBS_CINDER_VOLUMES=$BASE/vols"
}

stop_pid() { # pidfile
  local f=$1 pid kids i k
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kids=$(pgrep -P "$pid" || true)
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 45); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    kill -KILL "$pid" 2>/dev/null || true
    for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
  fi
  rm -f "$f"
}

stop() {
  local s
  for s in cinder-api cinder-scheduler cinder-volume cinder-backup; do
    stop_pid "$RUN/$s.pid" &
  done
  wait
  # The rabbitmq-server script's child is the Erlang VM (beam.smp).
  if [ -f "$RUN/rabbitmq.pid" ]; then
    local beam
    beam=$(pgrep -P "$(cat "$RUN/rabbitmq.pid")" || true)
    if [ -n "$beam" ]; then
      echo "$beam" >"$RUN/beam.pid"
      stop_pid "$RUN/beam.pid"
    fi
    stop_pid "$RUN/rabbitmq.pid"
  fi
  stop_pid "$RUN/epmd.pid"
  log "stopped"
}

status() {
  local s pid state=0
  for s in epmd rabbitmq cinder-api cinder-scheduler cinder-volume cinder-backup; do
    pid=$(cat "$RUN/$s.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      echo "$s: running (pid $pid)"
    else
      echo "$s: not running"
      state=1
    fi
  done
  if listening "$API_PORT"; then
    echo "API: http://127.0.0.1:$API_PORT answers; services up: $(services_up)"
  else
    echo "API: nothing listens on 127.0.0.1:$API_PORT"
    state=1
  fi
  return $state
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
