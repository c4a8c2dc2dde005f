"""Progress reports on stderr: a tqdm bar on a terminal, plain lines anywhere else.

Every command and library function that reports progress takes ``progress=`` (a *mode*):

* ``True`` or ``"auto"``: a tqdm bar when the stream is a terminal, plain lines otherwise
  (a log file, a pipe, a batch job's output);
* ``"lines"``: plain lines even on a terminal (what ``--json`` asks for: no redraws);
* ``False``, ``None`` or ``"off"``: nothing.

Plain lines are newline-terminated and rate-limited: at most one per ``every_s`` seconds
(default :data:`LINE_EVERY_S`) while work goes on, then one final line at :meth:`Progress.close`
(``final="always"``, e.g. a cache build) or only when an earlier line was written
(``final="after-lines"``, e.g. one pass of a training epoch, which the trainer sums up in
its own line). Never the carriage-return redraws that pile up in a log file.

Typical use::

    with Progress(total=len(loader), desc="epoch 1 train", unit="batches", progress=mode) as bar:
        for batch in loader:
            ...
            bar.update(1, postfix=lambda: f"loss {running_loss():.4f}")  # evaluated only when shown
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any, Literal

from eventkit.errors import ParameterError

__all__ = ["Progress", "ProgressMode", "resolve_mode", "isatty", "LINE_EVERY_S"]

#: seconds between two plain progress lines (off a terminal)
LINE_EVERY_S = 30.0
#: seconds between two postfix refreshes of a tqdm bar (a postfix may cost a device sync)
_BAR_POSTFIX_EVERY_S = 0.5

ProgressMode = bool | str | None
Postfix = str | Callable[[], str] | None


def isatty(stream: Any) -> bool:
    """Whether ``stream`` is a terminal (False for anything without a working ``isatty``)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def resolve_mode(progress: ProgressMode, stream: Any = None) -> Literal["bar", "lines", "off"]:
    """What a ``progress=`` value means for ``stream`` (default ``sys.stderr``): ``"bar"``,
    ``"lines"`` or ``"off"``."""
    if progress is None or progress is False:
        return "off"
    if progress is True or progress == "auto":
        return "bar" if isatty(sys.stderr if stream is None else stream) else "lines"
    if progress in ("lines", "off"):
        return progress  # type: ignore[return-value]
    raise ParameterError(f"progress={progress!r}: True/'auto' (bar on a terminal, lines elsewhere), "
                         f"'lines' or False/'off'")


