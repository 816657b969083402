#!/usr/bin/env bash
# with-services.sh CMD...  Start whichever local test server (Kafka,
# PostgreSQL, InfluxDB, Prometheus) is not already running, export CSE_KAFKA_BOOTSTRAP,
# CSE_PG_DSN, CSE_INFLUX_URL, CSE_INFLUX_DB, CSE_PROMETHEUS_URL and CSE_PROM_TARGETS, run CMD, then stop only the
# servers this run started (also on failure, Ctrl-C or SIGTERM).
# Exits with CMD's exit code (or 1 if a server could not be started).
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
mkdir -p "$CSE_RUN_DIR"
STARTED=()
RECORD="$CSE_RUN_DIR/with-services.$$.started"   # which servers this run owns

# shellcheck disable=SC2317  # invoked via trap
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    bash "$CSE_LOCAL_DIR/${STARTED[i]}.sh" stop || rc=$((rc ? rc : 1))
  done
  rm -f "$RECORD"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for s in $CSE_SERVICES; do
  if bash "$CSE_LOCAL_DIR/$s.sh" status >/dev/null 2>&1; then
    SVC=$s log "already running; using it and leaving it running"
  else
    STARTED+=("$s"); echo "$s" >> "$RECORD"   # record first: a half-started server is stopped too
    bash "$CSE_LOCAL_DIR/$s.sh" start
  fi
done

# kcat is the outside consumer of our topics in the integration tests (not our code reading our data).
command -v kcat >/dev/null 2>&1 || SVC=tools apt_install kcat

export_test_env
set +e
"$@"
exit $?
