#!/usr/bin/env bash
# Build the workshop's OpenTelemetry Collector (bin/otelcol-workshop) from
# collector/builder-config.yaml with the OpenTelemetry Collector Builder (ocb).
#
# - Installs the builder (same version as the manifest's dist.version) into bin/tools/ if missing.
# - Skips the build when the manifest's sha256 matches the stamp written after the last
#   successful build and the binary exists. FORCE=1 rebuilds anyway.
# - Uses the default Go caches (~/go/pkg/mod, ~/.cache/go-build) so CI can cache them.
# Exit codes: 0 ok, 2 Go missing, other = build failure.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MANIFEST="$REPO_ROOT/collector/builder-config.yaml"
BIN_DIR="$REPO_ROOT/bin"
BINARY="$BIN_DIR/otelcol-workshop"
STAMP="$BIN_DIR/.otelcol-workshop.sha256"
BUILD_DIR="$BIN_DIR/otelcol-build"   # must match dist.output_path in the manifest
TOOLS_DIR="$BIN_DIR/tools"

log() { printf '%s\n' "$*" >&2; }

[[ -f "$MANIFEST" ]] || { log "error: manifest not found: $MANIFEST"; exit 1; }

manifest_hash() { sha256sum "$MANIFEST" | cut -d' ' -f1; }
HASH="$(manifest_hash)"

if [[ "${FORCE:-0}" != "1" && -x "$BINARY" && -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" ]]; then
  size="$(du -h "$BINARY" | cut -f1)"
  echo "collector up to date ($BINARY, $size, manifest sha256 ${HASH:0:12})"
  exit 0
fi

# Locate Go: PATH first, then the usual install location of the go.dev tarball.
if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin /usr/lib/go/bin "$HOME/go/bin" "$HOME/.local/go/bin"; do
    if [[ -x "$candidate/go" ]]; then PATH="$candidate:$PATH"; break; fi
  done
fi
if ! command -v go >/dev/null 2>&1; then
  log "error: Go is required to build the collector but was not found."
  log "       Install Go >= 1.25: 'sudo apt-get install golang' (Debian/Ubuntu; needs a recent"
  log "       release) or the tarball from https://go.dev/dl/ (adds /usr/local/go/bin)."
  exit 2
fi

# dist.version in the manifest == the ocb release to use.
OCB_VERSION="v$(sed -n '/^dist:/,/^[^[:space:]]/ s/^[[:space:]]*version:[[:space:]]*\([0-9][0-9.]*\).*/\1/p' "$MANIFEST" | head -n1)"
[[ "$OCB_VERSION" != "v" ]] || { log "error: no dist.version in $MANIFEST"; exit 1; }
BUILDER="$TOOLS_DIR/builder-$OCB_VERSION"

mkdir -p "$TOOLS_DIR"
if [[ ! -x "$BUILDER" ]]; then
  log "installing go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION into $TOOLS_DIR ..."
  tmp_gobin="$(mktemp -d)"
  GOBIN="$tmp_gobin" go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION"
  mv "$tmp_gobin/builder" "$BUILDER"
  rmdir "$tmp_gobin"
fi

log "building collector with ocb $OCB_VERSION ($(go version | cut -d' ' -f3)) ..."
start=$(date +%s)
# ocb resolves dist.output_path relative to the working directory: run from collector/.
(cd "$REPO_ROOT/collector" && "$BUILDER" --config "$MANIFEST") >&2
built="$BUILD_DIR/otelcol-workshop"
[[ -x "$built" ]] || { log "error: ocb finished but $built is missing"; exit 1; }
mv -f "$built" "$BINARY"
echo "$HASH" > "$STAMP"
elapsed=$(( $(date +%s) - start ))
size="$(du -h "$BINARY" | cut -f1)"
echo "collector built: $BINARY ($size) in ${elapsed}s"
