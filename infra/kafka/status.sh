#!/usr/bin/env bash
# Says whether the broker of start.sh runs. Exit 0 when it runs, 3 when it doesn't.
#   status.sh            → "running pid 123, brokers 127.0.0.1:19092 (log: ...)" or "not running"
#   status.sh --brokers  → the bootstrap address only (for DSPEX_KAFKA_BROKERS)
set -euo pipefail
KAFKA_INFRA=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
source "$KAFKA_INFRA/env.sh"

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
