#!/usr/bin/env bash
# PostgreSQL 15 (Debian package) in a temp data dir on 127.0.0.1:$CSE_PG_PORT,
# trust auth, database $CSE_PG_DB.  Usage: postgres.sh start|stop|status
# Installs postgresql-15 with apt-get if $CSE_PG_BIN/initdb is missing.
SVC=postgres
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SVC_PORTS="$CSE_PG_PORT"
SVC_STOP_SIGNAL=INT   # postmaster: SIGINT = fast shutdown
PG_BIN="${CSE_PG_BIN:-/usr/lib/postgresql/15/bin}"

# initdb refuses to run as root: as root, run the server as user postgres.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_() { "$PG_BIN/psql" -X -q -h "$CSE_HOST" -p "$CSE_PG_PORT" -U postgres "$@"; }

svc_launch() {
  if [ ! -x "$PG_BIN/initdb" ]; then
    apt_install postgresql-15
    [ -x "$PG_BIN/initdb" ] || die "$PG_BIN/initdb still missing after installing postgresql-15"
  fi
  new_data_dir; mkdir -p "$SVC_DATA/sock"; touch "$SVC_LOG"
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$SVC_DATA" "$SVC_LOG"; fi
  log "initdb in $SVC_DATA/data"
  as_pg "$PG_BIN/initdb" -D "$SVC_DATA/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
    >> "$SVC_LOG" 2>&1 || { tail -n 20 "$SVC_LOG" >&2; die "initdb failed"; }
  # Throw-away test cluster: no durability, loopback only, socket in the temp dir.
  as_pg "$PG_BIN/pg_ctl" -D "$SVC_DATA/data" -l "$SVC_LOG" -w -t "$CSE_READY_TIMEOUT" \
    -o "-c listen_addresses=$CSE_HOST -p $CSE_PG_PORT -k $SVC_DATA/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >&2 9>&- || { tail -n 20 "$SVC_LOG" >&2; die "pg_ctl start failed"; }
  head -n1 "$SVC_DATA/data/postmaster.pid" > "$SVC_PID"
  if [ -z "$(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$CSE_PG_DB'")" ]; then
    psql_ -d postgres -c "CREATE DATABASE \"$CSE_PG_DB\"" || die "could not create database $CSE_PG_DB"
  fi
}

svc_ready() { psql_ -d "$CSE_PG_DB" -tAc 'SELECT 1' >/dev/null 2>&1; }
svc_info() { echo "database $CSE_PG_DB"; }

svc_main "$@"
