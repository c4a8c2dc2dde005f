"""Synaptic operations (SynOps) of a spiking network and an energy estimate from them.

:class:`OpCounter` puts forward hooks on the layers of a network and counts, per layer and
per sample, the operations an event-driven implementation performs:

* **conv / dense** (``nn.Conv1d/2d/3d``, ``nn.Linear``): every *non-zero* input element
  costs one operation per synapse it reaches, its **fan-out** (``C_out / groups`` times the
  output positions whose window covers it, computed exactly from the layer's kernel,
  stride, padding and dilation: a border pixel of a padded conv reaches fewer outputs).
  The operation is an **accumulate (AC)** when the layer's input is binary (every value 0
  or 1 in the batch: spikes) and a **multiply-accumulate (MAC)** otherwise: the first
  layer on count frames, a layer after average pooling or batch norm.
* **average / sum pooling and the voting layer**: one addition (AC) per non-zero input
  element and window that covers it.
* **recurrent CUBA-LIF** (``V·S[t-1]``): each spike of steps ``1..T-1`` costs ``N`` ACs.
* **not counted**: max pooling (comparisons), batch norm (folded into the weights at
  inference), flatten, dropout (identity at inference), neuron state updates (leak,
  threshold, reset, the readout's leaky integration; an ANN's activation functions are
  not counted either) and memory traffic.

The **ANN equivalent** is the same network with real-valued activations run once per
sample: every input element of a conv/dense layer costs a MAC per synapse (the same exact
fan-out, so padding taps are not counted), pooling an AC per input and window, a
recurrent matrix ``N·N`` MACs (one step).

Energy: ``E = AC · e_AC + MAC · e_MAC`` with :data:`HOROWITZ_45NM_FP32` by default
(M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014:
32-bit float add 0.9 pJ, multiply 3.7 pJ, so a multiply-add 4.6 pJ, 45 nm) — the figures
most SNN papers use. It is an estimate of arithmetic only: no memory access, no neuron
updates, no data movement.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from eventkit.errors import ParameterError

from .metrics import ForwardHooks

__all__ = ["OpCosts", "HOROWITZ_45NM_FP32", "OpCounter", "fan_out_1d", "fan_out_map", "ops_summary",
           "energy_pj"]

# column order of the per-layer counts in OpCounter.totals()
_COLS = ("ac", "mac", "ann_mac", "ann_ac", "seen")


@dataclass(frozen=True)
class OpCosts:
    """Energy per operation in picojoules, and where the figures come from."""

    pj_per_ac: float
    pj_per_mac: float
    source: str

    def __post_init__(self) -> None:
        for name in ("pj_per_ac", "pj_per_mac"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0 and v == v and v != float("inf")):
                raise ParameterError(f"OpCosts: {name} must be a finite number >= 0 (pJ), got {v!r}")


#: 45 nm, 0.9 V, 32-bit float: add 0.9 pJ (AC), multiply 3.7 pJ + add 0.9 pJ (MAC)
HOROWITZ_45NM_FP32 = OpCosts(
    0.9, 4.6, "M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014; "
              "45 nm, 32-bit float: add 0.9 pJ (AC), multiply 3.7 pJ + add 0.9 pJ (MAC)")


def fan_out_1d(n_in: int, n_out: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> Tensor:
    """``[n_in]`` float64: for each input index ``i``, the number of (output ``o``, tap ``k``)
    pairs with ``o·stride - padding + k·dilation == i``, ``0 <= o < n_out``, ``0 <= k < kernel``
    (taps that fall into the padding read no input and are not counted)."""
    out = torch.zeros(n_in, dtype=torch.float64)
    o = torch.arange(n_out).unsqueeze(1)
    k = torch.arange(kernel).unsqueeze(0)
    idx = (o * stride - padding + k * dilation).flatten()
    idx = idx[(idx >= 0) & (idx < n_in)]
    out.index_add_(0, idx, torch.ones(idx.numel(), dtype=torch.float64))
    return out


def fan_out_map(in_sizes: Sequence[int], out_sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                padding: Sequence[int], dilation: Sequence[int]) -> Tensor:
    """Fan-out ``[*in_sizes]`` (float64) of one input channel over the output positions of a
    sliding window: the outer product of :func:`fan_out_1d` over the spatial dimensions."""
    result = torch.ones((), dtype=torch.float64)
    dims = zip(in_sizes, out_sizes, kernel, stride, padding, dilation, strict=True)
    for d, (n_in, n_out, k, s, p, dil) in enumerate(dims):
        f = fan_out_1d(int(n_in), int(n_out), int(k), int(s), int(p), int(dil))
        result = result.unsqueeze(-1) * f if d else f
    return result


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v),) * n


def _is_binary(x: Tensor) -> Tensor:
    return ((x == 0) | (x == 1)).all()


class _Layer:
    """How one hooked module is counted: ``kind`` and the weight map of its input elements."""

    def __init__(self, name: str, module: nn.Module, kind: str):
        # a Linear, VotingLayer, conv, pooling or recurrent neuron layer, as ``kind`` says: its
        # attributes are read by kind, so the checker is not asked to follow them
        self.module: Any = module
        self.name, self.kind = name, kind
        self.cache: dict[tuple[Any, ...], tuple[Tensor, float, float]] = {}

    def weights(self, x: Tensor, y: Tensor) -> tuple[Tensor, float, float, int]:
        """``(fan-out map over the trailing dims of x (on x's device), its sum, multiplier,
        number of leading item dims)``:
        an input element's fan-out is ``map[trailing index] * multiplier``; the dims between the
        leading ones and the map's (channels, features) share the map."""
        m = self.module
        k: tuple[int, ...]
        s: tuple[int, ...]
        p: tuple[int, ...]
        dil: tuple[int, ...]
        if self.kind == "dense":
            return torch.ones((), dtype=torch.float64, device=x.device), 1.0, float(m.out_features), min(x.dim() - 1, 1)
        if self.kind == "voting":  # [T, B, N] -> [T, B, N']
            nd, k, s, p, dil, mult = 1, (m.kernel_size,), (m.stride,), (0,), (1,), 1.0
        elif self.kind == "conv":
            nd = len(m.kernel_size)
            k, s, dil = _tuple(m.kernel_size, nd), _tuple(m.stride, nd), _tuple(m.dilation, nd)
            mult = float(m.out_channels // m.groups)
            if m.padding == "valid":
                p = (0,) * nd
            elif m.padding == "same":  # torch pads d·(k-1)//2 before, the rest after
                p = tuple(d * (kk - 1) // 2 for d, kk in zip(dil, k, strict=True))
            else:
                p = _tuple(m.padding, nd)
        else:  # pool
            nd = {nn.AvgPool1d: 1, nn.AvgPool3d: 3}.get(type(m), 2)
            k = _tuple(m.kernel_size, nd)
            s = _tuple(getattr(m, "stride", None) or m.kernel_size, nd)
            p, dil, mult = _tuple(getattr(m, "padding", 0), nd), (1,) * nd, 1.0
        key = (tuple(x.shape[-nd:]), tuple(y.shape[-nd:]), x.device)
        if key not in self.cache:
            f = fan_out_map(x.shape[-nd:], y.shape[-nd:], k, s, p, dil)
            self.cache[key] = (f.to(x.device), float(f.sum()), mult)
        f, f_sum, mult = self.cache[key]
        lead = x.dim() - 1 if self.kind == "voting" else max(x.dim() - nd - 1, 0)
        return f, f_sum, mult, lead


class OpCounter(ForwardHooks):
    """Forward hooks counting synaptic operations (module docstring) while a network runs.

    ``with OpCounter(model) as ops: model(x)`` then ``ops.summary(n_samples)``; for DDP,
    :meth:`totals` gives one float64 tensor to sum over ranks and :func:`ops_summary` turns
    the sum into the summary. Counting stays on the device (no host sync per batch).
    """

    def __init__(self, model: nn.Module):
        from eventkit_train.models.layers import TimeFolded, VotingLayer, _SumPool
        from eventkit_train.neurons.cuba import CUBALIF

        display: dict[int, str] = {}
        for name, m in model.named_modules():  # a wrapper names its inner module
            if isinstance(m, TimeFolded):
                display[id(m.module)] = name
        layers: list[_Layer] = []
        for name, m in model.named_modules():
            kind = None
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                kind = "conv"
            elif isinstance(m, nn.Linear):
                kind = "dense"
            elif isinstance(m, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
                kind = "pool"
            elif isinstance(m, _SumPool):
                kind = "pool"
            elif isinstance(m, VotingLayer):
                kind = "voting"
            elif isinstance(m, CUBALIF) and m.recurrent_weight is not None:
                kind = "recurrent"
            if kind is not None:
                label = display.get(id(m), name) or type(m).__name__  # the model itself: its class
                layers.append(_Layer(label[len("layers."):] if label.startswith("layers.") else label, m, kind))
        self.layers = layers
        self.names = [layer.name for layer in layers]
        self._sums: list[Any] = [[0.0] * len(_COLS) for _ in layers]
        self._handles: list[Any] = []

    def _hook(self, index: int):
        layer = self.layers[index]

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            sums = self._sums[index]
            if layer.kind == "recurrent":
                spikes = (output[0] if isinstance(output, tuple) else output).detach()
                n = int(layer.module.n_features)
                sums[0] = sums[0] + (spikes[:-1] != 0).sum().double() * n
                sums[2] = float(n * n)
                sums[4] = 1.0
                return
            x = inputs[0].detach()
            y = output[0] if isinstance(output, tuple) else output
            f, f_sum, mult, lead = layer.weights(x, y)
            nz = x != 0
            counts = nz.sum(dim=tuple(range(x.dim() - f.dim()))) if x.dim() > f.dim() else nz
            ops = (counts.double() * f).sum() * mult  # non-zero inputs x their fan-out
            items = math.prod(x.shape[:lead])
            dense = x.numel() / items / f.numel() * f_sum * mult  # every input of one item
            if layer.kind in ("conv", "dense"):
                binary = _is_binary(x).double()
                sums[0] = sums[0] + ops * binary
                sums[1] = sums[1] + ops * (1.0 - binary)
                sums[2] = dense
            else:  # pooling and voting: additions
                sums[0] = sums[0] + ops
                sums[3] = dense
            sums[4] = 1.0
        return hook

    def hook_targets(self) -> list[tuple[nn.Module, Any]]:
        return [(layer.module, self._hook(i)) for i, layer in enumerate(self.layers)]

    def totals(self, device: torch.device | str = "cpu") -> Tensor:
        """``[L·5]`` float64: per layer (SNN ACs, SNN MACs, summed over every sample seen;
        ANN MACs, ANN ACs of one sample; 1 if the layer ran) — sum over DDP ranks, then
        :func:`ops_summary`."""
        if not self.layers:
            return torch.zeros(0, dtype=torch.float64, device=device)
        return torch.stack([torch.as_tensor(v, dtype=torch.float64).to(device).reshape(())
                            for row in self._sums for v in row])

    def summary(self, n_samples: int, costs: OpCosts = HOROWITZ_45NM_FP32) -> dict[str, Any]:
        """Per-sample counts and energy of this process's samples (see :func:`ops_summary`)."""
        return ops_summary(self.names, [layer.kind for layer in self.layers], self.totals(), n_samples, costs)


def ops_summary(names: Sequence[str], kinds: Sequence[str], totals: Tensor, n_samples: float,
                costs: OpCosts = HOROWITZ_45NM_FP32) -> dict[str, Any]:
    """``{"synops": ..., "energy_pj": ...}`` per sample from :meth:`OpCounter.totals` (summed
    over ranks: the ANN columns are then divided by the number of ranks that ran the layer).

    ``synops``: ``{"layers": {name: {"kind", "ac", "mac", "ann_mac", "ann_ac"}}, "ac", "mac",
    "total" (SNN ACs + MACs), "ann_mac", "ann_ac"}``; ``energy_pj``: ``{"snn", "ann",
    "pj_per_ac", "pj_per_mac", "source"}``.
    """
    rows = totals.detach().double().cpu().reshape(len(names), len(_COLS)).tolist() if len(names) else []
    n = float(n_samples)
    if n <= 0:
        raise ParameterError(f"ops_summary: n_samples must be > 0, got {n_samples}")
    layers: dict[str, dict[str, Any]] = {}
    for name, kind, (ac, mac, ann_mac, ann_ac, seen) in zip(names, kinds, rows, strict=True):
        ranks = max(seen, 1.0)
        layers[name] = {"kind": kind, "ac": ac / n, "mac": mac / n, "ann_mac": ann_mac / ranks,
                        "ann_ac": ann_ac / ranks}
    tot = {k: sum(v[k] for v in layers.values()) for k in ("ac", "mac", "ann_mac", "ann_ac")}
    synops = {"layers": layers, **tot, "total": tot["ac"] + tot["mac"]}
    return {"synops": synops, "energy_pj": energy_pj(synops, costs)}


def energy_pj(synops: dict[str, Any], costs: OpCosts = HOROWITZ_45NM_FP32) -> dict[str, Any]:
    """Energy per sample (pJ) of the SNN (``ac·e_AC + mac·e_MAC``) and of the ANN equivalent
    (``ann_mac·e_MAC + ann_ac·e_AC``), with the cost table."""
    return {"snn": synops["ac"] * costs.pj_per_ac + synops["mac"] * costs.pj_per_mac,
            "ann": synops["ann_mac"] * costs.pj_per_mac + synops["ann_ac"] * costs.pj_per_ac,
            **asdict(costs)}
