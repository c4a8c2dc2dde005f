"""``eventkit eval RUN_DIR``: score a trained run on a split (thin wrapper over
:func:`eventkit_train.runs.load_run` and :func:`~eventkit_train.runs.evaluate_run`)."""
from __future__ import annotations

import json
from typing import Any

import click


def _ops_lines(res: dict[str, Any]) -> list[str]:
    """Synaptic operations and energy per sample, total and per layer (human text)."""
    ops, energy = res.get("synops"), res.get("energy_pj")
    if not ops or not energy:
        return []
    lines = [f"synaptic operations per sample: {ops['total']:,.0f} (AC {ops['ac']:,.0f}, MAC {ops['mac']:,.0f}); "
             f"ANN equivalent: MAC {ops['ann_mac']:,.0f}, AC {ops['ann_ac']:,.0f}",
             f"energy per sample: SNN {energy['snn'] / 1e6:.4g} µJ, ANN {energy['ann'] / 1e6:.4g} µJ "
             f"(AC {energy['pj_per_ac']:g} pJ, MAC {energy['pj_per_mac']:g} pJ; {energy['source'].split(';')[0]})"]
    for name, layer in ops["layers"].items():
        lines.append(f"  {name:<14} {layer['kind']:<9} AC {layer['ac']:>12,.0f}  MAC {layer['mac']:>12,.0f}  "
                     f"ANN MAC {layer['ann_mac']:>12,.0f}  ANN AC {layer['ann_ac']:>10,.0f}")
    return lines


@click.command("eval")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True,
              help="test split, the held-out validation part of the training split, or the rest of it.")
@click.option("--weights", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="best.pt (chosen on validation) or checkpoint.pt (last epoch).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:<i> or auto.")
@click.option("--batch-size", "batch_size", type=int, default=None, help="Default: the run's batch size.")
@click.option("--root", default=None, help="Raw data folder, if the run's is not reachable here.")
@click.option("--cache", default=None, help="Cache root folder or URL, if the run's is not reachable here.")
@click.option("--workers", type=int, default=0, show_default=True, help="DataLoader worker processes.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (accuracy, loss, spike rates, latency, synaptic operations, energy).")
def eval_run(run_dir: str, split: str, weights: str, device: str, batch_size: int | None, root, cache, workers: int,
             as_json: bool) -> None:
    """Evaluate the network of RUN_DIR (an `eventkit train --out` folder) on a split: accuracy,
    latency curve, spike rates, synaptic operations and energy estimate per sample."""
    from eventkit_train.runlog import silent_warning
    from eventkit_train.runs import evaluate_run, load_run

    run = load_run(run_dir, weights=weights)
    quiet = bool(click.get_current_context().find_root().params.get("quiet"))
    # a bar only on a terminal without --json; plain lines otherwise (eventkit.progress)
    res = evaluate_run(run, split=split, device=device, batch_size=batch_size, root=root, cache=cache,
                       workers=workers, progress=False if quiet else ("lines" if as_json else True))
    if res.get("silent_layers"):
        click.echo(f"warning: {silent_warning(res['silent_layers'], f'on the {split} split')}", err=True)
    if as_json:
        click.echo(json.dumps(res))
    else:
        click.echo(f"{run.config.dataset} {split}: accuracy {res['accuracy']:.4f}, loss {res['loss']:.4f} on "
                   f"{res['samples']} samples ({weights} weights, epoch {run.epoch + 1}, {res['device']})")
        for line in _ops_lines(res):
            click.echo(line)
