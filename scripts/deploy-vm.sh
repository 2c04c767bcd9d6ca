#!/usr/bin/env bash
# Deploy the DataPrime Workshop Kit to an existing Ubuntu/Debian VM over SSH with
# docker-compose.vm.yml (see docs/deploy-vm.md).
#
#   scripts/deploy-vm.sh HOST [--user U] [--key K] [--env-file F] [--dir D] [--lab] [--otlp]
#                             [--timeout S] [--dry-run]
#
#   HOST        address or name of the VM (port 22 must be open to you)
#   --user      SSH user (default: ubuntu); commands run with sudo unless the user is root
#   --key       SSH private key file (default: your ssh-agent / ssh config)
#   --env-file  the filled-in env.vm.example (default: .env.vm); CX_PRIVATE_KEY and ADMIN_TOKEN
#               are required, and LAB_PASSWORD with --lab
#   --dir       kit directory on the VM (default: dataprime-workshop, in the user's home)
#   --lab       also start the lab profile (JupyterLab /lab/, Locust /locust/; t3.medium)
#   --otlp      also publish OTLP 4317/4318 (docker-compose.otlp.yml; loopback by default)
#   --timeout   seconds to wait for the containers to become healthy (default: 420)
#   --dry-run   print every command (ssh, tar, scp) without running it and without contacting
#               the host
set -euo pipefail

KIT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly KIT_ROOT
readonly COMPOSE_FILE="docker-compose.vm.yml"

HOST=""
SSH_USER="ubuntu"
KEY=""
ENV_FILE=".env.vm"
REMOTE_DIR="dataprime-workshop"
LAB=0
OTLP=0
DRY_RUN=0
TIMEOUT=420

die() {
    printf 'deploy-vm: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while (($#)); do
    case "$1" in
        --user) SSH_USER="${2:?--user needs a value}"; shift 2 ;;
        --key) KEY="${2:?--key needs a value}"; shift 2 ;;
        --env-file) ENV_FILE="${2:?--env-file needs a value}"; shift 2 ;;
        --dir) REMOTE_DIR="${2:?--dir needs a value}"; shift 2 ;;
        --timeout) TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
        --lab) LAB=1; shift ;;
        --otlp) OTLP=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) usage >&2; die "unknown option: $1" ;;
        *)
            [[ -z "$HOST" ]] || die "only one HOST, got '$HOST' and '$1'"
            HOST="$1"; shift ;;
    esac
done

[[ -n "$HOST" ]] || { usage >&2; die "missing HOST (the VM's address)"; }
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds, got '$TIMEOUT'"

# --- local checks: nothing is contacted before these pass ---------------------------------
if [[ -n "$KEY" && ! -f "$KEY" ]]; then
    die "SSH key file not found: $KEY (pass an existing private key with --key, or omit --key to use ssh-agent)"
fi
if [[ ! -f "$ENV_FILE" ]]; then
    die "env file not found: $ENV_FILE (create it: cp env.vm.example $ENV_FILE, fill in CX_PRIVATE_KEY and ADMIN_TOKEN, or pass --env-file PATH)"
fi

# The value of NAME in the env file (last assignment wins, quotes stripped).
env_value() {
    local line
    line="$(grep -E "^[[:space:]]*$1=" "$ENV_FILE" | tail -n 1 || true)"
    line="${line#*=}"
    line="${line%\"}"; line="${line#\"}"
    line="${line%\'}"; line="${line#\'}"
    printf '%s' "$line"
}

require_var() {
    local name="$1" hint="$2"
    if [[ -z "$(env_value "$name")" ]]; then
        die "$name is not set in $ENV_FILE: set $name=$hint"
    fi
}
require_var CX_PRIVATE_KEY "<your Coralogix Send-Your-Data API key>"
require_var ADMIN_TOKEN "<a random secret, e.g. the output of: openssl rand -hex 24>"
if ((LAB)); then
    require_var LAB_PASSWORD "<the password attendees use for /locust/ (user LAB_USER)>"
fi

SSH_OPTS=(-o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=accept-new)
[[ -n "$KEY" ]] && SSH_OPTS+=(-i "$KEY")
readonly TARGET="$SSH_USER@$HOST"
SUDO="sudo"
[[ "$SSH_USER" == "root" ]] && SUDO=""

COMPOSE=(docker compose -f "$COMPOSE_FILE")
((OTLP)) && COMPOSE+=(-f docker-compose.otlp.yml)
((LAB)) && COMPOSE+=(--profile lab)

