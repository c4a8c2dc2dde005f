"""Dataset specs: ``data_manifests/<name>.toml`` (package ``eventkit.manifests``) read
with :mod:`tomllib` into frozen dataclasses, plus root resolution and the
"what to download, from where, with which checksum, where to unpack" message.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np

from eventkit.errors import DatasetNotFound, EventFileError, ParameterError

import tomllib

if TYPE_CHECKING:
    from eventkit.datasets.discovery import Sample

__all__ = ["Archive", "Layout", "DatasetSpec", "get_dataset", "list_datasets", "resolve_root", "ENV_DATA"]

ENV_DATA = "EVENTKIT_DATA"
KINDS = ("vision", "audio", "static")
FAMILIES = ("nmnist", "cifar10dvs", "dvsgesture", "hdf5_rows", "ntidigits", "idx", "cifar10_bin")
_MANIFEST_PACKAGE = "eventkit.manifests"


class FrozenDict(dict):
    """A read-only dict (manifest tables) that still pickles (Dask ships specs to workers)."""

    def _readonly(self, *args, **kwargs):
        raise TypeError("manifest tables are read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]
    __ior__ = _readonly  # type: ignore[assignment]

    def __reduce__(self):
        return (FrozenDict, (dict(self),))


@dataclass(frozen=True)
class Archive:
    """One downloadable file of a dataset release and its published checksum.

    ``checksum == ""`` means no published digest could be confirmed (not checked).
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

    def describe(self) -> str:
        digest = f"{self.algorithm} {self.checksum}" if self.checksum else "no published checksum (not verified)"
        extra = f"; {self.note}" if self.note else ""
        return f"{self.file} from {self.url} ({digest}{extra})"


