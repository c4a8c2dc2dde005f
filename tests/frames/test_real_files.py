"""Frames of the real recordings in ../shared/data against the slow references.

Events come from ``eventkit.io.read_events``; where it cannot be imported the 40-bit
N-MNIST / .bs2 files are decoded here (byte 0 x, byte 1 y, byte 2 bit 7 p and bits 6..0
t[22:16], bytes 3-4 t[15:0], big-endian).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eventkit.events import make_events
from eventkit.frames import to_frames, to_frames_by_duration, to_frames_by_event_count, to_frames_many
from tests.conftest import SHARED_DATA, shared_file
from tests.frames import naive

try:
    from eventkit.io import read_events
except ImportError:  # the readers are written in parallel; fall back to a local decoder
    read_events = None


def _decode_40bit(path: Path) -> np.ndarray:
    raw = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    rec = raw[: raw.size // 5 * 5].reshape(-1, 5).astype(np.int64)
    t = ((rec[:, 2] & 0x7F) << 16) | (rec[:, 3] << 8) | rec[:, 4]
    ev = make_events(t, rec[:, 0], rec[:, 1], rec[:, 2] >> 7)
    return ev[np.argsort(ev["t"], kind="stable")]


def _read(path: Path) -> np.ndarray:
    if read_events is not None:
        return read_events(path)
    if path.suffix in (".bin", ".bs2"):
        return _decode_40bit(path)
    pytest.skip(f"eventkit.io.read_events is not importable and {path.name} needs it")


def _check_all_references(ev: np.ndarray, sensor, T: int, per_event_loop: bool) -> None:
    W, H, P = sensor
    for split_by in ("count", "time"):
        got = to_frames(ev, sensor, T=T, split_by=split_by, dtype=np.uint32)
        assert int(got.sum()) == len(ev)
        np.testing.assert_array_equal(got, naive.frames_numpy(ev["t"], ev["x"], ev["y"], ev["p"], T, sensor, split_by))
        sj = naive.spikingjelly_like(ev["t"], ev["x"], ev["y"], ev["p"], T, H, W,
                                     "number" if split_by == "count" else "time")
        np.testing.assert_array_equal(got, sj)
        if per_event_loop:
            np.testing.assert_array_equal(got, naive.frames(ev, T, sensor, split_by))
        merged = to_frames(ev, sensor, T=T, split_by=split_by, merge_polarity=True)
        np.testing.assert_array_equal(merged[:, 0], got.sum(axis=1))


def test_sample_nmnist():
    ev = _read(shared_file("nmnist/sample_nmnist.bin"))
    assert len(ev) == 4325
    for T in (1, 7, 10, 20):
        _check_all_references(ev, (34, 34, 2), T, per_event_loop=T == 10)
    # fixed duration / event count windows on the real sample
    d = to_frames_by_duration(ev, (34, 34, 2), duration_us=10_000)
    np.testing.assert_array_equal(d, naive.frames_by_duration(ev, 10_000, (34, 34, 2)))
    assert int(d.sum()) == 4325 and d.shape[0] == -(-(311175 - 654 + 1) // 10_000)
    c = to_frames_by_event_count(ev, (34, 34, 2), event_count=1000, overlap=250)
    np.testing.assert_array_equal(c, naive.frames_by_event_count(ev, 1000, (34, 34, 2), overlap=250))


def test_nmnist_small_all_files():
    folder = shared_file("nmnist/NMNISTsmall")
    paths = sorted(folder.glob("*.bs2"), key=lambda q: int(q.stem))
    assert len(paths) == 1000
    samples = [_read(q) for q in paths]
    sizes = [len(ev) for ev in samples]
    assert min(sizes) >= 1069 and max(sizes) <= 7152
    for split_by in ("count", "time"):
        batch = to_frames_many(samples, (34, 34, 2), T=10, split_by=split_by)
        assert batch.shape == (1000, 10, 2, 34, 34)
        assert batch.reshape(1000, -1).sum(axis=1).tolist() == sizes
        for b in range(0, 1000, 37):  # the vectorised per-event rule on a spread of files
            ev = samples[b]
            np.testing.assert_array_equal(
                batch[b], naive.frames_numpy(ev["t"], ev["x"], ev["y"], ev["p"], 10, (34, 34, 2), split_by)
            )
        for b in range(0, 1000, 97):  # and one call per file equals its batch row
            np.testing.assert_array_equal(batch[b], to_frames(samples[b], (34, 34, 2), T=10, split_by=split_by))


def test_dvsgesture_crop():
    ev = _read(shared_file("dvsgesture/slayer_bs2_1450ms_1.bs2"))
    assert len(ev) == 63471
    _check_all_references(ev, (128, 128, 2), 20, per_event_loop=True)
    _check_all_references(ev, (128, 128, 2), 16, per_event_loop=False)


def test_dvs128_aedat():
    if read_events is None:
        pytest.skip("eventkit.io.read_events is not importable yet (AEDAT 2.0 needs the reader)")
    ev = read_events(shared_file("aedat/jaer_DVS128-2017-03-21-short.aedat"))
    assert len(ev) == 130114
    _check_all_references(ev, (128, 128, 2), 20, per_event_loop=False)


def test_shared_data_folder_is_used():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not found")
    assert (SHARED_DATA / "MANIFEST.md").exists()
