#!/usr/bin/env bash
# Starts a single-node Apache Kafka broker (KRaft, broker + controller) on 127.0.0.1:19092 from Maven
# Central jars, and waits until it answers an admin call. Idempotent: a running broker → exit 0.
# Prints the bootstrap address on stdout; everything else goes to stderr.
#
#   DSPEX_KAFKA_DATA            data folder (logs, PID, log file); default ~/.cache/dspex/kafka-data
#   DSPEX_KAFKA_PORT            client port (default 19092); DSPEX_KAFKA_CONTROLLER_PORT (default 19093)
#   DSPEX_KAFKA_HEAP            JVM heap options (default "-Xms256m -Xmx512m")
#   DSPEX_KAFKA_START_TIMEOUT   seconds to wait for readiness (default 90)
set -euo pipefail
KAFKA_INFRA=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=$(cd "$KAFKA_INFRA/../.." && pwd)
# shellcheck source=env.sh
source "$KAFKA_INFRA/env.sh"

say() { printf 'kafka: %s\n' "$*" >&2; }
fail() {
  say "$*"
  exit 1
}

resolve_jars() {
  if [[ -f $KAFKA_LIBS/.complete ]]; then return; fi
  command -v mvn >/dev/null || fail "Maven (mvn) is needed once to fetch the Kafka $KAFKA_VERSION jars from Maven Central"
  say "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS (once)..."
  local staging=$KAFKA_LIBS.partial.$$
  rm -rf "$staging"
  mkdir -p "$staging"
  mvn -q -B -Dstyle.color=never -f "$KAFKA_INFRA/pom.xml" dependency:copy-dependencies -DoutputDirectory="$staging" >&2 ||
    fail "mvn could not resolve the Kafka jars (see the output above)"
  rm -rf "$KAFKA_LIBS"
  mv "$staging" "$KAFKA_LIBS"
  touch "$KAFKA_LIBS/.complete"
}

write_config() {
  {
    cat "$KAFKA_INFRA/server.properties"
    echo
    echo "# --- written by infra/kafka/start.sh ---"
    echo "log.dirs=$KAFKA_DATA/logs"
    echo "listeners=PLAINTEXT://$KAFKA_BOOTSTRAP,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT"
    echo "advertised.listeners=PLAINTEXT://$KAFKA_BOOTSTRAP"
    echo "controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT"
  } >"$KAFKA_CONFIG"
}

JAVA=(java -Djava.awt.headless=true -Dlog4j.configuration="file:$KAFKA_INFRA/log4j.properties" -cp "$KAFKA_LIBS/*")

format_storage_once() {
  if [[ -f $KAFKA_DATA/logs/meta.properties ]]; then return; fi
  local cluster_id
  cluster_id=$("${JAVA[@]}" -Xmx256m kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  say "formatting storage in $KAFKA_DATA/logs (cluster $cluster_id)"
  "${JAVA[@]}" -Xmx256m kafka.tools.StorageTool format --ignore-formatted \
    --cluster-id "$cluster_id" --config "$KAFKA_CONFIG" >>"$KAFKA_LOG_FILE" 2>&1 ||
    fail "formatting storage failed; see $KAFKA_LOG_FILE"
}

port_taken() { (exec 3<>"/dev/tcp/$KAFKA_HOST/$1") 2>/dev/null; }

launch() {
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_taken "$port"; then
      fail "port $port on $KAFKA_HOST is already in use by another process (not the broker of $KAFKA_DATA); stop it or set DSPEX_KAFKA_PORT / DSPEX_KAFKA_CONTROLLER_PORT"
    fi
  done
  [[ -f $KAFKA_LOG_FILE ]] && mv -f "$KAFKA_LOG_FILE" "$KAFKA_LOG_FILE.1"
  # shellcheck disable=SC2086 # the heap options are meant to split
  nohup "${JAVA[@]}" ${DSPEX_KAFKA_HEAP:--Xms256m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError kafka.Kafka "$KAFKA_CONFIG" >"$KAFKA_LOG_FILE" 2>&1 </dev/null 9>&- &
  echo $! >"$KAFKA_PID_FILE"
  say "started pid $! (log: $KAFKA_LOG_FILE)"
}

wait_until_ready() {
  local pid=$1 timeout=${DSPEX_KAFKA_START_TIMEOUT:-90}
  if ! node "$KAFKA_INFRA/ready.mjs" "$KAFKA_BOOTSTRAP" "$pid" "$timeout" >&2; then
    say "last lines of $KAFKA_LOG_FILE:"
    tail -n 20 "$KAFKA_LOG_FILE" >&2 || true
    fail "the broker did not become ready on $KAFKA_BOOTSTRAP within ${timeout}s; full log: $KAFKA_LOG_FILE"
  fi
}

main() {
  command -v java >/dev/null || fail "java (17 or newer) is needed to run the broker"
  [[ -d $REPO_ROOT/node_modules/kafkajs ]] || fail "node_modules/kafkajs is missing (run: bash infra/node.sh)"
  mkdir -p "$KAFKA_DATA"
  # One start at a time per data folder (tests in parallel may all call start.sh).
  exec 9>"$KAFKA_DATA/start.lock"
  flock 9
  local started=$SECONDS pid
  if pid=$(kafka_running_pid); then
    wait_until_ready "$pid"
    say "already running (pid $pid)"
  else
    rm -f "$KAFKA_PID_FILE"
    resolve_jars
    write_config
    format_storage_once
    launch
    pid=$(cat "$KAFKA_PID_FILE")
    wait_until_ready "$pid"
    say "ready in $((SECONDS - started))s"
  fi
  echo "$KAFKA_BOOTSTRAP"
}

main "$@"
