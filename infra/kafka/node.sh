#!/usr/bin/env bash
# One node of the cluster of start.sh --cluster, for fault tests by hand or from tests/support/cluster.ts.
#   node.sh kill <i>    SIGKILL, like a crash: no clean shutdown. Its data stays, so it rejoins and catches up.
#   node.sh start <i>   starts it again (start.sh --cluster --node <i>): waits until it is registered
#   node.sh stop <i>    a clean shutdown (stop.sh --cluster --node <i>)
#   node.sh pid <i>     its PID (exit 3 when it does not run)
# Takes --cluster <n> for a cluster of other than 3 nodes, and the DSPEX_KAFKA_CLUSTER_* variables of
# env.sh (the same as start.sh was given).
set -euo pipefail
KAFKA_INFRA=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
source "$KAFKA_INFRA/env.sh"

kafka_options "$@"
((KAFKA_CLUSTER_NODES)) || kafka_use_cluster 3
set -- "${KAFKA_ARGS[@]}"
(($# == 2)) || kafka_fail_usage "usage: node.sh kill|start|stop|pid <node> [--cluster n]"
command=$1 id=$2
kafka_use_node "$id"

case $command in
  kill)
    if ! pid=$(kafka_running_pid); then
      echo "kafka: node $id not running" >&2
      exit 0
    fi
    kill -KILL "$pid"
    # Gone once its /proc entry is (or is a zombie nobody reaped yet: then its cmdline is empty).
    while kafka_running_pid >/dev/null; do sleep 0.05; done
    rm -f "$KAFKA_PID_FILE"
    echo "kafka: killed node $id (pid $pid)" >&2
    ;;
  start | stop)
    exec bash "$KAFKA_INFRA/$command.sh" --cluster "$KAFKA_CLUSTER_NODES" --node "$id"
    ;;
  pid) kafka_running_pid || exit 3 ;;
  *) kafka_fail_usage "usage: node.sh kill|start|stop|pid <node> [--cluster n]" ;;
esac
