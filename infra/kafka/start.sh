#!/usr/bin/env bash
# Starts a single-node Apache Kafka broker (KRaft, broker + controller) on 127.0.0.1:19092 from Maven
# Central jars, and waits until it answers an admin call. Idempotent: a running broker → exit 0.
# Prints the bootstrap address on stdout; everything else goes to stderr.
#
#   DSPEX_KAFKA_DATA            data folder (logs, PID, log file); default ~/.cache/dspex/kafka-data
#   DSPEX_KAFKA_PORT            client port (default 19092); DSPEX_KAFKA_CONTROLLER_PORT (default 19093)
#   DSPEX_KAFKA_HEAP            JVM heap options (default "-Xms256m -Xmx512m")
#   DSPEX_KAFKA_START_TIMEOUT   seconds to wait for readiness (default 90)
#
# start.sh --cluster [n] starts a cluster of n (default 3) combined broker + controller nodes instead
# (replication factor 3, min.insync.replicas 2; ports and variables in env.sh), starting the nodes that
# are not running, waits until every node is registered and prints the bootstrap list. --node <i> with
# it starts node i only and waits until that node is registered (node.sh start <i>).
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
    echo "controller.quorum.voters=$KAFKA_VOTERS"
    if ((KAFKA_CLUSTER_NODES)); then
      echo "node.id=$KAFKA_NODE_ID"
      echo
      cat "$KAFKA_INFRA/cluster.properties"
    fi
  } >"$KAFKA_CONFIG"
}

JAVA=(java -Djava.awt.headless=true -Dlog4j.configuration="file:$KAFKA_INFRA/log4j.properties" -cp "$KAFKA_LIBS/*")

new_cluster_id() { "${JAVA[@]}" -Xmx256m kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1; }

format_storage_once() {
  if [[ -f $KAFKA_DATA/logs/meta.properties ]]; then return; fi
  local cluster_id=$KAFKA_CLUSTER_ID
  [[ -n $cluster_id ]] || cluster_id=$(new_cluster_id)
  say "formatting storage in $KAFKA_DATA/logs (cluster $cluster_id)"
  "${JAVA[@]}" -Xmx256m kafka.tools.StorageTool format --ignore-formatted \
    --cluster-id "$cluster_id" --config "$KAFKA_CONFIG" >>"$KAFKA_LOG_FILE" 2>&1 ||
    fail "formatting storage failed; see $KAFKA_LOG_FILE"
}

port_taken() { (exec 3<>"/dev/tcp/$KAFKA_HOST/$1") 2>/dev/null; }

launch() {
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_taken "$port"; then
      fail "port $port on $KAFKA_HOST is already in use by another process (not the broker of $KAFKA_DATA); stop it or set DSPEX_KAFKA_PORT / DSPEX_KAFKA_CONTROLLER_PORT (a cluster: DSPEX_KAFKA_CLUSTER_PORTS / DSPEX_KAFKA_CLUSTER_CONTROLLER_PORTS)"
    fi
  done
  [[ -f $KAFKA_LOG_FILE ]] && mv -f "$KAFKA_LOG_FILE" "$KAFKA_LOG_FILE.1"
  # shellcheck disable=SC2086 # the heap options are meant to split
  nohup "${JAVA[@]}" $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError kafka.Kafka "$KAFKA_CONFIG" >"$KAFKA_LOG_FILE" 2>&1 </dev/null 9>&- &
  echo $! >"$KAFKA_PID_FILE"
  say "started pid $! (log: $KAFKA_LOG_FILE)"
}

# wait_until_ready <pids> <bootstrap> <node ids> <log files…>: until the brokers at <bootstrap> answer
# with every node of <node ids> (comma-separated) registered; fails early when one of <pids> exits.
wait_until_ready() {
  local pids=$1 bootstrap=$2 nodes=$3 timeout=${DSPEX_KAFKA_START_TIMEOUT:-90} log
  shift 3
  if ! node "$KAFKA_INFRA/ready.mjs" "$bootstrap" "$pids" "$timeout" "$nodes" >&2; then
    for log in "$@"; do
      say "last lines of $log:"
      tail -n 20 "$log" >&2 || true
    done
    fail "the broker did not become ready on $bootstrap within ${timeout}s; full log: $*"
  fi
}

