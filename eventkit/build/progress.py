"""Build progress over samples on stderr: a tqdm bar on a terminal, plain lines anywhere else."""
from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
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

    def update_done(self, n: int) -> None:
        """``n`` samples were built by another builder meanwhile (counted as done, not in the rates)."""
        self.initial += n
        if self.bar is not None:
            self.bar.update(n)

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
