"""Sections of ``bench_cache.py`` about the store itself (run by it; not a benchmark of its own).

* ``s3_vs_local``: the same build with 2 workers to a local folder and to an S3-compatible server
  (``moto[server]`` on 127.0.0.1, started here), taking turns; the requests the S3 build made
  (counted in the server's log), per shard written, and those of one loader epoch, per sample read.
* ``small_arrays``: one shard's ``label``/``n_events``/``sample_id`` chunks written by zarr's own
  writer (``array[a:b] = values``) against eventkit's codec (the same bytes, tested), and read back.
* ``build_before_after``: ``build_cache`` of this tree against another checkout (``--compare-with``),
  each in its own child process, taking turns.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def s3_vs_local(root: Path, work: Path, T: int, repeat: int) -> dict:
    """Best and median seconds of a 2-worker build to a folder and to S3, and the request counts."""
    sys.path.insert(0, str(REPO))
    from eventkit.build import build_cache
    from eventkit.cache import CacheStore
    from tests.cache.s3server import S3Server
    from tests.cache.s3server import request_kind as _kind

    server = S3Server(work / "moto.log")
    try:
        times: dict[str, list[float]] = {"local": [], "s3": []}
        counts = None
        for i in range(repeat):
            for where in ("local", "s3"):
                if where == "local":
                    cache, opts = work / f"local-{i}", None
                else:
                    cache, opts = f"s3://{server.bucket()}/c", server.storage_options
                mark = server.mark()
                t0 = time.perf_counter()
                result = build_cache("nmnist", T=T, root=root, cache=cache, workers=2, progress=False,
                                     storage_options=opts)
                times[where].append(time.perf_counter() - t0)
                if where == "s3" and counts is None:
                    reqs = server.requests(mark)
                    shards = sum(CacheStore.open(u, storage_options=opts).n_shards for u in result.stores.values())
                    kinds = Counter(_kind(p) for _, p in reqs)
                    shard_reqs = sum(v for k, v in kinds.items() if k not in ("metadata", "list", "other"))
                    counts = {"build_requests": len(reqs), "shards": shards, "by_kind": dict(kinds),
                              "requests_per_shard": shard_reqs / shards,
                              "per_store_overhead": (len(reqs) - shard_reqs) / len(result.stores)}
                    url = result.stores["train"]
                    mark = server.mark()
                    store = CacheStore.open(url, storage_options=opts)
                    open_reqs = len(server.requests(mark))
                    mark = server.mark()
                    store.labels()
                    label_reqs = len(server.requests(mark))
                    mark = server.mark()
                    for k in range(store.n_shards):
                        store.read_shard(k)
                    epoch_reqs = len(server.requests(mark))
                    mark = server.mark()
                    for j in range(50):
                        store.read_sample(j)
                    sample_reqs = len(server.requests(mark))
                    counts.update(open_requests=open_reqs, label_requests=label_reqs,
                                  whole_shard_epoch_requests=epoch_reqs, samples=store.n_samples,
                                  random_access_requests_50_samples=sample_reqs, shards_train=store.n_shards)
                shutil.rmtree(work / f"local-{i}", ignore_errors=True)
        best = {k: min(v) for k, v in times.items()}
        med = {k: float(np.median(v)) for k, v in times.items()}
        return {"runs": times, "best": best, "median": med, "ratio_best": best["s3"] / best["local"],
                "ratio_median": med["s3"] / med["local"], "requests": counts}
    finally:
        server.close()


def small_arrays(shard_size: int = 362, repeat: int = 30) -> dict:
    """Microseconds per shard to write (and read) the three small chunks: zarr's writer vs eventkit's codec."""
    import tempfile

    import zarr

    from eventkit.cache import CacheStore, codec
    from eventkit.cache.objects import StoreIO

    n = shard_size * 4
    work = Path(tempfile.mkdtemp(prefix="ek-small-"))
    meta = {"dataset": "x", "split": "train", "representation": "frames", "params": {"T": 1}}
    url = str(work / "s.zarr")
    CacheStore.create(url, meta=meta, frame_shape=(1, 1, 2, 2), dtype="uint16", n_samples=n, shard_size=shard_size)
    group = zarr.open_group(url, mode="r+")
    arrays = {name: group[name] for name in ("label", "n_events", "sample_id")}
    io = StoreIO(url)
    labels = np.arange(shard_size) % 10
    n_events = np.arange(shard_size) * 1000
    ids = np.array([f"Train/{i % 10}/{i:05d}.bin" for i in range(shard_size)], dtype=object)
    t = {"zarr write": [], "eventkit write": [], "zarr read": [], "eventkit read": []}
    for r in range(repeat):
        k = r % 4
        a, b = k * shard_size, (k + 1) * shard_size
        t0 = time.perf_counter()
        arrays["label"][a:b] = labels
        arrays["n_events"][a:b] = n_events
        arrays["sample_id"][a:b] = ids
        t1 = time.perf_counter()
        io.put(f"label/c/{k}", codec.encode_int64_chunk(labels, shard_size, -1))
        io.put(f"n_events/c/{k}", codec.encode_int64_chunk(n_events, shard_size, 0))
        io.put(f"sample_id/c/{k}", codec.encode_strings_chunk(list(ids), shard_size))
        t2 = time.perf_counter()
        [arrays[name][a:b] for name in arrays]
        t3 = time.perf_counter()
        codec.decode_int64_chunk(io.get(f"label/c/{k}"), shard_size)
        codec.decode_int64_chunk(io.get(f"n_events/c/{k}"), shard_size)
        codec.decode_strings_chunk(io.get(f"sample_id/c/{k}"), shard_size)
        t4 = time.perf_counter()
        for name, v in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            t[name].append(v)
    shutil.rmtree(work, ignore_errors=True)
    med = {k: 1e6 * float(np.median(v)) for k, v in t.items()}
    return {"shard_size": shard_size, "repeat": repeat, "median_us": med,
            "write_ratio_zarr_over_eventkit": med["zarr write"] / med["eventkit write"],
            "read_ratio_zarr_over_eventkit": med["zarr read"] / med["eventkit read"]}


_TIMED_BUILD = r'''
import json, sys, time, shutil
from eventkit.build import build_cache
root, cache, T = sys.argv[1], sys.argv[2], int(sys.argv[3])
build_cache("nmnist", T=T, root=root, cache=cache + "-warm", workers=1, progress=False, splits=["test"])
shutil.rmtree(cache + "-warm", ignore_errors=True)
t0 = time.perf_counter()
build_cache("nmnist", T=T, root=root, cache=cache, workers=1, progress=False)
print(json.dumps({"seconds": time.perf_counter() - t0}))
'''


def build_before_after(other: Path, root: Path, work: Path, T: int, repeat: int) -> dict:
    """``build_cache`` (1 worker, whole dataset) of this tree and of ``other`` in child processes, taking turns."""
    trees = {"this tree": REPO, f"other ({other})": Path(other)}
    times: dict[str, list[float]] = {name: [] for name in trees}
    for i in range(repeat):
        for name, tree in trees.items():
            cache = work / f"ba-{i}-{'this' if tree == REPO else 'other'}"
            env = dict(os.environ, PYTHONPATH=str(tree))
            out = subprocess.run([sys.executable, "-c", _TIMED_BUILD, str(root), str(cache), str(T)], env=env,
                                 capture_output=True, text=True, cwd=tree, check=True)
            times[name].append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
            shutil.rmtree(cache, ignore_errors=True)
    best = {k: min(v) for k, v in times.items()}
    med = {k: float(np.median(v)) for k, v in times.items()}
    this, that = list(trees)
    return {"runs": times, "best": best, "median": med, "ratio_best_this_over_other": best[this] / best[that],
            "ratio_median_this_over_other": med[this] / med[that]}
