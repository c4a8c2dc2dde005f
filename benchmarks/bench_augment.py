"""Framing on the fly with event augmentation vs reading the frame cache, and the cost of each event op.

Part 1 (loader throughput, samples/s): the 900 training samples of the 1000 real N-MNIST
recordings (``../shared/data/nmnist/NMNISTsmall``, laid out by
``eventkit.testing.arrange_nmnist_small``), ``T`` count frames ``[T, 2, 34, 34]`` uint16,
batch size 32, shuffled, DataLoader workers re-started every epoch, best of ``--epochs``:

  - ``frame cache``: ``eventkit.loader.make_loader`` over the ``frames`` store (no augmentation possible);
  - ``on the fly``: ``eventkit.event_stream.make_event_loader`` over the event store, no augmentation
    (checked to give the frame cache's frames before timing);
  - ``on the fly + tonic/own ops``: flip_lr (tonic), translate (own), drop_event (tonic), noise (tonic);
  - ``on the fly + NDA``: flip_lr then one of roll / rotate / shear (own ops).

Part 2 (per op, µs per sample, median of ``--repeats``): every event op on a real N-MNIST
sample (about 4 300 events, 34x34) and on a real 1.45 s DVS Gesture crop (63 471 events,
128x128, ``../shared/data/dvsgesture/slayer_bs2_1450ms_1.bs2``), with ``to_frames`` for
scale, and the tonic transforms eventkit does not use beside its own replacements
(``RandomDropPixel`` vs ``drop_pixel``, ``CropTime`` vs ``time_crop``).

Usage::

    python benchmarks/bench_augment.py [--T 16] [--epochs 3] [--workers 0 1 2] [--repeats 20] [--out benchmarks/results]

Writes ``<out>/augment.json`` and ``<out>/augment.md``. Not a test: the numbers depend on
the machine and on its load (recorded with the results).
"""
from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_frames import cpu_model  # benchmarks/ is the script's folder, first on sys.path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("EVENTKIT_SHARED_DATA", REPO.parent / "shared" / "data"))

MIXED = [{"op": "flip_lr", "p": 0.5}, {"op": "translate", "max_px": 3}, {"op": "drop_event", "p": [0.0, 0.2]},
         {"op": "noise", "n": 100}]
NDA = [{"op": "flip_lr", "p": 0.5}, {"op": "one_of", "choices": [{"op": "roll", "max_px": 3},
                                                                  {"op": "rotate", "max_deg": 15},
                                                                  {"op": "shear", "max_deg": 15}]}]
OPS = [{"op": "time_crop", "duration_us": 100_000}, {"op": "flip_lr", "p": 1.0}, {"op": "flip_ud", "p": 1.0},
       {"op": "flip_polarity", "p": 1.0}, {"op": "crop", "size": [30, 30]}, {"op": "translate", "max_px": 3},
       {"op": "roll", "max_px": 3}, {"op": "rotate", "max_deg": 15}, {"op": "shear", "max_deg": 15},
       {"op": "drop_event", "p": 0.1}, {"op": "drop_time", "ratio": 0.2}, {"op": "drop_area", "ratio": 0.2},
       {"op": "drop_pixel", "p": 0.1}, {"op": "event_drop"}, {"op": "time_jitter", "std_us": 1000},
       {"op": "time_skew", "coefficient": [0.9, 1.1]}, {"op": "noise", "n": 100},
       {"op": "spatial_jitter", "var_x": 1.0, "var_y": 1.0}, {"op": "time_reversal", "p": 1.0}]


def load_avg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def time_epochs(make, epochs: int, n_expected: int) -> dict:
    rates = []
    for epoch in range(epochs):
        loader = make()
        loader.set_epoch(epoch)
        t0 = time.perf_counter()
        n = sum(x.shape[0] for x, _ in loader)
        dt = time.perf_counter() - t0
        if n != n_expected:
            raise RuntimeError(f"loader yielded {n} samples, expected {n_expected}")
        rates.append(n / dt)
    return {"samples_per_s_best": round(max(rates), 1), "samples_per_s_all": [round(r, 1) for r in rates]}


