"""SLAYER 1-D 40-bit .bs1 reader/writer."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from eventkit.errors import EventFileError, InvalidEventsError
from eventkit.events import AUDIO_DTYPE, make_audio_events
from eventkit.io import read_bs1, write_bs1
from tests.conftest import shared_file
from tests.io._strategies import audio_events, stable_sorted


def reference_decode(data: bytes) -> np.ndarray:
    """Per-event loop after slayerPytorch's read1Dspikes: 16-bit id, 1-bit polarity, 23-bit µs."""
    rows = []
    for i in range(0, len(data), 5):
        b = data[i:i + 5]
        rows.append((((b[2] & 0x7F) << 16) | (b[3] << 8) | b[4], (b[0] << 8) | b[1], b[2] >> 7))
    arr = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return make_audio_events(arr[:, 0], arr[:, 1], arr[:, 2])


def test_ntidigits_bs1_manifest_facts():
    path = shared_file("ntidigits/slayer_NTIDIGITS_1.bs1")
    ev = read_bs1(path)
    assert ev.dtype == AUDIO_DTYPE
    assert ev.shape[0] == 898
    assert (int(ev["x"].min()), int(ev["x"].max())) == (0, 63)
    assert np.unique(ev["x"]).size == 44
    assert np.all(ev["p"] == 1)
    assert (int(ev["t"].min()), int(ev["t"].max())) == (0, 1079040)
    assert np.all(ev["t"] % 256 == 0)
    np.testing.assert_array_equal(ev, stable_sorted(reference_decode(path.read_bytes())))


@settings(max_examples=40, deadline=None)
@given(audio_events(max_n=150, max_x=0xFFFF, min_n=1))
def test_bs1_roundtrip(tmp_path_factory, ev):
    f = tmp_path_factory.mktemp("bs1") / "s.bs1"
    write_bs1(f, ev)
    assert f.stat().st_size == 5 * ev.shape[0]
    np.testing.assert_array_equal(read_bs1(f), ev)
    np.testing.assert_array_equal(read_bs1(f), reference_decode(f.read_bytes()))


def test_unsorted_file_is_stably_sorted(tmp_path):
    ev = make_audio_events([5, 1, 5, 0, 1], [1, 2, 3, 4, 5], [1, 1, 0, 0, 1])
    f = tmp_path / "u.bs1"
    write_bs1(f, ev)
    np.testing.assert_array_equal(read_bs1(f), stable_sorted(ev))


def test_truncated_and_empty(tmp_path):
    data = shared_file("ntidigits/slayer_NTIDIGITS_1.bs1").read_bytes()
    f = tmp_path / "cut.bs1"
    f.write_bytes(data[:-1])
    with pytest.raises(EventFileError, match="cut.bs1") as exc:
        read_bs1(f)
    assert exc.value.offset == len(data) - 5
    f.write_bytes(b"")
    with pytest.raises(EventFileError, match="empty"):
        read_bs1(f)


def test_writer_rejects_out_of_range(tmp_path):
    with pytest.raises(InvalidEventsError, match="23-bit"):
        write_bs1(tmp_path / "a.bs1", make_audio_events([1 << 23], [0], [0]))
    with pytest.raises(InvalidEventsError, match="polarity"):
        write_bs1(tmp_path / "a.bs1", make_audio_events([0], [0], [3]))
