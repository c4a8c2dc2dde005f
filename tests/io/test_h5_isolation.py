"""HDF5 files are read in full by an isolated process before libhdf5 touches them in-process:
crashes, hangs and memory exhaustion there become EventFileErrors; impossible row counts are
refused before anything is allocated."""
from __future__ import annotations

import os
import signal

import h5py
import numpy as np
import pytest

from eventkit.errors import EventFileError
from eventkit.events import make_audio_events
from eventkit.io import ShdFile, _h5check, read_events, read_ntidigits_h5, read_shd, write_ntidigits_h5, write_shd


def _ev(n: int = 4):
    return make_audio_events(np.arange(n) * 10, np.arange(n) % 700, np.zeros(n, np.int64))


@pytest.fixture
def shd_file(tmp_path):
    f = tmp_path / "shd_test.h5"
    write_shd(f, [_ev(3), _ev(5)], [1, 2])
    return f


@pytest.fixture
def fresh_cache(monkeypatch):
    monkeypatch.setattr(_h5check, "_cache", {})


def test_a_small_file_declaring_1e11_rows_is_an_event_file_error(tmp_path):
    f = tmp_path / "huge.h5"
    with h5py.File(f, "w") as h:
        h.create_dataset("spikes/times", (10**11,), dtype=h5py.vlen_dtype(np.float32))
        h.create_dataset("spikes/units", (10**11,), dtype=h5py.vlen_dtype(np.uint16))
        h.create_dataset("labels", (10**11,), dtype=np.uint16)
    assert f.stat().st_size < 4096
    for call in (lambda: read_shd(f, 0), lambda: read_events(f, index=3), lambda: ShdFile(f).labels):
        with pytest.raises(EventFileError, match=r"declares 100000000000 rows .* stores 0 bytes"):
            call()


def test_manifest_row_limit(shd_file):
    assert len(ShdFile(shd_file, max_rows=2)) == 2
    with pytest.raises(EventFileError, match="declares 2 rows, more than the 1"):
        ShdFile(shd_file, max_rows=1)


def test_ntidigits_utterance_with_impossible_size(tmp_path):
    f = tmp_path / "n-tidigits.hdf5"
    write_ntidigits_h5(f, train=[("a-1", _ev())])
    with h5py.File(f, "a") as h:
        del h["train_addresses/a-1"]
        h.create_dataset("train_addresses/a-1", (10**10,), dtype=np.uint8)  # never written
    with pytest.raises(EventFileError, match=r"train_addresses/a-1 declares 10000000000 rows"):
        read_ntidigits_h5(f, "train", "a-1")


def test_each_file_is_checked_once_and_again_when_it_changes(shd_file, fresh_cache, monkeypatch):
    calls = []
    real = _h5check._run_child
    monkeypatch.setattr(_h5check, "_run_child", lambda p, n: calls.append(p) or real(p, n))
    read_shd(shd_file, 0)
    read_shd(shd_file, 1)
    with ShdFile(shd_file) as f:
        _ = f.labels  # a read: must not start another checking child
    assert len(calls) == 1
    write_shd(shd_file, [_ev(2)], [0])
    os.utime(shd_file, ns=(1, 1))  # a new mtime (and size): another file
    assert read_shd(shd_file, 0).shape[0] == 2
    assert len(calls) == 2


def test_a_row_that_fails_in_the_child_is_refused_without_being_read(tmp_path, fresh_cache, monkeypatch):
    f = tmp_path / "shd_train.h5"
    write_shd(f, [_ev(3), _ev(3)], [0, 1])
    with h5py.File(f, "a") as h:
        h["spikes/times"][1] = np.array([0.1, -1.0, 0.2], np.float32)  # negative time: row 1 is bad
    with ShdFile(f) as sf:
        assert sf._verdict.bad.keys() == {"row 1"}
        assert sf.read(0).shape[0] == 3
        monkeypatch.setattr(type(sf._times), "__getitem__", lambda *a: pytest.fail("row re-read in-process"))
        with pytest.raises(EventFileError, match="sample 1: spike times must be finite, >= 0"):
            sf.read(1)


def _fake_server(monkeypatch, body):
    """Run the check by forking *this* process, with the child's read replaced by ``body``."""
    monkeypatch.setattr(_h5check, "_read_everything", body)
    monkeypatch.setattr(_h5check, "_ask_server", lambda p, cap, timeout: _h5check._check_in_fork(p, cap, timeout))


