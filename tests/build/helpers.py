"""Shared helpers of the builder tests: independent frame references and store comparison."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def ref_count_frames(events: np.ndarray, T: int, sensor_size, merge_polarity: bool = False) -> np.ndarray:
    """Eq. 22 computed per event: event i goes to slice min(i // floor(N/T), T-1) (every event to the
    last slice when N < T), counted with ``np.add.at`` (no kernel, no slice bounds)."""
    W, H, P = sensor_size
    out = np.zeros((T, 1 if merge_polarity else P, H, W), dtype=np.int64)
    N = len(events)
    step = N // T
    i = np.arange(N)
    j = np.minimum(i // step, T - 1) if step else np.full(N, T - 1)
    p = np.zeros(N, dtype=np.int64) if merge_polarity else events["p"].astype(np.int64)
    np.add.at(out, (j, p, events["y"].astype(np.int64), events["x"].astype(np.int64)), 1)
    return out


def ref_audio_time_frames(events: np.ndarray, T: int, duration_us: int, n_in: int, P: int) -> np.ndarray:
    """Fixed bins of ceil(duration/T) µs from 0, per event; events past T bins dropped."""
    dt = math.ceil(duration_us / T)
    out = np.zeros((T, P, n_in), dtype=np.int64)
    j = events["t"].astype(np.int64) // dt
    keep = (j >= 0) & (j < T)
    np.add.at(out, (j[keep], events["p"][keep].astype(np.int64), events["x"][keep].astype(np.int64)), 1)
    return out


def store_files(url: str | Path) -> dict[str, bytes]:
    """Every file under a store folder, keyed by its path relative to the store."""
    root = Path(url)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def frames_shard_file(url: str | Path, k: int) -> Path:
    """The Zarr v3 shard file holding shard k of ``frames`` (chunk key encoding ``c/k/0/0/...``)."""
    root = Path(url) / "frames" / "c" / str(k)
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == 1, files
    return files[0]


def flip_bytes(path: Path, n: int = 16) -> None:
    """Corrupt a file in place: invert n bytes from its middle."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, min(mid + n, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
