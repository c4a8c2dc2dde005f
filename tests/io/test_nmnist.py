"""N-MNIST ATIS 40-bit .bin and SLAYER .bs2 readers/writers."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from eventkit.errors import EventFileError, InvalidEventsError
from eventkit.events import VISION_DTYPE, make_events
from eventkit.io import read_bs2, read_nmnist, write_bs2, write_nmnist
from tests.conftest import shared_file
from tests.io._strategies import stable_sorted, vision_events


def reference_decode(data: bytes, overflow_markers: bool = True) -> np.ndarray:
    """Independent per-event loop over the 5-byte records (Orchard's layout, +2**23 per y=240 marker)."""
    rows, wraps = [], 0
    for i in range(0, len(data), 5):
        x, y, b2, b3, b4 = data[i:i + 5]
        if overflow_markers and y == 240:
            wraps += 1
            continue
        t = ((b2 & 0x7F) << 16) | (b3 << 8) | b4
        rows.append((t + wraps * (1 << 23), x, y, b2 >> 7))
    out = np.array(rows, dtype=[("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", "<i8")])
    return make_events(out["t"], out["x"], out["y"], out["p"])


def test_sample_nmnist_manifest_facts():
    path = shared_file("nmnist/sample_nmnist.bin")
    ev = read_nmnist(path)
    assert ev.dtype == VISION_DTYPE
    assert ev.shape[0] == 4325
    assert (ev["x"].min(), ev["x"].max(), ev["y"].min(), ev["y"].max()) == (0, 33, 0, 33)
    assert set(np.unique(ev["p"]).tolist()) == {0, 1}
    assert (int(ev["t"].min()), int(ev["t"].max())) == (654, 311175)
    assert np.all(np.diff(ev["t"]) >= 0)


def test_sample_nmnist_matches_loop_reference_and_tonic():
    path = shared_file("nmnist/sample_nmnist.bin")
    ev = read_nmnist(path)
    ref = reference_decode(path.read_bytes())
    np.testing.assert_array_equal(ev, stable_sorted(ref))
    tonic_io = pytest.importorskip("tonic.io")
    tdt = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    tev = tonic_io.read_mnist_file(str(path), dtype=tdt)
    for f in "txyp":
        np.testing.assert_array_equal(ev[f], tev[f])


def test_nmnistsmall_bs2_all_files_manifest_facts():
    folder = shared_file("nmnist/NMNISTsmall")
    files = sorted(folder.glob("*.bs2"), key=lambda q: int(q.stem))
    assert len(files) == 1000
    counts, xmax, ymax, tmax = [], 0, 0, 0
    for f in files:
        ev = read_bs2(f)
        assert ev.shape[0] * 5 == f.stat().st_size  # every record is an event (no markers in .bs2)
        counts.append(ev.shape[0])
        xmax, ymax, tmax = max(xmax, int(ev["x"].max())), max(ymax, int(ev["y"].max())), max(tmax, int(ev["t"].max()))
    # MANIFEST.md says 1069..7152; the smallest file (419.bs2, sha256 verified) is 5560 bytes = 1112 events.
    assert (min(counts), max(counts)) == (1112, 7152)
    assert xmax <= 33 and ymax <= 33
    assert tmax <= 336_000


def test_nmnistsmall_bs2_matches_loop_reference_and_tonic():
    folder = shared_file("nmnist/NMNISTsmall")
    tonic_io = pytest.importorskip("tonic.io")
    tdt = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    for i in range(1, 1001, 97):
        f = folder / f"{i}.bs2"
        ev = read_bs2(f)
        np.testing.assert_array_equal(ev, stable_sorted(reference_decode(f.read_bytes(), overflow_markers=False)))
        tev = tonic_io.read_mnist_file(str(f), dtype=tdt)
        for k in "txyp":
            np.testing.assert_array_equal(ev[k], tev[k])


def test_gesture_bs2_manifest_facts():
    ev = read_bs2(shared_file("dvsgesture/slayer_bs2_1450ms_1.bs2"))
    assert ev.shape[0] == 63471
    assert (ev["x"].min(), ev["x"].max(), ev["y"].min(), ev["y"].max()) == (0, 127, 0, 127)
    assert set(np.unique(ev["p"]).tolist()) == {0, 1}
    assert (int(ev["t"].min()), int(ev["t"].max())) == (28, 1449996)


def test_overflow_markers_add_2_pow_23(tmp_path):
    # hand-built file: event t=5, marker, event t=3 (-> 3 + 2**23), marker, marker, event t=0 (-> 3 * 2**23)
    def rec(x, y, p, t):
        return bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])

    data = rec(1, 2, 1, 5) + rec(0, 240, 0, 0) + rec(3, 4, 0, 3) + rec(0, 240, 0, 0) * 2 + rec(5, 6, 1, 0)
    f = tmp_path / "ovf.bin"
    f.write_bytes(data)
    ev = read_nmnist(f)
    assert ev["t"].tolist() == [5, 3 + (1 << 23), 3 << 23]
    assert ev["x"].tolist() == [1, 3, 5] and ev["y"].tolist() == [2, 4, 6] and ev["p"].tolist() == [1, 0, 1]
    np.testing.assert_array_equal(ev, reference_decode(data))
    raw = read_nmnist(f, overflow_markers=False)
    assert raw.shape[0] == 6 and int((raw["y"] == 240).sum()) == 3


