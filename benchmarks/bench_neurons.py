"""Every eventkit neuron, forward + backward, side by side with SpikingJelly and snnTorch in one run.

Each timed call is one forward pass of a neuron layer over ``x [T, B, N]`` (float32) plus
``backward()`` of its summed spikes; calls of all implementations are interleaved, repeat
after repeat, and the median is reported. Every implementation also gets one untimed call
under ``torch.autograd.graph.saved_tensors_hooks`` that adds up the bytes it keeps for
backward (distinct storages), reported per neuron-step. eventkit's LIF and PLIF spikes are
checked equal to SpikingJelly's ``LIFNode`` / ``ParametricLIFNode`` before timing (same
discrete equations); the other peers are the closest nodes (different models), timed for
scale. SpikingJelly runs its best implementation for the device (on CUDA each of its
implementations is tried and the fastest kept). Needs ``make bench-env``; a missing library
is reported and skipped.

    python benchmarks/bench_neurons.py [--device cpu|cuda] [--repeats 7] [--T 20 --B 32 --N 32768]

On CUDA the report adds each eventkit neuron's memory-traffic floor (bytes its kernels must
read and write ÷ the device's copy bandwidth). Writes ``benchmarks/results/neurons[-cuda].md``
and ``.json``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SJ_OPS = {"LIFNode": "lif", "ParametricLIFNode": "plif", "IzhikevichNode": "izhikevich", "IFNode": "if_"}


# --------------------------------------------------------------------------- implementations
def eventkit(name: str) -> Callable[[], torch.nn.Module]:
    from eventkit_train.neurons import CUBALIF, IF, LIF, PLIF, SIT, SRM
    from eventkit_train.neurons.readout import LeakyReadout

    return {
        "IF": lambda: IF(),
        "LIF": lambda: LIF(tau=2.0, surrogate="arctan"),
        "PLIF": lambda: PLIF(tau_init=2.0, surrogate="arctan"),
        "CUBA-LIF": lambda: CUBALIF(alpha=0.6, beta=0.9),
        "CUBA-LIF learnable": lambda: CUBALIF(tau_syn=2.0, tau_mem=10.0, learnable=True),
        "SIT": lambda: SIT.tonic(),
        "SIT-Bursting": lambda: SIT.bursting(),
        "SRM": lambda: SRM(tau_s=2.0, tau_r=2.0),
        "leaky readout": lambda: _Spiking(LeakyReadout(tau_syn=2.0, tau_mem=10.0)),
        "recurrent CUBA-LIF": lambda: CUBALIF(alpha=0.6, beta=0.9, recurrent=True, n_features=_RECURRENT_N),
    }[name]


class _Spiking(torch.nn.Module):
    """The readout returns a membrane; the benchmark sums it like spikes."""

    def __init__(self, m: torch.nn.Module):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)


def _sj(cls_name: str, **kw) -> Callable[[], torch.nn.Module]:
    def make():
        from spikingjelly.activation_based import neuron, surrogate

        cls = getattr(neuron, cls_name)
        if cls_name == "CUBALIFNode":  # no step_mode argument: SpikingJelly's generic multi-step loop
            m = cls(c_decay=0.4, v_decay=0.1, v_threshold=1.0, surrogate_function=surrogate.ATan())
            m.step_mode = "m"
            return m
        return cls(surrogate_function=surrogate.ATan(), step_mode="m", **kw)

    return make


def _snntorch(kind: str) -> Callable[[], torch.nn.Module]:
    def make():
        import snntorch as snn
        from snntorch import surrogate

        cell = (snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero", spike_grad=surrogate.atan())
                if kind == "Leaky" else
                snn.Synaptic(alpha=0.6, beta=0.9, threshold=1.0, reset_mechanism="zero", spike_grad=surrogate.atan()))

        class MultiStep(torch.nn.Module):  # snnTorch steps one time step per call
            def __init__(self):
                super().__init__()
                self.cell = cell

            def forward(self, x):
                out = []
                if kind == "Leaky":
                    mem = self.cell.init_leaky()
                    for t in range(x.shape[0]):
                        spk, mem = self.cell(x[t] * 0.5, mem)  # 1/tau input scaling, as in LIF
                        out.append(spk)
                else:
                    syn, mem = self.cell.init_synaptic()
                    for t in range(x.shape[0]):
                        spk, syn, mem = self.cell(x[t], syn, mem)
                        out.append(spk)
                return torch.stack(out)

        return MultiStep()

    return make


_RECURRENT_N = 256
# (eventkit neuron, peers, shape override (T, B, N) or None)
ROWS = [
    ("IF", [("SpikingJelly IFNode", _sj("IFNode"))], None),
    ("LIF", [("SpikingJelly LIFNode", _sj("LIFNode", tau=2.0, decay_input=True)),
             ("snnTorch Leaky", _snntorch("Leaky"))], None),
    ("PLIF", [("SpikingJelly ParametricLIFNode", _sj("ParametricLIFNode", init_tau=2.0))], None),
    ("CUBA-LIF", [("SpikingJelly CUBALIFNode", _sj("CUBALIFNode")), ("snnTorch Synaptic", _snntorch("Synaptic"))],
     None),
    ("CUBA-LIF learnable", [], None),
    ("SIT", [("SpikingJelly IzhikevichNode", _sj("IzhikevichNode"))], None),
    ("SIT-Bursting", [], None),
    ("SRM", [], None),
    ("leaky readout", [], None),
    ("recurrent CUBA-LIF", [], (100, 128, _RECURRENT_N)),
]
EQUAL_SPIKES = {"LIF": "SpikingJelly LIFNode", "PLIF": "SpikingJelly ParametricLIFNode",
                "IF": "SpikingJelly IFNode"}
# bytes per neuron-step the fused float32 kernels must move (forward: x, spikes, SAVED; backward: g_spikes,
# SAVED, g_x) — the memory-traffic floor, with SAVED per definition
SAVED_PER_STEP = {"IF": 1, "LIF": 1, "PLIF": 1, "CUBA-LIF": 2, "CUBA-LIF learnable": 2, "SIT": 1,
                  "SIT-Bursting": 1, "SRM": 1, "leaky readout": 2}


# --------------------------------------------------------------------------- timing helpers
def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _reset(module: torch.nn.Module) -> None:
    if hasattr(module, "reset") or any(hasattr(m, "v") for m in module.modules()):
        try:
            from spikingjelly.activation_based import functional

            functional.reset_net(module)
        except ImportError:
            pass


def _call(module: torch.nn.Module, x0: torch.Tensor, device: str) -> float:
    _reset(module)
    x = x0.detach().clone().requires_grad_(True)
    _sync(device)
    t0 = time.perf_counter()
    module(x).sum().backward()
    _sync(device)
    return time.perf_counter() - t0


def saved_bytes(module: torch.nn.Module, x0: torch.Tensor) -> int:
    """Bytes of the distinct storages the module saves for backward on one call."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        if t.device.type != "meta":
            s = t.untyped_storage()
            seen[s.data_ptr()] = s.nbytes()
        return t

    _reset(module)
    x = x0.detach().clone().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = module(x)
    y.sum().backward()
    return sum(seen.values())


