"""Root command group: ``eventkit [-v|-q] COMMAND ...``.

Subcommands live one per module in this package and are imported only when invoked,
so ``eventkit --help`` stays fast (no torch, dask or zarr import). Every
:class:`eventkit.EventkitError` becomes one line on stderr and exit code 2.
"""
from __future__ import annotations

import importlib
import logging
import sys

import click

from eventkit import __version__
from eventkit.errors import EventkitError

# command name -> (module in eventkit.cli, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "frames": ("eventkit.cli.frames", "frames", "Build the sharded Zarr frame cache of an event dataset."),
    "encode": ("eventkit.cli.encode", "encode",
               "Build a spike cache of a static image dataset (rate/poisson/direct/latency)."),
    "cache": ("eventkit.cli.cache", "cache", "Inspect, verify, list and remove cache stores."),
    "data": ("eventkit.cli.data", "data", "Dataset manifests: what to download, where, and checks."),
    "train": ("eventkit.cli.train", "train", "Train a spiking network on a cached dataset."),
    "plot": ("eventkit.cli.plot", "plot", "Plot the curves of a training run directory."),
    "eval": ("eventkit.cli.eval", "eval_run", "Evaluate a training run's network on a split."),
    "sweep": ("eventkit.cli.sweep", "sweep", "Train a grid of recipe variants over seeds; table of mean ± std."),
    "analyze": ("eventkit.cli.analyze", "analyze",
                "Phase planes, b range, firing patterns, network inputs and feature maps."),
    "show": ("eventkit.cli.show", "show", "Draw events, frames, a cochlea raster or a network's spikes."),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EventkitError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="eventkit")
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors: no progress output.")
def cli(verbose: int, quiet: bool) -> None:
    """eventkit: neuromorphic datasets to frames, caches and spiking networks."""
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    if quiet:
        level = logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":  # python -m eventkit.cli.main ... (e.g. under torchrun -m)
    cli()
