#!/usr/bin/env bash
# Stops the broker started by start.sh: only the PID in its PID file. SIGTERM (a clean shutdown that
# flushes the logs), then SIGKILL after DSPEX_KAFKA_STOP_TIMEOUT seconds (default 30).
set -euo pipefail
KAFKA_INFRA=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
source "$KAFKA_INFRA/env.sh"

say() { printf 'kafka: %s\n' "$*" >&2; }

if ! pid=$(kafka_running_pid); then
  rm -f "$KAFKA_PID_FILE"
  say "not running"
  exit 0
fi
timeout=${DSPEX_KAFKA_STOP_TIMEOUT:-30}
kill -TERM "$pid" 2>/dev/null || true
for ((i = 0; i < timeout * 10; i++)); do
  if ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$KAFKA_PID_FILE"
    say "stopped (pid $pid)"
    exit 0
  fi
  sleep 0.1
done
say "pid $pid did not stop within ${timeout}s; killing it"
kill -KILL "$pid" 2>/dev/null || true
rm -f "$KAFKA_PID_FILE"
