#!/usr/bin/env bash
# The whole test suite: installs what it needs, starts the Kafka broker (unless DSPEX_KAFKA_BROKERS
# points at one), runs lint, type check, vitest and pytest, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
started_kafka=""
cleanup() { if [[ -n $started_kafka ]]; then bash infra/kafka/stop.sh || true; fi; }
trap cleanup EXIT

section() { printf '\n== %s ==\n' "$*"; }

section "install"
bash infra/node.sh
bash infra/chromium.sh
bash infra/otel/collector.sh >/dev/null
if [[ -x infra/python/setup.sh || -f infra/python/setup.sh ]]; then
  DSPEX_PYTHON=$(bash infra/python/setup.sh --offline-model)
  export DSPEX_PYTHON
fi

if [[ -z ${DSPEX_KAFKA_BROKERS:-} && -f infra/kafka/start.sh ]]; then
  section "kafka"
  # Stop at the end only a broker this run started (not one that was already up).
  if ! bash infra/kafka/status.sh >/dev/null; then started_kafka=1; fi
  bash infra/kafka/start.sh
  DSPEX_KAFKA_BROKERS=$(bash infra/kafka/status.sh --brokers)
  export DSPEX_KAFKA_BROKERS
fi

section "lint and types"
npx biome check .
npx tsc --noEmit
if [[ -n ${DSPEX_PYTHON:-} ]]; then (cd python-consumers && "$DSPEX_PYTHON" -m ruff check .); fi

section "vitest"
# A missing broker or Python environment fails the run rather than skipping what needs it.
DSPEX_REQUIRE=kafka,python,browser,otel npx vitest run

if [[ -n ${DSPEX_PYTHON:-} ]]; then
  section "pytest"
  (cd python-consumers && "$DSPEX_PYTHON" -m pytest -q)
fi
