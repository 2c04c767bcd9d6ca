# The official image compiles protected mode off; Debian's build keeps it on, which would refuse
# every client on the compose network (no password, not loopback).
if [ "$1" = "redis-server" ]; then
  shift
  exec redis-server --protected-mode no "$@"
fi
exec "$@"
