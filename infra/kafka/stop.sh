#!/usr/bin/env bash
# Stops the broker started by start.sh: only the PID in its PID file. SIGTERM (a clean shutdown that
# flushes the logs), then SIGKILL after DSPEX_KAFKA_STOP_TIMEOUT seconds (default 30).
# stop.sh --cluster [n] stops the nodes of the cluster (all signalled at once), --node <i> one of them.
set -euo pipefail
KAFKA_INFRA=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
source "$KAFKA_INFRA/env.sh"

say() { printf 'kafka: %s\n' "$*" >&2; }

# Stops the selected node (KAFKA_PID_FILE).
stop_node() {
  local pid timeout=${DSPEX_KAFKA_STOP_TIMEOUT:-30} i
  if ! pid=$(kafka_running_pid); then
    rm -f "$KAFKA_PID_FILE"
    say "not running${1:-}"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$KAFKA_PID_FILE"
      say "stopped (pid $pid)${1:-}"
      return 0
    fi
    sleep 0.1
  done
  say "pid $pid did not stop within ${timeout}s; killing it${1:-}"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$KAFKA_PID_FILE"
}

kafka_options "$@"
if ((KAFKA_CLUSTER_NODES == 0)); then
  stop_node
  exit 0
fi
# All nodes at once: one by one, the last ones would wait for a controller quorum that is gone.
for id in $(kafka_selected_nodes); do
  kafka_use_node "$id"
  stop_node " (node $id)" &
done
wait
