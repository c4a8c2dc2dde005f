#!/usr/bin/env bash
# Start an S3-compatible server (moto[server]) on 127.0.0.1 for the engine tests, with one bucket.
# Installs moto[server] and s3fs into the project's venv with pip when they are missing.
# Prints the environment the tests read, as `export` lines (also written to $EKCI_STATE/s3.env):
#   AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, EVENTKIT_TEST_S3
# Usage: eval "$(bash scripts/ci/s3_up.sh)"     (S3_PORT=5555 for a fixed port; default: a free one)
# Fails with a clear message (exit 1) when the server does not answer or the bucket cannot be made.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "s3_up: $*" >&2; exit 1; }
VENV=${VENV:-.venv}
PY=$VENV/bin/python
state=${EKCI_STATE:-/tmp/eventkit-ci}
bucket=${S3_BUCKET:-eventkit-ci}
mkdir -p "$state"
[ -x "$PY" ] || fail "no Python at $PY: run scripts/setup.sh first"
if ! "$PY" -c "import moto.server, s3fs" 2>/dev/null; then
  echo "s3_up: installing moto[server] and s3fs into $VENV (pip)" >&2
  "$PY" -m pip install -q --disable-pip-version-check "moto[server]>=5" "s3fs>=2023.1" >"$state/pip.log" 2>&1 \
    || fail "pip install moto[server] s3fs failed (see $state/pip.log)"
fi
if [ -s "$state/moto.pid" ] && kill -0 "$(cat "$state/moto.pid")" 2>/dev/null; then
  fail "a moto server started by this script is still running (pid $(cat "$state/moto.pid")): run scripts/ci/s3_down.sh"
fi
port=${S3_PORT:-$("$PY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")}
endpoint=http://127.0.0.1:$port
nohup "$PY" -m moto.server -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 &
echo $! >"$state/moto.pid"
for _ in $(seq 60); do
  "$PY" - "$endpoint" >/dev/null 2>&1 <<'PYEOF' && break
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/", timeout=2)
PYEOF
  kill -0 "$(cat "$state/moto.pid")" 2>/dev/null || fail "moto server exited at start (see $state/moto.log)"
  sleep 0.5
done
export AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
"$PY" - "$bucket" <<'PYEOF' || fail "the moto server at $endpoint does not answer or cannot make bucket $bucket (see $state/moto.log)"
import sys
import s3fs
fs = s3fs.S3FileSystem()   # endpoint and credentials from the AWS_* variables (botocore >= 1.31)
fs.mkdir(sys.argv[1])
assert fs.exists(sys.argv[1])
PYEOF
cat >"$state/s3.env" <<ENV
export AWS_ENDPOINT_URL=$endpoint
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=us-east-1
export EVENTKIT_TEST_S3=s3://$bucket
ENV
cat "$state/s3.env"
echo "s3_up: moto server on $endpoint (pid $(cat "$state/moto.pid")), bucket s3://$bucket" >&2
