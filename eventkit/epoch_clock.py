"""Epoch counters shared with DataLoader workers (used by :class:`eventkit.loader.FrameStream`).

A DataLoader worker holds a copy of the dataset: forked or spawned afresh every epoch, or
kept for the whole run with ``persistent_workers=True``. An epoch number stored as a plain
attribute therefore never reaches persistent workers, and a pass made in a worker never
advances the copy in the main process. :class:`EpochClock` keeps the numbers in a small
shared-memory tensor instead (shared by fork, and by torch's pickling for spawn).
"""
from __future__ import annotations

import torch

from eventkit.errors import ParameterError

__all__ = ["EpochClock", "MAX_WORKERS"]

#: DataLoader workers whose passes a clock counts (shared-memory slots)
MAX_WORKERS = 255


class EpochClock:
    """The epoch of each pass over a stream, in shared memory so that DataLoader workers
    (forked, spawned or persistent) see :meth:`set` and count their own passes.

    Slot 0 counts passes in the owning process, slot ``1 + w`` those of worker ``w``. A
    pass started in slot ``s`` uses ``epoch = base + passes[s] - marks[s]``; ``set(e)``
    makes ``base = e`` and ``marks = passes``, so the next pass of every slot is epoch ``e``.
    """

    def __init__(self) -> None:
        self.cell = torch.zeros(1 + 2 * (MAX_WORKERS + 1), dtype=torch.int64)
        try:
            self.cell.share_memory_()
        except RuntimeError:  # no shared memory here (a tiny /dev/shm): passes still count in this process
            pass

    def _views(self) -> tuple[torch.Tensor, torch.Tensor]:
        s = MAX_WORKERS + 1
        return self.cell[1:1 + s], self.cell[1 + s:]

    def set(self, epoch: int) -> None:
        passes, marks = self._views()
        marks.copy_(passes)
        self.cell[0] = int(epoch)

    def next_epoch(self) -> int:
        passes, marks = self._views()
        return int(self.cell[0]) + int((passes - marks).max())

    def begin_pass(self, slot: int) -> int:
        if slot > MAX_WORKERS:
            raise ParameterError(f"FrameStream counts the passes of up to {MAX_WORKERS} DataLoader workers; "
                                 f"use fewer workers")
        passes, marks = self._views()
        epoch = int(self.cell[0]) + int(passes[slot]) - int(marks[slot])
        passes[slot] += 1
        return epoch
