# shellcheck shell=bash
# Shared helpers for the local test servers (kafka.sh, postgres.sh,
# influxdb.sh, prometheus.sh, services.sh, with-services.sh).  Sourced, never executed.
#
# A service script sets SVC (name) and SVC_PORTS (ports it binds, all on
# 127.0.0.1) and defines:
#   svc_ready    exit 0 iff the server answers its own protocol
#   svc_launch   prepare a temp data dir (path in $SVC_DATA), start the server
#                detached, write its pid to $SVC_PID (usually via launch_detached)
#   svc_info     one-line description for `status` (optional)
# then calls `svc_main "$@"`, which provides start|stop|status with pid files,
# port-conflict checks, idempotency and a per-service lock.
#
# State lives under $CSE_RUN_DIR (default /tmp/cse-services):
#   <svc>.pid   pid of the server process we started
#   <svc>.data  path of its temp data dir (deleted on stop unless CSE_KEEP_DATA=1)
#   logs/<svc>.log (+ Kafka's logs/kafka/server.log), kept after stop for post-mortems

set -euo pipefail

CSE_HOST=127.0.0.1
CSE_RUN_DIR="${CSE_RUN_DIR:-/tmp/cse-services}"
CSE_CACHE_DIR="${CSE_CACHE_DIR:-${HOME:-/root}/.cache/cryptospreadedge}"
CSE_KAFKA_PORT="${CSE_KAFKA_PORT:-9092}"
CSE_KAFKA_CONTROLLER_PORT="${CSE_KAFKA_CONTROLLER_PORT:-9093}"
CSE_PG_PORT="${CSE_PG_PORT:-55432}"
CSE_PG_DB="${CSE_PG_DB:-cse}"
CSE_INFLUX_PORT="${CSE_INFLUX_PORT:-8086}"
CSE_INFLUX_RPC_PORT="${CSE_INFLUX_RPC_PORT:-8088}"
CSE_INFLUX_DB="${CSE_INFLUX_DB:-cse}"
CSE_PROM_PORT="${CSE_PROM_PORT:-9090}"
CSE_PROM_TARGETS="${CSE_PROM_TARGETS:-$CSE_RUN_DIR/prometheus-targets}"
CSE_READY_TIMEOUT="${CSE_READY_TIMEOUT:-120}"
# shellcheck disable=SC2034  # used by the scripts that source this file
CSE_LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034
CSE_SERVICES="kafka postgres influxdb prometheus"

# Connection settings for the tests (tests/integration/conftest.py reads these).
export_test_env() {
  export CSE_KAFKA_BOOTSTRAP="$CSE_HOST:$CSE_KAFKA_PORT"
  export CSE_PG_DSN="postgresql+asyncpg://postgres@$CSE_HOST:$CSE_PG_PORT/$CSE_PG_DB"
  export CSE_INFLUX_URL="http://$CSE_HOST:$CSE_INFLUX_PORT"
  export CSE_INFLUX_DB
  export CSE_PROMETHEUS_URL="http://$CSE_HOST:$CSE_PROM_PORT"
  export CSE_PROM_TARGETS
}

log() { printf '[%s] %s\n' "${SVC:-cse}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH${2:+ ($2)}"; }

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/$CSE_HOST/$1") 2>/dev/null; }

