#!/usr/bin/env bash
# Set up .venv for eventkit on a fresh machine: the pinned torch first (a CPU wheel where pip's index
# offers one, as on our build machines), then the project.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
# torch first, pinned: an unpinned torch pulls several GB of CUDA wheels.
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  $PIP install -q --disable-pip-version-check "torch==2.13.0"
fi
$PIP install -q --disable-pip-version-check -e ".[dev]"
"$VENV/bin/python" -c "import eventkit, eventkit_train, torch; print('eventkit', eventkit.__version__, '| torch', torch.__version__)"
