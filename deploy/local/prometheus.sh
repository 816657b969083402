#!/usr/bin/env bash
# Prometheus (Debian package `prometheus`) in a temp data dir on 127.0.0.1:$CSE_PROM_PORT, scraping every
# second the targets that tests write as JSON files into $CSE_PROM_TARGETS (file service discovery), with
# the project's alert rules (deploy/prometheus/alerts.yml) loaded.  Usage: prometheus.sh start|stop|status
SVC=prometheus
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SVC_PORTS="$CSE_PROM_PORT"
PROMETHEUS="${CSE_PROMETHEUS:-/usr/bin/prometheus}"

install_prometheus() {
  apt_install prometheus
  # Where an init system may run, the package's own instance would take :9090: stop it, we run our own.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl disable --now prometheus >&2 2>/dev/null || true
  elif [ -x /etc/init.d/prometheus ]; then
    /etc/init.d/prometheus stop >&2 2>/dev/null || true
  fi
  local _; for _ in $(seq 1 20); do port_open "$CSE_PROM_PORT" || break; sleep 0.5; done
  port_open "$CSE_PROM_PORT" && die "packaged prometheus still listens on :$CSE_PROM_PORT after stop"
  [ -x "$PROMETHEUS" ] || die "$PROMETHEUS still missing after installing prometheus"
}

svc_launch() {
  [ -x "$PROMETHEUS" ] || install_prometheus
  new_data_dir
  mkdir -p "$CSE_PROM_TARGETS"
  cat > "$SVC_DATA/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: ["$CSE_LOCAL_DIR/../prometheus/alerts.yml"]
scrape_configs:
  - job_name: cse-test
    file_sd_configs: [{files: ["$CSE_PROM_TARGETS/*.json"], refresh_interval: 1s}]
CONF
  log "starting $("$PROMETHEUS" --version 2>&1 | head -n1) in $SVC_DATA"
  launch_detached "$PROMETHEUS" --config.file="$SVC_DATA/prometheus.yml" --storage.tsdb.path="$SVC_DATA/data" \
    --web.listen-address="$CSE_HOST:$CSE_PROM_PORT" --storage.tsdb.retention.time=1d --log.level=warn
  wait_ready || die "prometheus did not answer /-/ready"
}

svc_ready() { [ "$(http_status "$CSE_PROM_PORT" /-/ready)" = 200 ]; }
svc_info() { echo "targets from $CSE_PROM_TARGETS/*.json"; }

svc_main "$@"