# Who listens on a port (best effort, for error messages).
port_owner() { command -v ss >/dev/null && ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:.*' | head -n1 || true; }

# HTTP status code of `METHOD http://127.0.0.1:PORT PATH` (no curl needed).
# Usage: http_status PORT PATH [METHOD]   (PATH already URL-encoded)
http_status() {
  # shellcheck disable=SC2016
  timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "%s %s HTTP/1.0\r\nHost: %s\r\nContent-Length: 0\r\n\r\n" "$3" "$2" "$0" >&3
    IFS=" " read -r _ code _ <&3 && printf "%s" "$code"' "$CSE_HOST" "$1" "$2" "${3:-GET}" 2>/dev/null
}

# apt-get install, with one `apt-get update` per machine boot/run dir.
apt_install() {
  need apt-get "cannot install $*"
  [ "$(id -u)" = 0 ] || die "installing $* needs root"
  if [ ! -e "$CSE_RUN_DIR/.apt-updated" ]; then
    log "apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    : > "$CSE_RUN_DIR/.apt-updated"
  fi
  log "apt-get install -y $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-upgrade "$@" >&2 \
    || die "apt-get install $* failed"
}

pid_of() { cat "$SVC_PID" 2>/dev/null || true; }
pid_alive() { local p; p="$(pid_of)"; [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# launch_detached CMD... : run CMD in its own session, immune to the caller's
# exit/Ctrl-C; the pid file names CMD itself (bash writes $$ and then execs).
launch_detached() {
  rm -f "$SVC_PID"
  # shellcheck disable=SC2016
  setsid nohup bash -c 'echo $$ > "$0"; exec "$@"' "$SVC_PID" "$@" >> "$SVC_LOG" 2>&1 < /dev/null 9>&- &
  local _
  for _ in $(seq 1 50); do [ -s "$SVC_PID" ] && return 0; sleep 0.1; done
  die "process did not start (see $SVC_LOG)"
}

# new_data_dir: fresh temp dir for this run, remembered in <svc>.data.
new_data_dir() {
  SVC_DATA="$(mktemp -d "${TMPDIR:-/tmp}/cse-$SVC.XXXXXX")"
  printf '%s\n' "$SVC_DATA" > "$CSE_RUN_DIR/$SVC.data"
}

drop_state() {
  local d; d="$(cat "$CSE_RUN_DIR/$SVC.data" 2>/dev/null || true)"
  if [ -n "$d" ] && [ "${CSE_KEEP_DATA:-0}" != 1 ]; then rm -rf -- "$d"; fi
  rm -f "$SVC_PID" "$CSE_RUN_DIR/$SVC.data"
}

wait_ready() {
  local deadline=$((SECONDS + CSE_READY_TIMEOUT))
  until svc_ready; do
    pid_alive || { log "server process exited; last log lines:"; tail -n 30 "$SVC_LOG" >&2 || true; return 1; }
    [ "$SECONDS" -lt "$deadline" ] || { log "not ready after ${CSE_READY_TIMEOUT}s; last log lines:"; tail -n 30 "$SVC_LOG" >&2 || true; return 1; }
    sleep 0.3
  done
}

svc_start() {
  if pid_alive; then
    wait_ready || die "pid $(pid_of) is alive but not answering; try '$0 stop'"
    log "already running (pid $(pid_of)); nothing to do"; return 0
  fi
  drop_state   # stale pid file / data dir from a crashed run
  local p owner
  for p in $SVC_PORTS; do
    if port_open "$p"; then
      owner="$(port_owner "$p")"
      die "port $CSE_HOST:$p is already in use by a process not started by this script${owner:+ ($owner)}; stop it or set another port"
    fi
  done
  local t0=$SECONDS
  svc_launch
  if ! wait_ready; then svc_stop >/dev/null 2>&1 || true; die "$SVC failed to start (log: $SVC_LOG)"; fi
  log "ready on $CSE_HOST:${SVC_PORTS%% *} (pid $(pid_of), ${SVC_DATA:-?}) in $((SECONDS - t0))s"
}

svc_stop() {
  if ! pid_alive; then log "not running (nothing started by this script)"; drop_state; return 0; fi
  local pid _; pid="$(pid_of)"
  kill "-${SVC_STOP_SIGNAL:-TERM}" "$pid" 2>/dev/null || true
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || { drop_state; log "stopped (pid $pid)"; return 0; }
    sleep 0.5
  done
  log "pid $pid still alive after 60s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.5; drop_state
}

svc_status() {
  if pid_alive && svc_ready; then
    echo "$SVC: running, pid $(pid_of), $CSE_HOST:${SVC_PORTS%% *}${1:+, $1}"
  elif pid_alive; then
    echo "$SVC: started (pid $(pid_of)) but not answering"; return 1
  else
    local p; for p in $SVC_PORTS; do
      port_open "$p" && { echo "$SVC: not running (but port $p is used by another process)"; return 1; }
    done
    echo "$SVC: not running"; return 1
  fi
}

svc_main() {
  mkdir -p "$CSE_RUN_DIR/logs"
  SVC_PID="$CSE_RUN_DIR/$SVC.pid"
  SVC_LOG="$CSE_RUN_DIR/logs/$SVC.log"
  SVC_DATA="$(cat "$CSE_RUN_DIR/$SVC.data" 2>/dev/null || true)"
  # One start/stop at a time per service (e.g. two with-services.sh runs);
  # launch_detached closes fd 9 so the server does not inherit the lock.
  if [ "${1:-}" != status ]; then
    exec 9> "$CSE_RUN_DIR/$SVC.lock"
    flock -w 300 9 || die "timed out waiting for $CSE_RUN_DIR/$SVC.lock"
  fi
  case "${1:-}" in
    start) svc_start ;;
    stop) svc_stop ;;
    status) svc_status "$(declare -F svc_info >/dev/null && svc_info || true)" ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
  esac
}
