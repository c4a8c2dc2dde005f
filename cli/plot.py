"""``eventkit plot RUN_DIR``: PNG curves of a training run (thin wrapper over
:func:`eventkit_train.metrics.plot_run`)."""
from __future__ import annotations

import json

import click


@click.command("plot")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", default=None, help="Folder for the PNGs (default: RUN_DIR).")
@click.option("--json", "as_json", is_flag=True, help="Print the written files as one JSON object.")
def plot(run_dir: str, out: str | None, as_json: bool) -> None:
    """Write loss, accuracy, spike-rate and latency curves of RUN_DIR as PNG files."""
    from eventkit_train.metrics import plot_run

    files = [str(p) for p in plot_run(run_dir, out)]
    if as_json:
        click.echo(json.dumps({"run_dir": run_dir, "files": files}))
    else:
        for f in files:
            click.echo(f)
