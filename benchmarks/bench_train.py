"""Training throughput (samples/s) of the same network in eventkit and SpikingJelly, and DDP scaling.

Networks (input ``[T=10, B, 2, 34, 34]`` count frames, rate-MSE loss, Adam):

- ``plif-small``: ``configs/nmnist-small.toml``'s PLIF net at batch 32. SpikingJelly's copy is
  built from ``layer.*`` + ``ParametricLIFNode`` (decay_input, hard reset to 0, ATan) +
  ``VotingLayer``; before timing eventkit's weights are copied into it and both networks'
  outputs are checked equal on the same input (eval mode).
- ``hnn-table1``: the Table 1 N-MNIST HNN of Jin et al. (SIT) at batch 8; SpikingJelly's copy
  has ``LIFNode`` and its ``IzhikevichNode`` in the SIT position (not the same neuron: timed for
  scale, not checked).

A training step = forward + loss + backward + ``Adam.step``; the implementations are timed in
turn, repeat after repeat (so load changes hit all of them alike), and the median step gives
samples/s. eventkit variants: eager float32; bf16 autocast; channels-last convolutions; both;
``torch.compile`` (inductor, with ``--compile``). SpikingJelly: eager float32 and bf16 autocast (its ``torch``
backend; ``cupy`` too on a GPU when installed).

DDP scaling: the ``plif-small`` step under ``DistributedDataParallel`` with 1 and 2 processes
(gloo on the CPU, NCCL on GPUs), the same global batch, threads split between processes;
samples/s of the whole job.

    python benchmarks/bench_train.py [--device cpu|cuda] [--repeats 7] [--threads N] [--quick] [--compile] [--no-ddp]

``--quick``: 2 repeats, T = 4, small batches (a smoke test of the script). Needs
``make bench-env`` for SpikingJelly (reported and skipped when missing). Writes
``benchmarks/results/train.md`` and ``.json`` (date, load average, machine).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

PLIF_SMALL = "APk2s2-c32k3s1-BN-PLIF-MPk2s2-c64k3s1-BN-PLIF-MPk2s2-DP-FC100-PLIF-APk10s10"
HNN = "c128k3s1-BN-LIF-MPk2s2-c128k3s1-BN-SIT-MPk2s2-DP-FC2048-LIF-DP-FC100-LIF-APk10s10"
NETS = {  # name: (arch, batch, eventkit neuron kwargs)
    "plif-small": (PLIF_SMALL, 32, {"tau_init": 2.0, "surrogate": "arctan"}),
    "hnn-table1": (HNN, 8, {"tau": 2.0, "v_threshold": 1.0, "detach_reset": False, "surrogate": "arctan"}),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def eventkit_net(arch: str, kw: dict) -> nn.Module:
    from eventkit_train.models import build

    return build(arch, (2, 34, 34), "plif", **kw)


def sj_net(name: str) -> tuple[nn.Module, Callable[[nn.Module], None]]:
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def plif():
        return neuron.ParametricLIFNode(init_tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
                                        detach_reset=False, surrogate_function=surrogate.ATan())

    def lif():
        return neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=False,
                              surrogate_function=surrogate.ATan())

    if name == "plif-small":
        net = nn.Sequential(layer.AvgPool2d(2, 2), layer.Conv2d(2, 32, 3, 1, 1, bias=False), layer.BatchNorm2d(32),
                            plif(), layer.MaxPool2d(2, 2), layer.Conv2d(32, 64, 3, 1, 1, bias=False),
                            layer.BatchNorm2d(64), plif(), layer.MaxPool2d(2, 2), layer.Flatten(), layer.Dropout(0.5),
                            layer.Linear(64 * 4 * 4, 100, bias=False), plif(), layer.VotingLayer(10))
    else:
        izh = neuron.IzhikevichNode(tau=2.0, surrogate_function=surrogate.ATan())
        net = nn.Sequential(layer.Conv2d(2, 128, 3, 1, 1, bias=False), layer.BatchNorm2d(128), lif(),
                            layer.MaxPool2d(2, 2), layer.Conv2d(128, 128, 3, 1, 1, bias=False),
                            layer.BatchNorm2d(128), izh, layer.MaxPool2d(2, 2), layer.Flatten(), layer.Dropout(0.5),
                            layer.Linear(128 * 8 * 8, 2048, bias=False), lif(), layer.Dropout(0.5),
                            layer.Linear(2048, 100, bias=False), lif(), layer.VotingLayer(10))
    functional.set_step_mode(net, "m")
    return net, functional.reset_net


def check_same_network(ek: nn.Module, sj: nn.Module, reset: Callable, x: torch.Tensor) -> float:
    """Copy eventkit's parameters into SpikingJelly's net (same order and shapes); returns the
    largest output difference in eval mode (spike counts averaged by the voting layer)."""
    ek_params, sj_params = list(ek.parameters()), list(sj.parameters())
    if [tuple(p.shape) for p in ek_params] != [tuple(p.shape) for p in sj_params]:
        raise AssertionError("eventkit and SpikingJelly networks have different parameters")
    with torch.no_grad():
        for a, b in zip(ek_params, sj_params, strict=True):
            b.copy_(a)
        ek.eval(), sj.eval()
        reset(sj)
        diff = float((ek(x) - sj(x)).abs().max())
    ek.train(), sj.train()
    return diff


class Step:
    """One timed training step of a network (optionally bf16 autocast / channels-last / compiled)."""

    def __init__(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, amp: bool = False,
                 reset: Callable | None = None):
        self.net, self.x, self.amp, self.reset = net, x, amp, reset
        self.target = F.one_hot(y, 10).float()
        self.opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def __call__(self) -> None:
        if self.reset is not None:
            self.reset(self.net)
        with torch.autocast(self.x.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.net(self.x)
        loss = F.mse_loss(out.float().mean(0), self.target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def make_steps(name: str, device: torch.device, T: int, batch: int, compile_: bool, notes: dict) -> dict[str, Step]:
    arch, _, kw = NETS[name]
    gen = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.full((T, batch, 2, 34, 34), 0.3), generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    steps: dict[str, Step] = {}
    torch.manual_seed(0)
    steps["eventkit"] = Step(eventkit_net(arch, kw).to(device), x, y)
    steps["eventkit bf16"] = Step(eventkit_net(arch, kw).to(device), x, y, amp=True)
    steps["eventkit channels-last"] = Step(eventkit_net(arch, kw).to(device).to(memory_format=torch.channels_last),
                                           x, y)
    steps["eventkit bf16 channels-last"] = Step(
        eventkit_net(arch, kw).to(device).to(memory_format=torch.channels_last), x, y, amp=True)
    if compile_:
        try:
            net = torch.compile(eventkit_net(arch, kw).to(device))
            steps["eventkit compile"] = Step(net, x, y)
            t0 = time.perf_counter()
            steps["eventkit compile"]()  # compiles forward and backward
            notes[f"{name}: torch.compile"] = f"compiled in {time.perf_counter() - t0:.0f} s (not timed)"
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            steps.pop("eventkit compile", None)
            notes[f"{name}: torch.compile"] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    try:
        sj, reset = sj_net(name)
        sj = sj.to(device)
        if name == "plif-small":
            diff = check_same_network(steps["eventkit"].net, sj, reset, x)
            notes[f"{name}: same network"] = f"largest output difference eventkit vs SpikingJelly {diff:.2e}"
            if diff > 1e-5:
                raise AssertionError(f"{name}: eventkit and SpikingJelly outputs differ by {diff}")
        steps["SpikingJelly"] = Step(sj, x, y, reset=reset)
        sj16, reset16 = sj_net(name)
        steps["SpikingJelly bf16"] = Step(sj16.to(device), x, y, amp=True, reset=reset16)
        sjcl, resetcl = sj_net(name)
        steps["SpikingJelly bf16 channels-last"] = Step(sjcl.to(device).to(memory_format=torch.channels_last), x, y,
                                                        amp=True, reset=resetcl)
    except ImportError as exc:
        notes["SpikingJelly"] = f"unavailable ({exc}); run `make bench-env`"
    return steps


def time_round_robin(steps: dict[str, Step], repeats: int,
                     device: torch.device) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall seconds and median CPU seconds (this process, all its threads) per step of
    each implementation, timed in turn within every repeat. On a loaded machine the CPU time
    is the steadier of the two (it does not count time spent waiting for a core)."""
    for step in steps.values():  # warm-up (allocator, cuDNN choice, autotuning)
        step()
    wall: dict[str, list[float]] = {k: [] for k in steps}
    cpu: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            _sync(device)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return ({k: statistics.median(v) for k, v in wall.items()}, {k: statistics.median(v) for k, v in cpu.items()})


