"""Cache build benchmark: eventkit vs tonic's DiskCachedDataset vs SpikingJelly's frame files.

All three turn the same raw N-MNIST files (the 1000 real recordings of
``../shared/data/nmnist/NMNISTsmall`` arranged in the release layout by
``eventkit.testing.arrange_nmnist_small``) into T event-count frames per sample and
write them to disk; every timing includes reading the raw files.

* eventkit: ``build_cache("nmnist", T=T, split_by="count", workers=1)`` -> one sharded Zarr
  store per split (uint16 counts, zstd).
* tonic: a ``tonic.datasets.NMNIST``-style dataset (``tonic.io.read_mnist_file`` + the
  ``ToFrame(sensor_size, n_event_bins=T)`` transform) wrapped in ``DiskCachedDataset``, every
  index read once (one compressed HDF5 file per sample). On a miss ``__getitem__`` also
  tries to open the file first and reads the saved sample back, so the same work is also
  timed without those two steps (read, ``ToFrame``, ``save_to_disk_cache`` only).
* SpikingJelly: its ``NMNIST(root, data_type='frame', frames_number=T, split_by='number')``
  pipeline, re-implemented step by step on the same files because SpikingJelly 2.0 cannot
  be imported here (its ``datasets`` package needs torchvision and loguru, which eventkit
  does not install) and its dataset class expects the downloaded zip archives: (1) each
  ``.bin`` decoded as ``load_ATIS_bin`` does and saved as an events ``.npz``
  (``np.savez_compressed``, SpikingJelly's default), (2) each events file integrated with
  the ``integrate_events_by_fixed_frames_number`` rule (``N // T`` events per slice, the last
  slice to N, ``np.bincount`` per slice, float64 frames) and saved with
  ``np.savez_compressed``. Both stages are timed; its total is what a first
  ``NMNIST(..., data_type='frame')`` call costs.

Single process everywhere (SpikingJelly's default thread pool of 16 is not used: the
benchmark machine is shared and has 2 cores). Best and median of ``--repeat`` runs, the
pipelines taking turns.

The store sections (``bench_cache_s3.py``) follow in the same run: a 2-worker build to an
S3-compatible server (moto, started here) against the same build to a local folder, with the
requests counted per shard written and per sample read; zarr's own writer against eventkit's
codec for the small arrays; and, with ``--compare-with DIR`` (another checkout), the build
time of this tree against that one, taking turns.

    python benchmarks/bench_cache.py [--T 10] [--repeat 5] [--out benchmarks/results/cache]
                                     [--compare-with /tmp/eventkit-main] [--no-s3] [--no-anchors]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


# ------------------------------------------------------------------ eventkit

def run_eventkit(root: Path, work: Path, T: int, i: int):
    from eventkit.build import build_cache

    cache = work / f"eventkit-{i}"
    shutil.rmtree(cache, ignore_errors=True)
    return build_cache("nmnist", T=T, root=root, cache=cache, workers=1, progress=False)


# ------------------------------------------------------------------ tonic

def run_tonic(files: list[tuple[Path, int]], work: Path, T: int, i: int) -> Path:
    import tonic
    from tonic import DiskCachedDataset
    from tonic.io import read_mnist_file

    dtype = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])  # tonic.datasets.NMNIST's dtype
    to_frame = tonic.transforms.ToFrame(sensor_size=(34, 34, 2), n_event_bins=T)

    class NMNISTFiles:
        """What tonic.datasets.NMNIST.__getitem__ does, over an explicit file list."""

        def __len__(self) -> int:
            return len(files)

        def __getitem__(self, index: int):
            path, label = files[index]
            events = read_mnist_file(str(path), dtype=dtype)
            return to_frame(events), label

    cache = work / f"tonic-{i}"
    shutil.rmtree(cache, ignore_errors=True)
    ds = DiskCachedDataset(NMNISTFiles(), cache_path=str(cache))
    for k in range(len(files)):
        ds[k]
    return cache


def run_tonic_build_only(files: list[tuple[Path, int]], work: Path, T: int, i: int) -> Path:
    """tonic's cache-filling work alone: read, ``ToFrame``, ``save_to_disk_cache`` (compressed, as
    ``DiskCachedDataset`` saves) per sample -- without the failed open before it and the read-back
    after it that ``DiskCachedDataset.__getitem__`` does on a miss."""
    import tonic
    from tonic.cached_dataset import save_to_disk_cache
    from tonic.io import read_mnist_file

    dtype = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
    to_frame = tonic.transforms.ToFrame(sensor_size=(34, 34, 2), n_event_bins=T)
    cache = work / f"tonic-build-{i}"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    for k, (path, label) in enumerate(files):
        frames = to_frame(read_mnist_file(str(path), dtype=dtype))
        save_to_disk_cache(frames, label, file_path=str(cache / f"{k}_0.hdf5"), compress=True)
    return cache


# ------------------------------------------------------------------ SpikingJelly (re-implemented)

def sj_load_atis_bin(path: Path) -> dict[str, np.ndarray]:
    """40-bit ATIS words -> dict of uint32 columns (SpikingJelly's ``load_ATIS_bin`` layout)."""
    raw = np.fromfile(path, dtype=np.uint8).astype(np.uint32)
    b2 = raw[2::5]
    return {"t": ((b2 & 127) << 16) | (raw[3::5] << 8) | raw[4::5], "x": raw[0::5], "y": raw[1::5],
            "p": (b2 & 128) >> 7}


def sj_frames_by_number(events: dict[str, np.ndarray], T: int, H: int, W: int) -> np.ndarray:
    """Fixed frame number, split by event count: slice j = [j*(N//T), (j+1)*(N//T)), last to N;
    counts per (p, y, x) by ``np.bincount``; float64 ``[T, 2, H, W]`` as SpikingJelly keeps them."""
    N = events["t"].size
    step = N // T
    frames = np.zeros((T, 2, H, W))
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    p = (events["p"] != 0).astype(np.int64)
    for j in range(T):
        lo, hi = j * step, (N if j == T - 1 else (j + 1) * step)
        pos = p[lo:hi] * H * W + y[lo:hi] * W + x[lo:hi]
        frames[j] = np.bincount(pos, minlength=2 * H * W).reshape(2, H, W).astype(float)
    return frames


def run_spikingjelly(files: list[tuple[Path, int]], work: Path, T: int, i: int) -> dict:
    events_dir = work / f"sj-{i}" / "events_np"
    frames_dir = work / f"sj-{i}" / f"frames_number_{T}_split_by_number"
    shutil.rmtree(work / f"sj-{i}", ignore_errors=True)
    t0 = time.perf_counter()
    npz_files = []
    for path, label in files:
        out = events_dir / str(label) / (path.stem + ".npz")
        out.parent.mkdir(parents=True, exist_ok=True)
        ev = sj_load_atis_bin(path)
        np.savez_compressed(out, t=ev["t"], x=ev["x"], y=ev["y"], p=ev["p"])
        npz_files.append(out)
    t1 = time.perf_counter()
    for f in npz_files:
        with np.load(f) as data:
            ev = {k: data[k] for k in ("t", "x", "y", "p")}
        out = frames_dir / f.parent.name / f.name
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, frames=sj_frames_by_number(ev, T, 34, 34))
    t2 = time.perf_counter()
    return {"events_stage_s": t1 - t0, "frames_stage_s": t2 - t1, "events_dir": events_dir,
            "frames_dir": frames_dir}


