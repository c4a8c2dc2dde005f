"""The table of a sweep: mean ± std over seeds per grid point, as CSV, JSON, Markdown and a PNG.

The std is the sample standard deviation (n - 1 in the denominator; 0 for one seed). Accuracy
metrics are shown in percent. Grid points with unfinished seeds are listed with the seeds
they have (``n``) and the missing ones.
"""
from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .sweep_run import cell_result
from .sweep_spec import Cell, SweepSpec

__all__ = ["aggregate", "write_table", "markdown_table"]


def aggregate(spec: SweepSpec, cells: Sequence[Cell], out_dir: str | Path) -> list[dict[str, Any]]:
    """One entry per grid point (spec order): labels, per-seed values, n, mean, std, reference."""
    groups: dict[str, dict[str, Any]] = {}
    for cell in cells:
        g = groups.setdefault(cell.key, {"key": cell.key, "labels": dict(cell.labels), "seeds": [], "values": [],
                                         "missing_seeds": [], "seconds": [], "metric": []})
        res = cell_result(Path(out_dir) / "cells" / cell.dirname, cell.digest)
        key, value = (None, None) if res is None else spec.value(res["summary"])
        if key is not None and key not in g["metric"]:
            g["metric"].append(key)
        if res is None or value is None:
            g["missing_seeds"].append(cell.seed)
            continue
        g["seeds"].append(cell.seed)
        g["values"].append(float(value))
        g["seconds"].append(float(res.get("seconds", 0.0)))
    for g in groups.values():
        v = g["values"]
        g["n"] = len(v)
        g["mean"] = sum(v) / len(v) if v else None
        if len(v) > 1:
            g["std"] = math.sqrt(sum((x - g["mean"]) ** 2 for x in v) / (len(v) - 1))
        else:
            g["std"] = 0.0 if v else None
        g["reference"] = spec.reference.get(g["key"])
    return list(groups.values())


def _percent(spec: SweepSpec) -> bool:
    return "accuracy" in spec.metric


def _fmt(spec: SweepSpec, g: dict[str, Any]) -> str:
    if g["mean"] is None:
        return "—"
    k = 100.0 if _percent(spec) else 1.0
    text = f"{g['mean'] * k:.2f} ± {g['std'] * k:.2f}" if _percent(spec) else f"{g['mean']:.4g} ± {g['std']:.2g}"
    return text + (f" (n={g['n']})" if g["missing_seeds"] else "")


def _split(spec: SweepSpec, labels: dict[str, str]) -> tuple[str, str, str]:
    rest = [n for n in spec.axis_names if n not in spec.rows and n not in spec.columns]
    join = ", ".join
    return (join(labels[n] for n in spec.rows), join(labels[n] for n in spec.columns),
            join(f"{n} = {labels[n]}" for n in rest))


def markdown_table(spec: SweepSpec, groups: list[dict[str, Any]], *, reference: bool = False,
                   value_name: str | None = None) -> str:
    """Pivot table(s): rows and columns as the spec says, one table per value of the other axes."""
    blocks: dict[str, dict[str, dict[str, str]]] = {}
    col_order: dict[str, list[str]] = {}
    for g in groups:
        row, col, rest = _split(spec, g["labels"])
        if reference:
            cell = "—" if g["reference"] is None else f"{g['reference']:g}"
        else:
            cell = _fmt(spec, g)
        blocks.setdefault(rest, {}).setdefault(row, {})[col] = cell
        order = col_order.setdefault(rest, [])
        if col not in order:
            order.append(col)
    lines = []
    head = ", ".join(spec.rows)
    for rest, rows in blocks.items():
        if rest:
            lines += [f"**{rest}**", ""]
        cols = col_order[rest]
        lines.append("| " + " | ".join([head] + [c or value_name or spec.metric for c in cols]) + " |")
        lines.append("|" + "---|" * (len(cols) + 1))
        for row, values in rows.items():
            lines.append("| " + " | ".join([row] + [values.get(c, "—") for c in cols]) + " |")
        lines.append("")
    return "\n".join(lines)


