"""AEDAT 3.1 reader/writer and DVS128 Gesture label CSVs / samples."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.errors import EventFileError
from eventkit.events import VISION_DTYPE, make_events
from eventkit.io import (
    GestureSample,
    read_aedat31,
    read_gesture_labels,
    read_gesture_samples,
    write_aedat31,
    write_gesture_labels,
)
from tests.conftest import shared_file
from tests.io._strategies import stable_sorted, vision_events

LABELS_CSV = "dvsgesture/user01_natural_labels.csv"


def reference_decode(data: bytes) -> np.ndarray:
    """Per-event parser written from the spec: header to '#!END-HEADER', 28-byte packet headers,
    polarity events (valid bit 0, p bit 1, y bits 2-16, x bits 17-31), t = overflow << 31 | ts."""
    end = data.index(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n")
    pos, rows = end, []
    while pos < len(data):
        etype, _src, esize, _off, ovf, _cap, num, _valid = struct.unpack("<hhiiiiii", data[pos:pos + 28])
        pos += 28
        for k in range(num):
            if etype == 1:
                d, ts = struct.unpack("<Ii", data[pos + k * esize:pos + k * esize + 8])
                if d & 1:
                    rows.append(((ovf << 31) | ts, (d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF, (d >> 1) & 1))
        pos += num * esize
    arr = np.array(rows, dtype=np.int64).reshape(-1, 4)
    return make_events(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])


@settings(max_examples=40, deadline=None)
@given(
    vision_events(max_n=200, max_xy=32767, max_t=(1 << 33), sorted_t=True),
    vision_events(max_n=20, max_xy=127, max_t=(1 << 33)),
    st.integers(1, 64),
    st.booleans(),
)
def test_roundtrip_with_invalid_events_and_special_packet(tmp_path_factory, ev, invalid, packet_size, special):
    f = tmp_path_factory.mktemp("a31") / "s.aedat"
    write_aedat31(f, ev, packet_size=packet_size, invalid_events=invalid, special_packet=special)
    got = read_aedat31(f)
    np.testing.assert_array_equal(got, ev)
    np.testing.assert_array_equal(got, stable_sorted(reference_decode(f.read_bytes())))


def test_unsorted_input_is_stably_sorted(tmp_path):
    ev = make_events([30, 10, 20, 10], [1, 2, 3, 4], [5, 6, 7, 8], [0, 1, 0, 1])
    f = tmp_path / "u.aedat"
    write_aedat31(f, ev, packet_size=2)
    np.testing.assert_array_equal(read_aedat31(f), stable_sorted(ev))


def test_several_packets_and_overflow_split(tmp_path):
    t = np.array([1, 2, (1 << 31) - 1, 1 << 31, (1 << 31) + 5, 3 << 31], dtype=np.int64)
    ev = make_events(t, np.arange(6), np.arange(6), np.zeros(6))
    f = tmp_path / "o.aedat"
    write_aedat31(f, ev, packet_size=100)
    data = f.read_bytes()
    start = data.index(b"#!END-HEADER\r\n") + 14
    overflows = []
    pos = start
    while pos < len(data):
        _t, _s, esize, _o, ovf, cap, num, valid = struct.unpack_from("<hhiiiiii", data, pos)
        assert cap == num == valid
        overflows.append(ovf)
        pos += 28 + num * esize
    assert overflows == [0, 1, 3]
    np.testing.assert_array_equal(read_aedat31(f), ev)


def test_tonic_agrees_on_a_clean_file(tmp_path):
    tonic_io = pytest.importorskip("tonic.io")
    rng = np.random.default_rng(3)
    n = 5000
    ev = make_events(np.sort(rng.integers(0, 10**7, n)), rng.integers(0, 128, n), rng.integers(0, 128, n),
                     rng.integers(0, 2, n))
    f = tmp_path / "clean.aedat"
    write_aedat31(f, ev, packet_size=1000)
    version, start, _ = tonic_io.read_aedat_header_from_file(str(f))
    raw = tonic_io.get_aer_events_from_file(str(f), version, start)
    a = raw["address"]
    np.testing.assert_array_equal(ev["t"], raw["timeStamp"])
    np.testing.assert_array_equal(ev["x"], (a >> 17) & 0x1FFF)
    np.testing.assert_array_equal(ev["y"], (a >> 2) & 0x1FFF)
    np.testing.assert_array_equal(ev["p"], (a >> 1) & 1)
    np.testing.assert_array_equal(read_aedat31(f), ev)


def test_header_only_file_has_no_events(tmp_path):
    f = tmp_path / "h.aedat"
    write_aedat31(f, make_events([], [], [], []))
    ev = read_aedat31(f)
    assert ev.shape == (0,) and ev.dtype == VISION_DTYPE


# ------------------------------------------------------------------ bad input


def _good_file(tmp_path):
    rng = np.random.default_rng(0)
    ev = make_events(np.arange(300), rng.integers(0, 128, 300), rng.integers(0, 128, 300), rng.integers(0, 2, 300))
    f = tmp_path / "g.aedat"
    write_aedat31(f, ev, packet_size=100)
    data = f.read_bytes()
    return data, data.index(b"#!END-HEADER\r\n") + 14


def test_truncated_packet_body(tmp_path):
    data, start = _good_file(tmp_path)
    f = tmp_path / "cut.aedat"
    f.write_bytes(data[:-5])
    with pytest.raises(EventFileError, match="cut.aedat.*truncated packet") as exc:
        read_aedat31(f)
    assert exc.value.offset == start + 2 * (28 + 800)  # the third packet


def test_truncated_packet_header(tmp_path):
    data, start = _good_file(tmp_path)
    f = tmp_path / "cut.aedat"
    f.write_bytes(data + b"\x01\x00\x01")
    with pytest.raises(EventFileError, match="truncated packet header") as exc:
        read_aedat31(f)
    assert exc.value.offset == len(data)


def test_corrupt_packet_header(tmp_path):
    data, start = _good_file(tmp_path)
    bad = bytearray(data)
    struct.pack_into("<i", bad, start + 4, -8)  # eventSize
    f = tmp_path / "bad.aedat"
    f.write_bytes(bytes(bad))
    with pytest.raises(EventFileError, match="corrupt packet header") as exc:
        read_aedat31(f)
    assert exc.value.offset == start


def test_negative_timestamp_is_corrupt(tmp_path):
    """The timestamp uses 31 bits (the high ones are in eventTSOverflow): found by the fuzzer."""
    data, start = _good_file(tmp_path)
    bad = bytearray(data)
    at = start + 28 + 8 * 5 + 4  # the timestamp of event 5 of the first packet
    struct.pack_into("<i", bad, at, -7)
    f = tmp_path / "neg.aedat"
    f.write_bytes(bytes(bad))
    with pytest.raises(EventFileError, match="event 5 of the packet has a negative timestamp -7") as exc:
        read_aedat31(f)
    assert exc.value.offset == at - 4


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "empty"),
        (b"\x07" * 100, "not an AEDAT 3.1 file"),
        (b"#!AER-DAT2.0\r\n# x\r\n", "use format='aedat2'"),
        (b"#!AER-DAT3.1\r\n#Format: RAW\r\n", "no '#!END-HEADER'"),
        (b"#!AER-DAT3.1\r\n#Format: RAW\r\nxyz\r\n", "without the required '#!END-HEADER'"),
    ],
)
def test_bad_headers(tmp_path, content, match):
    f = tmp_path / "bad.aedat"
    f.write_bytes(content)
    with pytest.raises(EventFileError, match=match):
        read_aedat31(f)


# ------------------------------------------------------------------ DVS128 Gesture labels


def test_real_label_csv():
    labels = read_gesture_labels(shared_file(LABELS_CSV))
    assert labels.shape == (12,)
    assert sorted(set((labels["label"] + 1).tolist())) == list(range(1, 12))
    assert int((labels["label"] == 7).sum()) == 2  # class 8 appears twice
    assert (int(labels["start_us"][0]), int(labels["end_us"][0])) == (53036986, 59508469)
    assert np.all(labels["end_us"] > labels["start_us"])


def test_gesture_samples_cut_the_recording(tmp_path):
    labels = read_gesture_labels(shared_file(LABELS_CSV))
    rng = np.random.default_rng(5)
    n = 60_000
    t = np.sort(rng.integers(40_000_000, 190_000_000, n))
    t[:3] = [labels["start_us"][0] - 1, labels["start_us"][0], labels["end_us"][0]]  # edges of row 0
    t = np.sort(t)
    ev = make_events(t, rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n))
    f = tmp_path / "user01_natural.aedat"
    write_aedat31(f, ev, packet_size=4096)
    samples = read_gesture_samples(f, shared_file(LABELS_CSV))
    assert len(samples) == 12 and all(isinstance(s, GestureSample) for s in samples)
    for i, (s, row) in enumerate(zip(samples, labels, strict=True)):
        assert s.index == i and s.label == int(row["label"])
        assert (s.start_us, s.end_us) == (int(row["start_us"]), int(row["end_us"]))
        mask = (ev["t"] >= row["start_us"]) & (ev["t"] < row["end_us"])  # reference: a direct mask
        np.testing.assert_array_equal(s.events, ev[mask])
    assert samples[0].events["t"][0] == labels["start_us"][0]  # start included, end excluded, absolute µs
    assert [s.label for s in samples].count(7) == 2
    with pytest.raises(AttributeError):
        samples[0].label = 3  # frozen


def test_label_csv_roundtrip(tmp_path):
    f = tmp_path / "l.csv"
    write_gesture_labels(f, [1, 8, 8], [10, 20, 30], [15, 25, 35])
    lab = read_gesture_labels(f)
    assert lab["label"].tolist() == [0, 7, 7] and lab["start_us"].tolist() == [10, 20, 30]


@pytest.mark.parametrize(
    "text,match",
    [
        ("a,b,c\n1,2,3\n", "line 1: expected the header"),
        ("class,startTime_usec,endTime_usec\n1,2,3\n2,x,9\n", "line 3: expected three integers"),
        ("class,startTime_usec,endTime_usec\r\n1,2,3,4\r\n", "line 2: expected three integers"),
        ("class,startTime_usec,endTime_usec\n0,2,3\n", "line 2: class 0"),
        ("class,startTime_usec,endTime_usec\n1,5,5\n", "line 2: window"),
        ("class,startTime_usec,endTime_usec\n1,0,99999999999999999999\n", "line 2: 99999999999999999999 does not fit"),
        ("class,startTime_usec,endTime_usec\n99999999999999999999,0,5\n", "line 2: 99999999999999999999 does not fit"),
    ],
)
def test_malformed_label_csv_names_file_and_line(tmp_path, text, match):
    f = tmp_path / "labels.csv"
    f.write_bytes(text.encode())
    with pytest.raises(EventFileError, match=match) as exc:
        read_gesture_labels(f)
    assert "labels.csv" in str(exc.value)


def test_cut_gesture_samples_copies_only_the_rows_asked_for():
    """The dataset layer cuts only the rows of one shard out of a recording (not all 12)."""
    from eventkit.errors import ParameterError
    from eventkit.io.aedat31 import cut_gesture_samples

    labels = read_gesture_labels(shared_file(LABELS_CSV))
    rng = np.random.default_rng(6)
    n = 20_000
    t = np.sort(rng.integers(40_000_000, 190_000_000, n))
    ev = make_events(t, rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n))
    everything = cut_gesture_samples(ev, labels)
    some = cut_gesture_samples(ev, labels, [9, 2, 9])
    assert [s.index for s in some] == [9, 2, 9]
    for s in some:
        ref = everything[s.index]
        assert (s.label, s.start_us, s.end_us) == (ref.label, ref.start_us, ref.end_us)
        mask = (ev["t"] >= s.start_us) & (ev["t"] < s.end_us)
        np.testing.assert_array_equal(s.events, ev[mask])
        assert not np.shares_memory(s.events, ev)  # a copy: the recording is not pinned
    assert cut_gesture_samples(ev, labels, []) == []
    with pytest.raises(ParameterError, match="row 12"):
        cut_gesture_samples(ev, labels, [0, 12])
