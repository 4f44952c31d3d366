#!/usr/bin/env bash
# The main job on the embedded log: installs what it needs, then runs `dspex demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/node.sh
if [[ -f infra/python/setup.sh ]]; then
  DSPEX_PYTHON=$(bash infra/python/setup.sh --offline-model)
  export DSPEX_PYTHON
fi
exec npx tsx cli/main.ts demo "$@"
