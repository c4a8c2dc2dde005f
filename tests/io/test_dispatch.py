"""read_events: format from suffix / header, explicit formats, unknown formats, kwargs."""
from __future__ import annotations

import numpy as np
import pytest

from eventkit.errors import EventFileError, ParameterError
from eventkit.events import make_audio_events, make_events
from eventkit.io import (
    KNOWN_FORMATS,
    detect_format,
    read_aedat2,
    read_bs1,
    read_bs2,
    read_events,
    read_nmnist,
    write_aedat2,
    write_aedat31,
    write_bs1,
    write_nmnist,
    write_ntidigits_h5,
    write_shd,
)
from tests.conftest import shared_file

REAL = [
    ("nmnist/sample_nmnist.bin", "nmnist", 4325),
    ("dvsgesture/slayer_bs2_1450ms_1.bs2", "bs2", 63471),
    ("ntidigits/slayer_NTIDIGITS_1.bs1", "bs1", 898),
    ("aedat/jaer_DVS128-2017-03-21-short.aedat", "aedat2", 130114),
    ("aedat/tonic_sample_aedat_header.aedat", "aedat2", 0),
    ("aedat/tonic_sample.aedat4", "aedat4", 111954),
    ("prophesee/tonic_sample_ncars.dat", "prophesee_dat", 2009),
    ("prophesee/expelliarmus_sparklers_evt2.raw", "evt2", 521252),
    ("prophesee/expelliarmus_evt3_sample.raw", "evt3", 219596),
]


@pytest.mark.parametrize("rel,fmt,n", REAL)
def test_real_files_detected_and_read(rel, fmt, n):
    path = shared_file(rel)
    assert detect_format(path) == fmt
    assert read_events(path).shape[0] == n


def test_header_wins_over_suffix(tmp_path):
    ev = make_events([1, 2], [3, 4], [5, 6], [0, 1])
    a2 = tmp_path / "rec.dat"  # AEDAT 2 content behind a .dat suffix (as in CIFAR10-DVS archives)
    write_aedat2(a2, ev)
    assert detect_format(a2) == "aedat2"
    np.testing.assert_array_equal(read_events(a2), ev)
    a31 = tmp_path / "user01_fluorescent.aedat"
    write_aedat31(a31, ev)
    assert detect_format(a31) == "aedat31"
    np.testing.assert_array_equal(read_events(a31), ev)
    bin_ = tmp_path / "x.bin"
    write_nmnist(bin_, ev)
    np.testing.assert_array_equal(read_events(bin_), ev)
    bs1 = tmp_path / "x.bs1"
    aev = make_audio_events([1, 2], [3, 4], [1, 1])
    write_bs1(bs1, aev)
    np.testing.assert_array_equal(read_events(bs1), aev)


def test_hdf5_detection(tmp_path):
    shd = tmp_path / "anything.h5"
    write_shd(shd, [make_audio_events([1], [2], [0])], [3])
    assert detect_format(shd) == "shd"
    assert read_events(shd, index=0)["x"].tolist() == [2]
    nt = tmp_path / "n-tidigits.hdf5"
    write_ntidigits_h5(nt, train=[("a-b-1", make_audio_events([1], [2], [0]))])
    assert detect_format(nt) == "ntidigits_h5"
    assert read_events(nt, split="train", key="a-b-1")["x"].tolist() == [2]
    assert read_events(nt, format="ntidigits", split="train", key="a-b-1")["x"].tolist() == [2]


def test_explicit_format_and_aliases():
    path = shared_file("nmnist/sample_nmnist.bin")
    np.testing.assert_array_equal(read_events(path, format="bs2"), read_bs2(path))
    np.testing.assert_array_equal(read_events(path, format="NMNIST"), read_nmnist(path))
    with pytest.raises(EventFileError, match="AEDAT"):
        read_events(shared_file("aedat/jaer_DVS128-2017-03-21-short.aedat"), format="nmnist")


