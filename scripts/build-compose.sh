#!/usr/bin/env bash
# Build the Docker Compose v2 CLI plugin from source, cached by version outside the repo.
#
# `go install github.com/docker/compose/v2/cmd@VERSION` is refused (that module's go.mod has
# exclude directives), so: `go mod download -json` the module, copy its source and
# `go build ./cmd` there. Cold: ~5 min on 2 cores; warm: instant.
#
#   scripts/build-compose.sh            # prints the binary's path on stdout
# Env: COMPOSE_VERSION (default v2.40.3), WORKSHOP_CACHE (default /var/cache/workshop-kit
# when writable, else ~/.cache/workshop-kit), FORCE=1 rebuilds.
set -euo pipefail

VERSION="${COMPOSE_VERSION:-v2.40.3}"
if [[ -z "${WORKSHOP_CACHE:-}" ]]; then
  if mkdir -p /var/cache/workshop-kit 2>/dev/null && [[ -w /var/cache/workshop-kit ]]; then
    WORKSHOP_CACHE=/var/cache/workshop-kit
  else
    WORKSHOP_CACHE="$HOME/.cache/workshop-kit"
  fi
fi
OUT_DIR="$WORKSHOP_CACHE/compose/$VERSION"
BINARY="$OUT_DIR/docker-compose"
log() { printf '%s\n' "$*" >&2; }

if [[ "${FORCE:-0}" != "1" && -x "$BINARY" ]]; then
  echo "$BINARY"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin /usr/lib/go/bin; do
    [[ -x "$candidate/go" ]] && { PATH="$candidate:$PATH"; break; }
  done
fi
command -v go >/dev/null 2>&1 || { log "error: Go is needed to build docker compose $VERSION (install Go >= 1.24)"; exit 2; }

log "building docker compose $VERSION from source (cold: ~5 min) ..."
src_dir="$(go mod download -json "github.com/docker/compose/v2@$VERSION" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -a "$src_dir/." "$work/"
chmod -R u+w "$work"
mkdir -p "$OUT_DIR"
(cd "$work" && GOFLAGS=-buildvcs=false CGO_ENABLED=0 go build -trimpath \
   -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$VERSION" \
   -o "$BINARY.tmp" ./cmd)
mv "$BINARY.tmp" "$BINARY"
log "docker compose $VERSION -> $BINARY"
echo "$BINARY"
