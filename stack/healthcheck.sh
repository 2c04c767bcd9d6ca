#!/bin/bash
# Docker health check of the kit's containers: GET http://127.0.0.1:PORT/PATH answers 200.
#
#   bash /app/stack/healthcheck.sh PORT [PATH]      (PATH defaults to /ready)
#
# Why bash's /dev/tcp and not `python -c "import urllib.request; ..."`: Docker runs the check
# in every container every interval for as long as the VM is up, and on an idle VM the checks
# are most of the CPU. Measured on Docker 20.10 (docs/deploy-vm.md): a Python check costs
# ~59 ms of CPU inside the container, this one ~4 ms; the engine's own share of an exec
# (dockerd, containerd, runc) is ~70 ms either way, which is why the interval is 30 s.
set -u
port=${1:?usage: healthcheck.sh PORT [PATH]}
path=${2:-/ready}
# The connect is bounded by Docker's own `timeout:`; the read by -t.
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3 || exit 1
IFS= read -r -t 2 status <&3 || exit 1
[[ $status == HTTP/1.[01]\ 200\ * || $status == HTTP/1.[01]\ 200 ]]