# ------------------------------------------------------------------ main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cache")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--compare-with", type=Path, default=None, help="another checkout to time build_cache against")
    ap.add_argument("--no-s3", action="store_true", help="skip the S3 section (needs moto[server] and s3fs)")
    ap.add_argument("--no-anchors", action="store_true", help="skip tonic and SpikingJelly")
    args = ap.parse_args()

    from eventkit import __version__
    from eventkit.build import build_cache
    from eventkit.cache import CacheStore
    from eventkit.datasets import get_dataset
    from eventkit.testing import arrange_nmnist_small

    work = Path(args.work or tempfile.mkdtemp(prefix="ek-bench-cache-"))
    work.mkdir(parents=True, exist_ok=True)
    src = Path(os.environ.get("EVENTKIT_SHARED_DATA", REPO.parent / "shared" / "data")) / "nmnist" / "NMNISTsmall"
    root = arrange_nmnist_small(src, src / "train1K.txt", work / "nmnist")
    spec = get_dataset("nmnist")
    files = [(s.path, s.label) for split in spec.splits for s in spec.samples(root, split)]
    n = len(files)
    T = args.T

    # warm-up: Numba compilation (cached on disk after the first run) and imports, not timed
    build_cache("nmnist", T=T, root=root, cache=work / "warmup", workers=1, progress=False, splits=["test"])
    if args.no_anchors:
        store_sections(args, root, work, T)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
        return
    import tonic  # noqa: F401 - fails here, before the timing, when tonic is missing

    # the three pipelines take turns, so a burst of load from other jobs hits all of them alike
    times: dict[str, list[float]] = {"eventkit": [], "tonic": [], "tonic_build": [], "sj": [], "sj_frames": []}
    sj_runs = []
    for i in range(args.repeat):
        s, ek = timed(run_eventkit, root, work, T, i)
        times["eventkit"].append(s)
        s, tonic_dir = timed(run_tonic, files, work, T, i)
        times["tonic"].append(s)
        s, _ = timed(run_tonic_build_only, files, work, T, i)
        times["tonic_build"].append(s)
        s, sj = timed(run_spikingjelly, files, work, T, i)
        times["sj"].append(s)
        times["sj_frames"].append(sj["frames_stage_s"])
        sj_runs.append(sj)
    medians = {k: float(np.median(v)) for k, v in times.items()}
    ek_s, tonic_s, tonic_build_s, sj_s, sj_frames_s = (min(times[k]) for k in
                                                       ("eventkit", "tonic", "tonic_build", "sj", "sj_frames"))
    sj_best = sj_runs[-1]

    # correctness: eventkit frames == SpikingJelly-rule frames for every sample
    mismatches = 0
    for url in ek.stores.values():
        store = CacheStore.open(url)
        ids = store.sample_ids()
        for k in range(store.n_shards):
            lo, hi = store.shard_range(k)
            frames, _ = store.read_shard(k)
            for j in range(hi - lo):
                ref = sj_frames_by_number(sj_load_atis_bin(root / ids[lo + j]), T, 34, 34)
                mismatches += int(not np.array_equal(frames[j].astype(np.float64), ref))

    ek_bytes = sum(ek.store_bytes.values())
    tonic_bytes = dir_bytes(tonic_dir)
    sj_frames_bytes = dir_bytes(sj_best["frames_dir"])
    sj_events_bytes = dir_bytes(sj_best["events_dir"])
    events = ek.events
    rows = {
        "eventkit": {"seconds": ek_s, "median_seconds": medians["eventkit"], "bytes": ek_bytes,
                     "runs": times["eventkit"]},
        "tonic DiskCachedDataset + ToFrame, first pass": {"seconds": tonic_s, "median_seconds": medians["tonic"],
                                                          "bytes": tonic_bytes, "runs": times["tonic"]},
        "tonic read + ToFrame + save only (no read-back)": {"seconds": tonic_build_s,
                                                            "median_seconds": medians["tonic_build"],
                                                            "bytes": tonic_bytes, "runs": times["tonic_build"]},
        "SpikingJelly frames (events npz + frames npz)": {"seconds": sj_s, "median_seconds": medians["sj"],
                                                          "bytes": sj_frames_bytes + sj_events_bytes,
                                                          "runs": times["sj"]},
        "SpikingJelly frames stage only": {"seconds": sj_frames_s, "median_seconds": medians["sj_frames"],
                                           "bytes": sj_frames_bytes, "runs": times["sj_frames"]},
    }
    for r in rows.values():
        r["ms_per_sample"] = 1e3 * r["seconds"] / n
        r["events_per_s"] = events / r["seconds"]
        r["bytes_per_sample"] = r["bytes"] / n
    result = {
        "benchmark": "cache build, N-MNIST 1000 real samples (900 train / 100 test)",
        "T": T, "split_by": "count (SpikingJelly 'number', tonic n_event_bins)", "samples": n, "events": events,
        "repeat": args.repeat, "statistic": "best (and median) of repeat interleaved runs, wall seconds, "
                                             "reading included",
        "workers": "1 process each", "frames_equal_spikingjelly_rule": mismatches == 0,
        "mismatching_samples": mismatches, "results": rows,
        "speedup_vs_tonic": tonic_s / ek_s, "speedup_vs_tonic_build_only": tonic_build_s / ek_s,
        "speedup_vs_spikingjelly": sj_s / ek_s,
        "speedup_vs_spikingjelly_frames_stage": sj_frames_s / ek_s,
        "median_speedup_vs_tonic": medians["tonic"] / medians["eventkit"],
        "median_speedup_vs_tonic_build_only": medians["tonic_build"] / medians["eventkit"],
        "median_speedup_vs_spikingjelly": medians["sj"] / medians["eventkit"],
        "size_ratio_vs_spikingjelly_frames": ek_bytes / sj_frames_bytes,
        "size_ratio_vs_spikingjelly_on_disk": ek_bytes / (sj_frames_bytes + sj_events_bytes),
        "size_ratio_vs_tonic": ek_bytes / tonic_bytes,
        "environment": {"eventkit": __version__, "python": platform.python_version(),
                        "numpy": np.__version__, "tonic": __import__("tonic").__version__,
                        "cpu_count": os.cpu_count(), "machine": platform.machine(),
                        "loadavg_end": list(os.getloadavg())},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Cache build: N-MNIST, {n} real samples, T={T} (split by event count)", "",
        "Every timing includes reading the raw `.bin` files; one process each; best (median) of "
        f"{args.repeat} runs, the pipelines taking turns. Machine: {os.cpu_count()} cores, load average at "
        f"the end {[round(v, 2) for v in os.getloadavg()]} (other jobs make timings noisier; ratios within "
        "one run are what to compare).", "",
        "| pipeline | best s (median) | ms / sample | events / s | disk / sample |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['seconds']:.2f} ({r['median_seconds']:.2f}) | {r['ms_per_sample']:.2f} | "
                     f"{r['events_per_s']:,.0f} | {r['bytes_per_sample'] / 1024:.1f} KiB |")
    lines += [
        "",
        f"- eventkit is **{result['speedup_vs_tonic']:.1f}x** faster than a first pass over tonic's "
        f"`DiskCachedDataset` (which reads each sample back after saving it) and "
        f"**{result['speedup_vs_tonic_build_only']:.1f}x** faster than tonic's read + ToFrame + save alone "
        f"(median {result['median_speedup_vs_tonic_build_only']:.1f}x); "
        f"**{result['speedup_vs_spikingjelly']:.1f}x** faster than SpikingJelly's pipeline "
        f"({result['speedup_vs_spikingjelly_frames_stage']:.1f}x its frames stage alone), best of runs; "
        f"medians: {result['median_speedup_vs_tonic']:.1f}x and {result['median_speedup_vs_spikingjelly']:.1f}x. "
        "Target >= 5x.",
        f"- eventkit's store is **{result['size_ratio_vs_spikingjelly_on_disk']:.3f}x** what SpikingJelly's pipeline "
        f"leaves on disk (events `.npz` + frames `.npz`) but **{result['size_ratio_vs_spikingjelly_frames']:.3f}x** "
        f"its frame files alone (target <= 0.25x), and {result['size_ratio_vs_tonic']:.3f}x tonic's cache. "
        "Lossless per-sample compression of these counts is near its floor: zstd-19 or Blosc shuffle reach "
        "0.74x of the zstd-3 store at best (measured on these frames), so the frames-only target is not "
        "reachable without giving up one chunk per sample.",
        f"- eventkit frames equal the SpikingJelly rule on all samples: {mismatches == 0} "
        f"({mismatches} mismatching).",
        "- SpikingJelly 2.0 cannot be imported in this environment (its `datasets` package imports "
        "torchvision and loguru), so its `NMNIST(data_type='frame', frames_number=T, split_by='number')` "
        "pipeline is re-implemented on the same files: ATIS decode -> events `.npz` -> fixed-frame-number "
        "integration (float64, `np.bincount`) -> `np.savez_compressed` per sample; its default thread pool is "
        "not used.",
        "- tonic: a `tonic.datasets.NMNIST`-style dataset (`read_mnist_file` + `ToFrame(n_event_bins=T)`) "
        "wrapped in `DiskCachedDataset` (one compressed HDF5 file per sample), every index read once.",
        "", "Reproduce: `python benchmarks/bench_cache.py --T 10 --repeat 5`.", "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    store_sections(args, root, work, T)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


def store_sections(args, root: Path, work: Path, T: int) -> None:
    """The store figures: S3 against local, the small arrays, before/after (``bench_cache_s3``)."""
    import bench_cache_s3 as sections

    out = args.out.with_name(args.out.name + "_store")
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"T": T, "repeat": args.repeat, "date": time.strftime("%Y-%m-%d %H:%M"),
              "loadavg_start": list(os.getloadavg()), "cpu_count": os.cpu_count(),
              "small_arrays": sections.small_arrays()}
    if not args.no_s3:
        result["s3_vs_local"] = sections.s3_vs_local(root, work, T, args.repeat)
    if args.compare_with is not None:
        result["build_before_after"] = sections.build_before_after(args.compare_with, root, work, T, args.repeat)
    result["loadavg_end"] = list(os.getloadavg())
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    sa = result["small_arrays"]["median_us"]
    lines = [f"# Cache store: object store, small arrays, before/after ({result['date']})", "",
             f"{os.cpu_count()} cores, load average {[round(v, 2) for v in result['loadavg_start']]} at the start, "
             f"{[round(v, 2) for v in result['loadavg_end']]} at the end; best (median) of {args.repeat} runs "
             "taking turns.", "",
             f"- Small arrays, one shard of {result['small_arrays']['shard_size']} samples (label, n_events, "
             f"sample_id chunks), median: zarr's writer {sa['zarr write']:.0f} µs, eventkit's codec "
             f"{sa['eventkit write']:.0f} µs ({result['small_arrays']['write_ratio_zarr_over_eventkit']:.1f}x); "
             f"reading {sa['zarr read']:.0f} µs vs {sa['eventkit read']:.0f} µs."]
    if "s3_vs_local" in result:
        r = result["s3_vs_local"]
        q = r["requests"]
        lines += [f"- Build, 2 workers, N-MNIST 1000 samples T={T}: local folder {r['best']['local']:.2f} s "
                  f"({r['median']['local']:.2f}), S3 server {r['best']['s3']:.2f} s ({r['median']['s3']:.2f}): "
                  f"**{r['ratio_best']:.2f}x** (median {r['ratio_median']:.2f}x; target <= 2x).",
                  f"- S3 requests of that build: {q['build_requests']} for {q['shards']} shards: "
                  f"{q['requests_per_shard']:.1f} per shard written, {q['per_store_overhead']:.1f} per store "
                  f"(by kind {q['by_kind']}).",
                  f"- Reading it back ({q['shards_train']} train shards, {q['samples']} samples): open "
                  f"{q['open_requests']} requests, labels {q['label_requests']}, every shard whole "
                  f"{q['whole_shard_epoch_requests']} (one per shard), 50 random samples "
                  f"{q['random_access_requests_50_samples']} (one per sample plus one index per shard touched)."]
    if "build_before_after" in result:
        r = result["build_before_after"]
        (this, that) = r["best"]
        lines.append(f"- Build, 1 worker, this tree {r['best'][this]:.2f} s ({r['median'][this]:.2f}) vs {that} "
                     f"{r['best'][that]:.2f} s ({r['median'][that]:.2f}): "
                     f"{r['ratio_best_this_over_other']:.2f}x (median {r['ratio_median_this_over_other']:.2f}x).")
    lines += ["", "Reproduce: `python benchmarks/bench_cache.py --T 10 --repeat 5 --compare-with DIR`.", ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
