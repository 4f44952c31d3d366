#!/usr/bin/env bash
# Installs the npm packages when package-lock.json changed since the last install (quick otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.dspex-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then exit 0; fi
echo "dspex: installing npm packages (npm ci)..." >&2
npm ci --no-audit --no-fund --loglevel=error >&2
echo "$want" >"$stamp"
