"""jAER AEDAT 2.0 (DVS128) reader/writer."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.errors import EventFileError, InvalidEventsError
from eventkit.events import VISION_DTYPE, make_events
from eventkit.io import read_aedat2, read_aedat2_header, write_aedat2
from tests.conftest import shared_file
from tests.io._strategies import stable_sorted, vision_events

JAER = "aedat/jaer_DVS128-2017-03-21-short.aedat"
HEADER_ONLY = "aedat/tonic_sample_aedat_header.aedat"


def reference_decode(data: bytes, start: int, limit: int | None = None) -> np.ndarray:
    """Per-event loop: big-endian (address, timestamp); x bits 1-7, y bits 8-14, p bit 0."""
    rows = []
    stop = len(data) if limit is None else min(len(data), start + 8 * limit)
    for i in range(start, stop, 8):
        a, t = struct.unpack(">II", data[i:i + 8])
        rows.append((t, (a >> 1) & 0x7F, (a >> 8) & 0x7F, a & 1))
    arr = np.array(rows, dtype=np.int64).reshape(-1, 4)
    return make_events(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])


def test_jaer_file_manifest_facts():
    path = shared_file(JAER)
    assert read_aedat2_header(path) == (2.0, 3383)
    ev = read_aedat2(path)
    assert ev.dtype == VISION_DTYPE
    assert ev.shape[0] == 130114 == (path.stat().st_size - 3383) // 8
    assert (ev["x"].min(), ev["x"].max(), ev["y"].min(), ev["y"].max()) == (0, 127, 0, 127)
    assert set(np.unique(ev["p"]).tolist()) == {0, 1}
    assert round((int(ev["t"][-1]) - int(ev["t"][0])) / 1e6, 2) == 6.18


def test_jaer_file_matches_loop_reference_and_tonic():
    path = shared_file(JAER)
    ev = read_aedat2(path)
    data = path.read_bytes()
    ref = reference_decode(data, 3383, limit=20_000)  # the file is sorted (checked against tonic below)
    np.testing.assert_array_equal(ev[:20_000], ref)
    tonic_io = pytest.importorskip("tonic.io")
    version, start, _ = tonic_io.read_aedat_header_from_file(str(path))
    assert (version, start) == read_aedat2_header(path)
    raw = tonic_io.get_aer_events_from_file(str(path), version, start)
    np.testing.assert_array_equal(ev["t"], raw["timeStamp"])
    # tonic's read_dvs_128 calls bits 8-14 "x": the same bits as our y, so compare bit fields
    np.testing.assert_array_equal(ev["x"], (raw["address"] >> 1) & 0x7F)
    np.testing.assert_array_equal(ev["y"], (raw["address"] >> 8) & 0x7F)
    np.testing.assert_array_equal(ev["p"], raw["address"] & 1)


def test_header_only_file_gives_zero_events():
    path = shared_file(HEADER_ONLY)
    version, start = read_aedat2_header(path)
    # The last header line ends with '\n' at byte 598, so data start at 599 = the file size.
    # tonic reports 598 (it seeks one byte back after the failed read at end of file).
    assert version == 2.0 and start == path.stat().st_size == 599
    ev = read_aedat2(path)
    assert ev.shape == (0,) and ev.dtype == VISION_DTYPE


def test_header_only_file_plus_partial_record_is_an_error(tmp_path):
    data = shared_file(HEADER_ONLY).read_bytes()
    f = tmp_path / "partial.aedat"
    f.write_bytes(data + b"\x00" * 8 + b"\x00\x01\x02")
    with pytest.raises(EventFileError, match="partial.aedat.*partial record") as exc:
        read_aedat2(f)
    assert exc.value.offset == 599 + 8


@settings(max_examples=40, deadline=None)
@given(vision_events(max_n=150, max_xy=127, max_t=(1 << 32) - 1, sorted_t=False), st.sampled_from(["\r\n", "\n"]))
def test_aedat2_roundtrip(tmp_path_factory, ev, newline):
    f = tmp_path_factory.mktemp("a2") / "s.aedat"
    write_aedat2(f, ev, newline=newline)
    version, start = read_aedat2_header(f)
    assert version == 2.0 and f.stat().st_size == start + 8 * ev.shape[0]
    np.testing.assert_array_equal(read_aedat2(f), stable_sorted(ev))


def test_timestamps_kept_raw_not_shifted(tmp_path):
    ev = make_events([4_000_000_000, 4_000_000_001], [1, 2], [3, 4], [0, 1])
    f = tmp_path / "raw.aedat"
    write_aedat2(f, ev)
    assert read_aedat2(f)["t"].tolist() == [4_000_000_000, 4_000_000_001]


def test_external_events_dropped_and_foreign_addresses_rejected(tmp_path):
    header = b"#!AER-DAT2.0\r\n# test\r\n"
    body = struct.pack(">II", (5 << 8) | (7 << 1) | 1, 10) + struct.pack(">II", 1 << 15, 11)
    f = tmp_path / "ext.aedat"
    f.write_bytes(header + body)
    ev = read_aedat2(f)
    assert ev.shape[0] == 1 and (int(ev["x"][0]), int(ev["y"][0]), int(ev["p"][0])) == (7, 5, 1)
    f.write_bytes(header + body + struct.pack(">II", 1 << 20, 12))
    with pytest.raises(EventFileError, match="not a DVS128") as exc:
        read_aedat2(f)
    assert exc.value.offset == len(header) + 16


@pytest.mark.parametrize(
    "content,match,offset",
    [
        (b"", "empty", 0),
        (b"\x00\x01" * 40, "no '#!AER-DAT2.0' version line", 0),
        (b"#!AER-DAT2.0\r\n# unterminated header", "truncated header", 14),
        (b"#!AER-DATx.y\r\n", "corrupt version line", 0),
        (b"#!AER-DAT3.1\r\n#!END-HEADER\r\n", "use format='aedat31'", 0),
    ],
)
def test_bad_headers(tmp_path, content, match, offset):
    f = tmp_path / "bad.aedat"
    f.write_bytes(content)
    with pytest.raises(EventFileError, match=match) as exc:
        read_aedat2(f)
    assert exc.value.offset == offset
    assert "bad.aedat" in str(exc.value)


def test_random_bytes(tmp_path):
    f = tmp_path / "rand.aedat"
    f.write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(EventFileError):
        read_aedat2(f)


def test_writer_rejects_out_of_range(tmp_path):
    with pytest.raises(InvalidEventsError, match="7 bits"):
        write_aedat2(tmp_path / "a.aedat", make_events([0], [128], [0], [0]))
    with pytest.raises(InvalidEventsError, match="32 bits"):
        write_aedat2(tmp_path / "a.aedat", make_events([1 << 32], [0], [0], [0]))
