"""``eventkit data verify``: archive checksums, raw layout and sample counts of a root.

A root holding fewer samples than the release (e.g. the 1000-sample N-MNIST subset) is
reported as ``partial`` with a warning, not as an error. A missing root, a root where
no split has any sample, or an archive whose checksum differs raises
:class:`DatasetNotFound` (exit code 2 in the CLI).
"""
from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eventkit.datasets.access import get_dataset, list_samples, resolve_root
from eventkit.datasets.checksums import verify_file
from eventkit.errors import DatasetNotFound

__all__ = ["RawDataReport", "VerifyReport", "verify_dataset"]


@dataclass
class RawDataReport:
    """Result of :func:`verify_dataset` (a dataset's raw files; a cache store's check is
    :class:`eventkit.build.VerifyReport`); ``status`` is ``"complete"`` or ``"partial"``."""

    dataset: str
    root: str
    status: str
    archives: list[dict[str, Any]] = field(default_factory=list)
    splits: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


VerifyReport = RawDataReport
"""The former name of :class:`RawDataReport` (kept as an alias)."""


def _norm(name: str) -> str:
    name = name.lower().replace("ü", "ue").replace("ö", "oe").replace("ä", "ae").replace("ß", "ss")
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", name)


def _check_hdf5_keys(spec, root: Path, warnings: list[str]) -> None:
    """SHD/SSC: compare the manifest's class names with /extra/keys of the files present."""
    import h5py

    from eventkit.errors import EventFileError
    from eventkit.io._h5check import h5_verdict

    for fname in spec.layout.params["files"].values():
        path = root / fname
        if not path.is_file():
            continue
        try:
            h5_verdict(path)  # read in full by an isolated process first: libhdf5 may crash on a damaged file
            with h5py.File(path, "r") as f:
                if "extra/keys" not in f:
                    continue
                keys = [k.decode() if isinstance(k, bytes) else str(k) for k in f["extra/keys"][()]]
        except (OSError, RuntimeError, EventFileError):  # damaged: discovery/reading report it; this is advisory
            continue
        if len(keys) != len(spec.classes):
            warnings.append(f"{fname}: /extra/keys has {len(keys)} names, the manifest {len(spec.classes)} classes")
            continue
        for i, (k, c) in enumerate(zip(keys, spec.classes, strict=True)):
            nk, nc = _norm(k), _norm(c)
            if not (nk == nc or nc.endswith(nk) or nk.endswith(nc)):
                warnings.append(f"{fname}: label {i} is {k!r} in /extra/keys, {c!r} in the manifest "
                                f"(names only; the integer labels are used as stored)")
                break
        break


def find_archive(root: Path, file: str) -> Path | None:
    """A downloaded archive ``file`` at ``root/<file>``, ``root/download/<file>`` or beside the root."""
    for cand in (root / file, root / "download" / file, root.parent / file):
        if cand.is_file():
            return cand
    return None


def verify_dataset(name: str, root: str | os.PathLike | None = None, *, checksums: bool = True) -> RawDataReport:
    """Check the raw data of ``name`` under ``root`` (else ``$EVENTKIT_DATA/<name>``).

    Checks every archive present (``root/<file>``, ``root/download/<file>`` or beside the
    root) against its published checksum, discovers every split with the dataset's layout
    rule and compares the counts with the manifest (``checksums=False`` skips the digests,
    e.g. for a root written by :mod:`eventkit.testing` under the release's file names). Raises
    :class:`DatasetNotFound` when the root is missing, when no split has any sample, or on a checksum mismatch.
    """
    spec = get_dataset(name)
    path = resolve_root(name, root)
    report = RawDataReport(dataset=name, root=str(path), status="complete")
    present_unpackable = []
    for a in spec.archives:
        entry: dict[str, Any] = {"file": a.file, "algorithm": a.algorithm, "expected": a.checksum}
        found = find_archive(path, a.file)
        if found is None:
            entry["status"] = "absent"
        elif not checksums:
            entry.update(status="skipped", path=str(found))
        elif not a.checksum:
            entry.update(status="unchecked", path=str(found), note="no published checksum")
        else:
            entry.update(status="ok", path=str(found), actual=verify_file(found, a.checksum, a.algorithm))
        if found is not None and a.unpack:
            present_unpackable.append(a.file)
        report.archives.append(entry)

    total = 0
    for split in spec.splits:
        expected = spec.counts.get(split)
        try:
            samples = list_samples(spec, path, split)
        except DatasetNotFound as exc:
            samples = []
            reason = str(exc).split("\n", 1)[0]
        else:
            reason = ""
        n = len(samples)
        total += n
        if n == 0:
            status = "missing"
        elif expected is None or n == expected:
            status = "complete"
        elif n < expected:
            status = "partial"
        else:
            status = "more than the release"
        per_class = Counter(s.label for s in samples)
        report.splits[split] = {
            "found": n, "expected": expected, "status": status,
            "per_class": {spec.classes[k]: per_class.get(k, 0) for k in range(len(spec.classes))},
        }
        if reason:
            report.splits[split]["problem"] = reason
        if status != "complete":
            report.status = "partial"
            report.warnings.append(
                f"{name} {split}: {n} of {expected if expected is not None else '?'} samples found ({status})")
    if total == 0:
        hint = f" (found {', '.join(present_unpackable)}: unpack them into {path})" if present_unpackable else ""
        raise spec.not_found(path, f"no sample of any split found under {path}{hint}")
    if spec.layout.family == "hdf5_rows":
        _check_hdf5_keys(spec, path, report.warnings)
    return report