say() { printf '==> %s\n' "$*" >&2; }

# Print a command (shell-quoted); run it unless --dry-run.
run() {
    printf '+'; printf ' %q' "$@"; printf '\n'
    ((DRY_RUN)) || "$@"
}

# Run a script on the VM: `remote 'commands'` (bash -s, so the script never hits argv).
remote() {
    printf '+ ssh'; printf ' %q' "${SSH_OPTS[@]}" "$TARGET"; printf ' bash -s <<EOF\n%s\nEOF\n' "$1"
    ((DRY_RUN)) || ssh "${SSH_OPTS[@]}" "$TARGET" bash -s <<<"$1"
}

# Same, but the output is captured (empty in --dry-run).
remote_capture() {
    {
        printf '+ ssh'; printf ' %q' "${SSH_OPTS[@]}" "$TARGET"; printf ' bash -s <<EOF\n%s\nEOF\n' "$1"
    } >&2
    ((DRY_RUN)) || ssh "${SSH_OPTS[@]}" "$TARGET" bash -s <<<"$1"
}

q() { printf '%q' "$1"; }
RDIR="$(q "$REMOTE_DIR")"

((DRY_RUN)) && say "dry run: printing every action; nothing is contacted or changed"

# --- 1. reachability -------------------------------------------------------------------------
say "checking SSH to $TARGET"
if ! run ssh "${SSH_OPTS[@]}" "$TARGET" true; then
    die "cannot reach $TARGET over SSH (is the VM up, port 22 open to you, user '$SSH_USER' right, key accepted? try: ssh${KEY:+ -i $KEY} $TARGET)"
fi

# --- 2. Docker -------------------------------------------------------------------------------
say "installing Docker Engine + compose plugin if absent"
remote "set -euo pipefail
if docker compose version >/dev/null 2>&1 || $SUDO docker compose version >/dev/null 2>&1; then
  echo 'docker compose already installed'; exit 0
fi
. /etc/os-release
$SUDO apt-get update -q
$SUDO apt-get install -y -q ca-certificates curl openssl
$SUDO install -m 0755 -d /etc/apt/keyrings
$SUDO curl -fsSL \"https://download.docker.com/linux/\$ID/gpg\" -o /etc/apt/keyrings/docker.asc
$SUDO chmod a+r /etc/apt/keyrings/docker.asc
echo \"deb [arch=\$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/\$ID \$VERSION_CODENAME stable\" | $SUDO tee /etc/apt/sources.list.d/docker.list >/dev/null
$SUDO apt-get update -q
$SUDO apt-get install -y -q docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
$SUDO systemctl enable --now docker"

# --- 3. the kit ------------------------------------------------------------------------------
say "copying the kit to $TARGET:$REMOTE_DIR"
TAR=(tar -C "$KIT_ROOT" -czf - --exclude=./.venv --exclude=./data --exclude=./bin --exclude=./.git
    --exclude=./reports --exclude=./.env --exclude=./.env.vm --exclude='*.tfstate*'
    --exclude=.terraform --exclude=__pycache__ --exclude=.ruff_cache --exclude=.pytest_cache .)
printf '+'; printf ' %q' "${TAR[@]}"; printf ' | ssh'; printf ' %q' "${SSH_OPTS[@]}" "$TARGET"
printf ' %q\n' "mkdir -p $RDIR && tar -xzf - -C $RDIR"
if ! ((DRY_RUN)); then
    # shellcheck disable=SC2029  # RDIR is expanded locally on purpose (already %q-quoted).
    "${TAR[@]}" | ssh "${SSH_OPTS[@]}" "$TARGET" "mkdir -p $RDIR && tar -xzf - -C $RDIR"
fi

say "copying $ENV_FILE to $REMOTE_DIR/.env (mode 600)"
SCP_OPTS=(-o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=accept-new -q)
[[ -n "$KEY" ]] && SCP_OPTS+=(-i "$KEY")
run scp "${SCP_OPTS[@]}" "$ENV_FILE" "$TARGET:$REMOTE_DIR/.env"

