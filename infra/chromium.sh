#!/usr/bin/env bash
# Debian's Chromium for the UI's browser tests (driven by playwright-core): installed with apt when missing.
set -euo pipefail
if command -v chromium >/dev/null; then exit 0; fi
echo "dspex: installing chromium (apt-get) for the browser tests..." >&2
export DEBIAN_FRONTEND=noninteractive
sudo_=""
if [[ $(id -u) -ne 0 ]]; then sudo_=sudo; fi
$sudo_ apt-get update -qq >&2
$sudo_ apt-get install -y -qq --no-install-recommends chromium >&2
command -v chromium >/dev/null