def test_unknown_format_lists_known_formats(tmp_path):
    f = tmp_path / "mystery.xyz"
    f.write_bytes(b"\x00\x01\x02\x03")
    with pytest.raises(EventFileError) as exc:
        read_events(f)
    assert "mystery.xyz" in str(exc.value)
    assert all(name in str(exc.value) for name in KNOWN_FORMATS)
    with pytest.raises(EventFileError, match="unknown format 'foo'.*aedat31"):
        read_events(shared_file("nmnist/sample_nmnist.bin"), format="foo")
    e = tmp_path / "empty.xyz"
    e.write_bytes(b"")
    with pytest.raises(EventFileError, match="empty"):
        read_events(e)
    with pytest.raises(EventFileError, match="empty"):
        read_events(tmp_path / "empty.xyz", format="aedat2")


def test_bad_kwargs_are_parameter_errors(tmp_path):
    shd = tmp_path / "s.h5"
    write_shd(shd, [make_audio_events([1], [2], [0])], [3])
    with pytest.raises(ParameterError, match="index"):
        read_events(shd)
    with pytest.raises(ParameterError, match="takes"):
        read_events(shared_file("nmnist/sample_nmnist.bin"), index=3)


def test_wrong_format_sizes(tmp_path):
    """An AEDAT 2 file read as .bs1 (size not a multiple of 5) and a .bs1 read as aedat2."""
    ev = make_events(np.arange(3), [1, 2, 3], [1, 2, 3], [0, 1, 0])
    f = tmp_path / "a.aedat"
    write_aedat2(f, ev, header_lines=["# x"])
    if f.stat().st_size % 5:
        with pytest.raises(EventFileError, match="partial record"):
            read_bs1(f)
    with pytest.raises(EventFileError, match="version line"):
        read_aedat2(shared_file("ntidigits/slayer_NTIDIGITS_1.bs1"))


# --- non-regular files and foreign decoder failures -------------------------------------------


@pytest.fixture
def alarm():
    """Fail (instead of hanging forever) if the body blocks for more than 20 s."""
    import signal

    def _timeout(*_):
        raise AssertionError("blocked: a reader waited on a non-regular file")

    old = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("fmt", [None, *KNOWN_FORMATS])
@pytest.mark.parametrize("suffix", [".bin", ".aedat4", ".h5", ".raw"])
def test_a_fifo_is_refused_not_waited_on(tmp_path, alarm, fmt, suffix):
    import os

    fifo = tmp_path / f"events{suffix}"
    os.mkfifo(fifo)
    kwargs = {"shd": {"index": 0}, "ntidigits_h5": {"split": "train", "key": "a"}}.get(fmt, {})
    with pytest.raises(EventFileError, match=r"events.* is a FIFO \(named pipe\), not a regular file"):
        read_events(fifo, format=fmt, **kwargs)


def test_a_device_is_refused(alarm):
    with pytest.raises(EventFileError, match="/dev/zero: is a character device"):
        read_events("/dev/zero", format="nmnist")


def test_a_foreign_panic_is_an_event_file_error(tmp_path, monkeypatch):
    """A Rust (pyo3) panic arrives as a BaseException subclass, past every ``except Exception``."""
    expelliarmus = pytest.importorskip("expelliarmus")

    class PanicException(BaseException):
        pass

    class Boom:
        def __init__(self, *a, **k):
            raise PanicException("index out of bounds: the len is 3 but the index is 7")

    monkeypatch.setattr(expelliarmus, "Wizard", Boom)
    f = tmp_path / "x.raw"
    f.write_bytes(b"% evt 2.0\n% end\n" + bytes(8))
    with pytest.raises(EventFileError, match=r"x.raw: expelliarmus could not decode .*PanicException: index out"):
        read_events(f)
    monkeypatch.setattr(expelliarmus, "Wizard", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):  # an interrupt is never swallowed
        read_events(f)