def write_table(spec: SweepSpec, cells: Sequence[Cell], out_dir: str | Path) -> dict[str, Path]:
    """Write ``table.csv``, ``table.json``, ``table.md`` and ``table.png`` into ``out_dir``."""
    out = Path(out_dir)
    groups = aggregate(spec, cells, out)
    paths = {"csv": out / "table.csv", "json": out / "table.json", "md": out / "table.md", "png": out / "table.png"}
    axes = list(spec.axis_names)
    with open(paths["csv"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(axes + ["n", "mean", "std", "values", "seeds", "missing_seeds", "reference", "metric"])
        for g in groups:
            w.writerow([g["labels"][a] for a in axes] + [g["n"], g["mean"], g["std"],
                       " ".join(f"{v:.6g}" for v in g["values"]), " ".join(map(str, g["seeds"])),
                       " ".join(map(str, g["missing_seeds"])), g["reference"], " ".join(g["metric"])])
    paths["json"].write_text(json.dumps({"spec": str(spec.path), "name": spec.name, "metric": list(spec.metrics),
                                         "axes": axes, "groups": groups}, indent=1) + "\n")
    unit = " (%)" if _percent(spec) else ""
    used = list(dict.fromkeys(k for g in groups for k in g["metric"])) or [spec.metric]
    md = [f"# {spec.name}: {' / '.join(used)}{unit}, mean ± std over seeds", ""]
    if spec.description:
        md += [spec.description, ""]
    md.append(markdown_table(spec, groups, value_name=" / ".join(used)))
    if any(g["reference"] is not None for g in groups):
        md += ["Published values:", "", markdown_table(spec, groups, reference=True, value_name="published")]
    paths["md"].write_text("\n".join(md) + "\n")
    _plot(spec, groups, paths["png"])
    return paths


def _plot(spec: SweepSpec, groups: list[dict[str, Any]], path: Path) -> None:
    from .plot_dynamics import pyplot, save_figure

    plt = pyplot()
    k = 100.0 if _percent(spec) else 1.0
    panels: dict[str, list[dict[str, Any]]] = {}
    for g in groups:
        panels.setdefault(_split(spec, g["labels"])[2], []).append(g)
    n = min(len(panels), 6)
    fig, axes = plt.subplots(1, n, figsize=(6.0 * n, 4.2), squeeze=False)
    for ax, (rest, gs) in zip(axes[0], list(panels.items())[:n], strict=True):
        rows = list(dict.fromkeys(_split(spec, g["labels"])[0] for g in gs))
        series: dict[str, list[dict[str, Any]]] = {}
        for g in gs:
            series.setdefault(_split(spec, g["labels"])[1], []).append(g)
        for j, (col, items) in enumerate(series.items()):
            color = f"C{j % 10}"
            xs = [rows.index(_split(spec, g["labels"])[0]) for g in items if g["mean"] is not None]
            ys = [g["mean"] * k for g in items if g["mean"] is not None]
            es = [g["std"] * k for g in items if g["mean"] is not None]
            ax.errorbar(xs, ys, yerr=es, fmt="o-", color=color, capsize=3, label=col or spec.metric)
            refs = [(rows.index(_split(spec, g["labels"])[0]), g["reference"]) for g in items
                    if g["reference"] is not None]
            if refs:
                ax.plot(*zip(*refs, strict=True), "x", color=color, ms=8, label=f"{col} (paper)" if col else "paper")
        ax.set_xticks(range(len(rows)), rows, rotation=30, ha="right", fontsize=8)
        ax.set_xlabel(", ".join(spec.rows))
        ax.set_ylabel(spec.metric + (" (%)" if _percent(spec) else ""))
        ax.set_title(rest or spec.name, fontsize=10)
        ax.legend(fontsize=7, title=", ".join(spec.columns) or None, title_fontsize=7)
    save_figure(fig, path)
