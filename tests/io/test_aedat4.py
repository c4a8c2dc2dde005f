"""AEDAT 4.0 reader (eventkit's own container decoder) on the real DVXplorer sample and on
files written by write_aedat4, cross-checked against the independent Rust ``aedat`` decoder."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventkit.errors import EventFileError
from eventkit.events import VISION_DTYPE, make_events
from eventkit.io import _flatbuffers as fb
from eventkit.io import read_aedat4, read_events
from eventkit.io.aedat4 import MAGIC, write_aedat4
from tests.conftest import shared_file
from tests.io._strategies import stable_sorted, vision_events

SAMPLE = "aedat/tonic_sample.aedat4"


def test_sample_manifest_facts():
    ev = read_aedat4(shared_file(SAMPLE))
    assert ev.dtype == VISION_DTYPE
    assert ev.shape[0] == 111954
    assert (ev["x"].min(), ev["x"].max(), ev["y"].min(), ev["y"].max()) == (0, 319, 0, 239)
    assert set(np.unique(ev["p"]).tolist()) == {0, 1}
    assert 1.5e15 < ev["t"][0] < 1.7e15  # absolute epoch µs, kept as in the file
    assert round((int(ev["t"][-1]) - int(ev["t"][0])) / 1e6, 2) == 0.59
    assert np.all(np.diff(ev["t"]) >= 0)


def _aedat_reference(path) -> np.ndarray:
    """Events of stream 0 decoded by the Rust ``aedat`` package, stably sorted by t."""
    aedat = pytest.importorskip("aedat")
    d = aedat.Decoder(str(path))
    chunks = [p["events"] for p in d if p["stream_id"] == 0 and "events" in p]
    ref = np.concatenate(chunks) if chunks else np.zeros(0, [("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
    out = make_events(ref["t"].astype(np.int64), ref["x"], ref["y"], ref["on"].astype(np.uint8))
    return stable_sorted(out)


def test_sample_matches_the_aedat_package_and_tonic():
    path = shared_file(SAMPLE)
    ev = read_aedat4(path)
    np.testing.assert_array_equal(ev, _aedat_reference(path))
    tonic_io = pytest.importorskip("tonic.io")
    ref = tonic_io.read_aedat4(str(path))
    np.testing.assert_array_equal(ev["t"], np.sort(ref["t"], kind="stable"))
    import aedat

    assert sum(len(p["imus"]) for p in aedat.Decoder(str(path)) if "imus" in p) == 475


@pytest.mark.parametrize("compression", ["lz4", "zstd", "none"])
def test_real_events_rewritten_with_each_codec(tmp_path, compression):
    ev = read_aedat4(shared_file(SAMPLE))
    f = tmp_path / f"re_{compression}.aedat4"
    write_aedat4(f, ev, compression=compression, packet_size=2000)
    np.testing.assert_array_equal(read_aedat4(f), ev)
    np.testing.assert_array_equal(_aedat_reference(f), ev)  # the writer is right by an independent decoder


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ev=vision_events(max_n=300, max_xy=239, max_t=(1 << 50), sorted_t=False),
       compression=st.sampled_from(["lz4", "zstd", "none"]), packet=st.integers(1, 64))
def test_roundtrip_unsorted_files_are_stably_sorted(tmp_path, ev, compression, packet):
    f = tmp_path / "r.aedat4"
    write_aedat4(f, ev, compression=compression, packet_size=packet)
    np.testing.assert_array_equal(read_aedat4(f), stable_sorted(ev))
    assert read_events(f).shape == ev.shape  # detected by its version line


def test_truncated_file_reports_the_packet(tmp_path):
    data = shared_file(SAMPLE).read_bytes()
    f = tmp_path / "cut.aedat4"
    f.write_bytes(data[:500_000])
    with pytest.raises(EventFileError, match="cut.aedat4.*truncated") as exc:
        read_aedat4(f)
    assert exc.value.offset is not None and 2334 < exc.value.offset < 500_000
    assert struct.unpack_from("<i", data, exc.value.offset)[0] in (0, 2)  # a packet header of the file


def test_cut_at_a_packet_boundary_is_truncation_but_a_missing_table_is_not(tmp_path):
    data = shared_file(SAMPLE).read_bytes()
    f = tmp_path / "cut.aedat4"
    f.write_bytes(data[:10291])  # the second packet starts at byte 10291
    with pytest.raises(EventFileError, match="ends at byte 10291, before the data table at byte 945243") as exc:
        read_aedat4(f)
    assert exc.value.offset == 10291
    f.write_bytes(data[:945243])  # every packet, no data table (an index only): all events are there
    assert read_aedat4(f).shape[0] == 111954


def _with_header(header: bytes, packets: bytes = b"") -> bytes:
    return MAGIC + struct.pack("<I", len(header)) + header + packets


_DESC = (b'<dv version="2.0"><node name="outInfo"><node name="0">'
         b'<attr key="typeIdentifier">EVTS</attr></node></node></dv>')


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "empty"),
        (b"\x01\x02" * 500, "not an AEDAT 4 file"),
        (b"#!AER-DAT2.0\r\n# x\r\n", "not an AEDAT 4 file"),
        (MAGIC + b"\xff" * 50, "IOHeader declares 4294967295 bytes"),
        (MAGIC + b"\x01", "inside the IOHeader length"),
        (_with_header(fb.build_ioheader(7, -1, _DESC)), "unknown compression code 7"),
        (_with_header(fb.build_ioheader(0, 3, _DESC)), "before the packets"),
        (_with_header(fb.build_ioheader(0, -1, b"<dv")), "not XML"),
        (_with_header(fb.build_ioheader(0, -1, b'<!DOCTYPE a [<!ENTITY b "c">]>' + _DESC)), "DTD or entity"),
        (_with_header(fb.build_ioheader(0, -1, b"<dv/>")), "declares no stream"),
        (_with_header(b"\xff\xff\x00\x00" + bytes(60)), "IOHeader: table offset"),
        (_with_header(fb.build_ioheader(0, -1, _DESC), struct.pack("<iI", 5, 0)), "stream 5, which the IOHeader"),
        (_with_header(fb.build_ioheader(0, -1, _DESC), struct.pack("<iI", 0, 4) + b"abcd"), "event packet: "),
        (_with_header(fb.build_ioheader(1, -1, _DESC), struct.pack("<iI", 0, 4) + b"abcd"), "lz4 data"),
        (_with_header(fb.build_ioheader(3, -1, _DESC), struct.pack("<iI", 0, 4) + b"abcd"), "zstd data"),
    ],
)
def test_bad_input(tmp_path, content, match):
    f = tmp_path / "bad.aedat4"
    f.write_bytes(content)
    with pytest.raises(EventFileError, match=match):
        read_aedat4(f)


def test_negative_address_names_the_packet(tmp_path):
    rec = np.zeros(3, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"), ("pad", "V3")])
    rec["t"] = [1, 2, 3]
    rec["x"][2] = -5
    good = fb.build_struct_vector_packet(b"EVTS", rec[:2].tobytes(), 2)
    bad = fb.build_struct_vector_packet(b"EVTS", rec.tobytes(), 3)
    header = fb.build_ioheader(0, -1, _DESC)
    body = struct.pack("<iI", 0, len(good)) + good + struct.pack("<iI", 0, len(bad)) + bad
    f = tmp_path / "neg.aedat4"
    f.write_bytes(_with_header(header, body))
    with pytest.raises(EventFileError, match="event 4 has a negative") as exc:
        read_aedat4(f)
    assert exc.value.offset == len(MAGIC) + 4 + len(header) + 8 + len(good)


def test_decompression_bomb_is_refused_before_it_is_held(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    big = fb.build_struct_vector_packet(b"EVTS", bytes(16 * 2_000_000), 2_000_000)  # 32 MB of zeros
    packet = zstandard.ZstdCompressor().compress(big)
    assert len(packet) * 256 + (1 << 16) < len(big)
    f = tmp_path / "bomb.aedat4"
    f.write_bytes(_with_header(fb.build_ioheader(3, -1, _DESC), struct.pack("<iI", 0, len(packet)) + packet))
    with pytest.raises(EventFileError, match="zstd frame declares"):
        read_aedat4(f)


def test_lz4_declared_content_size_checked_before_allocation(tmp_path):
    lz4_frame = pytest.importorskip("lz4.frame")
    packet = bytearray(lz4_frame.compress(b"x" * 100, store_size=True))
    packet[6:14] = (1 << 40).to_bytes(8, "little")
    f = tmp_path / "lz4size.aedat4"
    f.write_bytes(_with_header(fb.build_ioheader(1, -1, _DESC), struct.pack("<iI", 0, len(packet)) + packet))
    with pytest.raises(EventFileError, match="LZ4 frame declares 1099511627776 bytes"):
        read_aedat4(f)


def test_unknown_stream_id():
    with pytest.raises(EventFileError, match="not an event stream"):
        read_aedat4(shared_file(SAMPLE), stream_id=2)
