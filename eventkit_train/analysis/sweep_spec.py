"""Sweep specs: a grid over training-recipe fields, expanded into cells (one training run each).

A spec is a TOML file (``configs/sweeps/*.toml``)::

    [sweep]
    base = "../fsnn-nmnist.toml"   # recipe the cells start from (relative to this file; optional)
    seeds = [0, 1, 2]              # every grid point runs once per seed
    metric = "test_accuracy"       # summary key tabulated as mean ± std over the seeds; a list:
                                   # the first key a cell's summary has (default DEFAULT_METRICS)
    rows = ["tau_mem"]             # axes along the table's rows / columns (default: first / second axis)
    columns = ["tau_syn"]

    [train]                        # replaces whole fields of the base recipe, for every cell
    epochs = 50

    [[grid]]                       # one product of axes; several [[grid]] blocks are joined
    [[grid.axis]]
    name = "tau_mem"
    field = ["neuron_kwargs.tau_mem", "readout_kwargs.tau_mem"]   # dotted: a key inside a dict field
    values = [14, 70, 140]
    [[grid.axis]]
    name = "tau_syn"
    levels = [{ label = "0 (LIF)", set = { "neuron_kwargs.alpha" = 0.0 } },
              { label = "14", set = { "neuron_kwargs.tau_syn" = 14.0 } }]

    [reference]                    # optional: the paper's numbers, key = labels joined by "|"
    "14|0 (LIF)" = 96.00

A level may also carry ``recipe = "other.toml"``: the cell then starts from that recipe
(e.g. one level per dataset). A single grid may be written as top-level ``[[axis]]`` blocks.
Cell configuration, in order: the recipe, ``[train]``, the axes' settings, the caller's
overrides, the seed. Every cell is validated as a :class:`~eventkit_train.trainer.TrainConfig`
when the spec is expanded. A cell's identity is its labels, its seed and a hash of its
configuration (without :data:`IDENTITY_EXCLUDED`: where data and outputs live, device, threads,
timeouts): its run folder is ``cells/<labels>__seed<s>-<hash>``, so a changed cell never reuses an
old folder and two cells never share one.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventkit.errors import ParameterError

__all__ = ["Level", "Axis", "Cell", "SweepSpec", "load_sweep", "apply_setting", "IDENTITY_EXCLUDED", "DEFAULT_METRICS"]

#: the default metric: the test accuracy at the epoch chosen on the validation split, or (a trainer
#: without a validation split) the best test accuracy over the epochs
DEFAULT_METRICS = ("test_accuracy_at_best", "best_test_accuracy")
#: TrainConfig fields that do not change what a cell computes (not part of its hash)
IDENTITY_EXCLUDED = ("out", "device", "threads", "workers", "build_workers", "root", "cache", "dist_timeout_s",
                     "cache_wait_s")


@dataclass(frozen=True)
class Level:
    """One value of an axis: its ``label``, the dotted fields it sets, and an optional recipe."""

    label: str
    settings: tuple[tuple[str, Any], ...]
    recipe: str | None = None


@dataclass(frozen=True)
class Axis:
    name: str
    levels: tuple[Level, ...]


@dataclass(frozen=True)
class Cell:
    """One training run: ``labels`` (axis name -> level label), ``seed``, the full ``config`` dict."""

    labels: tuple[tuple[str, str], ...]
    seed: int
    config: dict[str, Any]
    digest: str

    @property
    def key(self) -> str:
        """The grid point (without the seed): labels joined by ``|`` in axis order."""
        return "|".join(label for _, label in self.labels)

    @property
    def dirname(self) -> str:
        text = "__".join(f"{name}={label}" for name, label in self.labels) or "cell"
        safe = re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")[:100]
        return f"{safe}__seed{self.seed}-{self.digest}"


@dataclass(frozen=True)
class SweepSpec:
    """A parsed spec; :meth:`cells` expands it."""

    path: Path
    name: str
    base: dict[str, Any]
    train: dict[str, Any]
    grids: tuple[tuple[Axis, ...], ...]
    seeds: tuple[int, ...]
    metrics: tuple[str, ...]
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    reference: dict[str, float] = field(default_factory=dict)
    description: str = ""

    @property
    def metric(self) -> str:
        """The metric's name (the first of ``metrics``)."""
        return self.metrics[0]

    def value(self, summary: Mapping[str, Any]) -> tuple[str | None, Any]:
        """``(key, value)`` of the first of ``metrics`` that a cell's summary holds (not None)."""
        for key in self.metrics:
            if summary.get(key) is not None:
                return key, summary[key]
        return None, None

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.grids[0]) if self.grids else ()

    def cells(self, overrides: Mapping[str, Any] | None = None, seeds: Sequence[int] | None = None) -> list[Cell]:
        """Every (grid point, seed), validated; ``overrides`` (dotted keys) apply to all cells."""
        from eventkit_train.trainer import TrainConfig

        out: list[Cell] = []
        seen: dict[tuple, str] = {}
        digests: dict[str, str] = {}
        for grid in self.grids:
            for combo in _product([axis.levels for axis in grid]):
                recipes = [lv.recipe for lv in combo if lv.recipe]
                if len(recipes) > 1:
                    raise ParameterError(f"sweep {self.path}: levels {[lv.label for lv in combo]} set several recipes")
                cfg = copy.deepcopy(_load_recipe(self.path.parent / recipes[0]) if recipes else self.base)
                cfg.update(copy.deepcopy(self.train))
                for lv in combo:
                    for key, value in lv.settings:
                        apply_setting(cfg, key, value, where=f"sweep {self.path}, level {lv.label!r}")
                for key, value in (overrides or {}).items():
                    apply_setting(cfg, key, value, where="override")
                labels = tuple((axis.name, lv.label) for axis, lv in zip(grid, combo, strict=True))
                for seed in (self.seeds if seeds is None else tuple(int(s) for s in seeds)):
                    cell_cfg = {**copy.deepcopy(cfg), "seed": int(seed)}
                    where = f"sweep {self.path}, cell {'|'.join(lb for _, lb in labels)} seed {seed}"
                    try:
                        checked = TrainConfig.from_dict(cell_cfg, source=where).to_dict()
                    except TypeError as exc:
                        raise ParameterError(f"{where}: {exc}") from None
                    ident = {k: v for k, v in checked.items() if k not in IDENTITY_EXCLUDED}
                    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:10]
                    if (labels, seed) in seen:
                        raise ParameterError(f"{where}: the grid point appears twice (labels must be unique)")
                    if digest in digests:
                        raise ParameterError(f"{where}: same configuration as cell {digests[digest]}; "
                                             "two cells would train the same network")
                    seen[(labels, seed)] = digest
                    digests[digest] = f"{'|'.join(lb for _, lb in labels)} seed {seed}"
                    out.append(Cell(labels, int(seed), checked, digest))
        return out


