"""``eventkit show PATH_OR_DATASET[:index]``: draw events, frames, a cochlea raster or a network's spikes.

Thin wrapper over :func:`eventkit.views.load_sample`, :func:`eventkit.views.render_sample`
and, with ``--net``, :func:`eventkit_train.views.render_network`.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

KIND_CHOICES = ("grid", "strip", "gif", "raster")


def _sensor(value: str | None) -> tuple[int, int, int] | None:
    if value is None:
        return None
    try:
        parts = tuple(int(v) for v in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 1:
        raise click.BadParameter(f"expected W,H,P (three positive integers), got {value!r}", param_hint="--sensor")
    return parts[0], parts[1], parts[2]


@click.command("show")
@click.argument("source")
@click.option("--kind", type=click.Choice(KIND_CHOICES), default=None,
              help="grid: x-y panels per time slice (vision default); strip: T frames as a PNG row; gif: the "
                   "frames animated; raster: time x channel for cochlea events (audio default).")
@click.option("--T", "T", type=click.IntRange(min=1), default=8, show_default=True,
              help="Time slices / frames / bins (audio raster: bins; --net: time steps).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Picture to write (.png, .svg, .pdf; .gif for --kind gif). Default: <source>-<kind>.png here.")
@click.option("--net", "net", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A network saved as NIR (.nir): draw the spike raster of its layers on this sample.")
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="A trained run folder (eventkit train --out): draw its network's spike raster on a sample of "
                   "its dataset, framed as the run evaluates it (its T, cache and input scale; --T is unused).")
@click.option("--weights", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="With --run: best.pt (chosen on validation) or the last epoch's checkpoint.")
@click.option("--cache", default=None, help="With --run: the cache root, if not the run's.")
@click.option("--root", default=None, help="Raw data folder of a dataset (default $EVENTKIT_DATA/NAME).")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True,
              help="Split of a dataset sample.")
@click.option("--sensor", default=None, help="W,H,P of an event file (default: the smallest sensor holding it).")
@click.option("--sort", is_flag=True, help="Sort the events by time first (unsorted files).")
@click.option("--json", "as_json", is_flag=True, help="Print what was drawn as one JSON object.")
def show(source: str, kind: str | None, T: int, out: str | None, net: str | None, run_dir: str | None, weights: str,
         cache: str | None, root: str | None, split: str, sensor: str | None, sort: bool, as_json: bool) -> None:
    """Draw SOURCE: an event file (any format eventkit reads) or NAME[:index], sample `index` of a dataset.

    \b
    eventkit show recording.aedat --kind grid --T 8 --out grid.png
    eventkit show nmnist:3 --kind gif --T 12
    eventkit show shd:0                              # audio: time x channel raster
    eventkit show nmnist:3 --net model.nir --T 20    # spike raster of each layer
    eventkit show nmnist:3 --split test --run runs/nm  # the same, of a trained run
    """
    from eventkit.views import load_sample, render_sample

    if net is not None and run_dir is not None:
        raise click.BadParameter("give one network: --net FILE.nir or --run RUN_DIR", param_hint="--run")
    if (net is not None or run_dir is not None) and kind is not None:
        raise click.BadParameter("--net/--run draw the spike raster; leave --kind out", param_hint="--kind")
    run = None
    if run_dir is not None:
        from eventkit_train.runs import load_run

        run = load_run(run_dir, weights=weights)
        root = root or run.config.root  # the run's raw data, unless told otherwise
    sample = load_sample(source, root=root, split=split, sensor_size=_sensor(sensor))
    if run is not None:
        from eventkit_train.views import render_run

        summary = render_run(run, sample, out=out or "spikes.png", root=root, cache=cache)
    elif net is not None:
        from eventkit.views.source import sorted_events
        from eventkit_train.export import load_nir
        from eventkit_train.views import render_network

        summary = render_network(load_nir(net), sorted_events(sample, sort), sample.sensor_size, T=T,
                                 audio=sample.audio, out=out or "spikes.png",
                                 title=f"{sample.title} · {Path(net).name}")
    else:
        summary = render_sample(sample, kind=kind, T=T, out=out, sort=sort)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(summary["file"])
