"""Prophesee DAT / EVT2 / EVT3 readers (expelliarmus) and the DAT / EVT2 writers."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from eventkit.errors import EventFileError, InvalidEventsError
from eventkit.events import VISION_DTYPE, make_events
from eventkit.io import read_evt2, read_evt3, read_prophesee_dat, write_evt2, write_prophesee_dat
from tests.conftest import shared_file
from tests.io._strategies import vision_events

NCARS = "prophesee/tonic_sample_ncars.dat"
EVT2 = "prophesee/expelliarmus_sparklers_evt2.raw"
EVT3 = "prophesee/expelliarmus_evt3_sample.raw"


def dat_reference(data: bytes) -> np.ndarray:
    """DAT v2 decoded from the spec with NumPy: '%' lines, 2 bytes type/size, then (uint32 t, uint32 data)."""
    pos = 0
    while data[pos:pos + 1] == b"%":
        pos = data.index(b"\n", pos) + 1
    rec = np.frombuffer(data, dtype=[("t", "<u4"), ("d", "<u4")], offset=pos + 2)
    d = rec["d"]
    return make_events(rec["t"], d & 0x3FFF, (d >> 14) & 0x3FFF, (d >> 28) & 0xF)


def test_ncars_dat_manifest_facts_and_spec_reference():
    path = shared_file(NCARS)
    ev = read_prophesee_dat(path)
    assert ev.dtype == VISION_DTYPE and ev.shape[0] == 2009
    assert (ev["x"].min(), ev["x"].max(), ev["y"].min(), ev["y"].max()) == (0, 77, 0, 41)
    assert int(ev["t"][-1] - ev["t"][0]) < 101_000  # ~100 ms
    np.testing.assert_array_equal(ev, dat_reference(path.read_bytes()))


def test_evt2_manifest_facts():
    ev = read_evt2(shared_file(EVT2))
    assert ev.shape[0] == 521252
    assert ev["x"].max() <= 639 and ev["y"].max() <= 479
    assert 913e6 <= ev["t"][0] < 914e6  # an excerpt starting at 913 s
    assert set(np.unique(ev["p"]).tolist()) == {0, 1}


def test_evt3_manifest_facts():
    ev = read_evt3(shared_file(EVT3))
    assert ev.shape[0] == 219596
    assert (ev["x"].max(), ev["y"].max()) == (1279, 719)
    assert round((int(ev["t"][-1]) - int(ev["t"][0])) / 1000) == 54


@settings(max_examples=20, deadline=None)
@given(vision_events(max_n=200, max_xy=639, max_t=10**9, min_n=1))
def test_dat_and_evt2_roundtrip(tmp_path_factory, ev):
    d = tmp_path_factory.mktemp("pp")
    write_prophesee_dat(d / "a.dat", ev)
    np.testing.assert_array_equal(read_prophesee_dat(d / "a.dat"), ev)
    np.testing.assert_array_equal(dat_reference((d / "a.dat").read_bytes()), ev)
    write_evt2(d / "a.raw", ev)
    np.testing.assert_array_equal(read_evt2(d / "a.raw"), ev)


def test_other_suffix_is_accepted(tmp_path):
    f = tmp_path / "recording.bin"
    f.write_bytes(shared_file(NCARS).read_bytes())
    assert read_prophesee_dat(f).shape[0] == 2009


@pytest.mark.parametrize("reader,src,cut,record", [(read_prophesee_dat, NCARS, 3, 8), (read_evt2, EVT2, 1, 4),
                                                    (read_evt3, EVT3, 1, 2)])
def test_truncated_files_are_errors(tmp_path, reader, src, cut, record):
    data = shared_file(src).read_bytes()
    f = tmp_path / ("cut" + (".dat" if reader is read_prophesee_dat else ".raw"))
    f.write_bytes(data[:-cut])
    with pytest.raises(EventFileError, match="partial record") as exc:
        reader(f)
    assert exc.value.offset == len(data) - record and f.name in str(exc.value)


def test_wrong_encoding_and_garbage(tmp_path):
    with pytest.raises(EventFileError, match="header says EVT2, not EVT3"):
        read_evt3(shared_file(EVT2))
    f = tmp_path / "rand.raw"
    f.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(EventFileError, match="no '%' header"):
        read_evt2(f)
    e = tmp_path / "e.dat"
    e.write_bytes(b"")
    with pytest.raises(EventFileError, match="empty"):
        read_prophesee_dat(e)
    h = tmp_path / "h.raw"
    h.write_bytes(b"% some header\n% end\n" + b"\x00" * 16)
    with pytest.raises(EventFileError, match="no '% evt"):
        read_evt3(h)


def test_writer_rejects(tmp_path):
    with pytest.raises(InvalidEventsError, match="sorted"):
        write_evt2(tmp_path / "a.raw", make_events([5, 1], [0, 0], [0, 0], [0, 0]))
    with pytest.raises(InvalidEventsError, match="no events"):
        write_prophesee_dat(tmp_path / "a.dat", make_events([], [], [], []))


def test_payload_is_read_by_expelliarmus_only(tmp_path, monkeypatch):
    """eventkit checks the header and the file size; it does not read (and hold) the whole
    payload a second time beside expelliarmus. Files with another suffix are copied on disk."""
    import eventkit.io.prophesee as prophesee

    def refuse(*args, **kwargs):
        raise AssertionError("the whole file was read by eventkit")

    monkeypatch.setattr(prophesee, "read_all_bytes", refuse)
    ref = read_evt2(shared_file(EVT2))
    assert ref.shape[0] == 521252
    renamed = tmp_path / "sparklers.evt2"
    renamed.write_bytes(shared_file(EVT2).read_bytes())
    np.testing.assert_array_equal(read_evt2(renamed), ref)


@pytest.mark.parametrize("reader,src,record", [(read_prophesee_dat, NCARS, 8), (read_evt2, EVT2, 4)])
def test_header_longer_than_the_first_read(tmp_path, reader, src, record):
    """A '%' header of more than 64 KiB: still parsed whole, truncation still found at its offset."""
    data = shared_file(src).read_bytes()
    nl = data.index(b"\n") + 1
    padding = b"".join(b"%% comment line %06d\n" % i for i in range(4000))  # ~88 KiB
    long = data[:nl] + padding + data[nl:]
    f = tmp_path / ("long" + (".dat" if reader is read_prophesee_dat else ".raw"))
    f.write_bytes(long)
    np.testing.assert_array_equal(reader(f), reader(shared_file(src)))
    f.write_bytes(long[:-1])
    with pytest.raises(EventFileError, match="partial record") as exc:
        reader(f)
    assert exc.value.offset == len(long) - record


@pytest.mark.parametrize("reader,src,extra", [(read_prophesee_dat, NCARS, 2), (read_evt2, EVT2, 0),
                                              (read_evt3, EVT3, 0)])
def test_header_only_recording_is_empty_not_an_error(tmp_path, reader, src, extra):
    """A valid header followed by no event (a recording with nothing in it) reads as 0 events,
    as the AEDAT readers do; one record's worth of bytes cut in half is still an error."""
    data = shared_file(src).read_bytes()
    pos = 0
    while data[pos:pos + 1] == b"%":
        pos = data.index(b"\n", pos) + 1
    f = tmp_path / ("empty" + (".dat" if reader is read_prophesee_dat else ".raw"))
    f.write_bytes(data[:pos + extra])
    out = reader(f)
    assert out.shape == (0,) and out.dtype == VISION_DTYPE
    f.write_bytes(data[:pos + extra + 1])
    with pytest.raises(EventFileError, match="partial record"):
        reader(f)