def test_a_crash_in_the_isolated_read_names_file_and_place(shd_file, fresh_cache, monkeypatch):
    def segfault(path):
        _h5check._emit(at="row 7")
        os.kill(os.getpid(), signal.SIGSEGV)

    _fake_server(monkeypatch, segfault)
    with pytest.raises(EventFileError, match=r"shd_test.h5: corrupt HDF5 file: libhdf5 crashed \(SIGSEGV\) "
                                             r"reading row 7"):
        read_shd(shd_file, 0)
    with pytest.raises(EventFileError, match="SIGSEGV"):  # remembered: never opened in-process
        read_events(shd_file, index=0)


def test_a_hang_in_the_isolated_read_is_bounded(shd_file, fresh_cache, monkeypatch):
    def loop(path):
        _h5check._emit(at="/labels")
        while True:
            pass

    _fake_server(monkeypatch, loop)
    monkeypatch.setattr(_h5check, "TIME_BASE_S", 1.0)
    with pytest.raises(EventFileError, match=r"reading /labels did not finish within 1 s"):
        read_shd(shd_file, 0)


def test_memory_exhaustion_in_the_isolated_read(shd_file, fresh_cache, monkeypatch):
    def hog(path):
        _h5check._emit(at="row 0")
        bytearray(1 << 33)

    _fake_server(monkeypatch, hog)
    with pytest.raises(EventFileError, match=r"isolated read of row 0 failed \(MemoryError"):
        read_shd(shd_file, 0)


def test_the_helper_process_is_restarted_when_killed(shd_file, fresh_cache):
    read_shd(shd_file, 0)
    _h5check._server.proc.kill()
    _h5check._server.proc.wait()
    _h5check._cache.clear()
    assert read_shd(shd_file, 1).shape[0] == 5


def test_discovery_refuses_more_rows_than_the_manifest_allows(tmp_path, monkeypatch):
    from eventkit import testing
    from eventkit.datasets import get_dataset
    from eventkit.datasets.access import list_samples
    from eventkit.datasets.spec import DatasetSpec

    root = testing.make_shd_root(tmp_path / "shd", n_train=5, n_test=2)
    spec = get_dataset("shd")
    assert len(list_samples(spec, root, "train")) == 5
    monkeypatch.setattr(DatasetSpec, "expected_count", lambda self, split: 2)  # 2 x 2 = 4 rows at most
    with pytest.raises(EventFileError, match=r"shd_train.h5: /spikes/times declares 5 rows, more than the 4"):
        list_samples(spec, root, "train")


def test_a_forked_process_uses_its_own_helper(shd_file, fresh_cache):
    read_shd(shd_file, 0)
    parent_helper = _h5check._server
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a fresh file must be checked through a helper of its own
        ok = 0
        try:
            _h5check._cache.clear()
            ok = int(_h5check._server is None and read_shd(shd_file, 1).shape[0] == 5
                     and _h5check._server is not None and _h5check._server.pid == os.getpid())
        finally:
            os.write(w, bytes([ok]))
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"\x01"
    os.waitpid(pid, 0)
    assert _h5check._server is parent_helper and parent_helper.proc.poll() is None  # untouched


def test_a_real_libhdf5_segfault_found_by_the_fuzzer(tmp_path):
    """One flipped byte of the SHD fuzz fixture makes libhdf5 segfault (it killed the process
    before): now an EventFileError, and this process never opens the file."""
    import hashlib

    from tests.fuzz.harness import Case, mutate
    from tests.fuzz.targets import TARGETS

    try:
        data = TARGETS["shd"].build(tmp_path)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    if hashlib.sha256(data).hexdigest() != "398b78a4654413fcbc1ba48c35ec6b2ba7190b91ee2204acdaf042a240634d25":
        pytest.skip("this h5py writes another byte layout: the recorded crashing byte does not apply")
    f = tmp_path / "crash.h5"
    f.write_bytes(mutate(data, Case("shd", "byte", 2489, 101)))
    with pytest.raises(EventFileError, match=r"crash.h5: corrupt HDF5 file: libhdf5 crashed \(SIGSEGV\) "
                                             r"reading row 0"):
        read_shd(f, 0)


def test_a_helper_that_cannot_be_asked_refuses_the_file_this_time_only(shd_file, fresh_cache, monkeypatch):
    """When the isolated check cannot run at all (the helper cannot start: no memory, no process slot),
    the file is refused now, but that says nothing about the file: the next open checks it again."""
    real = _h5check._ask_server
    fail = [True]

    def flaky(path, cap, timeout):
        if fail[0]:
            raise OSError("Resource temporarily unavailable")
        return real(path, cap, timeout)

    monkeypatch.setattr(_h5check, "_ask_server", flaky)
    with pytest.raises(EventFileError, match="cannot check the HDF5 file in an isolated process"):
        read_shd(shd_file, 0)
    fail[0] = False
    assert read_shd(shd_file, 1).shape[0] == 5