@dataclass(frozen=True)
class Layout:
    """Expected raw layout: discovery ``family``, a human description, path patterns, family parameters."""

    family: str
    description: str
    paths: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=lambda: FrozenDict({}), compare=False, hash=False)


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is (read from its manifest) and how to find and read its raw files.

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

    # ----------------------------------------------------------------- messages
    def download_instructions(self, root: str | os.PathLike | None) -> str:
        """Multi-line text: what to download, from where, with which checksum, where to unpack it."""
        target = str(Path(root).expanduser()) if root is not None else f"${ENV_DATA}/{self.name}"
        needed = [a for a in self.archives if not a.alternative and not a.optional]
        others = [a for a in self.archives if a.alternative or a.optional]
        lines = [f"To get {self.name} ({self.title}), download:"]
        lines += [f"  - {a.describe()}" for a in needed]
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
        lines.append(
            f"(eventkit looks in --root DIR, else ${ENV_DATA}/{self.name}; put the downloads in that folder and "
            f"`eventkit data unpack {self.name} --root {target}` checks and unpacks them safely; "
            f"`eventkit data verify {self.name} --root {target}` checks the result)"
        )
        return "\n".join(lines)

    def not_found(self, root: str | os.PathLike | None, problem: str) -> DatasetNotFound:
        """A :class:`DatasetNotFound` whose message states ``problem`` then the download instructions."""
        return DatasetNotFound(f"dataset {self.name!r}: {problem}.\n{self.download_instructions(root)}")

    # ------------------------------------------------------------ data access
    def samples(self, root: str | os.PathLike, split: str) -> list["Sample"]:
        """Samples of ``split`` under ``root`` in a deterministic order (ids relative to ``root``).

        Raises :class:`DatasetNotFound` (with download instructions) when nothing is found.
        """
        from eventkit.datasets.discovery import discover

        self.check_split(split)
        return discover(self, Path(root), split)

    def iter_events(self, samples: Sequence["Sample"]) -> Iterator[np.ndarray]:
        """Events of each sample in order: sorted by t, validated against ``sensor_size``,
        dataset conventions applied; files are kept open across consecutive samples of one file."""
        from eventkit.datasets.loading import iter_events

        return iter_events(self, samples)

    def load_events(self, sample: "Sample") -> np.ndarray:
        """Events of one sample (see :meth:`iter_events`)."""
        return next(iter(self.iter_events([sample])))

    def load_images(self, root: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Static datasets: (uint8 images ``[N, C, H, W]``, int64 labels ``[N]``) of ``split``."""
        from eventkit.datasets.loading import load_images

        self.check_split(split)
        return load_images(self, Path(root), split)


# ---------------------------------------------------------------------- parsing
def _require(d: Mapping[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise EventFileError(where, f"manifest is missing the key {key!r}")
    value = d[key]
    if not isinstance(value, typ):
        raise EventFileError(where, f"manifest key {key!r} must be {typ}, got {type(value).__name__}")
    return value


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return FrozenDict({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def parse_manifest(data: bytes, where: str = "<manifest>") -> DatasetSpec:
    """Build a :class:`DatasetSpec` from the bytes of a TOML manifest (``where`` names it in errors)."""
    try:
        d = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EventFileError(where, f"not a valid TOML manifest: {exc}") from exc
    name = _require(d, "name", str, where)
    kind = _require(d, "kind", str, where)
    if kind not in KINDS:
        raise EventFileError(where, f"kind {kind!r} must be one of {KINDS}")
    sensor = _require(d, "sensor_size", list, where)
    if len(sensor) != 3 or not all(isinstance(v, int) and v > 0 for v in sensor):
        raise EventFileError(where, f"sensor_size must be three positive integers, got {sensor}")
    classes = tuple(_require(d, "classes", list, where))
    splits = tuple(_require(d, "splits", list, where))
    if not classes or not splits:
        raise EventFileError(where, "classes and splits must not be empty")
    counts = dict(d.get("counts", {}))
    unknown = set(counts) - set(splits)
    if unknown:
        raise EventFileError(where, f"counts name unknown split(s) {sorted(unknown)}; splits: {list(splits)}")
    duration = d.get("duration_us")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        raise EventFileError(where, f"duration_us must be a positive integer (µs), got {duration!r}")
    if kind == "audio" and duration is None:
        raise EventFileError(where, "audio manifests need duration_us (the time base of one sample, µs)")
    lay = _require(d, "layout", dict, where)
    family = _require(lay, "family", str, where)
    if family not in FAMILIES:
        raise EventFileError(where, f"layout.family {family!r} must be one of {FAMILIES}")
    params = {k: v for k, v in lay.items() if k not in ("family", "description", "paths")}
    layout = Layout(family, str(lay.get("description", "")), tuple(lay.get("paths", ())), _freeze(params))
    archives = []
    for a in d.get("archives", []):
        algo = str(a.get("algorithm", "md5"))
        if algo not in ("md5", "sha1", "sha256"):
            raise EventFileError(where, f"archive {a.get('file')!r}: unknown checksum algorithm {algo!r}")
        archives.append(Archive(
            file=_require(a, "file", str, where), url=_require(a, "url", str, where), algorithm=algo,
            checksum=str(a.get("checksum", "")).lower(), unpack=bool(a.get("unpack", True)),
            splits=tuple(a.get("splits", ())), optional=bool(a.get("optional", False)),
            alternative=bool(a.get("alternative", False)), note=str(a.get("note", "")),
        ))
    return DatasetSpec(
        name=name, title=str(d.get("title", name)), kind=kind, sensor_size=tuple(int(v) for v in sensor),
        classes=tuple(str(c) for c in classes), splits=tuple(str(s) for s in splits), duration_us=duration,
        manifest_sha256=hashlib.sha256(data).hexdigest(), citation=str(d.get("citation", "")),
        homepage=str(d.get("homepage", "")), reader=str(d.get("reader", "")),
        timestamp_unit=str(d.get("timestamp_unit", "us")), label_rule=str(d.get("label_rule", "")),
        split_rule=str(d.get("split_rule", "")), conventions=str(d.get("conventions", "")),
        counts=FrozenDict(counts), layout=layout, archives=tuple(archives), manifest_file=where,
    )


def _manifest_dir():
    return resources.files(_MANIFEST_PACKAGE)


def list_datasets() -> list[str]:
    """Names of the datasets with a manifest, sorted."""
    return sorted(p.name[:-5] for p in _manifest_dir().iterdir() if p.name.endswith(".toml"))


@functools.lru_cache(maxsize=None)
def get_dataset(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name`` (e.g. ``"nmnist"``); ParameterError for an unknown name."""
    entry = _manifest_dir().joinpath(f"{name}.toml")
    if not isinstance(name, str) or "/" in name or not entry.is_file():
        raise ParameterError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}")
    spec = parse_manifest(entry.read_bytes(), where=f"data_manifests/{name}.toml")
    if spec.name != name:
        raise EventFileError(f"data_manifests/{name}.toml", f"manifest name {spec.name!r} differs from its file name")
    return spec


def resolve_root(name: str, root: str | os.PathLike | None = None) -> Path:
    """Raw-data folder of ``name``: ``root`` when given, else ``$EVENTKIT_DATA/<name>``.

    Raises :class:`DatasetNotFound` with the download instructions when the folder is
    absent (or neither ``root`` nor ``$EVENTKIT_DATA`` is set). Contents are checked by
    :meth:`DatasetSpec.samples` and ``eventkit data verify``.
    """
    spec = get_dataset(name)
    if root is None:
        env = os.environ.get(ENV_DATA)
        if not env:
            raise spec.not_found(
                None, f"no data folder given: pass --root DIR or set {ENV_DATA} so that ${ENV_DATA}/{name} holds the data")
        path = Path(env).expanduser() / name
        how = f"${ENV_DATA}/{name}"
    else:
        path = Path(root).expanduser()
        how = "--root"
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise spec.not_found(path, f"data folder {path} ({how}) {what}")
    return path.absolute()
