"""Execution of the shard tasks: in-process, a local Dask cluster or a running scheduler; progress."""
from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from eventkit.build.params import RETRIES
from eventkit.build.result import BuildError
from eventkit.errors import EventkitError, ParameterError

# ---------------------------------------------------------------------------------------
# execution
# ---------------------------------------------------------------------------------------

@dataclass
class _Task:
    store: str
    k: int
    n_samples: int
    what: str                 # "<name>/<split> shard k (samples a..b)" for error messages
    fn: Callable
    args: tuple


def _fail(task: _Task, exc: BaseException) -> EventkitError:
    if isinstance(exc, EventkitError):
        return exc
    detail = " ".join(str(exc).split())  # one line: e.g. distributed's KilledWorker spans several
    return BuildError(f"{task.what} failed after {RETRIES + 1} attempts: {type(exc).__name__}: {detail}")


class _Progress:
    """Progress over samples with events/s and samples/s, on stderr.

    A terminal gets a tqdm bar redrawn in place. Anything else (a log file, a pipe, a
    batch job's output) gets plain newline-terminated lines: one every
    :attr:`LINE_EVERY_S` seconds while shards finish and one at the end — never the
    carriage-return redraws that pile up on one line there.
    """

    #: seconds between two plain progress lines (non-terminal stderr)
    LINE_EVERY_S = 30.0

    def __init__(self, total: int, initial: int, desc: str, enabled: bool, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.initial, self.desc = int(total), int(initial), desc
        self.enabled = bool(enabled)
        self.t0 = self.last_line = time.perf_counter()
        self.samples = 0
        self.events = 0
        self.closed = False
        self.bar = None
        if self.enabled and _isatty(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="sample", file=self.stream,
                            dynamic_ncols=True, leave=True)

    def _rates(self) -> str:
        dt = max(time.perf_counter() - self.t0, 1e-9)
        return f"{self.events / dt:,.0f} ev/s, {self.samples / dt:,.1f} samples/s"

    def _line(self) -> None:
        done = self.initial + self.samples
        resumed = f" ({self.initial} already built)" if self.initial else ""
        rates = f", {self._rates()}, {time.perf_counter() - self.t0:.1f} s" if self.samples else ""
        self.stream.write(f"{self.desc}: {done}/{self.total} samples{resumed}{rates}\n")
        self.stream.flush()

    def update(self, n: int, events: int) -> None:
        self.samples += n
        self.events += events
        if self.bar is not None:
            self.bar.set_postfix_str(self._rates(), refresh=False)
            self.bar.update(n)
        elif self.enabled and time.perf_counter() - self.last_line >= self.LINE_EVERY_S:
            self.last_line = time.perf_counter()
            self._line()

    def close(self, *, failed: bool = False) -> None:
        """End the bar (a final plain line off a terminal, unless the build ``failed``)."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and not failed:
            self._line()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _run_sync(tasks: list[_Task], progress: _Progress) -> None:
    import dask

    for task in tasks:
        for attempt in range(RETRIES + 1):
            try:
                # the arguments travel inside a partial: dask must not traverse the sample list
                call = dask.delayed(functools.partial(task.fn, *task.args), pure=False, traverse=False)
                _, n, events = call().compute(scheduler="sync")
                break
            except Exception as exc:  # noqa: BLE001 - retried, then reported with the sample named
                if attempt == RETRIES:
                    raise _fail(task, exc) from exc
        progress.update(n, events)


def _run_distributed(tasks: list[_Task], progress: _Progress, *, workers: int, scheduler: str | None) -> None:
    from distributed import Client, as_completed

    from eventkit.cluster import local_cluster, quiet_logs

    with contextlib.ExitStack() as stack:
        stack.enter_context(quiet_logs())  # no scheduler/nanny INFO lines on start and stop
        if scheduler is not None:
            try:
                client = Client(scheduler, timeout="30s")
            except OSError as exc:
                raise BuildError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        else:
            try:
                cluster = local_cluster(workers)
            except (OSError, RuntimeError, TimeoutError) as exc:
                raise BuildError(f"could not start a local Dask cluster of {workers} worker processes "
                                 f"({type(exc).__name__}: {exc}); rerun with --workers 1") from exc
            stack.callback(cluster.close)  # after the client (closed first), before the logs are restored
            client = Client(cluster)
        with client:
            futures = [client.submit(task.fn, *task.args, retries=RETRIES, pure=False) for task in tasks]
            by_key = {fut.key: task for fut, task in zip(futures, tasks)}
            for fut in as_completed(futures):
                task = by_key[fut.key]
                if fut.status != "finished":
                    exc = fut.exception()
                    client.cancel(futures)
                    raise _fail(task, exc) from None
                _, n, events = fut.result()
                progress.update(n, events)


def _execute(tasks: list[_Task], progress: _Progress, *, workers: int | None, scheduler: str | None) -> None:
    if not tasks:
        return
    if scheduler is None and (workers is None or int(workers) <= 1):
        _run_sync(tasks, progress)
    else:
        _run_distributed(tasks, progress, workers=int(workers or 1), scheduler=scheduler)


def _check_workers(workers: int | None, scheduler: str | None) -> None:
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise ParameterError(f"workers must be an integer >= 1, got {workers!r}")
    if scheduler is not None and "://" not in str(scheduler):
        raise ParameterError(f"scheduler must be a Dask address such as tcp://host:8786, got {scheduler!r}")

