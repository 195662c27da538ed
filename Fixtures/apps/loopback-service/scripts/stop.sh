#!/bin/sh
# ApplicationStop (run from the previously installed revision): stop the service if it runs.
root="${DEPLOYCTL_INSTALL_ROOT:-}"
pidfile="$root/opt/loopback-service/server.pid"
if [ -f "$pidfile" ]; then
  kill "$(cat "$pidfile")" 2>/dev/null && echo "stopped loopback-service (pid $(cat "$pidfile"))"
  rm -f "$pidfile"
fi
exit 0