@settings(max_examples=40, deadline=None)
@given(vision_events(max_n=150, max_xy=239, max_t=3 * (1 << 23), min_n=1))
def test_nmnist_roundtrip_with_overflow(tmp_path_factory, ev):
    f = tmp_path_factory.mktemp("nm") / "s.bin"
    write_nmnist(f, ev)
    n_markers = int((ev["t"] >> 23).max())
    assert f.stat().st_size == 5 * (ev.shape[0] + n_markers)
    np.testing.assert_array_equal(read_nmnist(f), ev)
    np.testing.assert_array_equal(read_nmnist(f), reference_decode(f.read_bytes()))


@settings(max_examples=40, deadline=None)
@given(vision_events(max_n=150, max_xy=255, sorted_t=False, min_n=1))
def test_bs2_roundtrip_unsorted_file_is_stably_sorted(tmp_path_factory, ev):
    f = tmp_path_factory.mktemp("bs2") / "s.bs2"
    write_bs2(f, ev)
    assert f.stat().st_size == 5 * ev.shape[0]
    np.testing.assert_array_equal(read_bs2(f), stable_sorted(ev))


def test_sorted_file_is_returned_in_file_order(tmp_path):
    ev = make_events([0, 1, 1, 1, 2], [1, 2, 3, 4, 5], [0, 0, 0, 0, 0], [1, 0, 1, 0, 1])
    f = tmp_path / "s.bin"
    write_nmnist(f, ev)
    np.testing.assert_array_equal(read_nmnist(f), ev)


# ------------------------------------------------------------------ bad input


def test_truncated_file_names_file_and_offset(tmp_path):
    data = shared_file("nmnist/sample_nmnist.bin").read_bytes()
    f = tmp_path / "cut.bin"
    f.write_bytes(data[:-3])
    with pytest.raises(EventFileError) as exc:
        read_nmnist(f)
    assert exc.value.offset == (len(data) - 3) // 5 * 5 == len(data) - 5
    assert "cut.bin" in str(exc.value) and "partial record" in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_empty_file(tmp_path):
    f = tmp_path / "empty.bin"
    f.write_bytes(b"")
    with pytest.raises(EventFileError, match="empty.bin.*empty file") as exc:
        read_nmnist(f)
    assert exc.value.offset == 0


def test_random_bytes_wrong_size(tmp_path):
    f = tmp_path / "rand.bin"
    f.write_bytes(np.random.default_rng(0).integers(0, 256, 5 * 100 + 2, dtype=np.uint8).tobytes())
    with pytest.raises(EventFileError) as exc:
        read_bs2(f)
    assert exc.value.offset == 500


def test_aedat_file_passed_as_nmnist(tmp_path):
    src = shared_file("aedat/jaer_DVS128-2017-03-21-short.aedat")
    with pytest.raises(EventFileError, match="AEDAT") as exc:
        read_nmnist(src)
    assert exc.value.offset == 0


def test_missing_file(tmp_path):
    with pytest.raises(EventFileError, match="not found"):
        read_nmnist(tmp_path / "nope.bin")


@pytest.mark.parametrize(
    "field,value,match",
    [("x", 256, "x\\[0\\]=256"), ("y", 240, "overflow marker"), ("p", 2, "polarity"), ("t", -1, "negative")],
)
def test_writer_rejects_unrepresentable_events(tmp_path, field, value, match):
    ev = make_events([10], [1], [1], [0])
    ev[field] = value if field != "t" else -1
    with pytest.raises(InvalidEventsError, match=match):
        write_nmnist(tmp_path / "bad.bin", ev)


def test_writer_rejects_large_t_without_markers_and_unsorted_with(tmp_path):
    ev = make_events([1 << 23, 0], [0, 0], [0, 0], [0, 0])
    with pytest.raises(InvalidEventsError, match="23-bit"):
        write_bs2(tmp_path / "a.bs2", ev)
    with pytest.raises(InvalidEventsError, match="not sorted"):
        write_nmnist(tmp_path / "a.bin", ev)
    with pytest.raises(InvalidEventsError, match="no events"):
        write_nmnist(tmp_path / "a.bin", ev[:0])


def test_large_file_path_with_overflow_markers(tmp_path):
    """> 16384 events takes the no-temporary decoding path; markers and sorting must still hold."""
    rng = np.random.default_rng(7)
    n = 40_000
    ev = make_events(np.sort(rng.integers(0, 3 * (1 << 23), n)), rng.integers(0, 34, n), rng.integers(0, 34, n),
                     rng.integers(0, 2, n))
    f = tmp_path / "big.bin"
    write_nmnist(f, ev)
    got = read_nmnist(f)
    np.testing.assert_array_equal(got, ev)
    np.testing.assert_array_equal(got, reference_decode(f.read_bytes()))
    shuffled = ev[rng.permutation(n)]
    shuffled["t"] %= 1 << 23
    write_bs2(tmp_path / "big.bs2", shuffled)
    np.testing.assert_array_equal(read_bs2(tmp_path / "big.bs2"), stable_sorted(shuffled))
