# eventkit — the commands the README promises.
VENV ?= .venv
PY   := $(VENV)/bin/python
EK   := $(VENV)/bin/eventkit
DEMO_ROOT  ?= .data/nmnist
DEMO_CACHE ?= .cache

.PHONY: setup demo lint test test-engines bench bench-env clean-demo

setup:            ## .venv with torch==2.13.0 (CPU) first, then eventkit[dev]
	bash scripts/setup.sh

demo: setup       ## N-MNIST (real recordings where found, else a learnable synthetic set) -> sharded Zarr frame cache, verified
	$(PY) scripts/prepare_demo_data.py --dst $(DEMO_ROOT)
	$(EK) frames --T 10 --root $(DEMO_ROOT) --cache $(DEMO_CACHE) nmnist
	$(EK) frames --T 10 --root $(DEMO_ROOT) --cache $(DEMO_CACHE) nmnist --json > $(DEMO_CACHE)/demo-build.json
	$(EK) cache verify --all --root $(DEMO_ROOT) \
	    $$($(PY) -c "import json; print(json.load(open('$(DEMO_CACHE)/demo-build.json'))['stores']['test'])")

lint: setup       ## ruff (the whole tree; settings in pyproject.toml) and mypy (eventkit, eventkit_train, cli)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint        ## lint, then the test suite (what CI runs)
	$(PY) -m pytest -q

test-engines: setup  ## as root: start SLURM + an S3 server (scripts/ci), run the engine tests on them, stop them
	bash scripts/ci/engines.sh

bench-env: setup  ## SpikingJelly and snnTorch for the side-by-side benchmarks (not dependencies)
	$(PY) -m pip install -q --no-deps spikingjelly snntorch   # --no-deps: their requirements would replace the torch pin
	$(PY) -m pip install -q loguru                           # imported by spikingjelly.activation_based

bench: bench-env  ## speed comparisons; results land in benchmarks/results/
	$(PY) benchmarks/bench_frames.py
	$(PY) benchmarks/bench_frames_floor.py
	$(PY) benchmarks/bench_readers.py
	$(PY) benchmarks/bench_cache.py
	$(PY) benchmarks/bench_loader.py
	$(PY) benchmarks/bench_neurons.py

clean-demo:
	rm -rf $(DEMO_ROOT) $(DEMO_CACHE)
