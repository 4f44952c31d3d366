#!/usr/bin/env bash
# Builds the OpenTelemetry Collector of manifest.yaml from the Go module proxy, once (a few minutes),
# into ~/.cache/dspex/otelcol-<version>/, and prints the binary's path on stdout. Needs Go 1.24+.
#
#   DSPEX_OTELCOL_DIR   where the collector is built (default ~/.cache/dspex/otelcol-<version>)
set -euo pipefail
OTEL_INFRA=$(cd "$(dirname "$0")" && pwd)
VERSION=0.165.0
DIR=${DSPEX_OTELCOL_DIR:-$HOME/.cache/dspex/otelcol-$VERSION}
BINARY=$DIR/otelcol-dspex

say() { printf 'otelcol: %s\n' "$*" >&2; }

if [[ -x $BINARY ]]; then
  echo "$BINARY"
  exit 0
fi
command -v go >/dev/null || {
  say "Go is needed once to build the OpenTelemetry Collector from the Go module proxy (https://go.dev/dl/)"
  exit 1
}
say "building the OpenTelemetry Collector $VERSION into $DIR (once, a few minutes)..."
staging=$DIR.partial.$$
rm -rf "$staging"
mkdir -p "$staging"
trap 'rm -rf "$staging"' EXIT
GOBIN=$staging/bin go install "go.opentelemetry.io/collector/cmd/builder@v$VERSION" >&2
sed "s|^dist:|dist:\n  output_path: $staging/build|" "$OTEL_INFRA/manifest.yaml" >"$staging/manifest.yaml"
"$staging/bin/builder" --config "$staging/manifest.yaml" >&2
mkdir -p "$DIR"
mv "$staging/build/otelcol-dspex" "$BINARY.partial.$$"
mv "$BINARY.partial.$$" "$BINARY"
echo "$BINARY"