# ---------------------------------------------------------------------------------------------- DDP

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, device: str, T: int, batch: int, steps: int, threads: int,
                out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(threads)
    from eventkit_train.distributed import Session

    with Session(device) as session:
        arch, _, kw = NETS["plif-small"]
        torch.manual_seed(0)
        net = session.wrap(eventkit_net(arch, kw).to(session.device), sync_bn=False)
        gen = torch.Generator().manual_seed(rank)
        per = batch // world
        x = torch.poisson(torch.full((T, per, 2, 34, 34), 0.3), generator=gen).to(session.device)
        step = Step(net, x, torch.randint(0, 10, (per,), generator=gen).to(session.device))
        step()
        times = []
        for _ in range(steps):
            _sync(session.device)
            if world > 1:
                torch.distributed.barrier()
            t0 = time.perf_counter()
            step()
            _sync(session.device)
            times.append(time.perf_counter() - t0)
        if rank == 0:
            Path(out).write_text(json.dumps({"median_s": statistics.median(times)}))


def ddp_scaling(device: str, T: int, batch: int, steps: int) -> dict[str, Any]:
    import tempfile

    import torch.multiprocessing as mp

    total = torch.get_num_threads()
    res: dict[str, Any] = {}
    for world in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            out = f"{tmp}/ddp.json"
            threads = max(1, total // world)
            mp.spawn(_ddp_worker, args=(world, _free_port(), device, T, batch, steps, threads, out), nprocs=world)
            med = json.loads(Path(out).read_text())["median_s"]
        res[str(world)] = {"processes": world, "threads_each": threads, "step_s": med, "samples_per_s": batch / med}
        print(f"DDP {world} process(es): {batch / med:.1f} samples/s", flush=True)
    res["speedup_1_to_2"] = res["2"]["samples_per_s"] / res["1"]["samples_per_s"]
    return res


# ---------------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="2 repeats, T=4, small batches (smoke test)")
    ap.add_argument("--compile", action="store_true",
                    help="also time torch.compile (inductor); compiling takes minutes on a small CPU")
    ap.add_argument("--no-ddp", dest="ddp", action="store_false")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    T, repeats = (4, 2) if args.quick else (10, args.repeats)
    load0 = list(os.getloadavg())
    notes: dict[str, str] = {}
    rows = []
    for name, (_, batch, _) in NETS.items():
        b = min(batch, 8) if args.quick else batch
        steps = make_steps(name, device, T, b, args.compile and not args.quick, notes)
        seconds, cpu_seconds = time_round_robin(steps, repeats, device)
        sps = {k: b / v for k, v in seconds.items()}
        best_ek = max((k for k in sps if k.startswith("eventkit")), key=sps.get)
        sj = {k: v for k, v in sps.items() if k.startswith("SpikingJelly")}
        row = {"network": name, "T": T, "batch": b, "samples_per_s": sps, "fastest_eventkit": best_ek,
               "cpu_ms_per_step": {k: v * 1e3 for k, v in cpu_seconds.items()}}
        if sj:
            row["eventkit_vs_spikingjelly"] = sps["eventkit"] / sps["SpikingJelly"]
            row["fastest_vs_fastest"] = sps[best_ek] / max(sj.values())
        rows.append(row)
        print(name, {k: f"{v:.1f}" for k, v in sps.items()}, flush=True)
    ddp: dict[str, Any] | None = None
    if args.ddp and args.device == "cuda" and torch.cuda.device_count() < 2:
        ddp = {"skipped": f"DDP scaling needs 2 GPUs (one per process); {torch.cuda.device_count()} visible"}
        print(ddp["skipped"], flush=True)
    elif args.ddp:
        ddp = ddp_scaling(args.device, T, 8 if args.quick else NETS["plif-small"][1], 3 if args.quick else 10)
    from bench_frames import cpu_model

    versions = {"torch": torch.__version__}
    try:
        from importlib.metadata import version

        versions["spikingjelly"] = version("spikingjelly")
    except Exception:  # noqa: BLE001
        versions["spikingjelly"] = "not installed"
    machine = torch.cuda.get_device_name() if device.type == "cuda" else cpu_model()
    result = {"date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "device": args.device,
              "machine": machine, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "versions": versions, "loadavg_start": load0, "loadavg_end": list(os.getloadavg()),
              "repeats": repeats, "quick": args.quick, "rows": rows, "ddp": ddp, "notes": notes}
    names = sorted({k for r in rows for k in r["samples_per_s"]}, key=lambda k: (not k.startswith("eventkit"), k))
    lines = ["# Training throughput: eventkit vs SpikingJelly (samples/s, higher is better)", "",
             f"{result['date']} · {args.device} ({machine}, {result['cores']} cores, {result['torch_threads']} "
             f"torch threads) · median of {repeats} steps, implementations timed in turn · "
             + ", ".join(f"{k} {v}" for k, v in versions.items()), "",
             f"Load average at start {load0}, at end {result['loadavg_end']}."
             + (" QUICK smoke run: not a measurement." if args.quick else ""), "",
             "| network | T | batch | " + " | ".join(names) + " | eventkit / SJ (both fp32) | fastest / fastest |",
             "|---|---:|---:|" + "---:|" * (len(names) + 2)]
    for r in rows:
        cells = [f"{r['samples_per_s'][n]:.1f}" if n in r["samples_per_s"] else "—" for n in names]
        ratio = f"{r['eventkit_vs_spikingjelly']:.2f}x" if "eventkit_vs_spikingjelly" in r else "—"
        best = f"{r['fastest_vs_fastest']:.2f}x ({r['fastest_eventkit']})" if "fastest_vs_fastest" in r else "—"
        lines.append(f"| {r['network']} | {r['T']} | {r['batch']} | " + " | ".join(cells) + f" | {ratio} | {best} |")
    lines += ["", "CPU time per step (ms, this process, all threads; steadier than wall time on a loaded machine):", "",
              "| network | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for r in rows:
        lines.append(f"| {r['network']} | " + " | ".join(
            f"{r['cpu_ms_per_step'][n]:.0f}" if n in r["cpu_ms_per_step"] else "—" for n in names) + " |")
    if ddp and "skipped" in ddp:
        lines += ["", f"DDP: {ddp['skipped']}."]
    elif ddp:
        lines += ["", "DDP (plif-small, same global batch, threads split between processes): "
                  + ", ".join(f"{ddp[k]['processes']} process(es) × {ddp[k]['threads_each']} threads "
                              f"{ddp[k]['samples_per_s']:.1f} samples/s" for k in ("1", "2"))
                  + f"; 1 → 2 processes: {ddp['speedup_1_to_2']:.2f}x."]
    lines += [""] + [f"- {k}: {v}" for k, v in notes.items()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train.md").write_text("\n".join(lines) + "\n")
    (args.out / "train.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
