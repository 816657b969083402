#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, broker+controller in one JVM) on
# 127.0.0.1:$CSE_KAFKA_PORT (controller $CSE_KAFKA_CONTROLLER_PORT), run from
# Maven Central jars.  Usage: kafka.sh start|stop|status
#
# Jars: org.apache.kafka:kafka_2.13 ($CSE_KAFKA_VERSIONS, first that resolves,
# default "3.9.2 3.9.1 4.1.1") plus its logging backend, copied by
# `mvn dependency:copy-dependencies` into $CSE_CACHE_DIR/kafka-<ver>/libs once;
# later starts reuse them without Maven.  Storage is formatted in a fresh temp
# dir on every start.  Based on the team note kafka-from-maven.sh.
SVC=kafka
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SVC_PORTS="$CSE_KAFKA_PORT $CSE_KAFKA_CONTROLLER_PORT"
KAFKA_VERSIONS="${CSE_KAFKA_VERSIONS:-3.9.2 3.9.1 4.1.1}"
LOG4J2_VERSION="${CSE_LOG4J2_VERSION:-2.24.3}"
MVN_DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.11.0
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
# Kafka's own performance flags (kafka-run-class.sh) plus caps for 2 cores.
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1 -XX:CICompilerCount=2 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
TOOL_JVM_OPTS="-Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
KLOG_DIR="$CSE_RUN_DIR/logs/kafka"   # kafka.logs.dir: server.log

major() { printf '%s' "${1%%.*}"; }
home_of() { printf '%s/kafka-%s' "$CSE_CACHE_DIR" "$1"; }
cached() { [ -f "$(home_of "$1")/libs/.complete" ]; }

# Kafka's POM leaves out the logging backend (compileOnly in its Gradle build),
# so we add the one the release tarball ships: reload4j for 3.x, log4j2 for 4.x.
write_pom() {
  local v="$1" backend
  if [ "$(major "$v")" -ge 4 ]; then
    backend="
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J2_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>$LOG4J2_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J2_VERSION</version></dependency>"
  else
    backend="
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>1.2.25</version></dependency>"
  fi
  cat > "$(home_of "$v")/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.cse</groupId><artifactId>kafka-broker-runtime</artifactId><version>$v</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$v</version>
      <exclusions>
        <exclusion><groupId>ch.qos.logback</groupId><artifactId>*</artifactId></exclusion>
        <exclusion><groupId>org.slf4j</groupId><artifactId>slf4j-log4j12</artifactId></exclusion>
        <exclusion><groupId>log4j</groupId><artifactId>log4j</artifactId></exclusion>
      </exclusions>
    </dependency>$backend
  </dependencies>
</project>
EOF
}

fetch() {   # fetch VERSION -> jars in $(home_of VERSION)/libs, or return 1
  local v="$1" home; home="$(home_of "$v")"
  need mvn "needed once to download Kafka jars from Maven Central"
  mkdir -p "$home"; write_pom "$v"; rm -rf "$home/libs.tmp"
  log "resolving org.apache.kafka:kafka_2.13:$v with Maven (log: $home/mvn.log)"
  if ! mvn -B -ntp -f "$home/pom.xml" "$MVN_DEP_PLUGIN:copy-dependencies" \
      -DoutputDirectory="$home/libs.tmp" -DincludeScope=runtime > "$home/mvn.log" 2>&1 \
      || [ ! -f "$home/libs.tmp/kafka_2.13-$v.jar" ]; then
    log "Maven could not resolve Kafka $v; last lines:"; tail -n 15 "$home/mvn.log" >&2; return 1
  fi
  rm -rf "$home/libs"; mv "$home/libs.tmp" "$home/libs"; : > "$home/libs/.complete"
  log "cached $(find "$home/libs" -name '*.jar' | wc -l) jars in $home/libs"
}

# Pick the first candidate already cached; otherwise fetch candidates in order.
resolve_version() {
  local v
  for v in $KAFKA_VERSIONS; do cached "$v" && { echo "$v"; return; }; done
  for v in $KAFKA_VERSIONS; do fetch "$v" >&2 && { echo "$v"; return; }; done
  die "no Kafka version could be resolved from Maven (tried: $KAFKA_VERSIONS)"
}

