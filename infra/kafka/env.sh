# Sourced by start.sh, stop.sh and status.sh: where the local broker's jars, data, PID and log live.
# Everything is outside the repository; override with the DSPEX_KAFKA_* variables.

KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_INFRA/pom.xml")
DSPEX_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/dspex
KAFKA_LIBS=$DSPEX_CACHE/kafka/$KAFKA_VERSION/libs
KAFKA_PORT=${DSPEX_KAFKA_PORT:-19092}
# A broker on another port gets a data folder of its own unless one is named, so that stop.sh for it can
# never stop the default broker (whose PID file lives in the default folder).
if [[ $KAFKA_PORT == 19092 ]]; then
  KAFKA_DATA=${DSPEX_KAFKA_DATA:-$DSPEX_CACHE/kafka-data}
else
  KAFKA_DATA=${DSPEX_KAFKA_DATA:-$DSPEX_CACHE/kafka-data-$KAFKA_PORT}
fi
KAFKA_CONTROLLER_PORT=${DSPEX_KAFKA_CONTROLLER_PORT:-19093}
KAFKA_HOST=127.0.0.1
KAFKA_BOOTSTRAP=$KAFKA_HOST:$KAFKA_PORT
KAFKA_PID_FILE=$KAFKA_DATA/kafka.pid
KAFKA_LOG_FILE=$KAFKA_DATA/kafka.log
KAFKA_CONFIG=$KAFKA_DATA/server.properties

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
