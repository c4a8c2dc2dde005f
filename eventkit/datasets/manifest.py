"""Reading ``data_manifests/<name>.toml`` (installed as ``eventkit.manifests``) into a :class:`DatasetSpec`.

A malformed manifest raises :class:`ManifestError` naming the file and the key.
"""
from __future__ import annotations

import functools
import hashlib
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

from eventkit.datasets.registry import family_names, get_family
from eventkit.datasets.spec import KINDS, Archive, DatasetSpec, FrozenDict, Layout
from eventkit.errors import ManifestError, ParameterError

__all__ = ["parse_manifest", "read_manifest", "manifest_names"]

_MANIFEST_PACKAGE = "eventkit.manifests"
_ALGORITHMS = ("md5", "sha1", "sha256")


def _require(d: Mapping[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise ManifestError(where, f"manifest is missing the key {key!r}")
    value = d[key]
    if not isinstance(value, typ):
        raise ManifestError(where, f"manifest key {key!r} must be {typ}, got {type(value).__name__}")
    return value


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return FrozenDict({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _layout(d: Mapping[str, Any], where: str) -> Layout:
    lay = _require(d, "layout", dict, where)
    family = _require(lay, "family", str, where)
    if family not in family_names():
        raise ManifestError(where, f"layout.family {family!r} must be one of {family_names()}")
    params = {k: v for k, v in lay.items() if k not in ("family", "description", "paths")}
    missing = [k for k in get_family(family).required_params if k not in params]
    if missing:
        raise ManifestError(where, f"layout family {family!r} needs the [layout] key(s) {', '.join(missing)}")
    return Layout(family, str(lay.get("description", "")), tuple(lay.get("paths", ())), _freeze(params))


def _archive(a: Mapping[str, Any], where: str) -> Archive:
    algo = str(a.get("algorithm", "md5"))
    if algo not in _ALGORITHMS:
        raise ManifestError(where, f"archive {a.get('file')!r}: unknown checksum algorithm {algo!r}")
    mirrors = a.get("mirrors", [])
    if not isinstance(mirrors, list) or not all(isinstance(m, str) for m in mirrors):
        raise ManifestError(where, f"archive {a.get('file')!r}: mirrors must be a list of URLs")
    return Archive(
        file=_require(a, "file", str, where), url=_require(a, "url", str, where), algorithm=algo,
        checksum=str(a.get("checksum", "")).lower(), unpack=bool(a.get("unpack", True)),
        splits=tuple(a.get("splits", ())), optional=bool(a.get("optional", False)),
        alternative=bool(a.get("alternative", False)), note=str(a.get("note", "")),
        mirrors=tuple(mirrors), manual=bool(a.get("manual", False)),
    )


def parse_manifest(data: bytes, where: str = "<manifest>") -> DatasetSpec:
    """Build a :class:`DatasetSpec` from the bytes of a TOML manifest (``where`` names it in errors)."""
    try:
        d = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(where, f"not a valid TOML manifest: {exc}") from exc
    name = _require(d, "name", str, where)
    kind = _require(d, "kind", str, where)
    if kind not in KINDS:
        raise ManifestError(where, f"kind {kind!r} must be one of {KINDS}")
    sensor = _require(d, "sensor_size", list, where)
    if len(sensor) != 3 or not all(isinstance(v, int) and v > 0 for v in sensor):
        raise ManifestError(where, f"sensor_size must be three positive integers, got {sensor}")
    classes = tuple(_require(d, "classes", list, where))
    splits = tuple(_require(d, "splits", list, where))
    if not classes or not splits:
        raise ManifestError(where, "classes and splits must not be empty")
    counts = dict(d.get("counts", {}))
    unknown = set(counts) - set(splits)
    if unknown:
        raise ManifestError(where, f"counts name unknown split(s) {sorted(unknown)}; splits: {list(splits)}")
    duration = d.get("duration_us")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        raise ManifestError(where, f"duration_us must be a positive integer (µs), got {duration!r}")
    if kind == "audio" and duration is None:
        raise ManifestError(where, "audio manifests need duration_us (the time base of one sample, µs)")
    return DatasetSpec(
        name=name, title=str(d.get("title", name)), kind=kind,
        sensor_size=(int(sensor[0]), int(sensor[1]), int(sensor[2])),
        classes=tuple(str(c) for c in classes), splits=tuple(str(s) for s in splits), duration_us=duration,
        manifest_sha256=hashlib.sha256(data).hexdigest(), citation=str(d.get("citation", "")),
        homepage=str(d.get("homepage", "")), reader=str(d.get("reader", "")),
        timestamp_unit=str(d.get("timestamp_unit", "us")), label_rule=str(d.get("label_rule", "")),
        split_rule=str(d.get("split_rule", "")), conventions=str(d.get("conventions", "")),
        counts=FrozenDict(counts), layout=_layout(d, where),
        archives=tuple(_archive(a, where) for a in d.get("archives", [])), manifest_file=where,
    )


def manifest_names() -> list[str]:
    """Names of the datasets with an installed manifest, sorted."""
    return sorted(p.name[:-5] for p in resources.files(_MANIFEST_PACKAGE).iterdir() if p.name.endswith(".toml"))


@functools.cache
def read_manifest(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of the installed manifest ``name``; ParameterError for an unknown name."""
    if not isinstance(name, str) or "/" in name or name not in manifest_names():
        raise ParameterError(f"unknown dataset {name!r}; known datasets: {', '.join(manifest_names())}")
    where = f"data_manifests/{name}.toml"
    spec = parse_manifest(resources.files(_MANIFEST_PACKAGE).joinpath(f"{name}.toml").read_bytes(), where=where)
    if spec.name != name:
        raise ManifestError(where, f"manifest name {spec.name!r} differs from its file name")
    return spec
