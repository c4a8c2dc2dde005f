"""Run shard tasks in a child process under a time limit, so that a sample that crashes or hangs the
reader (a segfault in a decoder library, an endless loop) is named instead of taking the build down.

Each thread that runs tasks (the build's own, or a Dask worker's) forks one *sandbox* child
the first time and sends it one task after the other through a pipe; the sandbox reports the
index of the sample it starts on, writes the shard itself and sends back a small result. The
kernels it compiles and the modules it loads stay loaded for the next task. A sandbox that
crashes, or runs past the time limit (it is then killed), is replaced by a new fork. It dies
with the thread that forked it (``PR_SET_PDEATHSIG`` on Linux) and exits when the pipe closes.
Where ``fork`` does not exist, tasks run in-process.
"""
from __future__ import annotations

import os
import pickle
import select
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_TASK_TIMEOUT", "TaskDied", "run_isolated", "can_isolate", "reset_sandbox"]

#: default per-task time limit of a build (seconds)
DEFAULT_TASK_TIMEOUT = 1800.0


class TaskDied(Exception):
    """The isolated task crashed or ran past its time limit; ``sample`` is the index it was on (or None)."""

    def __init__(self, reason: str, sample: int | None):
        super().__init__(reason)
        self.reason, self.sample = reason, sample

    def __reduce__(self):
        return (type(self), (self.reason, self.sample))


def can_isolate() -> bool:
    return hasattr(os, "fork")


def _send(fd: int, kind: bytes, payload: bytes) -> None:
    data = kind + len(payload).to_bytes(8, "little") + payload
    while data:
        data = data[os.write(fd, data):]


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the sandbox exits when the pipe closes
        pass


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _serve(tasks_r: int, results_w: int) -> None:  # pragma: no cover - runs in the sandbox child
    import faulthandler

    _die_with_parent()
    faulthandler.disable()  # a crash is reported by the parent, naming the sample, not as a stack dump
    while True:
        head = _read_exact(tasks_r, 8)
        if head is None:
            return
        body = _read_exact(tasks_r, int.from_bytes(head, "little"))
        if body is None:
            return
        try:
            fn, args, kwargs = pickle.loads(body)
            result = fn(*args, on_sample=lambda j: _send(results_w, b"S", int(j).to_bytes(8, "little")), **kwargs)
            _send(results_w, b"R", pickle.dumps(result))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            try:
                payload = pickle.dumps(exc)
                pickle.loads(payload)
            except Exception:  # noqa: BLE001 - an exception that does not pickle: its text travels
                payload = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
            _send(results_w, b"E", payload)


class _Sandbox:
    def __init__(self):
        tasks_r, self.tasks_w = os.pipe()
        self.results_r, results_w = os.pipe()
        self.owner = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child
            code = 0
            try:
                os.close(self.tasks_w)
                os.close(self.results_r)
                _serve(tasks_r, results_w)
            except BaseException:  # noqa: BLE001 - the child always ends through os._exit
                code = 1
            finally:
                os._exit(code)
        os.close(tasks_r)
        os.close(results_w)

    def close(self, kill: bool = False) -> None:
        for fd in (self.tasks_w, self.results_r):
            try:
                os.close(fd)
            except OSError:
                pass
        if kill:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass

    def run(self, fn: Callable[..., Any], args: tuple, kwargs: dict, time_limit: float | None) -> Any:
        body = pickle.dumps((fn, args, kwargs))
        try:
            os.write(self.tasks_w, len(body).to_bytes(8, "little"))
            view = memoryview(body)
            while view:
                view = view[os.write(self.tasks_w, view):]
        except BrokenPipeError:
            return self._died(None)
        deadline = None if time_limit is None else time.monotonic() + float(time_limit)
        buf, sample = b"", None
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.results_r], [], [], wait)
            if not ready:
                self.close(kill=True)
                raise TaskDied(f"did not finish within {time_limit:g} s (the task time limit)", sample)
            chunk = os.read(self.results_r, 1 << 16)
            if not chunk:
                return self._died(sample)
            buf += chunk
            while len(buf) >= 9:
                kind, size = buf[:1], int.from_bytes(buf[1:9], "little")
                if len(buf) < 9 + size:
                    break
                payload, buf = buf[9:9 + size], buf[9 + size:]
                if kind == b"S":
                    sample = int.from_bytes(payload, "little")
                    continue
                value = pickle.loads(payload)
                if kind == b"E":
                    raise value
                return value

    def _died(self, sample: int | None):
        for fd in (self.tasks_w, self.results_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            status = 0
        if os.WIFSIGNALED(status):
            reason = f"killed the builder process ({_signal_name(os.WTERMSIG(status))})"
        else:
            reason = f"ended the builder process without a result (exit code {os.waitstatus_to_exitcode(status)})"
        raise TaskDied(reason, sample)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


_local = threading.local()  # one sandbox per thread: PR_SET_PDEATHSIG ends it with the thread that forked it


def _alive(box: _Sandbox) -> bool:
    try:
        pid, _ = os.waitpid(box.pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return pid == 0


def run_isolated(fn: Callable[..., Any], args: tuple = (), kwargs: dict | None = None, *,
                 time_limit: float | None = None) -> Any:
    """``fn(*args, on_sample=..., **kwargs)`` in this thread's sandbox child; its result, or its exception.

    ``fn`` (picklable, as are its arguments and result) calls ``on_sample(j)`` before each
    sample. Raises :class:`TaskDied` when the sandbox is killed by a signal, exits, or runs
    past ``time_limit`` seconds (then it is killed); the next call starts a new sandbox.
    """
    kwargs = kwargs or {}
    if not can_isolate():
        return fn(*args, on_sample=lambda j: None, **kwargs)
    box = getattr(_local, "sandbox", None)
    if box is None or box.owner != os.getpid() or not _alive(box):
        box = _local.sandbox = _Sandbox()
    try:
        return box.run(fn, args, kwargs, time_limit)
    except TaskDied:
        _local.sandbox = None
        raise


def reset_sandbox() -> None:
    """End this thread's sandbox; the next task forks a new one (with the modules as they are now)."""
    box, _local.sandbox = getattr(_local, "sandbox", None), None
    if box is not None and box.owner == os.getpid():
        box.close(kill=True)
