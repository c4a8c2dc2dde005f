"""The text files of a run folder: ``metrics.json``, ``metrics.csv``, ``summary.json``,
``config.json`` (made here, written by :func:`eventkit_train.checkpoint.commit_epoch`);
the PNG curves of ``eventkit plot`` are drawn by :mod:`eventkit_train.plots`.

``metrics.json`` is a list of epoch records (:func:`epoch_record`: ``epoch``, ``lr``,
``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy`` (with a validation
split), ``test_loss``, ``test_accuracy``, ``seconds``, and of the test pass
``spike_rates`` {layer: rate}, ``silent_layers`` [layer], ``latency_accuracy`` [T],
``synops`` and ``energy_pj`` (per sample, :mod:`eventkit_train.synops`)); ``metrics.csv``
holds the same scalars, with ``rate/<layer>`` and ``synops/<layer>`` columns,
``synops_total``, ``energy_pj/snn`` and ``energy_pj/ann``.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from eventkit.errors import ParameterError

# plot_run: provided by the module __getattr__ below (matplotlib imported only when drawing)
__all__ = ["RunLog", "flatten_record", "read_metrics", "plot_run", "json_text",  # noqa: F822 "epoch_record", "summary_fields",
           "silent_layers", "silent_warning", "warn_silent_layers", "TEST_FIELDS"]

#: fields of the test pass's result (:func:`eventkit_train.epoch.run_epoch`) kept in an epoch record
TEST_FIELDS = ("spike_rates", "silent_layers", "latency_accuracy", "synops", "energy_pj")


def json_text(obj: Any, indent: int = 1) -> str:
    """JSON of a record/summary (NaN/inf written as null: the files stay strict JSON)."""
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, Mapping):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(obj), indent=indent, sort_keys=isinstance(obj, Mapping)) + "\n"


class RunLog:
    """The per-epoch records of a run, rendered as the ``metrics.json`` / ``metrics.csv`` texts."""

    def __init__(self, records: list[dict[str, Any]] | None = None):
        self.records: list[dict[str, Any]] = [dict(r) for r in (records or [])]

    def append(self, record: Mapping[str, Any], *, keep_epochs_below: int | None = None) -> None:
        """Add one epoch record (dropping records of epochs >= ``keep_epochs_below`` first)."""
        if keep_epochs_below is not None:
            self.records = [r for r in self.records if r.get("epoch", 0) < keep_epochs_below]
        self.records.append(dict(record))

    def texts(self) -> dict[str, str]:
        """``{"metrics.json": ..., "metrics.csv": ...}``."""
        rows = [flatten_record(r) for r in self.records]
        cols: list[str] = []
        for r in rows:
            cols.extend(c for c in r if c not in cols)
        out = io.StringIO(newline="")
        w = csv.DictWriter(out, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
        return {"metrics.json": json.dumps(self.records, indent=1) + "\n", "metrics.csv": out.getvalue()}

    def write(self, run_dir: str | os.PathLike) -> None:
        """Write both files into ``run_dir`` (each replaced atomically; outside a training run)."""
        path = Path(run_dir)
        path.mkdir(parents=True, exist_ok=True)
        for name, text in self.texts().items():
            tmp = path / f"{name}.tmp"
            tmp.write_text(text)
            os.replace(tmp, path / name)


def flatten_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Scalar view of an epoch record for the CSV: ``spike_rates`` -> ``rate/<layer>``
    columns, ``synops`` -> ``synops/<layer>`` (SNN ACs + MACs per sample) and
    ``synops_total``, ``energy_pj`` -> ``energy_pj/snn``, ``energy_pj/ann``; the latency
    curve, the silent layers and the ANN counts per layer are kept in JSON only."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        if k == "spike_rates" and isinstance(v, Mapping):
            out.update({f"rate/{name}": r for name, r in v.items()})
        elif k == "synops" and isinstance(v, Mapping):
            out.update({f"synops/{name}": c["ac"] + c["mac"] for name, c in v.get("layers", {}).items()})
            out["synops_total"] = v.get("total")
        elif k == "energy_pj" and isinstance(v, Mapping):
            out.update({"energy_pj/snn": v.get("snn"), "energy_pj/ann": v.get("ann")})
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[k] = v
    return out


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The epoch records of a run directory (``metrics.json``, read through ``current/`` when
    a kill came before the top-level link was made)."""
    path = Path(run_dir) / "metrics.json"
    if not path.exists() and (Path(run_dir) / "current" / "metrics.json").is_file():
        path = Path(run_dir) / "current" / "metrics.json"
    if not path.exists():
        raise ParameterError(f"{path}: no metrics.json; is {run_dir} a training run directory (eventkit train --out) "
                             f"with a completed epoch?")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParameterError(f"{path}: not valid JSON ({type(exc).__name__}); the file is damaged") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ParameterError(f"{path}: expected a list of epoch records")
    return data


