#!/usr/bin/env bash
# Stop the moto server that scripts/ci/s3_up.sh started (by the id in its pid file).
set -uo pipefail
state=${EKCI_STATE:-/tmp/eventkit-ci}
pidfile=$state/moto.pid
if [ ! -s "$pidfile" ]; then
  echo "s3_down: no moto server started by s3_up.sh: nothing to stop" >&2
  exit 0
fi
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  echo "s3_down: stopped the moto server ($pid)" >&2
fi
rm -f "$pidfile" "$state/s3.env"
