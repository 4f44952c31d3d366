#!/usr/bin/env bash
# The main job on the embedded log: installs what it needs, then runs `dspex demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/node.sh
if [[ -f infra/python/setup.sh ]]; then
  DSPEX_PYTHON=$(bash infra/python/setup.sh --offline-model)
  export DSPEX_PYTHON
fi
# A larger young generation: replay (and every read model) allocates many short-lived objects; 64 MB
# semi-spaces make V8 scavenge a third as often (docs/benchmarks.md, "Replay").
exec npx tsx --max-semi-space-size=64 cli/main.ts demo "$@"
