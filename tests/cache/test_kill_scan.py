"""SIGKILL a build at 10 points of its writes, resume it: the store is byte-identical, with no stray file.

The child build kills itself at its N-th file write (local folders: between the temporary file and
its rename; object stores: before the PUT), so every phase is hit: the metadata documents, shard
data, markers, the final ``complete`` flag.
"""
from __future__ import annotations

import signal
import time

import pytest

from eventkit import testing
from eventkit.build import build_cache
from tests.cache.builders import run_builder, tree

POINTS = 10


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return testing.make_nmnist_root(tmp_path_factory.mktemp("raw") / "nmnist", per_class_train=1, per_class_test=1)


def _points(n_writes: int) -> list[int]:
    """10 write indices spread over 1..n_writes, first and last included."""
    return sorted({1 + round(i * (n_writes - 1) / (POINTS - 1)) for i in range(POINTS)})


def _wait_until_gone(cache: str, storage_options) -> None:
    """Wait until the killed writers named by temporary files have exited (the kernel closes a killed
    process's pipes a moment before it is gone; a resume in that moment keeps its files)."""
    from eventkit.cache.objects import TMP_PATTERN, StoreIO, _pid_alive

    deadline = time.monotonic() + 10
    pids = {int(m["pid"]) for k in StoreIO(cache, storage_options).list_files() if (m := TMP_PATTERN.search(k))}
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.05)


def _scan(raw, tmp_path, cache_of, storage_options=None) -> None:
    kw = dict(T=3, root=str(raw), splits=["train"], shard_size=2, progress=False)
    if storage_options:
        kw["storage_options"] = storage_options
    ref = build_cache("nmnist", cache=cache_of("ref"), **kw)
    expected = tree(ref.stores["train"], storage_options)
    counted = tmp_path / "writes.txt"
    done = run_builder(dict(kw, cache=cache_of("count"), count_writes=str(counted)))
    assert done.returncode == 0, done.stderr[-3000:]
    n_writes = len(counted.read_text().splitlines())
    assert n_writes > 30  # 6 documents, 5 writes per shard, the complete flag
    points = _points(n_writes)
    assert len(points) == POINTS
    for point in points:
        cache = cache_of(f"kill{point}")
        killed = run_builder(dict(kw, cache=cache, kill_at=point))
        assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr[-2000:])
        _wait_until_gone(cache, storage_options)
        resumed = build_cache("nmnist", cache=cache, **kw)
        got = tree(resumed.stores["train"], storage_options)
        assert sorted(set(got) ^ set(expected)) == [], point  # no stray temporary file, nothing missing
        assert [k for k in expected if got[k] != expected[k]] == [], point


@pytest.mark.slow
def test_sigkill_scan_of_a_local_build(raw, tmp_path):
    _scan(raw, tmp_path, lambda name: str(tmp_path / name))


@pytest.mark.slow
def test_sigkill_scan_of_an_s3_build(raw, tmp_path, s3):
    bucket = s3.bucket()
    _scan(raw, tmp_path, lambda name: f"s3://{bucket}/{name}", s3.storage_options)