write_config() {   # write_config VERSION CONF_DIR
  local v="$1" c="$2" h="$CSE_HOST"
  # Static voters: StorageTool formats with just -t/-c on 3.9.x and 4.x.
  # Replication factors 1 so __consumer_offsets/__transaction_state can exist.
  cat > "$c/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$h:$CSE_KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$h:$CSE_KAFKA_PORT,CONTROLLER://$h:$CSE_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$h:$CSE_KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$SVC_DATA/kraft-combined-logs
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=33554432
EOF
  if [ "$(major "$v")" -ge 4 ]; then
    printf '%s\n' share.coordinator.state.topic.replication.factor=1 share.coordinator.state.topic.min.isr=1 \
      >> "$c/server.properties"
    cat > "$c/log4j2.properties" <<'EOF'
status = warn
appender.server.type = File
appender.server.name = SERVER
appender.server.fileName = ${sys:kafka.logs.dir}/server.log
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.server.ref = SERVER
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.statechange.name = state.change.logger
logger.statechange.level = warn
EOF
    echo "-Dlog4j2.configurationFile=$c/log4j2.properties" > "$c/log-opt"
  else
    cat > "$c/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, server
log4j.appender.server=org.apache.log4j.FileAppender
log4j.appender.server.File=${kafka.logs.dir}/server.log
log4j.appender.server.layout=org.apache.log4j.PatternLayout
log4j.appender.server.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.zookeeper=WARN
EOF
    echo "-Dlog4j.configuration=file:$c/log4j.properties" > "$c/log-opt"
  fi
}

# Kafka cluster id: 16 random bytes, base64url without padding (what
# `kafka-storage random-uuid` prints); saves one JVM start.
cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [ "${id:0:1}" != - ] && { echo "$id"; return; }
  done
}

svc_launch() {
  need "$JAVA" "install a JDK (17+) or set JAVA_HOME"
  local v libs conf
  v="$(resolve_version)"; libs="$(home_of "$v")/libs"
  if [ "$(major "$v")" -ge 4 ]; then
    "$JAVA" -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || die "Kafka $v needs Java 17+"
  fi
  new_data_dir; conf="$SVC_DATA/config"; mkdir -p "$conf" "$KLOG_DIR"
  write_config "$v" "$conf"
  echo "$v" > "$CSE_RUN_DIR/kafka.version"
  log "formatting storage in $SVC_DATA (Kafka $v)"
  # shellcheck disable=SC2086
  "$JAVA" $TOOL_JVM_OPTS -Dlog4j.configuration=file:/dev/null -cp "$libs/*" kafka.tools.StorageTool \
    format -t "$(cluster_id)" -c "$conf/server.properties" >> "$SVC_LOG" 2>&1 \
    || { tail -n 20 "$SVC_LOG" >&2; die "kafka-storage format failed"; }
  : > "$KLOG_DIR/server.log"
  ulimit -n 65536 2>/dev/null || true
  log "starting Kafka $v"
  # shellcheck disable=SC2086
  launch_detached "$JAVA" $KAFKA_HEAP_OPTS $KAFKA_JVM_OPTS -Dkafka.logs.dir="$KLOG_DIR" "$(cat "$conf/log-opt")" \
    -cp "$libs/*" kafka.Kafka "$conf/server.properties"
}

# Ready = broker logged the end of startup AND answers a real request:
# ApiVersions v0 (api_key 18, correlation id 1, client id "ready") must come
# back with correlation id 1 and error_code 0.  (An open port is not enough:
# KRaft binds listeners before the broker is unfenced.)
api_versions_ok() {
  local out
  # shellcheck disable=SC2016
  out="$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x01\x00\x05ready" >&3
    head -c 10 <&3 | od -An -tx1 | tr -d " \n"' "$CSE_HOST" "$CSE_KAFKA_PORT" 2>/dev/null)" || return 1
  [ "${#out}" -eq 20 ] && [ "${out:8:8}" = 00000001 ] && [ "${out:16:4}" = 0000 ]
}
svc_ready() { grep -q 'Kafka Server started' "$KLOG_DIR/server.log" 2>/dev/null && api_versions_ok; }
svc_info() { echo "Kafka $(cat "$CSE_RUN_DIR/kafka.version" 2>/dev/null), logs $KLOG_DIR"; }

svc_main "$@"