def apply_setting(cfg: dict[str, Any], key: str, value: Any, *, where: str = "") -> None:
    """``cfg[key] = value``; ``"a.b"`` sets key ``b`` inside the dict field ``a`` (created if absent)."""
    from eventkit_train.trainer import TrainConfig

    head, _, rest = str(key).partition(".")
    fields = TrainConfig.__dataclass_fields__
    if head not in fields:
        raise ParameterError(f"{where}: {key!r} is not a training field; fields: {sorted(fields)}")
    if not rest:
        cfg[head] = copy.deepcopy(value)
        return
    inner = cfg.setdefault(head, {})
    if not isinstance(inner, dict):
        raise ParameterError(f"{where}: {key!r}: field {head!r} is not a table")
    inner[rest] = copy.deepcopy(value)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep spec (format in the module docstring)."""
    p = Path(path)
    data = _read_toml(p, "sweep spec", " (see configs/sweeps/)")
    unknown = set(data) - {"sweep", "train", "grid", "axis", "reference"}
    if unknown:
        raise ParameterError(f"sweep spec {p}: unknown table(s) {sorted(unknown)}")
    head = data.get("sweep", {})
    bad = set(head) - {"name", "base", "seeds", "metric", "rows", "columns", "description"}
    if bad:
        raise ParameterError(f"sweep spec {p}: unknown [sweep] key(s) {sorted(bad)}")
    if ("grid" in data) == ("axis" in data):
        raise ParameterError(f"sweep spec {p}: give the axes as [[grid]] blocks or as top-level [[axis]] blocks")
    raw_grids = data["grid"] if "grid" in data else [{"axis": data["axis"]}]
    grids = tuple(tuple(_axis(a, p) for a in g.get("axis", [])) for g in raw_grids)
    names = [a.name for a in grids[0]]
    if not names:
        raise ParameterError(f"sweep spec {p}: a grid needs at least one axis")
    for g in grids:
        if [a.name for a in g] != names:
            raise ParameterError(f"sweep spec {p}: every grid needs the same axes in the same order {names}, "
                                 f"got {[a.name for a in g]}")
    seeds = tuple(int(s) for s in head.get("seeds", [0]))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ParameterError(f"sweep spec {p}: seeds must be a non-empty list of distinct integers")
    rows = _names(head.get("rows", names[:1]), names, p, "rows")
    columns = _names(head.get("columns", [n for n in names[1:2] if n not in rows]), names, p, "columns")
    if set(rows) & set(columns):
        raise ParameterError(f"sweep spec {p}: an axis cannot be both a row and a column")
    base = _load_recipe(p.parent / head["base"]) if "base" in head else {}
    train = data.get("train", {})
    reference = {str(k): float(v) for k, v in data.get("reference", {}).items()}
    metric = head.get("metric", list(DEFAULT_METRICS))
    metrics = (metric,) if isinstance(metric, str) else tuple(str(m) for m in metric)
    if not metrics:
        raise ParameterError(f"sweep spec {p}: metric must be a summary key or a non-empty list of them")
    return SweepSpec(p, str(head.get("name", p.stem)), base, dict(train), grids, seeds, metrics, rows, columns,
                     reference, str(head.get("description", "")))


def _axis(raw: Mapping[str, Any], path: Path) -> Axis:
    name = str(raw.get("name", "")).strip()
    if not name:
        raise ParameterError(f"sweep spec {path}: every axis needs a name")
    if ("values" in raw) == ("levels" in raw):
        raise ParameterError(f"sweep spec {path}: axis {name!r} needs values (with field) or levels, not both")
    if "values" in raw:
        fields = raw.get("field")
        fields = [fields] if isinstance(fields, str) else list(fields or [])
        if not fields:
            raise ParameterError(f"sweep spec {path}: axis {name!r} has values but no field")
        levels = tuple(Level(_label(v), tuple((f, v) for f in fields)) for v in raw["values"])
    else:
        listed: list[Level] = []
        for lv in raw["levels"]:
            extra = set(lv) - {"label", "set", "recipe"}
            if extra or "label" not in lv:
                raise ParameterError(f"sweep spec {path}: axis {name!r}: a level is {{label, set, recipe}}, got {lv}")
            settings = tuple(dict(lv.get("set", {})).items())
            listed.append(Level(str(lv["label"]), settings, lv.get("recipe")))
        levels = tuple(listed)
    labels = [lv.label for lv in levels]
    if not levels or len(set(labels)) != len(labels):
        raise ParameterError(f"sweep spec {path}: axis {name!r} needs distinct level labels, got {labels}")
    return Axis(name, levels)


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _names(value: Any, names: list[str], path: Path, what: str) -> tuple[str, ...]:
    out = (value,) if isinstance(value, str) else tuple(value)
    for n in out:
        if n not in names:
            raise ParameterError(f"sweep spec {path}: {what} names unknown axis {n!r}; axes: {names}")
    return out


def _product(lists: Sequence[Sequence[Level]]) -> list[tuple[Level, ...]]:
    combos: list[tuple[Level, ...]] = [()]
    for levels in lists:
        combos = [c + (lv,) for c in combos for lv in levels]
    return combos


def _read_toml(path: Path, what: str, hint: str = "") -> dict[str, Any]:
    if not path.is_file():
        raise ParameterError(f"{what} {path} not found{hint}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"{what} {path}: invalid TOML ({exc})") from exc


def _load_recipe(path: Path) -> dict[str, Any]:
    data = _read_toml(path, "recipe")
    return dict(data.get("train", data))