def median_us(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1e6, 1)


def loader_part(args, work: Path) -> dict:
    from eventkit.augment import EventAugment
    from eventkit.build import build_cache
    from eventkit.event_stream import make_event_loader
    from eventkit.events_build import build_events_store
    from eventkit.loader import FrameDataset, make_loader
    from eventkit.testing import arrange_nmnist_small

    folder = SHARED / "nmnist" / "NMNISTsmall"
    root = arrange_nmnist_small(folder, folder / "train1K.txt", work / "nmnist", n_train=900)
    t0 = time.perf_counter()
    frames = build_cache("nmnist", T=args.T, root=root, cache=work / "cache", splits=["train"], progress=False)
    frames_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    events = build_events_store("nmnist", root=root, cache=work / "cache", splits=["train"], progress=False)
    events_s = time.perf_counter() - t0
    f_url, e_url = frames.stores["train"], events.stores["train"]
    n = 900
    check = make_event_loader(e_url, 1, T=args.T, shuffle=False, pin_memory=False)
    ds = FrameDataset(f_url)
    for i, (x, _) in enumerate(check):
        if i % 97 == 0 and not torch.equal(x[0], ds[i][0]):
            raise RuntimeError(f"on-the-fly frames of sample {i} differ from the frame cache")
    bs = args.batch_size
    cases = {
        "frame cache (FrameStream)": lambda w: make_loader(f_url, bs, workers=w, seed=0, pin_memory=False),
        "on the fly, no augmentation": lambda w: make_event_loader(e_url, bs, T=args.T, workers=w, seed=0,
                                                                   pin_memory=False),
        "on the fly + flip_lr, translate, drop_event, noise": lambda w: make_event_loader(
            e_url, bs, T=args.T, workers=w, seed=0, pin_memory=False,
            augment=EventAugment.from_table(MIXED, source="bench")),
        "on the fly + NDA (flip_lr, one of roll/rotate/shear)": lambda w: make_event_loader(
            e_url, bs, T=args.T, workers=w, seed=0, pin_memory=False,
            augment=EventAugment.from_table(NDA, source="bench")),
    }
    results = []
    for workers in args.workers:
        base = None
        for name, make in cases.items():
            res = time_epochs(lambda m=make, w=workers: m(w), args.epochs, n)
            base = res["samples_per_s_best"] if base is None else base
            results.append({"loader": name, "workers": workers, **res,
                            "vs_frame_cache": round(res["samples_per_s_best"] / base, 2)})
            print(f"{name:55s} workers={workers}: {res['samples_per_s_best']:8.0f} samples/s", flush=True)
    sizes = {k: sum(p.stat().st_size for p in Path(u).rglob("*") if p.is_file()) for k, u in
             (("frames", f_url), ("events", e_url))}
    return {"results": results, "build_seconds": {"frames": round(frames_s, 2), "events": round(events_s, 2)},
            "bytes_per_sample": {k: round(v / n) for k, v in sizes.items()}, "n_samples": n}


