"""Cache stores on a real S3 server (moto, scripts/ci/s3_up.sh) through the ``eventkit`` command.

Endpoint and credentials come from the ``AWS_*`` environment variables; nothing else is
configured (no ``FSSPEC_S3`` workaround). Every store is compared object by object with
a local one-process build.
"""
from __future__ import annotations

import signal
import subprocess
import uuid

import numpy as np
import pytest

from tests.engines._cli import (
    count_markers,
    eventkit,
    start_eventkit,
    store_tree,
    stores_of,
    wait_for,
)
from tests.engines.conftest import require_engine

pytestmark = pytest.mark.engine

GUARD_S = 300


def _frames(root, cache, *extra, shard_size=4):
    return ["frames", "--T", "3", "nmnist", "--root", root, "--cache", cache, "--shard-size", str(shard_size),
            "--json", *extra]


def _same_as_local(stores: dict[str, str], local: dict[str, str]) -> None:
    assert set(stores) == set(local) == {"train", "test"}
    for split in stores:
        got, want = store_tree(stores[split]), store_tree(local[split])
        assert sorted(got) == sorted(want), (split, sorted(set(got) ^ set(want)))
        assert got == want, split


@pytest.fixture(scope="module")
def s3_store(small_root, request) -> dict[str, str]:
    """One ``--workers 1`` build of the small root on S3, shared by the read-side tests."""
    bucket = require_engine("s3").rstrip("/")
    r = eventkit(*_frames(small_root, f"{bucket}/shared-{uuid.uuid4().hex[:8]}"), timeout=GUARD_S)
    return stores_of(r)


@pytest.mark.parametrize("workers", [1, 2])
def test_build_to_s3_is_byte_identical_to_a_local_build(s3_url, small_root, local_build, workers):
    r = eventkit(*_frames(small_root, s3_url, "--workers", workers), timeout=GUARD_S)
    stores = stores_of(r)
    assert all(url.startswith(s3_url + "/") for url in stores.values()), stores
    _same_as_local(stores, local_build(small_root, 4))


def test_the_loader_reads_an_s3_store_like_the_local_one(s3_store, small_root, local_build):
    from eventkit.loader import FrameDataset, make_loader

    local = local_build(small_root, 4)
    for split in ("train", "test"):
        remote_ds, local_ds = FrameDataset(s3_store[split]), FrameDataset(local[split])
        assert len(remote_ds) == len(local_ds) > 0
        for i in range(len(local_ds)):
            (fr, lr), (fl, ll) = remote_ds[i], local_ds[i]
            assert lr == ll and fr.dtype == fl.dtype and np.array_equal(fr.numpy(), fl.numpy()), (split, i)
    for workers in (0, 2):  # DataLoader worker processes open the S3 store themselves
        got = [(x.numpy(), y.numpy()) for x, y in make_loader(s3_store["train"], 4, shuffle=False, workers=workers)]
        want = [(x.numpy(), y.numpy()) for x, y in make_loader(local["train"], 4, shuffle=False)]
        assert len(got) == len(want)
        for (xg, yg), (xw, yw) in zip(got, want, strict=True):
            assert np.array_equal(xg, xw) and np.array_equal(yg, yw)


def test_cache_verify_over_s3(s3_store, small_root):
    for url in s3_store.values():
        r = eventkit("cache", "verify", url, "--root", small_root, "--all", "--json", timeout=GUARD_S)
        assert r.returncode == 0, r.stdout + r.stderr
        assert '"ok": true' in r.stdout, r.stdout


def test_a_build_to_s3_killed_with_sigkill_resumes_to_a_byte_identical_store(s3_url, small_root, local_build):
    proc = start_eventkit(*_frames(small_root, s3_url, shard_size=2))
    try:
        wait_for(lambda: count_markers(s3_url) >= 2 or proc.poll() is not None, 120, "the first shards on S3")
        assert proc.poll() is None, "the build ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    written = count_markers(s3_url)
    assert 2 <= written < 15, written  # 10 + 5 shards of 2 samples
    r = eventkit(*_frames(small_root, s3_url, shard_size=2), timeout=GUARD_S)
    _same_as_local(stores_of(r), local_build(small_root, 2))


def test_two_concurrent_builders_of_one_s3_store_both_succeed(s3_url, small_root, local_build):
    procs = [start_eventkit(*_frames(small_root, s3_url, shard_size=2)) for _ in range(2)]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=GUARD_S)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    stores = [stores_of(r) for r in results]
    assert stores[0] == stores[1]
    _same_as_local(stores[0], local_build(small_root, 2))


def test_training_with_event_ops_on_an_s3_cache_uses_the_storage_options(s3_url, small_root, tmp_path):
    """``eventkit train`` with an event op (flip_lr, framed on the fly from the event store) and the cache
    on S3, the endpoint given only as ``--storage-option endpoint_url=...``: ``AWS_ENDPOINT_URL`` points at
    a closed port, so a frame store, event store or DataLoader worker opened without the storage options
    would reach the wrong server and fail the run."""
    import json
    import os

    from eventkit.events_store import EventStore
    from tests.engines._cli import _fs, env_with
    from tests.train.trainer_helpers import TINY_ARCH

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    run = tmp_path / "run"
    r = eventkit("train", "nmnist", "--root", small_root, "--cache", s3_url,
                 "--storage-option", f"endpoint_url={endpoint}", "--T", "4", "--arch", TINY_ARCH, "--epochs", "1",
                 "--batch-size", "8", "--lr", "0.01", "--device", "cpu", "--seed", "1", "--out", run,
                 "--workers", "1", "--augment", 'event=[{op = "flip_lr"}]', "--json", "--no-progress",
                 timeout=GUARD_S, env=env_with(AWS_ENDPOINT_URL="http://127.0.0.1:9"))
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["epochs"] == 1 and (run / "checkpoint.pt").is_file() and (run / "summary.json").is_file()
    fs, root = _fs(s3_url)  # this process: AWS_ENDPOINT_URL is the server's
    groups = sorted(p[len(root):].strip("/") for p in fs.find(root) if p.endswith(".zarr/zarr.json"))
    kinds = [g.split("/")[2].split("-")[0] for g in groups]
    assert sorted(g.split("/")[1] for g in groups) == ["test", "train", "train"], groups
    assert sorted(kinds) == ["events", "frames", "frames"], groups  # the event store beside the frame stores
    (events,) = [g for g in groups if "/events-" in g]
    store = EventStore.open(f"{s3_url}/{events.removesuffix('/zarr.json')}")
    assert store.meta["complete"] and store.n_samples == 20 and store.meta["split"] == "train"
    assert not any(".staging" in p for p in fs.find(root))  # staging removed on the bucket
