"""What a build returns and raises: :class:`BuildResult`, :class:`BuildError`, :class:`StoreVerifyReport`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eventkit.errors import EventkitError

__all__ = ["BuildError", "BuildResult", "StoreVerifyReport", "VerifyReport"]


class BuildError(EventkitError, RuntimeError):
    """A shard could not be built; the message names the dataset, split, shard, sample id and raw file."""

    def __init__(self, message: str, sample_id: str | None = None, path: str | None = None):
        super().__init__(message)
        self.sample_id = sample_id
        self.path = path

    def __reduce__(self):  # keep the attributes when the error crosses a process boundary
        return (type(self), (str(self), self.sample_id, self.path))


@dataclass(frozen=True)
class BuildResult:
    """What a build produced.

    ``stores``: split -> store URL; ``samples``/``events``: totals over those stores
    (whole stores, resumed shards included; ``events`` of an encoded store = nonzero
    entries); ``seconds``: wall time of this call; ``built_samples``/``built_events``:
    what this call computed (0 when the stores were already complete); ``store_bytes``:
    split -> bytes on disk; ``skipped``: split -> samples left out by ``skip_bad`` (only splits with any).
    """

    dataset: str
    T: int
    split_by: str | None
    stores: dict[str, str]
    samples: int
    events: int
    seconds: float
    representation: str = "frames"
    built_samples: int = 0
    built_events: int = 0
    store_bytes: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, list[dict]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object of ``eventkit frames`` / ``eventkit encode``."""
        return {"dataset": self.dataset, "T": self.T, "split_by": self.split_by, "stores": dict(self.stores),
                "samples": self.samples, "events": self.events, "seconds": round(self.seconds, 3),
                **({"skipped": self.skipped} if self.skipped else {})}


@dataclass
class StoreVerifyReport:
    """Result of :func:`eventkit.build.verify_store` (``eventkit cache verify``); not the dataset
    check of ``eventkit data verify`` (:class:`eventkit.datasets.VerifyReport`).

    ``checked_shards``: shards recomputed from the raw files; ``mismatches``:
    ``(shard, sample_index, sample_id)`` whose frames, label, event count or id differ;
    ``corrupt_shards``: ``(shard, problem)`` whose bytes fail a checksum or their marker's
    sha256; ``incomplete_shards``: shards without a completion marker; ``marked_complete``:
    the store's ``complete`` flag (False after a build that wrote every shard but stopped
    before marking the store; loaders refuse such a store); ``stray_files``: files under the
    store that do not belong to it (temporary files of killed writers, anything else);
    ``stale``: why the raw files no longer match those the store was built from (None when
    they match or were not checked); ``skipped_samples``: samples left out by ``--skip-bad``.
    """

    url: str
    n_shards: int
    checked_shards: list[int]
    mismatches: list[tuple[int, int, str]] = field(default_factory=list)
    corrupt_shards: list[tuple[int, str]] = field(default_factory=list)
    incomplete_shards: list[int] = field(default_factory=list)
    marked_complete: bool = True
    stray_files: list[str] = field(default_factory=list)
    stale: str | None = None
    skipped_samples: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.marked_complete and not (self.mismatches or self.corrupt_shards or self.incomplete_shards
                                             or self.stray_files or self.stale)

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "ok": self.ok, "n_shards": self.n_shards, "checked_shards": self.checked_shards,
                "mismatches": [list(m) for m in self.mismatches],
                "corrupt_shards": [list(c) for c in self.corrupt_shards],
                "incomplete_shards": self.incomplete_shards, "marked_complete": self.marked_complete,
                "stray_files": self.stray_files, "stale": self.stale, "skipped_samples": self.skipped_samples}


#: the name this report had before the dataset check got its own ``VerifyReport``
VerifyReport = StoreVerifyReport
