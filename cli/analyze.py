"""``eventkit analyze ...``: phase planes, the ``b`` range, firing patterns, parameter scans, and the
input distribution / feature maps of a trained network (thin wrappers over
:mod:`eventkit_train.analysis`). Each command writes a PNG and a JSON file into ``--out``."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from .options import parse_key_value, parse_key_values

_out_option = click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("analysis"),
                           show_default=True, help="Folder for the PNG and JSON files.")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")



def _numbers(text: str) -> list[float]:
    """``"1.1,1.8,2"`` -> list; ``"0:1:11"`` -> 11 evenly spaced values from 0 to 1."""
    try:
        if re.fullmatch(r"\s*[-+0-9.eE]+:[-+0-9.eE]+:\d+\s*", text):
            start, stop, num = text.split(":")
            n = int(num)
            if n < 2:
                raise ValueError
            return [float(start) + (float(stop) - float(start)) * i / (n - 1) for i in range(n)]
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected numbers a,b,c or START:STOP:N (N >= 2), got {text!r}") from None


def _neuron_spec(text: str) -> tuple[str, dict[str, Any]]:
    """``sit-bursting[d=0.6,a=0.3]`` -> ("sit-bursting", {"d": 0.6, "a": 0.3})."""
    m = re.fullmatch(r"\s*([^\[\]]+?)\s*(?:\[(.*)\])?\s*", text)
    if m is None:
        raise click.BadParameter(f"expected NAME or NAME[key=value,...], got {text!r}")
    params = dict(parse_key_value(p) for p in m.group(2).split(",") if p.strip()) if m.group(2) else {}
    return m.group(1), params


def _report(as_json: bool, payload: dict[str, Any], paths: dict[str, Path], lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps({**payload, "files": {k: str(v) for k, v in paths.items()}}))
        return
    for line in lines:
        click.echo(line)
    for p in paths.values():
        click.echo(str(p))


@click.group("analyze")
def analyze() -> None:
    """Neuron dynamics (phase planes, b range, firing patterns) and trained-network analysis.

    Guide with the SIT paper's figures: docs/analysis.md.
    """


@analyze.command("phase-plane",
                 short_help="Vector field, nullclines, fixed points and their classes, bifurcations in I.")
@click.argument("neuron")
@click.option("--I", "I", type=float, default=0.0, show_default=True, help="Constant input current.")
@click.option("--param", "params", multiple=True, callback=parse_key_values, metavar="KEY=VALUE",
              help="Override a parameter of the neuron (repeatable), e.g. --param d=0.6.")
@click.option("--window", default=None, help="u0,u1[,v0,v1] of the plot (default: around the fixed points).")
@click.option("--init", "inits", multiple=True, help="Initial state U[,V] of a continuous trajectory (repeatable).")
@click.option("--steps", type=int, default=40, show_default=True, help="Discrete steps of the network's update.")
@click.option("--t-max", "t_max", type=float, default=None,
              help="Duration of the continuous trajectories (default 50 tau; 200 ms for izhikevich).")
@click.option("--bifurcation", "bif", default=None, metavar="I0:I1:N", help="Fixed points for N inputs from I0 to I1.")
@_out_option
@_json_option
def phase_plane_cmd(neuron: str, I: float, params, window, inits, steps, t_max, bif, out: Path, as_json: bool) -> None:
    """Vector field, nullclines, fixed points (class from the eigenvalues), trajectories.

    NEURON: lif, qif, izhikevich[:preset] (regular_spiking, chattering, ...), sit, sit-bursting.

    \b
    Examples:
      eventkit analyze phase-plane sit --bifurcation -0.5:0.4:91
      eventkit analyze phase-plane izhikevich:tonic --bifurcation -10:6:81
      eventkit analyze phase-plane sit-bursting --param d=0.6 --I 1.5
    """
    from eventkit_train.analysis import phase_plane

    pp = phase_plane(neuron, I, params=params, window=_numbers(window) if window else None,
                     inits=[_numbers(s) for s in inits] or None, discrete_steps=steps, t_max=t_max,
                     bifurcation_inputs=_numbers(bif) if bif else None)
    paths = pp.save(out)
    lines = [f"{p.source}: {tuple(round(v, 6) for v in p.state)} {p.kind} "
             f"(eigenvalues {', '.join(f'{z.real:.4g}{z.imag:+.4g}j' for z in p.eigenvalues)}; "
             f"network step {'stable' if p.map_stable else 'unstable'})" for p in pp.fixed_points]
    if pp.bifurcation is not None:
        lines += [f"{ev['type']} at I = {ev['I']:.6g}" for ev in pp.bifurcation.events]
    _report(as_json, pp.to_json(), paths, lines or ["no fixed point at this input"])


@analyze.command("b-range", short_help="The b range of Eq. 17 and where SIT's target point is stable.")
@click.option("--inputs", "inputs", nargs=2, type=float, default=None, metavar="LO HI", help="Input range of I.")
@click.option("--from", "source", type=click.Path(exists=True, dir_okay=False), default=None,
              help="input_distribution JSON written by `eventkit analyze inputs` (its 5 % and 95 % quantiles).")
@click.option("--k", type=float, default=1.0, show_default=True)
@click.option("--u-r", "u_r", type=float, default=-0.05, show_default=True)
@click.option("--u-c", "u_c", type=float, default=1.0, show_default=True)
@click.option("--target", type=float, default=0.0, show_default=True, help="Where the stable point should be.")
@click.option("--a", type=float, default=0.002, show_default=True, help="Decides node / focus and the step map.")
@click.option("--tau", type=float, default=2.0, show_default=True)
@_out_option
@_json_option
def b_range_cmd(inputs, source, k, u_r, u_c, target, a, tau, out: Path, as_json: bool) -> None:
    """The b that puts SIT's fixed point at --target for each input (Eq. 17), and where it is stable.

    Example: eventkit analyze b-range --inputs -4.92 3.83
    """
    from eventkit.errors import ParameterError
    from eventkit_train.analysis import b_range
    from eventkit_train.analysis.plot_dynamics import plot_b_range

    if (inputs is None) == (source is None):
        raise ParameterError("give --inputs LO HI or --from input_distribution.json")
    if source is not None:
        q = json.loads(Path(source).read_text()).get("quantiles", {})
        if "0.05" not in q or "0.95" not in q:
            raise ParameterError(f"{source}: no 0.05 / 0.95 quantiles (write it with `eventkit analyze inputs`)")
        inputs = (q["0.05"], q["0.95"])
    res = b_range(list(inputs), k=k, U_r=u_r, U_c=u_c, target=target, a=a, tau=tau)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"png": plot_b_range(res, out / "b_range.png"), "json": out / "b_range.json"}
    paths["json"].write_text(json.dumps(res.to_json(), indent=1) + "\n")
    lines = [f"{res.to_json()['equation']}: b in [{res.b[0]:.6g}, {res.b[1]:.6g}] for I in "
             f"[{res.inputs[0]:.6g}, {res.inputs[1]:.6g}]"]
    lines += [f"  b in [{s['b'][0]:.6g}, {s['b'][1]:.6g}]: {s['kind']} at U = {target:g}" for s in res.segments]
    _report(as_json, res.to_json(), paths, lines)


@analyze.command("patterns", short_help="Spike trains at constant inputs, classified (tonic/adapting/bursting).")
@click.argument("neurons", nargs=-1, required=True)
@click.option("--inputs", "levels", default="1.1,1.8,2,3", show_default=True, help="Constant inputs a,b,c.")
@click.option("--T", "T", type=int, default=40, show_default=True, help="Steps per input (ms for izhikevich).")
@click.option("--step/--no-step", "step_input", default=True, show_default=True,
              help="Also one run whose input steps through the levels.")
@_out_option
@_json_option
def patterns_cmd(neurons, levels, T, step_input, out: Path, as_json: bool) -> None:
    """Spike trains at constant inputs (Fig. 12) with their class, count, latency and ISIs.

    NEURONS: names with optional parameters, e.g. sit sit-bursting 'sit-bursting[d=0.6]' 'lif[tau=2]'.

    Example: eventkit analyze patterns sit sit-bursting 'lif[tau=2]' --inputs 1.1,1.8,2,3
    """
    from eventkit_train.analysis import firing_patterns

    specs = {text: _neuron_spec(text) for text in neurons}
    fp = firing_patterns(specs, _numbers(levels), T, step_input=step_input)
    paths = fp.save(out)
    lines = [f"{e['neuron']:>24} I = {e['input']!s:>5}: {e['pattern'].pattern} ({e['pattern'].detail}), "
             f"{e['pattern'].spike_count} spikes, first at {e['pattern'].first_spike}" for e in fp.entries]
    _report(as_json, fp.to_json(), paths, lines)


@analyze.command("scan", short_help="Firing class over a grid of two neuron parameters.")
@click.argument("neuron")
@click.option("--x", "x_axis", required=True, metavar="NAME=VALUES", help="First parameter: d=0.05:1:20 or d=0.1,0.5.")
@click.option("--y", "y_axis", required=True, metavar="NAME=VALUES", help="Second parameter, as --x.")
@click.option("--I", "I", type=float, required=True, help="Constant input.")
@click.option("--T", "T", type=int, default=200, show_default=True)
@click.option("--param", "params", multiple=True, callback=parse_key_values, metavar="KEY=VALUE",
              help="Fixed parameter (repeatable), e.g. --param c=0.9.")
@_out_option
@_json_option
def scan_cmd(neuron, x_axis, y_axis, I, T, params, out: Path, as_json: bool) -> None:
    """Map of the firing class over two parameters (where does the neuron burst?).

    Example: eventkit analyze scan sit --x a=0.002,0.005,0.01,0.02,0.05 --y c=0:0.95:20 --I 2 --param d=0.2
    """
    from eventkit_train.analysis import param_scan

    grid = {}
    for text in (x_axis, y_axis):
        name, sep, values = text.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUES, got {text!r}")
        grid[name.strip()] = _numbers(values)
    sc = param_scan(neuron, grid, I, T=T, params=params)
    paths = sc.save(out)
    counts = sc.to_json()["counts"]
    _report(as_json, sc.to_json(), paths, [", ".join(f"{k}: {v}" for k, v in counts.items() if v)])


@analyze.command("inputs", short_help="Input currents of a layer of a trained network, and their b range.")
@click.argument("run_dir", type=click.Path(exists=True))
@click.option("--layer", required=True, help="Spiking layer: index (0 = first), name (7_sit) or kind (sit).")
@click.option("--split", default=None, help="Data split (default: the run's test split).")
@click.option("--batches", type=int, default=None, help="At most this many batches.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--root", default=None, help="Raw data folder (default: the run's).")
@click.option("--cache", default=None, help="Cache root (default: the run's).")
@click.option("--checkpoint", default="best.pt", show_default=True)
@_out_option
@_json_option
def inputs_cmd(run_dir, layer, split, batches, batch_size, root, cache, checkpoint, out: Path, as_json: bool) -> None:
    """Distribution of I = W·X at a layer of a trained network (Fig. 7) and the b range it implies.

    Example: eventkit analyze inputs runs/hnn --layer sit --batches 20
    """
    from eventkit_train.analysis import input_distribution, load_run_model
    from eventkit_train.analysis.network import run_loader
    from eventkit_train.analysis.plot_dynamics import plot_b_range
    from eventkit_train.analysis.plot_patterns import plot_input_distribution

    model, config = load_run_model(run_dir, checkpoint=checkpoint)
    loader, scale = run_loader(config, split, batch_size=batch_size, root=root, cache=cache)
    dist = input_distribution(model, loader, layer, max_batches=batches, scale=scale)
    res = dist.b_range()
    out.mkdir(parents=True, exist_ok=True)
    paths = {"png": plot_input_distribution(dist, out / "input_distribution.png"),
             "json": out / "input_distribution.json", "b_range_png": plot_b_range(res, out / "b_range.png")}
    payload = {**dist.to_json(), "b_range": res.to_json()}
    paths["json"].write_text(json.dumps(payload, indent=1) + "\n")
    q = dist.quantiles
    _report(as_json, payload, paths, [f"layer {dist.layer}: {dist.count:,} inputs, 90 % in [{q['0.05']:.4g}, "
                                      f"{q['0.95']:.4g}] -> b in [{res.b[0]:.4g}, {res.b[1]:.4g}]"])


@analyze.command("features", short_help="Spiking feature maps of a layer of trained networks.")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--layer", required=True, help="Spiking conv layer of every run: index, name or kind.")
@click.option("--samples", type=int, default=16, show_default=True)
@click.option("--split", default=None, help="Data split (default: the run's test split).")
@click.option("--root", default=None)
@click.option("--cache", default=None)
@click.option("--checkpoint", default="best.pt", show_default=True)
@_out_option
@_json_option
def features_cmd(runs, layer, samples, split, root, cache, checkpoint, out: Path, as_json: bool) -> None:
    """Spiking feature maps F = mean over T and channels (Fig. 13), one row per run.

    Example: eventkit analyze features runs/hnn-sit runs/hnn-lif --layer 1 --samples 8
    """
    from eventkit.loader import to_device
    from eventkit_train.analysis import feature_maps, load_run_model
    from eventkit_train.analysis.network import run_loader
    from eventkit_train.analysis.plot_patterns import plot_feature_maps

    rows, payload = [], {"layer": layer, "runs": []}
    for run in runs:
        model, config = load_run_model(run, checkpoint=checkpoint)
        loader, scale = run_loader(config, split, batch_size=samples, root=root, cache=cache)
        x, _ = to_device(next(iter(loader)), "cpu")
        name, maps = feature_maps(model, x * scale, layer)
        rows.append((f"{Path(run).name} ({name})", maps))
        payload["runs"].append({"run": str(run), "layer": name, "mean_rate": float(maps.mean()),
                                "per_sample": maps.mean(axis=(1, 2)).tolist()})
    out.mkdir(parents=True, exist_ok=True)
    paths = {"png": plot_feature_maps(rows, out / "feature_maps.png"), "json": out / "feature_maps.json"}
    paths["json"].write_text(json.dumps(payload, indent=1) + "\n")
    lines = [f"{r['run']} {r['layer']}: mean rate {r['mean_rate']:.4f}" for r in payload["runs"]]
    _report(as_json, payload, paths, lines)
