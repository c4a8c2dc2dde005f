"""The text files of a run folder: ``metrics.json``, ``metrics.csv``, ``summary.json``,
``config.json`` (made here, written by :func:`eventkit_train.checkpoint.commit_epoch`),
and the PNG curves of ``eventkit plot``.

``metrics.json`` is a list of epoch records (``epoch``, ``lr``, ``train_loss``,
``train_accuracy``, ``val_loss``, ``val_accuracy`` (with a validation split),
``test_loss``, ``test_accuracy``, ``seconds``, ``spike_rates`` {layer: rate} and
``latency_accuracy`` [T] of the test set); ``metrics.csv`` holds the same scalars, with
the per-layer rates as ``rate/<layer>`` columns.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eventkit.errors import ParameterError

__all__ = ["RunLog", "flatten_record", "read_metrics", "plot_run", "json_text"]


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
    columns; the latency curve is kept in JSON only."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        if k == "spike_rates" and isinstance(v, Mapping):
            out.update({f"rate/{name}": r for name, r in v.items()})
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


def plot_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[Path]:
    """PNG curves of a run directory (matplotlib, Agg backend, imported here only):
    ``loss.png``, ``accuracy.png`` (train/validation/test per epoch), ``spike_rates.png`` (per layer
    per epoch) and ``latency.png`` (test accuracy versus time steps, last epoch and the epoch chosen on validation).
    Returns the written paths (in ``out_dir``, default the run directory)."""
    records = read_metrics(run_dir)
    if not records:
        raise ParameterError(f"{run_dir}/metrics.json has no epochs yet; nothing to plot")
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is a dev/plot extra
        raise ParameterError("eventkit plot needs matplotlib: pip install 'eventkit[plot]'") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out = Path(out_dir) if out_dir is not None else Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    epochs = [int(r["epoch"]) + 1 for r in records]
    written: list[Path] = []

    def save(fig, name: str) -> None:
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    for key, name, ylabel in (("loss", "loss.png", "loss"), ("accuracy", "accuracy.png", "accuracy")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for split in ("train", "val", "test"):
            ys = [r.get(f"{split}_{key}") for r in records]
            if any(y is not None for y in ys):
                ax.plot(epochs, [math.nan if y is None else y for y in ys], marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
        save(fig, name)

    layers = [name for name in records[-1].get("spike_rates", {})]
    if layers:
        fig, ax = plt.subplots(figsize=(6, 4))
        for layer in layers:
            ax.plot(epochs, [r.get("spike_rates", {}).get(layer, math.nan) for r in records], marker=".", label=layer)
        ax.set_xlabel("epoch")
        ax.set_ylabel("spikes / neuron / step (test)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        save(fig, "spike_rates.png")

    curves = [(f"epoch {epochs[-1]} (last)", records[-1].get("latency_accuracy"))]
    scored = [r for r in records if r.get("val_accuracy") is not None]
    best = max(scored, key=lambda r: r["val_accuracy"]) if scored else records[-1]  # first maximum, as best.pt
    if best is not records[-1]:
        curves.append((f"epoch {int(best['epoch']) + 1} (best)", best.get("latency_accuracy")))
    if any(c for _, c in curves):
        fig, ax = plt.subplots(figsize=(6, 4))
        for label, curve in curves:
            if curve:
                ax.plot(range(1, len(curve) + 1), curve, marker=".", label=label)
        ax.set_xlabel("time steps seen")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend()
        save(fig, "latency.png")
    return written