# Readies the selected node (not running) for launch: config written, storage formatted.
prepare_node() {
  rm -f "$KAFKA_PID_FILE"
  resolve_jars
  write_config
  format_storage_once
}

start_single() {
  mkdir -p "$KAFKA_DATA"
  # One start at a time per data folder (tests in parallel may all call start.sh).
  exec 9>"$KAFKA_DATA/start.lock"
  flock 9
  local started=$SECONDS pid
  if pid=$(kafka_running_pid); then
    wait_until_ready "$pid" "$KAFKA_BOOTSTRAP" "$KAFKA_NODE_ID" "$KAFKA_LOG_FILE"
    say "already running (pid $pid)"
  else
    prepare_node
    launch
    pid=$(cat "$KAFKA_PID_FILE")
    wait_until_ready "$pid" "$KAFKA_BOOTSTRAP" "$KAFKA_NODE_ID" "$KAFKA_LOG_FILE"
    say "ready in $((SECONDS - started))s"
  fi
  echo "$KAFKA_BOOTSTRAP"
}

# The nodes of kafka_selected_nodes that don't run: every one formatted before any is launched, then
# all launched before waiting for any (a controller quorum needs a majority).
start_cluster() {
  mkdir -p "$KAFKA_CLUSTER_DATA"
  exec 9>"$KAFKA_CLUSTER_DATA/start.lock"
  flock 9
  local started=$SECONDS id to_launch=() pids=() ids=() logs=() bootstrap
  if [[ ! -f $KAFKA_CLUSTER_ID_FILE ]]; then
    resolve_jars
    new_cluster_id >"$KAFKA_CLUSTER_ID_FILE"
  fi
  KAFKA_CLUSTER_ID=$(cat "$KAFKA_CLUSTER_ID_FILE")
  for id in $(kafka_selected_nodes); do
    kafka_use_node "$id"
    mkdir -p "$KAFKA_DATA"
    kafka_running_pid >/dev/null && continue
    prepare_node
    to_launch+=("$id")
  done
  for id in "${to_launch[@]}"; do
    kafka_use_node "$id"
    launch
  done
  for id in $(kafka_selected_nodes); do
    kafka_use_node "$id"
    pids+=("$(cat "$KAFKA_PID_FILE")")
    ids+=("$id")
    logs+=("$KAFKA_LOG_FILE")
  done
  # One node: ask that node itself (it answers once it has caught up); all: any of them.
  bootstrap=$KAFKA_CLUSTER_BOOTSTRAP
  [[ -n $KAFKA_ONLY_NODE ]] && bootstrap=$KAFKA_BOOTSTRAP
  wait_until_ready "$(IFS=,; echo "${pids[*]}")" "$bootstrap" "$(IFS=,; echo "${ids[*]}")" "${logs[@]}"
  if ((${#to_launch[@]})); then
    say "ready in $((SECONDS - started))s"
  else
    say "already running (pids ${pids[*]})"
  fi
  echo "$KAFKA_CLUSTER_BOOTSTRAP"
}

main() {
  kafka_options "$@"
  ((${#KAFKA_ARGS[@]} == 0)) || fail "unknown argument: ${KAFKA_ARGS[0]} (start.sh [--cluster [n] [--node i]])"
  command -v java >/dev/null || fail "java (17 or newer) is needed to run the broker"
  [[ -d $REPO_ROOT/node_modules/kafkajs ]] || fail "node_modules/kafkajs is missing (run: bash infra/node.sh)"
  if ((KAFKA_CLUSTER_NODES)); then start_cluster; else start_single; fi
}

main "$@"