def epoch_record(epoch: int, lr: float, train: Mapping[str, Any], evals: Mapping[str, Mapping[str, Any]], *,
                 seconds: float) -> dict[str, Any]:
    """The ``metrics.json`` record of one epoch from the results of its passes (``train``
    and ``evals`` ``{"val": ..., "test": ...}``, as returned by ``run_epoch``)."""
    record: dict[str, Any] = {"epoch": epoch, "lr": lr, "train_loss": train["loss"],
                              "train_accuracy": train["accuracy"]}
    for split, res in evals.items():
        record.update({f"{split}_loss": res["loss"], f"{split}_accuracy": res["accuracy"]})
    record["seconds"] = seconds
    test = evals.get("test", {})
    record.update({key: test[key] for key in TEST_FIELDS if key in test})
    return record


def silent_layers(record: Mapping[str, Any]) -> list[str]:
    """Neuron layers that fired no spike on the test set in this epoch record (``silent_layers``,
    or, in records written before it existed, the layers whose spike rate is exactly 0)."""
    if isinstance(record.get("silent_layers"), list):
        return [str(name) for name in record["silent_layers"]]
    return [name for name, rate in (record.get("spike_rates") or {}).items() if rate == 0]


def summary_fields(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What ``summary.json`` takes from the last epoch record beyond the accuracies:
    ``silent_layers``, ``latency_accuracy``, ``synops``, ``energy_pj`` (None without epochs)."""
    last = records[-1] if records else {}
    return {"silent_layers": silent_layers(last) if last else None, "latency_accuracy": last.get("latency_accuracy"),
            "synops": last.get("synops"), "energy_pj": last.get("energy_pj")}


def warn_silent_layers(record: Mapping[str, Any], warned: set[str], stream: IO[str] | None = None) -> list[str]:
    """Print one warning line naming the layers of ``record`` that fired no spike and are not
    in ``warned`` yet (then added to it: each layer once per run); returns them."""
    new = [name for name in silent_layers(record) if name not in warned]
    if new:
        warned.update(new)
        where = f"on the test set in epoch {int(record.get('epoch', 0)) + 1}"
        print(f"warning: {silent_warning(new, where)}", file=sys.stderr if stream is None else stream)
    return new


def silent_warning(names: Iterable[str], where: str = "") -> str:
    """``layers 3_plif, 7_plif fired no spike <where>; ...`` with what it means and what to check."""
    names = list(names)
    which = f"layer {names[0]}" if len(names) == 1 else f"layers {', '.join(names)}"
    return (f"{which} fired no spike{' ' + where if where else ''}; a silent layer passes no signal "
            f"(every later layer sees zeros): check input_scale, thresholds and the learning rate")


def __getattr__(name: str) -> Any:  # plot_run moved to eventkit_train.plots (matplotlib imported there)
    if name == "plot_run":
        from .plots import plot_run

        return plot_run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
