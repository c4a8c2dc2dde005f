"""Isolated first read of every HDF5 file (SHD/SSC, N-TIDIGITS18) before libhdf5 touches it in-process.

libhdf5 is a large C library: one damaged byte in an object header, B-tree or heap can make
it crash (SIGSEGV/SIGABRT), loop forever or allocate without bound, none of which Python can
catch. So the first time a process opens a given file (same device, inode, size and mtime),
a child process reads the *whole* file through the very same reader code (every row, every
utterance), under a memory cap (``RLIMIT_AS``) and a time limit. The parent then opens the
file itself only when the child finished; it refuses the file when the child crashed, hung
or ran out of memory, and refuses the rows the child could not read (their error is replayed
without reading them again). libhdf5 is deterministic on the same bytes, so what the parent
does next is a subset of what already ran safely in the child.

Cost: one helper process per reading process, started at the first HDF5 file (Python with
h5py and the readers imported, ~0.5 s, ~150 MB), which forks a child per file (a fork and a
full read: well under a second for an SHD split). Private module; the readers call
:func:`h5_verdict` (through ``open_h5``).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from eventkit.errors import EventFileError

CHILD_ENV = "EVENTKIT_H5_CHECK_CHILD"  # set in the child: it reads directly
MEMORY_CAP = 2 << 30  # bytes of address space for the child, plus the file size
TIME_BASE_S = 60.0  # child time limit: this, plus the file size at TIME_BYTES_PER_S
TIME_BYTES_PER_S = 5e6


@dataclass(frozen=True)
class H5Verdict:
    """What the isolated read found: ``kind`` (``"shd"``, ``"ntidigits_h5"`` or None: another
    HDF5 layout), ``keys`` (top-level entries), ``bad`` (row or utterance -> (problem, offset))."""

    kind: str | None
    keys: tuple[str, ...] = ()
    bad: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    def raise_if_bad(self, path, where: str) -> None:
        """Replay the child's error for row/utterance ``where`` (never read again in-process)."""
        if where in self.bad:
            problem, offset = self.bad[where]
            raise EventFileError(path, problem, offset=offset)


_UNCHECKED = H5Verdict(kind=None)
_cache: dict[tuple, H5Verdict | EventFileError] = {}
_lock = threading.Lock()


def h5_verdict(path: Path) -> H5Verdict:
    """The verdict for the HDF5 file ``path`` (cached per file identity); raises
    :class:`EventFileError` when the isolated read crashed, hung, ran out of memory or the
    file cannot be opened at all."""
    if os.environ.get(CHILD_ENV) == "1":
        return _UNCHECKED
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _lock:  # one check per file at a time; threads opening other files wait (rare, short)
        found = _cache.get(key)
        if found is None:  # (a check that could not run at all raises here and is not kept)
            found = _cache[key] = _run_child(path, st.st_size)
    if isinstance(found, EventFileError):
        raise EventFileError(path, found.problem, offset=found.offset)
    return found


