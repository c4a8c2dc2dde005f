"""``eventkit train NAME``: train a spiking network on a cached dataset (thin wrapper over
:func:`eventkit_train.trainer.train`). Under ``torchrun``/``srun`` every process runs it."""
from __future__ import annotations

import json
import tomllib
from typing import Any

import click

from .options import storage_options_option


def _neuron_map(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for v in values:
        if "=" not in v:
            raise click.BadParameter(f"{v!r}: expected OLD=NEW, e.g. LIF=PLIF or SIT=SIT-Bursting")
        old, new = v.split("=", 1)
        out[old.strip().lower()] = new.strip().lower()
    return out or None


def _augment(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, Any] | None:
    """``KEY=VALUE`` (VALUE in TOML syntax; dotted keys make nested tables); ``none`` clears."""
    if not values:
        return None
    table: dict[str, Any] = {}
    for v in values:
        if v.strip().lower() == "none":
            table = {}
            continue
        if "=" not in v:
            raise click.BadParameter(f"{v!r}: expected KEY=VALUE (TOML value), e.g. flip_lr=0.5, or none")
        key, raw = (s.strip() for s in v.split("=", 1))
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word is a string
        *parents, leaf = key.split(".")
        node = table
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise click.BadParameter(f"{key!r}: {part} is both a value and a table")
        node[leaf] = value
    return table


@click.command("train")
@click.argument("name")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML recipe (configs/*.toml) for dataset NAME; the options below override it.")
@click.option("--root", default=None, help="Raw data folder (default $EVENTKIT_DATA/NAME).")
@click.option("--cache", default=None, help="Cache root folder or URL (default $EVENTKIT_CACHE); shared by all nodes.")
@storage_options_option
@click.option("--T", "T", type=int, default=None, help="Time steps (frames per sample).")
@click.option("--eval-T", "eval_T", type=int, default=None,
              help="Time steps of validation/test when event ops frame them on the fly (default: T).")
@click.option("--arch", default=None, help="Network in the papers' notation (docs/training.md).")
@click.option("--neuron", default=None, help="Neuron for strings without neuron tokens (lif, plif, if, srm, ...).")
@click.option("--neuron-map", "neuron_map", multiple=True, callback=_neuron_map,
              help="Replace a neuron token of the arch, OLD=NEW (repeatable), e.g. LIF=PLIF.")
@click.option("--loss", default=None, help="rate_mse, rate_ce, max_over_time_ce, spike_rate, spikemax, ...")
@click.option("--epochs", type=int, default=None)
@click.option("--batch-size", "batch_size", type=int, default=None,
              help="Global batch size (split evenly over torchrun/srun processes).")
@click.option("--lr", type=float, default=None, help="Learning rate for the global batch.")
@click.option("--val-fraction", "val_fraction", type=float, default=None,
              help="Share of each class of the training split held out to choose best.pt (default 0.1; 0: none).")
@click.option("--augment", "augment", multiple=True, callback=_augment,
              help="Augmentation, KEY=VALUE in TOML (repeatable; 'none' clears the recipe's), "
                   "e.g. 'event=[{op = \"flip_lr\"}]' (docs/augmentation.md).")
@click.option("--device", default=None, help="cpu, cuda, cuda:<i> or auto (default); under torchrun: cuda or auto.")
@click.option("--amp/--no-amp", default=None, help="bf16 autocast (default: on for CUDA only).")
@click.option("--seed", type=int, default=None)
@click.option("--out", default=None, help="Run directory (default runs/NAME-<UTC time>).")
@click.option("--workers", type=int, default=None, help="DataLoader worker processes (per training process).")
@click.option("--threads", type=int, default=None, help="torch CPU threads (per training process).")
@click.option("--cache-wait", "cache_wait_s", type=float, default=None,
              help="Seconds the other processes wait for rank 0 to build the cache (default 21600).")
@click.option("--resume", is_flag=True,
              help="Continue from RUN_DIR's last epoch (needs --out); with none there, start fresh and say so.")
@click.option("--progress/--no-progress", default=True,
              help="Progress on stderr (rank 0): a tqdm bar on a terminal; plain lines off a terminal and "
                   "with --json (one per epoch, one per 30 s of a long pass).")
@click.option("--json", "as_json", is_flag=True, help="Last stdout line: one JSON object with the results.")
def train(name: str, config_file: str | None, root, cache, storage_options, T, eval_T, arch, neuron, neuron_map, loss,
          epochs, batch_size, lr, val_fraction, augment, device, amp, seed, out, workers, threads, cache_wait_s, resume,
          progress, as_json) -> None:
    """Train a spiking network on dataset NAME (the cache is built when missing).

    Example: eventkit train nmnist --config configs/nmnist-small.toml --root DATA --out runs/nm

    Several processes: torchrun --nproc_per_node 2 -m eventkit.cli.main train nmnist ... (or srun
    under SLURM); rank 0 builds the cache and writes the run folder.
    """
    from eventkit.errors import ParameterError
    from eventkit_train.trainer import TrainConfig, load_config
    from eventkit_train.trainer import train as run_training

    if resume and not out:
        raise ParameterError("--resume needs --out RUN_DIR (the run directory to continue)")
    base = load_config(config_file) if config_file else TrainConfig(dataset=name)
    if config_file and base.dataset.lower() != name.lower():
        raise ParameterError(f"--config {config_file} is a recipe for dataset {base.dataset!r}, not {name!r}; "
                             f"use `eventkit train {base.dataset} --config {config_file}` or another recipe")
    config = base.replace(dataset=name, root=root, cache=cache, T=T, eval_T=eval_T, arch=arch, neuron=neuron,
                          neuron_map=neuron_map, loss=loss, epochs=epochs, batch_size=batch_size, lr=lr,
                          val_fraction=val_fraction, device=device, amp=amp, seed=seed, out=out, workers=workers,
                          threads=threads, cache_wait_s=cache_wait_s)
    if augment is not None:
        config = TrainConfig.from_dict({**config.to_dict(), "augment": augment}, source="--augment")
    if storage_options:
        config = TrainConfig.from_dict({**config.to_dict(), "storage_options": {**config.storage_options,
                                                                                **storage_options}},
                                       source="--storage-option")
    if neuron is not None and config.arch:
        from eventkit_train.models.spec import has_neuron_tokens, parse_spec

        if has_neuron_tokens(parse_spec(config.arch)):
            click.echo(f"warning: --neuron {neuron} is unused: the arch names its neurons; "
                       f"use --neuron-map OLD={neuron} to replace them", err=True)
    quiet = bool(click.get_current_context().find_root().params.get("quiet"))  # eventkit -q: no progress
    # a bar only on a terminal without --json; plain lines otherwise (eventkit.progress)
    mode = False if (not progress or quiet) else ("lines" if as_json else True)
    summary = run_training(config, resume=resume, progress=mode)
    if summary.get("rank", 0) != 0:  # under torchrun/srun: one summary, from rank 0
        return
    if as_json:
        click.echo(json.dumps(summary))
    else:
        def acc(key: str) -> str:  # None when no epoch ran (--epochs 0) or without validation
            return "n/a" if summary.get(key) is None else f"{summary[key]:.4f}"

        best = summary.get("best_epoch")
        chosen = "" if best is None else (
            f"; best.pt = epoch {best + 1} (validation {acc('best_val_accuracy')}, "
            f"test {acc('test_accuracy_at_best')})")
        click.echo(f"{summary['dataset']}: {summary['epochs']} epochs in {summary['seconds']:.1f} s on "
                   f"{summary['device']} x{summary['world_size']}; test accuracy {acc('test_accuracy')}, "
                   f"train {acc('train_accuracy')}{chosen}; run dir {summary['run_dir']}")
