#!/bin/sh
# Starts a child in the same group, then sleeps past the timeout: both must be gone afterwards.
sleep 300 &
echo "child $!" > "${SLEEP_PIDS:-/dev/null}"
echo "sleeping"
sleep 300