class _Server:
    """The helper process of this process: started once (Python + the readers imported), it
    forks one short-lived child per file to check, so a check costs a fork, not a start."""

    def __init__(self):
        import eventkit

        env = dict(os.environ, **{CHILD_ENV: "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                                  "NUMBA_NUM_THREADS": "1"})
        src = str(Path(eventkit.__file__).resolve().parents[1])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.pid = os.getpid()  # a forked copy of this process must start its own server
        self.proc = subprocess.Popen([sys.executable, "-m", "eventkit.io._h5check"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)

    def ask(self, path: Path, cap: int, timeout: float) -> dict:
        request = json.dumps({"path": os.path.abspath(path), "cap": cap, "timeout": timeout}) + "\n"
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None  # both are pipes (Popen above)
        stdin.write(request.encode())
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise OSError("the HDF5 check helper exited")
        return json.loads(line)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


_server: _Server | None = None


def _after_fork_in_child() -> None:
    """A forked copy of this process: its own lock (the parent's may have been held by another
    thread at the fork) and its own helper on first use; the verdicts stay valid."""
    global _lock, _server
    _lock = threading.Lock()
    _server = None  # never closed here: it is the parent's helper


os.register_at_fork(after_in_child=_after_fork_in_child)


def _ask_server(path: Path, cap: int, timeout: float) -> dict:
    global _server
    for attempt in (0, 1):  # a helper that died (killed from outside) is restarted once
        if _server is None or _server.pid != os.getpid() or _server.proc.poll() is not None:
            _server = _Server()
        try:
            return _server.ask(path, cap, timeout)
        except (OSError, ValueError):
            _server.close()
            _server = None
            if attempt:
                raise
    raise AssertionError("unreachable")


def _run_child(path: Path, size: int) -> H5Verdict | EventFileError:
    """The verdict on ``path``, or the error refusing it (both kept for the file); raises
    :class:`EventFileError` when the check could not run (the helper cannot start or answer),
    which says nothing about the file."""
    timeout = TIME_BASE_S + size / TIME_BYTES_PER_S
    try:
        reply = _ask_server(path, MEMORY_CAP + size, timeout)
    except (OSError, ValueError) as exc:
        raise EventFileError(path, f"cannot check the HDF5 file in an isolated process ({exc})") from None
    lines, status, hung = reply["records"], reply["status"], reply["hung"]
    at = next((d["at"] for d in reversed(lines) if "at" in d), "the file structure")
    fatal = next((d for d in lines if "fatal" in d), None)
    if fatal is not None:
        return EventFileError(path, fatal["fatal"], offset=fatal.get("offset"))
    if hung:
        return EventFileError(path, f"corrupt HDF5 file: reading {at} did not finish within {timeout:.0f} s "
                                    f"(libhdf5 loops on it; checked in an isolated process)")
    if status < 0:
        name = signal.Signals(-status).name if -status in signal.valid_signals() else str(-status)
        return EventFileError(path, f"corrupt HDF5 file: libhdf5 crashed ({name}) reading {at} "
                                    f"(checked in an isolated process; nothing was read in this one)")
    done = next((d for d in lines if "done" in d), None)
    if status != 0 or done is None:
        crash = next((d["crash"] for d in lines if "crash" in d), f"exit status {status}")
        return EventFileError(path, f"corrupt HDF5 file: the isolated read of {at} failed ({crash[:200]})")
    bad = {d["bad"]: (d["problem"], d.get("offset")) for d in lines if "bad" in d}
    return H5Verdict(kind=done["kind"], keys=tuple(done["keys"]), bad=bad)


# ------------------------------------------------------------------------------------------
# the child


def _emit(**record) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _read_everything(path: Path) -> None:
    """Open ``path`` and read every row/utterance through the readers, reporting on stdout."""
    from eventkit.io._common import h5_errors, open_h5
    from eventkit.io.ntidigits import SPLITS, NTidigitsFile
    from eventkit.io.shd import ShdFile

    _emit(at="the file structure")
    f, _ = open_h5(path, "an HDF5 file")
    with f, h5_errors(path, "an HDF5 file"):
        keys = sorted(f.keys())
    kind = "shd" if {"spikes", "labels"} <= set(keys) else (
        "ntidigits_h5" if set(keys) & {"train_labels", "test_labels"} else None)
    if kind == "shd":
        with ShdFile(path) as f:
            _emit(at="/labels")
            _ = f.labels  # the property reads and checks the label array
            _emit(at="/extra/keys")  # read by `eventkit data verify`
            with h5_errors(path, "an SHD/SSC HDF5 file"):
                if "extra/keys" in f._file:
                    _ = f._file["extra/keys"][()]
            for i in range(len(f)):
                _emit(at=f"row {i}")
                try:
                    f.read(i)
                except EventFileError as exc:
                    _emit(bad=f"row {i}", problem=exc.problem, offset=exc.offset)
    elif kind == "ntidigits_h5":
        with NTidigitsFile(path) as f:
            for split in SPLITS:
                _emit(at=f"/{split}_labels")
                try:
                    names = f.keys(split)
                except EventFileError as exc:
                    _emit(bad=split, problem=exc.problem, offset=exc.offset)
                    continue
                for name in dict.fromkeys(names):
                    _emit(at=f"utterance {split}/{name}")
                    try:
                        f.read(split, name)
                    except EventFileError as exc:
                        _emit(bad=f"{split}/{name}", problem=exc.problem, offset=exc.offset)
    _emit(done=True, kind=kind, keys=keys)


def _check_in_fork(path: Path, cap: int, timeout: float) -> dict:
    """Fork a child that reads ``path`` under ``cap`` bytes of address space; collect its
    records within ``timeout`` seconds (killed after), and its exit status (-signal if killed)."""
    import faulthandler
    import resource
    import select
    import time

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read everything, report on the pipe, never return
        status = 0
        try:
            os.close(r)
            faulthandler.disable()  # a crash is reported by the exit status, not a traceback dump
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:  # a cap set on this process already: stay within it
                cap = min(cap, hard)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            sys.stdout = os.fdopen(w, "w")
            try:
                _read_everything(path)
            except EventFileError as exc:
                _emit(fatal=exc.problem, offset=exc.offset)
        except BaseException as exc:  # noqa: BLE001 - reported, then the child ends
            try:
                _emit(crash=f"{type(exc).__name__}: {exc}")
            except BaseException:  # noqa: BLE001 - the pipe to the parent is gone: nothing left to tell
                pass
            status = 1
        finally:
            os._exit(status)
    os.close(w)
    chunks, hung, deadline = [], False, time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            hung = True
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([r], [], [], min(left, 1.0))
        if ready:
            data = os.read(r, 1 << 16)
            if not data:
                break
            chunks.append(data)
    os.close(r)
    _, raw_status = os.waitpid(pid, 0)
    status = -os.WTERMSIG(raw_status) if os.WIFSIGNALED(raw_status) else os.WEXITSTATUS(raw_status)
    text = b"".join(chunks).decode("utf-8", "replace")
    records = [json.loads(ln) for ln in text.splitlines() if ln.startswith("{") and ln.endswith("}")]
    return {"records": records, "status": status, "hung": hung}


def _warm_up() -> None:
    """Run the whole read path once on two tiny files written here, so that the lazy imports and
    Numba kernels are loaded in the helper, before it forks, not again in every child."""
    import contextlib
    import io
    import tempfile

    import numpy as np

    from eventkit.events import make_audio_events
    from eventkit.io.ntidigits import write_ntidigits_h5
    from eventkit.io.shd import write_shd

    ev = make_audio_events(np.arange(3), np.arange(3), np.zeros(3, np.int64))
    with tempfile.TemporaryDirectory(prefix="eventkit-h5warm-") as tmp, contextlib.redirect_stdout(io.StringIO()):
        write_shd(Path(tmp) / "a.h5", [ev], [0], keys=["a"])
        write_ntidigits_h5(Path(tmp) / "b.h5", train=[("a-1", ev)], test=[("a-2", ev)])
        _read_everything(Path(tmp) / "a.h5")
        _read_everything(Path(tmp) / "b.h5")


def serve() -> int:
    """The helper's loop: one JSON request per line on stdin, one JSON reply per line on stdout."""
    import h5py  # noqa: F401 - loaded once, before any fork (no file open, no thread started)

    import eventkit.io.ntidigits
    import eventkit.io.shd  # noqa: F401 - also loaded before any fork

    _warm_up()
    out = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        reply = _check_in_fork(Path(req["path"]), int(req["cap"]), float(req["timeout"]))
        out.write(json.dumps(reply) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
