"""Where the time of ``to_frames(split_by="count")`` goes, against SpikingJelly's budget.

    python benchmarks/bench_frames_floor.py [--repeats 15]

The issue asks for ``to_frames`` count mode at >= 5x SpikingJelly on CIFAR10-DVS-sized
streams (128x128x2, 300k events, T=20). This script splits eventkit's call into parts and
times each on the same events, single-threaded, median of repeats:

* ``SpikingJelly number``: ``integrate_events_by_fixed_frames_number(..., "number", ...)``;
* ``to_frames count``: the public call (checks, allocation, fused validate+count kernel);
* ``fused kernel``: the kernel alone into a preallocated output;
* ``validation only``: eventkit's own check kernel (sorted ``t``, ``x < W``, ``y < H``,
  ``p < P``) over every event, counting nothing;
* ``counting only``: the same counting loop with no check at all (a benchmark-local
  kernel: out-of-sensor events would write out of bounds, so eventkit never ships it);
* ``read every field``: a loop that only loads ``t, x, y, p`` of every record and sums them;
* ``validation over contiguous columns``: the checks on four separate columns (had the
  events been columns rather than records).

Also timed: the public ``validate_events`` / ``sort_events`` on the same events (Numba
fast path for the contract dtypes vs the NumPy checks used for other layouts).

``SpikingJelly / 5`` is the time the whole call would need to meet the target. Writes
``benchmarks/results/frames_floor.md`` and ``.json``. Speed is measured here, never in tests.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
from pathlib import Path

import numpy as np
from bench_frames import (
    SHARED,
    cpu_model,
    load_spikingjelly,
    median_seconds,
    synthetic_events,
    tiled_recording,
    versions,
)
from numba import njit

from eventkit.events import sort_events, validate_events
from eventkit.frames import to_frames
from eventkit.kernels import events as _kv
from eventkit.kernels import frames as _k

ROOT = Path(__file__).resolve().parents[1]


@njit(cache=True, nogil=True)
def count_unchecked(ev, lo, hi, out, W, H, P, pstride):
    """``accumulate_records`` without its checks (benchmark only: unsafe on bad input)."""
    Wu = np.uint64(W)
    pst = np.uint64(pstride)
    plane = np.uint64(P) * np.uint64(H) * Wu
    for j in range(lo.shape[0]):
        base = np.uint64(j) * plane
        for k in range(base, base + plane):
            out[k] = 0
        i = np.uint64(lo[j])
        ub = np.uint64(hi[j])
        while i < ub:
            e = ev[i]
            out[base + np.uint64(e.p) * pst + np.uint64(e.y) * Wu + np.uint64(e.x)] += np.uint8(1)
            i += np.uint64(1)
    return -1


@njit(cache=True, nogil=True)
def read_fields(ev):
    """Load ``t, x, y, p`` of every record once (the memory traffic of any validating kernel)."""
    s = np.uint64(0)
    for i in range(ev.shape[0]):
        e = ev[i]
        s += np.uint64(e.t) + np.uint64(e.x) + np.uint64(e.y) + np.uint64(e.p)
    return s


@njit(cache=True, nogil=True)
def validate_columns(t, x, y, p, W, H, P):
    """The same checks over contiguous columns (branch-free, so LLVM may vectorise): a lower
    bound for validating events held as columns instead of 13-byte records."""
    bad = False
    for i in range(1, t.shape[0]):
        bad |= (t[i] < t[i - 1]) | (x[i] >= W) | (y[i] >= H) | (p[i] >= P)
    return bad


def measure(name: str, ev: np.ndarray, T: int, repeats: int, sj) -> dict:
    W, H, P = 128, 128, 2
    n = len(ev)
    sensor = (W, H, P)
    cols = {k: np.ascontiguousarray(ev[k]) for k in ("t", "x", "y", "p")}
    bounds = np.empty(T + 1, dtype=np.int64)
    _k.count_bounds(0, n, T, bounds)
    lo, hi = bounds[:-1].copy(), bounds[1:].copy()
    out = np.empty(T * P * H * W, dtype=np.uint16)
    ref = to_frames(ev, sensor, T=T)
    assert count_unchecked(ev, lo, hi, out, W, H, P, H * W) == -1 and np.array_equal(out, ref.reshape(-1))
    parts = {
        "to_frames count": lambda: to_frames(ev, sensor, T=T),
        "fused kernel": lambda: _k.accumulate_records(ev, lo, hi, out, W, H, P, H * W, 65535),
        "validation only": lambda: _kv.first_invalid_vision(ev, 0, n, W, H, P, True),
        "counting only": lambda: count_unchecked(ev, lo, hi, out, W, H, P, H * W),
        "read every field": lambda: read_fields(ev),
        "validation over contiguous columns": lambda: validate_columns(cols["t"], cols["x"], cols["y"], cols["p"],
                                                                       W, H, P),
    }
    if sj is not None:
        f = sj["integrate_events_by_fixed_frames_number"]
        assert np.array_equal(f(cols, "number", T, H, W), ref)
        parts = {"SpikingJelly number": lambda: f(cols, "number", T, H, W), **parts}
    seconds = {k: median_seconds(fn, repeats) for k, fn in parts.items()}
    # the public validation on the same events: Numba fast path vs the NumPy checks it replaced
    # (the NumPy path still runs for other layouts, and to word the error when an event is bad)
    wide = np.empty(n, dtype=[("t", "<i8"), ("x", "<i4"), ("y", "<i4"), ("p", "<i2")])
    for f in ("t", "x", "y", "p"):
        wide[f] = ev[f]
    public = {
        "validate_events (VISION_DTYPE, Numba)": lambda: validate_events(ev, sensor),
        "validate_events (other layout, NumPy)": lambda: validate_events(wide, sensor),
        "sort_events on sorted input (Numba check)": lambda: sort_events(ev),
        "NumPy sortedness check `np.all(t[1:] >= t[:-1])`": lambda: bool(np.all(ev["t"][1:] >= ev["t"][:-1])),
    }
    validation = {k: median_seconds(fn, repeats) for k, fn in public.items()}
    row = {"case": name, "events": n, "T": T, "seconds": seconds,
           "ns_per_event": {k: v / n * 1e9 for k, v in seconds.items()}, "validation_seconds": validation}
    if sj is not None:
        row["budget_seconds_for_5x"] = seconds["SpikingJelly number"] / 5
        row["speedup_to_frames_vs_sj"] = seconds["SpikingJelly number"] / seconds["to_frames count"]
        row["speedup_if_counting_only_vs_sj"] = seconds["SpikingJelly number"] / seconds["counting only"]
    return row


def write_results(results: dict, md_path: Path, json_path: Path) -> str:
    lines = ["# to_frames count mode: where the time goes", "",
             f"{results['date']} · {results['cpu']} ({results['cores']} cores) · median of {results['repeats']} "
             f"repeats · load average {results['loadavg_start']} → {results['loadavg_end']}", "",
             f"SpikingJelly: {results['versions']['spikingjelly']}.", ""]
    for row in results["rows"]:
        lines += [f"## {row['case']} ({row['events']:,} events, T = {row['T']})", "",
                  "| part | ms | ns / event |", "|---|---:|---:|"]
        for k, v in row["seconds"].items():
            lines.append(f"| {k} | {v * 1e3:.3f} | {row['ns_per_event'][k]:.2f} |")
        lines += ["", "| public validation | ms |", "|---|---:|"]
        lines += [f"| {k} | {v * 1e3:.3f} |" for k, v in row["validation_seconds"].items()]
        if "budget_seconds_for_5x" in row:
            budget_ms = row["budget_seconds_for_5x"] * 1e3
            lines += ["", f"Budget for 5× SpikingJelly: {budget_ms:.3f} ms for the whole call. "
                      f"to_frames: {row['speedup_to_frames_vs_sj']:.2f}× SpikingJelly; the unchecked counting loop "
                      f"alone would be {row['speedup_if_counting_only_vs_sj']:.2f}×."]
        lines.append("")
    text = "\n".join(lines)
    md_path.write_text(text)
    json_path.write_text(json.dumps(results, indent=2))
    return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    sj, sj_note = load_spikingjelly()
    load0 = os.getloadavg()[0]
    rows = [measure("CIFAR10-DVS-sized, uniform synthetic 128×128",
                    synthetic_events(300_000, 128, 128, 1_300_000, seed=0), 20, args.repeats, sj)]
    real = SHARED / "aedat" / "jaer_DVS128-2017-03-21-short.aedat"
    if real.exists():
        import eventkit

        rows.append(measure("CIFAR10-DVS-sized, real DVS128 events tiled",
                            tiled_recording(eventkit.read_events(real), 300_000), 20, args.repeats, sj))
    results = {"date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_model(),
               "cores": os.cpu_count(), "repeats": args.repeats, "versions": versions(sj_note),
               "loadavg_start": round(load0, 2), "loadavg_end": round(os.getloadavg()[0], 2), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    print(write_results(results, args.out / "frames_floor.md", args.out / "frames_floor.json"))


if __name__ == "__main__":
    main()
