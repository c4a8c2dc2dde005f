"""``eventkit train NAME``: train a spiking network on a cached dataset (thin wrapper over
:func:`eventkit_train.trainer.train`)."""
from __future__ import annotations

import json

import click


def _neuron_map(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for v in values:
        if "=" not in v:
            raise click.BadParameter(f"{v!r}: expected OLD=NEW, e.g. LIF=PLIF or SIT=SIT-Bursting")
        old, new = v.split("=", 1)
        out[old.strip().lower()] = new.strip().lower()
    return out or None


@click.command("train")
@click.argument("name")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML recipe (configs/*.toml); the options below override it.")
@click.option("--root", default=None, help="Raw data folder (default $EVENTKIT_DATA/NAME).")
@click.option("--cache", default=None, help="Cache root folder or URL (default $EVENTKIT_CACHE).")
@click.option("--T", "T", type=int, default=None, help="Time steps (frames per sample).")
@click.option("--arch", default=None, help="Network in the papers' notation (docs/training.md).")
@click.option("--neuron", default=None, help="Neuron for strings without neuron tokens (lif, plif, if, srm, ...).")
@click.option("--neuron-map", "neuron_map", multiple=True, callback=_neuron_map,
              help="Replace a neuron token of the arch, OLD=NEW (repeatable), e.g. LIF=PLIF.")
@click.option("--loss", default=None, help="rate_mse, rate_ce, max_over_time_ce, spike_rate, spikemax, ...")
@click.option("--epochs", type=int, default=None)
@click.option("--batch-size", "batch_size", type=int, default=None)
@click.option("--lr", type=float, default=None)
@click.option("--device", default=None, help="cpu, cuda, cuda:<i> or auto (default).")
@click.option("--amp/--no-amp", default=None, help="bf16 autocast (default: on for CUDA only).")
@click.option("--seed", type=int, default=None)
@click.option("--out", default=None, help="Run directory (default runs/NAME-<UTC time>).")
@click.option("--workers", type=int, default=None, help="DataLoader worker processes.")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--resume", is_flag=True, help="Continue from RUN_DIR/checkpoint.pt (needs --out); with no checkpoint there, start fresh and say so.")
@click.option("--progress/--no-progress", default=True, help="tqdm bars and per-epoch lines on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Last stdout line: one JSON object with the results.")
def train(name: str, config_file: str | None, root, cache, T, arch, neuron, neuron_map, loss, epochs, batch_size,
          lr, device, amp, seed, out, workers, threads, resume, progress, as_json) -> None:
    """Train a spiking network on dataset NAME (the cache is built when missing).

    Example: eventkit train nmnist --config configs/nmnist-small.toml --root DATA --out runs/nm
    """
    from eventkit.errors import ParameterError
    from eventkit_train.trainer import TrainConfig, load_config
    from eventkit_train.trainer import train as run_training

    base = load_config(config_file) if config_file else TrainConfig(dataset=name)
    if resume and not out:
        raise ParameterError("--resume needs --out RUN_DIR (the run directory to continue)")
    config = base.replace(dataset=name, root=root, cache=cache, T=T, arch=arch, neuron=neuron,
                          neuron_map=neuron_map, loss=loss, epochs=epochs, batch_size=batch_size, lr=lr,
                          device=device, amp=amp, seed=seed, out=out, workers=workers, threads=threads)
    if neuron is not None and config.arch:
        from eventkit_train.models.spec import has_neuron_tokens, parse_spec

        if has_neuron_tokens(parse_spec(config.arch)):
            click.echo(f"warning: --neuron {neuron} is unused: the arch names its neurons; "
                       f"use --neuron-map OLD={neuron} to replace them", err=True)
    quiet = bool(click.get_current_context().find_root().params.get("quiet"))  # eventkit -q: no progress
    summary = run_training(config, resume=resume, progress=progress and not quiet)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        def acc(key: str) -> str:  # None when no epoch ran (--epochs 0)
            return "n/a" if summary[key] is None else f"{summary[key]:.4f}"

        click.echo(f"{summary['dataset']}: {summary['epochs']} epochs in {summary['seconds']:.1f} s on "
                   f"{summary['device']}; test accuracy {acc('test_accuracy')} "
                   f"(best {acc('best_test_accuracy')}), train {acc('train_accuracy')}; run dir {summary['run_dir']}")
