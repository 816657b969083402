#!/usr/bin/env bash
# InfluxDB 1.x (Debian package `influxdb`) in a temp data dir on
# 127.0.0.1:$CSE_INFLUX_PORT (RPC 127.0.0.1:$CSE_INFLUX_RPC_PORT), database
# $CSE_INFLUX_DB created.  Usage: influxdb.sh start|stop|status
SVC=influxdb
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SVC_PORTS="$CSE_INFLUX_PORT $CSE_INFLUX_RPC_PORT"
INFLUXD="${CSE_INFLUXD:-/usr/bin/influxd}"

install_influxdb() {
  apt_install influxdb
  # The package's postinst may start its own instance on :8086 (it does not
  # where /usr/sbin/policy-rc.d forbids it).  We just installed it, so stop it.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl disable --now influxdb >&2 2>/dev/null || true
  elif [ -x /etc/init.d/influxdb ]; then
    /etc/init.d/influxdb stop >&2 2>/dev/null || true
  fi
  local _; for _ in $(seq 1 20); do port_open "$CSE_INFLUX_PORT" || break; sleep 0.5; done
  port_open "$CSE_INFLUX_PORT" && die "packaged influxdb still listens on :$CSE_INFLUX_PORT after stop"
  [ -x "$INFLUXD" ] || die "$INFLUXD still missing after installing influxdb"
}

svc_launch() {
  [ -x "$INFLUXD" ] || install_influxdb
  new_data_dir
  cat > "$SVC_DATA/influxdb.conf" <<CONF
reporting-enabled = false
bind-address = "$CSE_HOST:$CSE_INFLUX_RPC_PORT"
[meta]
  dir = "$SVC_DATA/meta"
  logging-enabled = false
[data]
  dir = "$SVC_DATA/data"
  wal-dir = "$SVC_DATA/wal"
  index-version = "inmem"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "$CSE_HOST:$CSE_INFLUX_PORT"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false
[logging]
  level = "warn"
CONF
  log "starting $("$INFLUXD" version 2>/dev/null || echo influxd) in $SVC_DATA"
  launch_detached "$INFLUXD" run -config "$SVC_DATA/influxdb.conf"
  wait_ready || die "influxd did not answer /ping"
  [ "$(http_status "$CSE_INFLUX_PORT" "/query?q=CREATE%20DATABASE%20%22$CSE_INFLUX_DB%22" POST)" = 200 ] \
    || die "CREATE DATABASE $CSE_INFLUX_DB failed"
}

svc_ready() { [ "$(http_status "$CSE_INFLUX_PORT" /ping)" = 204 ]; }
svc_info() { echo "database $CSE_INFLUX_DB"; }

svc_main "$@"
