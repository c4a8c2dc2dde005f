#!/usr/bin/env bash
# One command for a CUDA machine: set up, run the GPU kernel tests (real Triton), benchmark the neurons and a
# training step, train one recipe epoch in bf16.
#
#   bash benchmarks/run_gpu.sh            # from the repository root; results in benchmarks/results/
#
# Creates .venv-gpu with torch==2.13.0 (the CUDA build PyPI serves on Linux), eventkit[dev,gpu] and the
# benchmark peers (SpikingJelly, snnTorch without their dependencies). Set PYTHON to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-gpu
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q torch==2.13.0
    "$VENV/bin/pip" install -q -e '.[dev,gpu]'
    "$VENV/bin/pip" install -q --no-deps spikingjelly snntorch
    "$VENV/bin/pip" install -q loguru
fi
"$VENV/bin/python" -c "import torch, triton; assert torch.cuda.is_available(), 'no CUDA device'; \
print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv || true
uptime
# compiled Triton, not the interpreter the CPU tests use
TRITON_INTERPRET=0 "$VENV/bin/python" -m pytest -q tests/train/kernels -k cuda -p no:cacheprovider
"$VENV/bin/python" benchmarks/bench_neurons.py --device cuda --repeats 20
# training samples/s vs SpikingJelly on the GPU (bf16 variants included), and DDP 1 -> 2 processes where 2 GPUs exist
"$VENV/bin/python" benchmarks/bench_train.py --device cuda --repeats 5
# one training epoch of a recipe on the GPU (bf16 autocast from the recipe), on a tiny generated N-MNIST root
"$VENV/bin/python" - <<'PYEOF'
import json, tempfile
from click.testing import CliRunner
from eventkit.cli.main import cli
from eventkit.testing import make_nmnist_root
tmp = tempfile.mkdtemp(prefix="eventkit-gpu-")
root = make_nmnist_root(f"{tmp}/raw", per_class_train=4, per_class_test=2)
res = CliRunner().invoke(cli, ["train", "nmnist", "--config", "configs/hnn-nmnist.toml", "--root", str(root),
                               "--cache", f"{tmp}/cache", "--epochs", "1", "--device", "cuda", "--out", f"{tmp}/run",
                               "--json", "--no-progress"], catch_exceptions=False)
assert res.exit_code == 0, res.output
summary = json.loads(res.output.strip().splitlines()[-1])
print("hnn-nmnist, 1 epoch on cuda:", {k: summary[k] for k in ("amp", "seconds", "train_loss", "spike_rates")})
PYEOF
