"""Multi-step LIF neuron speed: eventkit_train vs SpikingJelly and snnTorch (forward + backward).

One layer of LIF neurons over ``[T, B, N]`` inputs, tau = 2 (decay 0.5), threshold 1,
hard reset to 0, arctan surrogate; time is the median of repeats of one forward pass
plus ``backward()`` of the summed spikes. Before timing, eventkit's spikes are checked
equal to SpikingJelly's ``LIFNode`` (the same discrete equation, ``decay_input=True``).
snnTorch's ``Leaky`` (``beta = 0.5``, ``reset_mechanism="zero"``, input scaled by
``1/tau``) applies the reset of step t-1 inside step t, so its spike trains are not
identical; it is timed for scale. Needs ``make bench-env`` (SpikingJelly, snnTorch with
``--no-deps``, loguru); a missing library is reported and skipped.

    python benchmarks/bench_neurons.py [--device cpu|cuda] [--repeats 9]

Writes ``benchmarks/results/neurons.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
CASES = [  # (name, T, B, N)
    ("conv-layer sized (32x128x16x16 flattened)", 20, 32, 128 * 16 * 16),
    ("dense layer (700-200-20 hidden, SHD)", 100, 128, 200),
]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_seconds(fn: Callable[[], object], repeats: int, device: str) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def eventkit_lif():
    from eventkit_train.neurons import LIF

    return LIF(tau=2.0, v_threshold=1.0, v_reset=0.0, surrogate="arctan")


def spikingjelly_lif():
    from spikingjelly.activation_based import neuron, surrogate

    return neuron.LIFNode(tau=2.0, v_threshold=1.0, v_reset=0.0, decay_input=True,
                          surrogate_function=surrogate.ATan(), step_mode="m")


def snntorch_lif():
    import snntorch as snn
    from snntorch import surrogate

    leaky = snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero", spike_grad=surrogate.atan())

    class MultiStep(torch.nn.Module):  # snnTorch steps one time step per call
        def __init__(self):
            super().__init__()
            self.leaky = leaky

        def forward(self, x):
            mem = self.leaky.init_leaky()
            out = []
            for t in range(x.shape[0]):
                spk, mem = self.leaky(x[t] * 0.5, mem)  # 1/tau input scaling, as in the LIF above
                out.append(spk)
            return torch.stack(out)

    return MultiStep()


def bench(device: str, repeats: int) -> dict:
    impls = {"eventkit LIF": eventkit_lif}
    notes = {}
    for name, factory in (("SpikingJelly LIFNode", spikingjelly_lif), ("snnTorch Leaky", snntorch_lif)):
        try:
            factory()
            impls[name] = factory
        except Exception as exc:  # noqa: BLE001 - a missing anchor is reported, not fatal
            notes[name] = f"unavailable: {type(exc).__name__}: {exc}"
    rows = []
    for case, T, B, N in CASES:
        gen = torch.Generator().manual_seed(0)
        x0 = (torch.rand(T, B, N, generator=gen) * 2.5).to(device)
        modules = {k: f().to(device) for k, f in impls.items()}
        if "SpikingJelly LIFNode" in modules:
            from spikingjelly.activation_based import functional

            with torch.no_grad():
                a = modules["eventkit LIF"](x0)
                functional.reset_net(modules["SpikingJelly LIFNode"])
                b = modules["SpikingJelly LIFNode"](x0)
            assert torch.equal(a, b), f"{case}: eventkit and SpikingJelly spike trains differ"
        seconds = {}
        for name, module in modules.items():
            def step(module=module, name=name):
                if name.startswith("SpikingJelly"):
                    from spikingjelly.activation_based import functional

                    functional.reset_net(module)
                x = x0.clone().requires_grad_(True)
                module(x).sum().backward()
            seconds[name] = median_seconds(step, repeats, device)
        base = seconds["eventkit LIF"]
        rows.append({"case": case, "T": T, "B": B, "N": N, "seconds": seconds,
                     "speedup_of_eventkit": {k: v / base for k, v in seconds.items() if k != "eventkit LIF"}})
        print(case, {k: f"{v * 1e3:.1f} ms" for k, v in seconds.items()}, flush=True)
    return {"rows": rows, "notes": notes}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    load0 = list(os.getloadavg())
    result = bench(args.device, args.repeats)
    versions = {"torch": torch.__version__}
    for mod in ("spikingjelly", "snntorch"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:  # noqa: BLE001
            versions[mod] = "not installed"
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    result.update(date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), device=args.device,
                  device_name=device_name, cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                  versions=versions, loadavg_start=load0, loadavg_end=list(os.getloadavg()), repeats=args.repeats)
    names = list(result["rows"][0]["seconds"])
    lines = [
        "# LIF neuron, forward + backward: eventkit_train vs SpikingJelly and snnTorch", "",
        f"{result['date']} · device {args.device} ({device_name}, {result['cores']} cores, "
        f"{result['torch_threads']} torch threads) · median of {args.repeats} · "
        + ", ".join(f"{k} {v}" for k, v in versions.items()), "",
        f"Load average at start {load0}, at end {result['loadavg_end']}.", "",
        "| case | T | B | N | " + " | ".join(f"{n} (ms)" for n in names) + " | "
        + " | ".join(f"eventkit vs {n}" for n in names[1:]) + " |",
        "|---|---:|---:|---:|" + "---:|" * (2 * len(names) - 1),
    ]
    for r in result["rows"]:
        lines.append(f"| {r['case']} | {r['T']} | {r['B']} | {r['N']} | "
                     + " | ".join(f"{r['seconds'][n] * 1e3:.1f}" for n in names) + " | "
                     + " | ".join(f"{r['speedup_of_eventkit'][n]:.2f}x" for n in names[1:]) + " |")
    lines += ["", "A ratio above 1 means eventkit is faster. eventkit's spikes equal SpikingJelly's on every case "
              "(checked before timing); snnTorch applies the reset one step later, so its trains differ.", ""]
    for k, v in result["notes"].items():
        lines.append(f"- {k}: {v}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "neurons.md").write_text("\n".join(lines) + "\n")
    (args.out / "neurons.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
