"""``eventkit plot RUN_DIR``: PNG figures of a training run (thin wrapper over
:func:`eventkit_train.plots.plot_run`)."""
from __future__ import annotations

import json

import click


@click.command("plot")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", default=None, help="Folder for the PNGs (default: RUN_DIR).")
@click.option("--json", "as_json", is_flag=True, help="Print the written files as one JSON object.")
def plot(run_dir: str, out: str | None, as_json: bool) -> None:
    """Write loss, accuracy, spike-rate, latency and synaptic-operation/energy figures of RUN_DIR
    as PNG files (titled with the run, dataset and network; a layer that never fired is named
    in a warning on the figures and on stderr)."""
    from eventkit_train.plots import plot_run
    from eventkit_train.runlog import read_metrics, silent_layers, silent_warning

    files = [str(p) for p in plot_run(run_dir, out)]
    last = read_metrics(run_dir)[-1]
    silent = silent_layers(last)
    if silent:
        where = f"on the test set in epoch {int(last['epoch']) + 1}"
        click.echo(f"warning: {silent_warning(silent, where)}", err=True)
    if as_json:
        click.echo(json.dumps({"run_dir": run_dir, "files": files, "silent_layers": silent}))
    else:
        for f in files:
            click.echo(f)