def ops_part(args) -> dict:
    import tonic.transforms as tt

    from eventkit.augment import EventAugment, to_tonic
    from eventkit.frames import to_frames
    from eventkit.io.nmnist import read_bs2

    samples = {"N-MNIST sample (34x34)": (read_bs2(SHARED / "nmnist" / "NMNISTsmall" / "1.bs2"), (34, 34, 2)),
               "DVS Gesture 1.45 s crop (128x128)": (read_bs2(SHARED / "dvsgesture" / "slayer_bs2_1450ms_1.bs2"),
                                                     (128, 128, 2))}
    rows = []
    for label, (events, sensor) in samples.items():
        seq = iter(range(10**9))
        row = {"sample": label, "events": int(events.shape[0]), "ops_us": {}}
        row["ops_us"]["to_frames (T=16, for scale)"] = median_us(functools.partial(to_frames, events, sensor, T=16),
                                                                   args.repeats)
        for table in OPS:
            if table["op"] == "crop":
                table = {**table, "size": [sensor[0] - 4, sensor[1] - 4]}
            aug = EventAugment.from_table([table], source="bench")
            row["ops_us"][table["op"]] = median_us(
                lambda a=aug, ev=events, s=sensor, q=seq: a(ev, s, seed=0, epoch=0, index=next(q)), args.repeats)
        theirs = to_tonic(events)
        drop_pixel = tt.RandomDropPixel(p=0.1, sensor_size=sensor)
        row["ops_us"]["tonic RandomDropPixel(p=0.1), raw call"] = median_us(functools.partial(drop_pixel, theirs),
                                                                            max(3, args.repeats // 5))
        t_mid = int(events["t"][events.shape[0] // 2])
        crop_time = tt.CropTime(min=t_mid, max=t_mid + 99_999)
        row["ops_us"]["tonic CropTime (100 ms), raw call"] = median_us(functools.partial(crop_time, theirs),
                                                                             args.repeats)
        rows.append(row)
        print(label, json.dumps(row["ops_us"]), flush=True)
    return {"rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--T", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)
    if not (SHARED / "nmnist" / "NMNISTsmall").is_dir():
        print(f"N-MNIST samples not found under {SHARED / 'nmnist'} (set EVENTKIT_SHARED_DATA)", file=sys.stderr)
        return 2
    load_start = load_avg()
    work = Path(tempfile.mkdtemp(prefix="bench_augment_"))
    try:
        loaders = loader_part(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ops = ops_part(args)
    out = {"benchmark": "bench_augment", "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "T": args.T, "batch_size": args.batch_size, "epochs": args.epochs, "loaders": loaders, "ops": ops,
           "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "platform": platform.platform(),
                       "python": platform.python_version(), "torch": torch.__version__,
                       "tonic": __import__("tonic").__version__, "zarr": __import__("zarr").__version__,
                       "loadavg_start": load_start, "loadavg_end": load_avg()}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "augment.json").write_text(json.dumps(out, indent=2) + "\n")
    (args.out / "augment.md").write_text(render_md(out))
    print(f"wrote {args.out / 'augment.json'} and {args.out / 'augment.md'}")
    return 0


def render_md(out: dict) -> str:
    m, lo = out["machine"], out["loaders"]
    lines = [
        "# Augmentation benchmark: frames made on the fly with event augmentation vs the frame cache",
        "",
        f"{out['date']}; {m['cpus']} CPUs ({m['cpu']}), {m['platform']}, Python {m['python']}, torch {m['torch']}, "
        f"tonic {m['tonic']}, zarr {m['zarr']}. Load average (1, 5, 15 min) {m['loadavg_start']} at the start, "
        f"{m['loadavg_end']} at the end: a shared machine, the numbers are indicative.",
        "",
        f"Loader: {lo['n_samples']} real N-MNIST training samples, T={out['T']} count frames [T, 2, 34, 34] uint16, "
        f"batch size {out['batch_size']}, best of {out['epochs']} epochs (workers re-started each epoch).",
        "",
        "| loader | workers | samples/s (best) | vs frame cache | all epochs |",
        "|---|---:|---:|---:|---|",
    ]
    for r in lo["results"]:
        lines.append(f"| {r['loader']} | {r['workers']} | {r['samples_per_s_best']:.0f} | {r['vs_frame_cache']:.2f} | "
                     f"{', '.join(f'{v:.0f}' for v in r['samples_per_s_all'])} |")
    lines += ["", f"Stores: frames {lo['bytes_per_sample']['frames']} B/sample (built in "
                  f"{lo['build_seconds']['frames']} s), events {lo['bytes_per_sample']['events']} B/sample "
                  f"(built in {lo['build_seconds']['events']} s).", "",
              "Per op, µs per sample (median), through `EventAugment` (hand-off to tonic included):", ""]
    rows = out["ops"]["rows"]
    lines.append("| op | " + " | ".join(f"{r['sample']}, {r['events']} events" for r in rows) + " |")
    lines.append("|---|" + "---:|" * len(rows))
    for name in rows[0]["ops_us"]:
        lines.append(f"| {name} | " + " | ".join(f"{r['ops_us'][name]:.0f}" for r in rows) + " |")
    lines += ["", "Reproduce: `python benchmarks/bench_augment.py`.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