# Host-specific values the env file cannot know: the docker group id (collector reads the
# socket) and, off EC2, resource detectors without ec2 (no instance-metadata calls).
remote "set -euo pipefail
cd $RDIR
chmod 600 .env
[ -z \"\$(tail -c1 .env)\" ] || echo >> .env
gid=\$(getent group docker | cut -d: -f3)
sed -i '/^DOCKER_GID=/d' .env && echo \"DOCKER_GID=\${gid:-999}\" >> .env
if ! grep -q '^RESOURCE_DETECTORS=' .env; then
  vendor=\$(cat /sys/class/dmi/id/sys_vendor /sys/class/dmi/id/bios_vendor 2>/dev/null || true)
  uuid=\$(cat /sys/hypervisor/uuid /sys/class/dmi/id/product_uuid 2>/dev/null || true)
  case \"\$vendor \$uuid\" in
    *Amazon*|ec2*|EC2*) ;;
    *) echo 'RESOURCE_DETECTORS=\"[env, docker, system]\"' >> .env ;;
  esac
fi"

# --- 4. certificates and lab auth ---------------------------------------------------------
say "generating TLS certificates on the VM (kept if present)"
remote "set -euo pipefail
cd $RDIR
mkdir -p data/certs data/nginx-auth
if [ ! -s data/certs/server.crt ] || [ ! -s data/certs/server.key ]; then
  bash scripts/generate-certs.sh data/certs
fi"

if ((LAB)); then
    say "writing the /locust/ basic-auth file from LAB_USER/LAB_PASSWORD"
    remote "set -euo pipefail
cd $RDIR
user=\$(grep -E '^LAB_USER=' .env | tail -n 1 | cut -d= -f2- | tr -d '\"')
pass=\$(grep -E '^LAB_PASSWORD=' .env | tail -n 1 | cut -d= -f2- | tr -d '\"')
umask 022
printf '%s:%s\n' \"\${user:-workshop}\" \"\$(printf '%s' \"\$pass\" | openssl passwd -apr1 -stdin)\" > data/nginx-auth/htpasswd"
fi

# --- 5. up -----------------------------------------------------------------------------------
say "building and starting the stack"
remote "set -euo pipefail
cd $RDIR
$SUDO bash scripts/compose-build.sh ${COMPOSE[*]}
$SUDO ${COMPOSE[*]} up -d --remove-orphans"

# --- 6. wait until healthy ---------------------------------------------------------------
# A container counts as ready when it runs and, if it has a health check, is healthy (the
# collector has none: distroless image; it is probed through its health_check extension below).
count_unready() {
    python3 -c '
import json, sys
text = sys.stdin.read().strip()
rows = json.loads(text) if text.startswith("[") else [json.loads(l) for l in text.splitlines() if l.strip()]
bad = [r.get("Service", "?") for r in rows
       if r.get("State") != "running" or r.get("Health", "") not in ("", "healthy")]
print(len(bad) if rows else -1, " ".join(bad))'
}

say "waiting up to ${TIMEOUT}s for every container to be healthy"
if ((DRY_RUN)); then
    remote_capture "cd $RDIR && $SUDO ${COMPOSE[*]} ps --format json" >/dev/null
else
    deadline=$((SECONDS + TIMEOUT))
    while :; do
        status="$(remote_capture "cd $RDIR && $SUDO ${COMPOSE[*]} ps --format json" 2>/dev/null \
            | count_unready || echo "-1 ?")"
        [[ "${status%% *}" == "0" ]] && break
        if ((SECONDS >= deadline)); then
            die "not healthy after ${TIMEOUT}s: ${status#* } (see: ssh $TARGET 'cd $REMOTE_DIR && $SUDO docker compose -f $COMPOSE_FILE ps; $SUDO docker compose -f $COMPOSE_FILE logs --tail 50')"
        fi
        say "still waiting for: ${status#* }"
        sleep 10
    done
fi

say "probing the collector's health_check extension from inside the network"
remote "cd $RDIR && $SUDO ${COMPOSE[*]} exec -T api-gateway python -c \"import urllib.request; urllib.request.urlopen('http://otel-collector:13133/', timeout=3)\" && echo 'otel-collector: healthy'"

# --- 7. URLs ---------------------------------------------------------------------------------
cat <<EOF

DataPrime Workshop Kit on $HOST (self-signed certificate: accept it in the browser)
  App:        https://$HOST/
  API:        https://$HOST/api/
EOF
if ((LAB)); then
    cat <<EOF
  JupyterLab: https://$HOST/lab/      (token: JUPYTER_TOKEN from $ENV_FILE)
  Locust:     https://$HOST/locust/   (user LAB_USER, password LAB_PASSWORD)
EOF
fi
if ((OTLP)); then
    echo "  OTLP:       4317 (gRPC), 4318 (HTTP) on OTLP_PUBLISH_ADDRESS (default 127.0.0.1: ssh -L)"
fi
if ((DRY_RUN)); then
    echo "(dry run: nothing was contacted or changed)"
fi
