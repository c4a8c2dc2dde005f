"""Engine tests: builds through the ``eventkit`` command on real servers (SLURM, S3, a Dask scheduler).

An engine is announced by environment variables, which ``make test-engines`` sets after
starting the servers with ``scripts/ci/*_up.sh``:

- SLURM: ``EVENTKIT_TEST_SLURM=1`` (``sbatch``/``squeue`` on the PATH, an idle node);
- S3: ``EVENTKIT_TEST_S3=s3://bucket`` plus ``AWS_ENDPOINT_URL`` and the ``AWS_*`` credentials.

Without them an engine test skips with the reason; under ``CI=true`` it fails instead: CI
never skips an engine silently. Tests marked ``engine`` are the ones that need a server.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import uuid
from pathlib import Path

import pytest

from eventkit import testing

ENGINES = {
    "slurm": ("EVENTKIT_TEST_SLURM", "a running SLURM (scripts/ci/slurm_up.sh)"),
    "s3": ("EVENTKIT_TEST_S3", "an S3 server, e.g. moto on 127.0.0.1 (eval \"$(scripts/ci/s3_up.sh)\")"),
}


def pytest_configure(config):
    config.addinivalue_line("markers", "engine: needs a real engine server (SLURM, S3); run by `make test-engines`")


def require_engine(name: str) -> str:
    """The engine's environment value, or skip (locally) / fail (``CI=true``) with the reason."""
    var, what = ENGINES[name]
    value = os.environ.get(var, "").strip()
    problem = None
    if not value:
        problem = f"{var} is not set: this test needs {what}; `make test-engines` starts it and sets {var}"
    elif name == "slurm" and shutil.which("sbatch") is None:
        problem = f"{var} is set but sbatch is not on the PATH"
    elif name == "s3" and not os.environ.get("AWS_ENDPOINT_URL"):
        problem = f"{var} is set but AWS_ENDPOINT_URL (the S3 server's address) is not"
    elif name == "s3" and importlib.util.find_spec("s3fs") is None:
        problem = f"{var} is set but s3fs is not installed (pip install s3fs)"
    if problem is not None:
        if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
            pytest.fail(f"engine {name}: {problem} (under CI=true an engine test never skips)", pytrace=False)
        pytest.skip(f"engine {name}: {problem}")
    return value


@pytest.fixture
def slurm() -> None:
    """A running single-node SLURM (or skip/fail, see :func:`require_engine`)."""
    require_engine("slurm")


@pytest.fixture
def s3_url(request) -> str:
    """A fresh ``s3://bucket/<test>-<n>`` prefix on the S3 server (or skip/fail)."""
    bucket = require_engine("s3").rstrip("/")
    return f"{bucket}/{request.node.name.replace('[', '-').rstrip(']')}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def small_root(tmp_path_factory) -> Path:
    """N-MNIST release layout, 20 train + 10 test recordings of 50..200 events."""
    return testing.make_nmnist_root(tmp_path_factory.mktemp("raw") / "nmnist", per_class_train=2, per_class_test=1)


@pytest.fixture(scope="session")
def medium_root(tmp_path_factory) -> Path:
    """N-MNIST release layout, 60 train + 20 test recordings (builds long enough to interrupt)."""
    return testing.make_nmnist_root(tmp_path_factory.mktemp("raw") / "nmnist", per_class_train=6, per_class_test=2)


@pytest.fixture(scope="session")
def large_root(tmp_path_factory) -> Path:
    """N-MNIST release layout, 200 train + 50 test recordings."""
    return testing.make_nmnist_root(tmp_path_factory.mktemp("raw") / "nmnist", per_class_train=20, per_class_test=5)


@pytest.fixture(scope="session")
def local_build(tmp_path_factory):
    """``local_build(root, shard_size, T=3) -> {split: store folder}``: the reference in-process N-MNIST
    build (cached)."""
    from eventkit.build import build_cache

    done: dict[tuple[str, int, int], dict[str, str]] = {}

    def build(root: Path, shard_size: int, T: int = 3) -> dict[str, str]:
        key = (str(root), int(shard_size), int(T))
        if key not in done:
            cache = tmp_path_factory.mktemp("local-cache")
            done[key] = build_cache("nmnist", T=T, root=root, cache=cache, shard_size=shard_size,
                                    progress=False).stores
        return done[key]

    return build


@pytest.fixture
def port_8787_taken():
    """Hold the Dask dashboard's default port, as another user's notebook on a login node would."""
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        held.bind(("0.0.0.0", 8787))
        held.listen()
    except OSError:
        pass  # already taken by someone else: the same situation
    yield
    held.close()