def _sj_implementations(device: str) -> list[str | None]:
    """SpikingJelly's CUDA implementations to try (None: its automatic choice)."""
    if not device.startswith("cuda"):
        return [None]
    return [None, "cuda", "triton"]


def _set_sj_implementation(cls_name: str, impl: str | None) -> bool:
    """Point SpikingJelly's operator selection for ``cls_name`` at ``impl`` (private API; False if absent)."""
    try:
        import importlib

        sel = importlib.import_module(f"spikingjelly._ops.{SJ_OPS[cls_name]}")._selection
        sel._requested = impl or "auto"
        sel._selections.clear()
        return True
    except Exception:  # noqa: BLE001 - an older/newer SpikingJelly: keep its automatic choice
        return impl is None


def copy_bandwidth(device: str) -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write), median of 5."""
    a = torch.empty(256 * 2**20 // 4, device=device)
    b = torch.empty_like(a)
    times = []
    for _ in range(6):
        _sync(device)
        t0 = time.perf_counter()
        b.copy_(a)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * a.numel() * 4 / statistics.median(times[1:])


# --------------------------------------------------------------------------- the run
def bench(device: str, repeats: int, T: int, B: int, N: int) -> dict:
    impls: dict[str, tuple[str, Callable[[], torch.nn.Module], tuple[int, int, int]]] = {}
    notes: dict[str, str] = {}
    for name, peers, shape in ROWS:
        shp = shape or (T, B, N)
        impls[f"eventkit {name}"] = (name, eventkit(name), shp)
        for label, factory in peers:
            try:
                factory()
                impls[label] = (name, factory, shp)
            except Exception as exc:  # noqa: BLE001 - a missing peer is reported, not fatal
                notes[label] = f"unavailable: {type(exc).__name__}: {exc}"
    gen = torch.Generator().manual_seed(0)
    inputs = {shp: (torch.rand(shp, generator=gen) * 2.5).to(device) for _, _, shp in impls.values()}
    modules = {label: f().to(device) for label, (_, f, _) in impls.items()}
    for row, peer in EQUAL_SPIKES.items():
        if peer in modules:
            x = inputs[impls[peer][2]]
            with torch.no_grad():
                _reset(modules[peer])
                a, b = modules[f"eventkit {row}"](x), modules[peer](x)
            mismatch = (a != b).float().mean().item()
            assert mismatch == 0.0, f"{row}: eventkit and {peer} spikes differ on {mismatch:.2e} of neuron-steps"
    sj_variants: dict[str, list[str | None]] = {label: _sj_implementations(device) for label in modules
                                                if label.startswith("SpikingJelly")}
    memory = {label: saved_bytes(m, inputs[impls[label][2]]) / math.prod(impls[label][2])
              for label, m in modules.items()}
    times: dict[str, list[float]] = {}
    for label, m in modules.items():  # warm-up (compiles kernels)
        for impl in sj_variants.get(label, [None]):
            if _set_sj_implementation(label.split()[-1], impl) or impl is None:
                _call(m, inputs[impls[label][2]], device)
    for _ in range(repeats):
        for label, m in modules.items():
            for impl in sj_variants.get(label, [None]):
                key = label if impl is None else f"{label} [{impl}]"
                if impl is not None and not _set_sj_implementation(label.split()[-1], impl):
                    continue
                times.setdefault(key, []).append(_call(m, inputs[impls[label][2]], device))
            if label in sj_variants:
                _set_sj_implementation(label.split()[-1], None)
        print(".", end="", flush=True)
    print()
    seconds = {k: statistics.median(v) for k, v in times.items()}
    for label in sj_variants:  # keep SpikingJelly's fastest implementation
        variants = {k: v for k, v in seconds.items() if k == label or k.startswith(label + " [")}
        best = min(variants, key=variants.get)
        for k in variants:
            seconds.pop(k)
        seconds[label] = variants[best]
        if best != label:
            notes[label] = f"fastest SpikingJelly implementation: {best[len(label) + 2:-1]}"
    rows = []
    lif = seconds["eventkit LIF"]
    floor_bw = copy_bandwidth(device) if device.startswith("cuda") else None
    for name, peers, shape in ROWS:
        shp = shape or (T, B, N)
        ours = seconds[f"eventkit {name}"]
        row = {"neuron": name, "shape": list(shp), "eventkit_ms": ours * 1e3,
               "vs_eventkit_lif": ours / lif if shape is None else None,
               "saved_bytes_per_neuron_step": memory[f"eventkit {name}"],
               "peers": {label: {"ms": seconds[label] * 1e3, "speedup_of_eventkit": seconds[label] / ours,
                                 "saved_bytes_per_neuron_step": memory[label]}
                         for label, _ in peers if label in seconds}}
        if floor_bw and name in SAVED_PER_STEP:
            traffic = (4 + 2 * SAVED_PER_STEP[name]) * 4 * math.prod(shp)  # x, s, SAVED | g_s, SAVED, g_x
            row["floor_ms"] = traffic / floor_bw * 1e3
            row["x_floor"] = ours * 1e3 / row["floor_ms"]
        rows.append(row)
    return {"rows": rows, "notes": notes, "copy_bandwidth_GBps": floor_bw / 1e9 if floor_bw else None}


def _markdown(result: dict) -> list[str]:
    lines = [
        "# Neurons, forward + backward: eventkit_train vs SpikingJelly and snnTorch", "",
        f"{result['date']} · device {result['device']} ({result['device_name']}, {result['cores']} cores, "
        f"{result['torch_threads']} torch threads) · median of {result['repeats']}, interleaved · "
        + ", ".join(f"{k} {v}" for k, v in result["versions"].items()), "",
        f"Load average at start {result['loadavg_start']}, at end {result['loadavg_end']}.", "",
        "| neuron | [T, B, N] | eventkit (ms) | vs eventkit LIF | saved B/neuron-step | peer | peer (ms) | "
        "eventkit speed-up | peer saved B/neuron-step |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in result["rows"]:
        head = (f"| {r['neuron']} | {r['shape']} | {r['eventkit_ms']:.1f} | "
                + ("—" if r["vs_eventkit_lif"] is None else f"{r['vs_eventkit_lif']:.2f}x")
                + f" | {r['saved_bytes_per_neuron_step']:.1f} |")
        peers = list(r["peers"].items()) or [(None, None)]
        for i, (label, p) in enumerate(peers):
            prefix = head if i == 0 else "| | | | | |"
            lines.append(prefix + (" — | | | |" if label is None else
                                   f" {label} | {p['ms']:.1f} | {p['speedup_of_eventkit']:.2f}x | "
                                   f"{p['saved_bytes_per_neuron_step']:.1f} |"))
    if result.get("copy_bandwidth_GBps"):
        lines += ["", f"Memory-traffic floor (copy bandwidth {result['copy_bandwidth_GBps']:.0f} GB/s; "
                      "(4 + 2·SAVED)·4 bytes per neuron-step):", "", "| neuron | floor (ms) | eventkit / floor |",
                  "|---|---:|---:|"]
        lines += [f"| {r['neuron']} | {r['floor_ms']:.2f} | {r['x_floor']:.2f}x |" for r in result["rows"]
                  if "floor_ms" in r]
    lines += ["", "Speed-up above 1: eventkit is faster. Saved bytes: what each implementation keeps from forward "
              "to backward, measured with saved-tensor hooks. LIF/PLIF/IF spikes equal SpikingJelly's (checked "
              "before timing); the other peers are different models timed for scale.", ""]
    lines += [f"- {k}: {v}" for k, v in result["notes"].items()]
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--T", type=int, default=20)
    ap.add_argument("--B", type=int, default=32)
    ap.add_argument("--N", type=int, default=32768)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    load0 = list(os.getloadavg())
    result = bench(args.device, args.repeats, args.T, args.B, args.N)
    versions = {"torch": torch.__version__}
    for mod in ("spikingjelly", "snntorch", "numba", "triton"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:  # noqa: BLE001
            versions[mod] = "not installed"
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    result.update(date=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), device=args.device,
                  device_name=device_name, cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                  versions=versions, loadavg_start=load0, loadavg_end=list(os.getloadavg()), repeats=args.repeats)
    lines = _markdown(result)
    stem = "neurons" if args.device == "cpu" else "neurons-cuda"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
