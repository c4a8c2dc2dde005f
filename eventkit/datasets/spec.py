"""What a dataset is, as pure data: :class:`DatasetSpec`, :class:`Archive`, :class:`Layout`.

Specs are read from ``data_manifests/<name>.toml`` by :mod:`eventkit.datasets.manifest`;
this module imports nothing else of the package. Finding and reading a dataset's files
is done by free functions (:mod:`eventkit.datasets.access`), with the rules of its
layout family (:mod:`eventkit.datasets.families`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventkit.errors import DatasetNotFound, ParameterError

__all__ = ["Archive", "Layout", "DatasetSpec", "FrozenDict", "ENV_DATA", "KINDS"]

ENV_DATA = "EVENTKIT_DATA"
KINDS = ("vision", "audio", "static")


class FrozenDict(dict):
    """A read-only dict (manifest tables) that still pickles (Dask ships specs to workers)."""

    def _readonly(self, *args, **kwargs):
        raise TypeError("manifest tables are read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly
    __ior__ = _readonly

    def __reduce__(self):
        return (FrozenDict, (dict(self),))


@dataclass(frozen=True)
class Archive:
    """One downloadable file of a dataset release and its published checksum.

    ``checksum == ""`` means no published digest could be confirmed (not checked).
    ``mirrors``: further URLs of the same bytes, tried in order after ``url``.
    ``manual``: the file sits behind a browser page or a form: ``url`` is where to get it
    by hand (``eventkit data fetch`` says so instead of downloading).
    ``unpack``: an archive to extract into the root (False: the file is used as is).
    ``alternative``: another release of the same data (e.g. AEDAT 4), not needed.
    """

    file: str
    url: str
    algorithm: str
    checksum: str
    unpack: bool = True
    splits: tuple[str, ...] = ()
    optional: bool = False
    alternative: bool = False
    note: str = ""
    mirrors: tuple[str, ...] = ()
    manual: bool = False

    @property
    def urls(self) -> tuple[str, ...]:
        """``url`` then the mirrors: the order in which a download tries them."""
        return (self.url, *self.mirrors)

    def describe(self) -> str:
        digest = f"{self.algorithm} {self.checksum}" if self.checksum else "no published checksum (not verified)"
        extra = f"; {self.note}" if self.note else ""
        mirrors = f"; mirror{'s' if len(self.mirrors) > 1 else ''}: {', '.join(self.mirrors)}" if self.mirrors else ""
        return f"{self.file} from {self.url} ({digest}{mirrors}{extra})"


@dataclass(frozen=True)
class Layout:
    """Expected raw layout: discovery ``family``, a human description, path patterns, family parameters."""

    family: str
    description: str
    paths: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=lambda: FrozenDict({}), compare=False, hash=False)


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is, as read from its manifest (pure data: no file access).

    ``sensor_size``: ``(W, H, P)`` vision, ``(C, 1, P)`` audio, ``(W, H, C)`` static.
    ``duration_us``: audio only, the fixed time base of one sample (µs) for
    ``split_by="time"``; None otherwise. ``manifest_sha256``: sha256 of the manifest bytes.
    """

    name: str
    title: str
    kind: str
    sensor_size: tuple[int, int, int]
    classes: tuple[str, ...]
    splits: tuple[str, ...]
    duration_us: int | None
    manifest_sha256: str
    citation: str = ""
    homepage: str = ""
    reader: str = ""
    timestamp_unit: str = "us"
    label_rule: str = ""
    split_rule: str = ""
    conventions: str = ""
    counts: Mapping[str, int] = field(default_factory=lambda: FrozenDict({}), compare=False, hash=False)
    layout: Layout = field(default_factory=lambda: Layout("", "", ()), compare=False, hash=False)
    archives: tuple[Archive, ...] = ()
    manifest_file: str = ""

    # ------------------------------------------------------------------ queries
    def expected_count(self, split: str) -> int | None:
        """Number of samples of ``split`` in the full release (None when the manifest has none)."""
        self.check_split(split)
        return self.counts.get(split)

    def check_split(self, split: str) -> None:
        """Raise :class:`ParameterError` unless ``split`` is one of ``self.splits``."""
        if split not in self.splits:
            raise ParameterError(f"dataset {self.name!r} has no split {split!r}; splits: {', '.join(self.splits)}")

    def label_name(self, label: int) -> str:
        return self.classes[label]

    def needed_archives(self) -> list[Archive]:
        """The files a full copy needs (neither optional nor an alternative release)."""
        return [a for a in self.archives if not a.alternative and not a.optional]

    # ----------------------------------------------------------------- messages
    def download_instructions(self, root: str | os.PathLike | None) -> str:
        """Multi-line text: what to download, from where, with which checksum, where to unpack it."""
        target = str(Path(root).expanduser()) if root is not None else f"${ENV_DATA}/{self.name}"
        needed = self.needed_archives()
        others = [a for a in self.archives if a.alternative or a.optional]
        lines = [f"To get {self.name} ({self.title}), download:"]
        lines += [f"  - {a.describe()}" + ("  [by hand: browser or form]" if a.manual else "") for a in needed]
        if others:
            lines.append("  optional / alternative:")
            lines += [f"  - {a.describe()}" for a in others]
        unpack = [a.file for a in needed if a.unpack]
        keep = [a.file for a in needed if not a.unpack]
        if unpack:
            lines.append(f"then unpack {', '.join(unpack)} into {target}")
        if keep:
            lines.append(f"{'and put' if unpack else 'then put'} {', '.join(keep)} in {target} as is")
        lines.append(f"so that {target} holds: {self.layout.description}")
        if needed and not any(a.manual for a in needed):
            lines.append(f"`eventkit data fetch {self.name} --root {target}` does all of this "
                         f"(download, checksums, safe unpacking).")
        lines.append(
            f"(eventkit looks in --root DIR, else ${ENV_DATA}/{self.name}; put the downloads in that folder and "
            f"`eventkit data unpack {self.name} --root {target}` checks and unpacks them safely; "
            f"`eventkit data verify {self.name} --root {target}` checks the result)"
        )
        return "\n".join(lines)

    def not_found(self, root: str | os.PathLike | None, problem: str) -> DatasetNotFound:
        """A :class:`DatasetNotFound` whose message states ``problem`` then the download instructions."""
        return DatasetNotFound(f"dataset {self.name!r}: {problem}.\n{self.download_instructions(root)}")