class Progress:
    """Progress of one job over ``total`` units (``None``: unknown) on ``stream`` (stderr).

    ``unit_scale``: amounts with SI prefixes (``12.3 MB`` for ``unit="B"``) instead of plain counts.
    ``update(n, postfix=..., **counts)`` after each piece of work: ``counts`` (e.g.
    ``events=12345``) are summed and shown as rates; ``postfix`` is a string or a callable
    returning one, called only when the text is shown. ``close()`` (or leaving a ``with``
    block) ends the bar or writes the final line; after an exception no final line is written.
    Attributes ``done`` (units counted by this object) and ``counts`` (the summed counts).
    """

    def __init__(self, total: int | None = None, desc: str = "", *, progress: ProgressMode = True,
                 unit: str = "items", unit_scale: bool = False, initial: int = 0, leave: bool = True,
                 every_s: float = LINE_EVERY_S,
                 final: Literal["always", "after-lines"] = "always", stream: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if final not in ("always", "after-lines"):
            raise ParameterError(f"final={final!r}: 'always' or 'after-lines'")
        if not every_s > 0:
            raise ParameterError(f"every_s must be > 0 seconds, got {every_s!r}")
        self.stream = sys.stderr if stream is None else stream
        self.mode = resolve_mode(progress, self.stream)
        self.total = None if total is None else int(total)
        self.initial, self.desc, self.unit, self.unit_scale = int(initial), desc, unit, bool(unit_scale)
        self.every_s, self.final, self.clock = float(every_s), final, clock
        self.t0 = self.last_line = self.last_postfix = clock()
        self.done = 0
        self.counts: dict[str, float] = {}
        self.lines = 0  # plain lines written
        self.closed = False
        self._postfix: Postfix = None
        self._bar: Any = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, initial=self.initial, desc=desc, unit=unit, unit_scale=unit_scale,
                             file=self.stream,
                             dynamic_ncols=True, leave=leave)

    @property
    def enabled(self) -> bool:
        """Whether anything is shown."""
        return self.mode != "off"

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.close(failed=exc_type is not None)

    def update(self, n: int = 1, *, postfix: Postfix = None, **counts: float) -> None:
        """Count ``n`` more units (and ``counts``); redraw the bar or write a line when one is due."""
        self.done += int(n)
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0.0) + value
        if postfix is not None:
            self._postfix = postfix
        if self.mode == "off":
            return
        now = self.clock()
        if self._bar is not None:
            if (self._postfix is not None or self.counts) and now - self.last_postfix >= _BAR_POSTFIX_EVERY_S:
                self.last_postfix = now
                self._bar.set_postfix_str(self._extras(now), refresh=False)
            self._bar.update(int(n))
        elif now - self.last_line >= self.every_s:
            self.last_line = now
            self._write_line(now)

    def skip(self, n: int) -> None:
        """Count ``n`` units done elsewhere (e.g. by another builder meanwhile): shown as done, not in the rates."""
        self.initial += int(n)
        if self._bar is not None:
            self._bar.update(int(n))

    def close(self, *, failed: bool = False) -> None:
        """End the bar, or write the final line (see ``final``; none when ``failed``). Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "lines" and not failed and (self.final == "always" or self.lines):
            self._write_line(self.clock(), final=True)

    # -- text ---------------------------------------------------------------------------------
    def _postfix_text(self) -> str:
        p = self._postfix
        return p() if callable(p) else (p or "")

    def _extras(self, now: float) -> str:
        dt = max(now - self.t0, 1e-9)
        parts = [f"{v / dt:,.0f} {k}/s" for k, v in self.counts.items()]
        post = self._postfix_text()
        return ", ".join(parts + ([post] if post else []))

    def line(self, now: float | None = None) -> str:
        """The plain progress line for the state now (without newline)."""
        now = self.clock() if now is None else now
        dt = now - self.t0
        done = self.initial + self.done
        head = f"{self.desc}: " if self.desc else ""
        if self.unit_scale:
            count = _scaled(done, self.unit) + (f"/{_scaled(self.total, self.unit)}" if self.total is not None else "")
            resumed = f" ({_scaled(self.initial, self.unit)} done before)" if self.initial else ""
            rate = f", {_scaled(self.done / dt, self.unit)}/s" if self.done and dt > 0 else ""
        else:
            count = f"{done}/{self.total} {self.unit}" if self.total is not None else f"{done} {self.unit}"
            resumed = f" ({self.initial} done before)" if self.initial else ""
            rate = f", {self.done / dt:,.1f} {self.unit}/s" if self.done and dt > 0 else ""
        extras = self._extras(now)
        return f"{head}{count}{resumed}{rate}{', ' + extras if extras else ''}, {dt:.1f} s"

    def _write_line(self, now: float, *, final: bool = False) -> None:
        self.stream.write(self.line(now) + (", done" if final else "") + "\n")
        self.stream.flush()
        self.lines += 1


def _scaled(amount: float, unit: str) -> str:
    """``12_345_678, "B"`` -> ``"12.3 MB"`` (SI prefixes, as tqdm's ``unit_scale``)."""
    for prefix in ("", "k", "M", "G", "T"):
        if abs(amount) < 999.95 or prefix == "T":
            break
        amount /= 1000
    return f"{amount:.0f} {unit}" if prefix == "" and float(amount).is_integer() else f"{amount:.1f} {prefix}{unit}"
