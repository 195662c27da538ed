#!/bin/sh
# Leaves a background process holding stdout: the event waits for it (naming it) until the timeout, then fails
# with OutputsLeftOpen and leaves it running.
( sleep 20; echo "late output" ) &
echo "started a background child without redirecting its output"
exit 0
