#!/usr/bin/env bash
# Start/stop/status of all local test servers: Kafka, PostgreSQL, InfluxDB, Prometheus.
# Usage: services.sh start|stop|status   (status exits 1 if any is down)
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cmd="${1:-}"; rc=0
case "$cmd" in
  start|status) order="$CSE_SERVICES" ;;
  stop) order="prometheus influxdb postgres kafka" ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
for s in $order; do
  bash "$CSE_LOCAL_DIR/$s.sh" "$cmd" || { rc=1; [ "$cmd" = start ] && break; }
done
if [ "$cmd" = start ] && [ "$rc" = 0 ]; then
  export_test_env
  printf 'export %s\n' "CSE_KAFKA_BOOTSTRAP=$CSE_KAFKA_BOOTSTRAP" "CSE_PG_DSN=$CSE_PG_DSN" \
    "CSE_INFLUX_URL=$CSE_INFLUX_URL" "CSE_INFLUX_DB=$CSE_INFLUX_DB" \
    "CSE_PROMETHEUS_URL=$CSE_PROMETHEUS_URL" "CSE_PROM_TARGETS=$CSE_PROM_TARGETS"
fi
exit "$rc"
