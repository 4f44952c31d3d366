#!/usr/bin/env bash
# Says whether the broker of start.sh runs. Exit 0 when it runs, 3 when it doesn't.
#   status.sh            → "running pid 123, brokers 127.0.0.1:19092 (log: ...)" or "not running"
#   status.sh --brokers  → the bootstrap address only (for DSPEX_KAFKA_BROKERS)
# With --cluster [n]: one line per node, then the cluster's; exit 0 when every node runs, 3 when none
# does, 4 when some do. --brokers prints the bootstrap list (exit 0 only when every node runs).
set -euo pipefail
KAFKA_INFRA=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
source "$KAFKA_INFRA/env.sh"
kafka_options "$@"
set -- "${KAFKA_ARGS[@]}"

if ((KAFKA_CLUSTER_NODES)); then
  running=0
  for id in $(kafka_selected_nodes); do
    kafka_use_node "$id"
    if pid=$(kafka_running_pid); then
      running=$((running + 1))
      lines+=("node $id running pid $pid, $KAFKA_BOOTSTRAP (controller port $KAFKA_CONTROLLER_PORT, log: $KAFKA_LOG_FILE)")
    else
      lines+=("node $id not running, $KAFKA_BOOTSTRAP (data: $KAFKA_DATA)")
    fi
  done
  selected=$(kafka_selected_nodes | wc -l)
  if [[ ${1:-} == --brokers ]]; then
    echo "$KAFKA_CLUSTER_BOOTSTRAP"
  else
    printf '%s\n' "${lines[@]}"
    echo "cluster: $running of $selected nodes running, brokers $KAFKA_CLUSTER_BOOTSTRAP, Kafka $KAFKA_VERSION (data: $KAFKA_CLUSTER_DATA)"
  fi
  if ((running == selected)); then exit 0; fi
  if ((running == 0)); then exit 3; fi
  exit 4
fi

if [[ ${1:-} == --brokers ]]; then
  echo "$KAFKA_BOOTSTRAP"
  kafka_running_pid >/dev/null || exit 3
  exit 0
fi
if pid=$(kafka_running_pid); then
  echo "running pid $pid, brokers $KAFKA_BOOTSTRAP, Kafka $KAFKA_VERSION (data: $KAFKA_DATA, log: $KAFKA_LOG_FILE)"
else
  echo "not running (data: $KAFKA_DATA)"
  exit 3
fi
