# Sourced by start.sh, stop.sh, status.sh and node.sh: where the local broker's (or cluster's) jars,
# data, PIDs and logs live. Everything is outside the repository; override with the DSPEX_KAFKA_* variables.

KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_INFRA/pom.xml")
DSPEX_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/dspex
KAFKA_LIBS=$DSPEX_CACHE/kafka/$KAFKA_VERSION/libs
KAFKA_HOST=127.0.0.1

# --- The single broker (the default): node 1, its own controller quorum of one. ---
KAFKA_PORT=${DSPEX_KAFKA_PORT:-19092}
# A broker on another port gets a data folder of its own unless one is named, so that stop.sh for it can
# never stop the default broker (whose PID file lives in the default folder).
if [[ $KAFKA_PORT == 19092 ]]; then
  KAFKA_DATA=${DSPEX_KAFKA_DATA:-$DSPEX_CACHE/kafka-data}
else
  KAFKA_DATA=${DSPEX_KAFKA_DATA:-$DSPEX_CACHE/kafka-data-$KAFKA_PORT}
fi
KAFKA_CONTROLLER_PORT=${DSPEX_KAFKA_CONTROLLER_PORT:-19093}
KAFKA_NODE_ID=1
KAFKA_VOTERS=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
KAFKA_HEAP=${DSPEX_KAFKA_HEAP:--Xms256m -Xmx512m}
KAFKA_CLUSTER_NODES=0 # 0: the single broker; n: a cluster of n nodes (kafka_options --cluster [n])
KAFKA_CLUSTER_ID=""   # the cluster's id, shared by its nodes; empty: format_storage_once makes a new one

# The files of the node whose KAFKA_DATA and KAFKA_PORT are set.
kafka_node_paths() {
  KAFKA_BOOTSTRAP=$KAFKA_HOST:$KAFKA_PORT
  KAFKA_PID_FILE=$KAFKA_DATA/kafka.pid
  KAFKA_LOG_FILE=$KAFKA_DATA/kafka.log
  KAFKA_CONFIG=$KAFKA_DATA/server.properties
}
kafka_node_paths

