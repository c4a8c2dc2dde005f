"""Reader speed: eventkit vs tonic on the same real recordings (events/s, median of repeats).

    python benchmarks/bench_readers.py [--repeats 9] [--data ../shared/data]

Prints a markdown table and writes ``benchmarks/results/readers.md`` and ``readers.json``
(date, CPU, versions). One process, files in the page cache (each reader runs before
timing); eventkit and tonic batches alternate so that load from other processes hits both. Speed is
measured here, never asserted in tests.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from bench_frames import cpu_model

import eventkit
from eventkit.io import read_aedat2, read_aedat4, read_bs2, read_nmnist

ROOT = Path(__file__).resolve().parents[1]
TONIC_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])


def _tonic_mnist(path: Path) -> np.ndarray:
    import tonic.io

    return tonic.io.read_mnist_file(str(path), dtype=TONIC_DTYPE)


def _tonic_dvs128(path: Path) -> np.ndarray:
    """tonic's read_dvs_128 body (tonic 1.7's own function unpacks the 3-tuple header into 2 names)."""
    import tonic.io

    version, start, _ = tonic.io.read_aedat_header_from_file(str(path))
    raw = tonic.io.get_aer_events_from_file(str(path), version, start)
    a = raw["address"]
    return tonic.io.make_structured_array((a >> 8) & 0x7F, (a >> 1) & 0x7F, raw["timeStamp"], a & 1)


def _tonic_aedat4(path: Path) -> np.ndarray:
    import tonic.io

    return tonic.io.read_aedat4(str(path))


CASES = [
    ("N-MNIST .bin", "nmnist/sample_nmnist.bin", read_nmnist, _tonic_mnist),
    ("DVS Gesture .bs2 crop", "dvsgesture/slayer_bs2_1450ms_1.bs2", read_bs2, _tonic_mnist),
    ("AEDAT 2.0 DVS128", "aedat/jaer_DVS128-2017-03-21-short.aedat", read_aedat2, _tonic_dvs128),
    ("AEDAT 4.0", "aedat/tonic_sample.aedat4", read_aedat4, _tonic_aedat4),
]
# tonic's DVS128 AEDAT 2.0 decoding names address bits 8-14 "x" and bits 1-7 "y" (jAER: y and x)
SWAPPED_XY = {"AEDAT 2.0 DVS128"}


def check_same_events(name: str, ours: np.ndarray, theirs: np.ndarray) -> None:
    """Both readers decode the same events (tonic's in file order, sorted stably by t here)
    before anything is timed; AssertionError naming the case otherwise."""
    theirs = theirs[np.argsort(theirs["t"], kind="stable")]
    x, y = ("y", "x") if name in SWAPPED_XY else ("x", "y")
    same = (ours.shape == theirs.shape and np.array_equal(ours["t"], theirs["t"])
            and np.array_equal(ours["x"], theirs[x]) and np.array_equal(ours["y"], theirs[y])
            and np.array_equal(ours["p"].astype(bool), theirs["p"].astype(bool)))
    assert same, f"{name}: eventkit and tonic decode different events"


def _batch(fn, path: Path, min_batch_s: float) -> tuple[int, int]:
    """(events, reads per batch): warm the reader up (page cache, imports) and size a batch so
    that it lasts >= ``min_batch_s`` (sub-millisecond reads are otherwise timer/jitter noise)."""
    n = fn(path).shape[0]
    t0 = time.perf_counter()
    fn(path)
    one = max(time.perf_counter() - t0, 1e-6)
    return n, max(1, int(min_batch_s / one))


def _paired_medians(ours, theirs, path: Path, repeats: int, min_batch_s: float = 0.02):
    """Median seconds per read of both readers; their batches alternate (ours, theirs, ours, ...)
    so that load from other processes on a shared machine hits both alike."""
    n_a, k_a = _batch(ours, path, min_batch_s)
    n_b, k_b = _batch(theirs, path, min_batch_s)
    ta, tb = [], []
    for _ in range(repeats):
        for fn, k, acc in ((ours, k_a, ta), (theirs, k_b, tb)):
            t0 = time.perf_counter()
            for _ in range(k):
                fn(path)
            acc.append((time.perf_counter() - t0) / k)
    return statistics.median(ta), n_a, statistics.median(tb), n_b


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__, "eventkit": eventkit.__version__}
    for mod in ("tonic", "aedat", "expelliarmus"):
        try:
            from importlib.metadata import version

            out[mod] = version(mod)
        except Exception:  # noqa: BLE001 - a missing optional package is reported, not fatal
            out[mod] = "not installed"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9, help="timed repeats per reader (median reported; >= 7)")
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("EVENTKIT_SHARED_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    if args.repeats < 7:
        ap.error("--repeats must be >= 7")
    rows = []
    for name, rel, ours, theirs in CASES:
        path = args.data / rel
        if not path.exists():
            print(f"skip {name}: {path} not found")
            continue
        check_same_events(name, ours(path), theirs(path))
        t_ek, n, t_tn, n_tn = _paired_medians(ours, theirs, path, args.repeats)
        rows.append({
            "format": name, "file": rel, "events": n, "tonic_events": n_tn,
            "eventkit_s": t_ek, "tonic_s": t_tn,
            "eventkit_ev_per_s": n / t_ek, "tonic_ev_per_s": n_tn / t_tn, "speedup": t_tn / t_ek,
        })
    meta = {"date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "cpu": cpu_model(),
            "cores": os.cpu_count(), "platform": platform.platform(), "repeats": args.repeats,
            "versions": _versions()}
    lines = [
        "# Reader speed: eventkit vs tonic",
        "",
        f"{meta['date']} · {meta['cpu']} ({meta['cores']} cores) · median of {args.repeats} repeats · "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        "",
        "| format | file | events | eventkit (Mev/s) | tonic (Mev/s) | eventkit / tonic |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['format']} | `{r['file']}` | {r['events']} | {r['eventkit_ev_per_s'] / 1e6:.1f} | "
            f"{r['tonic_ev_per_s'] / 1e6:.1f} | {r['speedup']:.2f}x |"
        )
    lines += ["", "Mev/s = million events per second (events returned / median wall time of one full read; "
              "each repeat times a batch of reads lasting >= 20 ms; eventkit and tonic batches alternate). "
              "The machine may be shared: compare columns within one run only."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "readers.md").write_text(text)
    (args.out / "readers.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
