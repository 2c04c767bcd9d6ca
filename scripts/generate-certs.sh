#!/usr/bin/env bash
# Self-signed TLS certificate for nginx in front of the workshop stack.
# Usage: scripts/generate-certs.sh OUT_DIR
# Writes OUT_DIR/server.crt and OUT_DIR/server.key (0600), valid for localhost and 127.0.0.1
# (plus EXTRA_SAN, e.g. EXTRA_SAN="DNS:workshop.example.com,IP:10.0.0.5").
# Idempotent: an existing pair that is valid for at least another day is kept.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
out_dir=$1
crt="$out_dir/server.crt"
key="$out_dir/server.key"

if ! command -v openssl >/dev/null 2>&1; then
    echo "openssl is not installed: sudo apt-get install openssl" >&2
    exit 1
fi

mkdir -p "$out_dir"

if [[ -s "$crt" && -s "$key" ]] && openssl x509 -in "$crt" -noout -checkend 86400 >/dev/null 2>&1; then
    chmod 600 "$key"
    echo "certificate already present: $crt"
    exit 0
fi

san="DNS:localhost,IP:127.0.0.1,IP:::1"
if [[ -n "${EXTRA_SAN:-}" ]]; then
    san="$san,$EXTRA_SAN"
fi

tmp_key=$(mktemp "$out_dir/.server.key.XXXXXX")
tmp_crt=$(mktemp "$out_dir/.server.crt.XXXXXX")
trap 'rm -f "$tmp_key" "$tmp_crt"' EXIT

(
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 825 \
        -subj "/CN=localhost/O=DataPrime Workshop Kit" \
        -addext "subjectAltName=$san" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
        -addext "extendedKeyUsage=serverAuth" \
        -keyout "$tmp_key" -out "$tmp_crt" 2>/dev/null
)
chmod 600 "$tmp_key"
chmod 644 "$tmp_crt"
mv -f "$tmp_key" "$key"
mv -f "$tmp_crt" "$crt"
trap - EXIT
echo "wrote $crt and $key"
