#!/bin/sh
# ApplicationStart: start the service detached, its output redirected so the hook can finish.
set -eu
root="${DEPLOYCTL_INSTALL_ROOT:-}"
port="${SERVICE_PORT:-18080}"
state="$root/opt/loopback-service"
nohup python3 "$state/server.py" "$port" > "$state/server.log" 2>&1 &
echo $! > "$state/server.pid"
echo "started loopback-service on 127.0.0.1:$port (pid $(cat "$state/server.pid"))"
