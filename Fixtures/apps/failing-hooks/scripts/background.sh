#!/bin/sh
# Leaves a background process holding stdout: the hook must not wait for it.
( sleep 20; echo "late output" ) &
echo "started a background child without redirecting its output"
exit 0