# The PID from the PID file if that process is alive and is our broker (not a recycled PID).
kafka_running_pid() {
  [[ -f $KAFKA_PID_FILE ]] || return 1
  local pid
  pid=$(cat "$KAFKA_PID_FILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

# --- A cluster of n combined broker + controller nodes (start.sh --cluster [n], n ≥ 3, default 3). ---
# Node i has node.id i, client port 19092 + 100·i, controller port 19093 + 100·i (19192/19193,
# 19292/19293, 19392/19393) and the data folder <cluster data>/node-<i>.
#   DSPEX_KAFKA_CLUSTER_PORTS             client ports, comma-separated, one per node
#   DSPEX_KAFKA_CLUSTER_CONTROLLER_PORTS  controller ports, likewise
#   DSPEX_KAFKA_CLUSTER_DATA              the cluster's folder (default ~/.cache/dspex/kafka-cluster, or
#                                         kafka-cluster-<first port> when the ports are not the defaults)
#   DSPEX_KAFKA_CLUSTER_HEAP              JVM heap options of each node (default "-Xms128m -Xmx512m")
kafka_fail_usage() {
  printf 'kafka: %s\n' "$*" >&2
  exit 2
}

kafka_use_cluster() {
  local n=$1 i
  [[ $n =~ ^[0-9]+$ ]] && ((n >= 3)) || kafka_fail_usage "a cluster has 3 or more nodes (replication factor 3), not '$n'"
  KAFKA_CLUSTER_NODES=$n
  IFS=, read -ra KAFKA_CLUSTER_PORTS <<<"${DSPEX_KAFKA_CLUSTER_PORTS:-}"
  IFS=, read -ra KAFKA_CLUSTER_CONTROLLER_PORTS <<<"${DSPEX_KAFKA_CLUSTER_CONTROLLER_PORTS:-}"
  for ((i = 1; i <= n; i++)); do
    [[ -n ${DSPEX_KAFKA_CLUSTER_PORTS:-} ]] || KAFKA_CLUSTER_PORTS+=($((19092 + 100 * i)))
    [[ -n ${DSPEX_KAFKA_CLUSTER_CONTROLLER_PORTS:-} ]] || KAFKA_CLUSTER_CONTROLLER_PORTS+=($((19093 + 100 * i)))
  done
  ((${#KAFKA_CLUSTER_PORTS[@]} == n && ${#KAFKA_CLUSTER_CONTROLLER_PORTS[@]} == n)) ||
    kafka_fail_usage "DSPEX_KAFKA_CLUSTER_PORTS and DSPEX_KAFKA_CLUSTER_CONTROLLER_PORTS need $n ports each"
  if [[ ${KAFKA_CLUSTER_PORTS[0]} == 19192 ]]; then
    KAFKA_CLUSTER_DATA=${DSPEX_KAFKA_CLUSTER_DATA:-$DSPEX_CACHE/kafka-cluster}
  else
    KAFKA_CLUSTER_DATA=${DSPEX_KAFKA_CLUSTER_DATA:-$DSPEX_CACHE/kafka-cluster-${KAFKA_CLUSTER_PORTS[0]}}
  fi
  local voters=() bootstrap=()
  for ((i = 1; i <= n; i++)); do
    voters+=("$i@$KAFKA_HOST:${KAFKA_CLUSTER_CONTROLLER_PORTS[i - 1]}")
    bootstrap+=("$KAFKA_HOST:${KAFKA_CLUSTER_PORTS[i - 1]}")
  done
  KAFKA_VOTERS=$(IFS=,; echo "${voters[*]}")
  KAFKA_CLUSTER_BOOTSTRAP=$(IFS=,; echo "${bootstrap[*]}")
  KAFKA_HEAP=${DSPEX_KAFKA_CLUSTER_HEAP:--Xms128m -Xmx512m}
  KAFKA_CLUSTER_ID_FILE=$KAFKA_CLUSTER_DATA/cluster.id
  [[ -n ${KAFKA_ONLY_NODE:-} ]] && kafka_use_node "$KAFKA_ONLY_NODE"
  return 0
}

# Selects node i of the cluster: KAFKA_NODE_ID, ports, data folder and files.
kafka_use_node() {
  local i=$1
  [[ $i =~ ^[0-9]+$ ]] && ((i >= 1 && i <= KAFKA_CLUSTER_NODES)) ||
    kafka_fail_usage "no node '$i' in a cluster of $KAFKA_CLUSTER_NODES (nodes are 1..$KAFKA_CLUSTER_NODES)"
  KAFKA_NODE_ID=$i
  KAFKA_PORT=${KAFKA_CLUSTER_PORTS[i - 1]}
  KAFKA_CONTROLLER_PORT=${KAFKA_CLUSTER_CONTROLLER_PORTS[i - 1]}
  KAFKA_DATA=$KAFKA_CLUSTER_DATA/node-$i
  kafka_node_paths
}

# The nodes a command acts on: the one of --node, else all of the cluster.
kafka_selected_nodes() {
  if [[ -n ${KAFKA_ONLY_NODE:-} ]]; then echo "$KAFKA_ONLY_NODE"; else seq 1 "$KAFKA_CLUSTER_NODES"; fi
}

# The options every script takes: --cluster [n] selects the cluster of n nodes (default 3) instead of the
# single broker, --node <i> one node of it. The other arguments are left in KAFKA_ARGS.
kafka_options() {
  KAFKA_ARGS=()
  local cluster=""
  KAFKA_ONLY_NODE=""
  while (($#)); do
    case $1 in
      --cluster)
        cluster=3
        if [[ ${2:-} =~ ^[0-9]+$ ]]; then
          cluster=$2
          shift
        fi
        ;;
      --cluster=*) cluster=${1#*=} ;;
      --node)
        (($# >= 2)) || kafka_fail_usage "--node needs a node number"
        KAFKA_ONLY_NODE=$2
        shift
        ;;
      --node=*) KAFKA_ONLY_NODE=${1#*=} ;;
      *) KAFKA_ARGS+=("$1") ;;
    esac
    shift
  done
  if [[ -n $KAFKA_ONLY_NODE && -z $cluster ]]; then kafka_fail_usage "--node needs --cluster"; fi
  if [[ -n $cluster ]]; then kafka_use_cluster "$cluster"; fi
  return 0
}
