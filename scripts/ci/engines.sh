#!/usr/bin/env bash
# The engine step: start a single-node SLURM and an S3 server (moto), run the engine tests on them
# (pytest -m engine tests/engines, plus any extra pytest arguments given), stop both servers.
# A server that cannot start fails this step with its own message: the tests are never skipped here
# (CI=true makes an engine test without its server fail, see tests/engines/conftest.py).
# Run as root (SLURM daemons). Used by `make test-engines` and .ci/run.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${VENV:-.venv}/bin/python
state=${EKCI_STATE:-/tmp/eventkit-ci}
export EKCI_STATE=$state
start=$(date +%s)

stop_all() {
  bash scripts/ci/s3_down.sh
  bash scripts/ci/slurm_down.sh
}
trap stop_all EXIT

if ! bash scripts/ci/slurm_up.sh; then
  echo "engines: FAILED: the SLURM engine could not start (message above); no engine test ran" >&2
  exit 1
fi
if ! bash scripts/ci/s3_up.sh >/dev/null; then
  echo "engines: FAILED: the S3 engine could not start (message above); no engine test ran" >&2
  exit 1
fi
set -a
# shellcheck disable=SC1091
. "$state/s3.env"
set +a
export EVENTKIT_TEST_SLURM=1
echo "engines: servers up in $(( $(date +%s) - start )) s; running the engine tests" >&2
"$PY" -m pytest -q -m engine --durations=8 tests/engines "$@"
rc=$?
echo "engines: engine step took $(( $(date +%s) - start )) s (exit $rc)" >&2
exit $rc
