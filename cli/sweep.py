"""``eventkit sweep SPEC.toml``: train every cell of a grid over recipe fields and tabulate
mean ± std over seeds (thin wrapper over :func:`eventkit_train.analysis.sweep_run.run_sweep`)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from .options import cluster_options, json_option, positive_int, progress_enabled, scheduler_option


def _settings(ctx, param, values: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` with a dotted KEY (``neuron_kwargs.tau``); VALUE read as JSON when it parses."""
    out: dict[str, Any] = {}
    for text in values:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)*", key):
            raise click.BadParameter(f"expected KEY=VALUE with a field name as KEY, got {text!r}", ctx=ctx, param=param)
        try:
            out[key] = json.loads(raw.strip())
        except ValueError:
            out[key] = raw.strip()
    return out


@click.command("sweep")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default runs/sweeps/<spec name>); rerun with the same one to resume.")
@click.option("--set", "settings", multiple=True, callback=_settings, metavar="KEY=VALUE",
              help="Override a recipe field in every cell (repeatable; dotted keys reach into tables), "
                   "e.g. --set epochs=2 --set neuron_kwargs.tau=2.0.")
@click.option("--seeds", default=None, help="Seeds to run instead of the spec's, e.g. 0,1,2.")
@click.option("--root", default=None, help="Raw data folder for every cell (the recipe's root otherwise).")
@click.option("--cache", default=None, help="Cache root for every cell.")
@click.option("--device", default=None, help="cpu, cuda or auto for every cell.")
@click.option("--workers", type=int, default=1, show_default=True, callback=positive_int,
              help="1: cells run one after the other in this process; N: a local Dask cluster of N processes.")
@scheduler_option
@cluster_options
@click.option("--gpus-per-task", type=int, default=0, show_default=True,
              help="GPUs each cell needs (Dask worker resource GPU; SLURM/PBS jobs ask for them).")
@click.option("--dry-run", is_flag=True, help="List the cells (validated) and which are finished; train nothing.")
@click.option("--table-only", is_flag=True, help="Only (re)write the table from the finished cells.")
@json_option
def sweep(spec: str, out, settings, seeds, root, cache, device, workers, scheduler, cluster, jobs, cluster_option,
          gpus_per_task, dry_run, table_only, as_json) -> None:
    """Train every cell of the sweep SPEC (configs/sweeps/*.toml) through the normal trainer and
    write OUT/table.{csv,json,md,png} with mean ± std over seeds.

    Finished cells are never rerun; a cell killed half-way is trained again from scratch.

    \b
    Examples:
      eventkit sweep configs/sweeps/leakage-fsnn-nmnist.toml --root ~/data/nmnist --workers 4
      eventkit sweep configs/sweeps/sit-position-dvsgesture.toml --cluster slurm --jobs 6 \\
          --gpus-per-task 1 --cluster-option queue=gpu --cluster-option walltime=24:00:00
      eventkit sweep configs/sweeps/plif-table4.toml --set epochs=2 --dry-run
    """
    from eventkit.errors import ParameterError
    from eventkit_train.analysis.sweep_run import cell_result, run_sweep
    from eventkit_train.analysis.sweep_spec import load_sweep
    from eventkit_train.analysis.sweep_table import write_table

    if cluster is None and (cluster_option or jobs != 1):
        raise ParameterError("--jobs / --cluster-option need --cluster slurm|pbs")
    spec_obj = load_sweep(spec)
    overrides = dict(settings)
    for key, value in (("root", root), ("cache", cache), ("device", device)):
        if value is not None:
            overrides[key] = value
    seed_list = [int(s) for s in seeds.split(",") if s.strip()] if seeds else None
    out_dir = Path(out) if out else Path("runs") / "sweeps" / spec_obj.name
    if dry_run or table_only:
        cells = spec_obj.cells(overrides, seed_list)
        if table_only:
            out_dir.mkdir(parents=True, exist_ok=True)
            paths = write_table(spec_obj, cells, out_dir)
            payload: dict[str, Any] = {"out": str(out_dir), "table": {k: str(v) for k, v in paths.items()}}
        else:
            rows = [{"dir": c.dirname, "labels": dict(c.labels), "seed": c.seed,
                     "finished": cell_result(out_dir / "cells" / c.dirname, c.digest) is not None} for c in cells]
            payload = {"out": str(out_dir), "cells": rows}
        if as_json:
            click.echo(json.dumps(payload))
        elif dry_run:
            for r in payload["cells"]:
                click.echo(f"{'done' if r['finished'] else 'todo'}  {r['dir']}")
            click.echo(f"{len(payload['cells'])} cells -> {out_dir}")
        else:
            click.echo("\n".join(payload["table"].values()))
        return
    result = run_sweep(spec_obj, out=out_dir, overrides=overrides, seeds=seed_list, workers=workers,
                       scheduler=scheduler, cluster=cluster, jobs=jobs, cluster_options=cluster_option,
                       gpus_per_task=gpus_per_task, progress=progress_enabled(as_json))
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        click.echo(f"{len(result.cells)} cells: {len(result.ran)} trained, {len(result.skipped)} already finished, "
                   f"{len(result.failed)} failed; table: {result.table.get('md')}")
    if result.failed:
        raise ParameterError(f"{len(result.failed)} cell(s) failed (rerun the same command to retry them): "
                             + "; ".join(f"{k}: {v}" for k, v in list(result.failed.items())[:3]))
