"""eventkit network -> NIR graph (forward-Euler mapping of the discrete neurons, ``dt`` in seconds).

Per layer (``docs/nir.md`` has the full table; ``k = 1/τ`` of eventkit's LIF, τ in steps):

=====================  ===================================================================
eventkit               NIR node
=====================  ===================================================================
``nn.Linear``          ``Affine`` (``Linear`` without bias); a following BatchNorm1d folded in
``nn.Conv2d``          ``Conv2d``; a following BatchNorm2d folded in (eval statistics)
``nn.Flatten``         ``Flatten`` (dims counted without time and batch)
``AvgPool2d``          ``AvgPool2d``;  ``SumPool2d`` -> ``SumPool2d``
``VotingLayer``        ``Linear`` with ``1/k`` weights (mean of each group of ``k`` neurons)
``IF``                 ``IF(r = 1/dt, v_threshold, v_reset)``
``LIF`` / ``PLIF``     ``LIF(tau = τ·dt, r = 1, v_leak = v_reset, v_threshold, v_reset)``
``CUBALIF``            ``CubaLIF(tau_syn = dt/(1-α), tau_mem = dt/(1-β), r = 1/(1-β),
                       w_in = 1/(1-α), v_leak = 0, v_threshold, v_reset)``
``LeakyReadout``       ``LI`` (α = 0), ``CubaLI`` (α > 0) or ``I`` (β = 1, α = 0)
dropout                nothing (identity at inference)
=====================  ===================================================================

Refused with a :class:`~eventkit.errors.ParameterError` naming the layer: SIT and SRM
neurons (no NIR node), a soft (subtractive) reset (NIR resets to ``v_reset``), max pooling
(no NIR node), recurrent CUBA-LIF, BatchNorm that does not follow a conv or dense layer.
Every node carries ``metadata["eventkit_module"]`` and the exact discrete parameters so that
:func:`~eventkit_train.export.from_nir` rebuilds the same network bit for bit; other NIR
readers use the continuous parameters.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from eventkit.errors import ParameterError
from eventkit_train.export._common import DEFAULT_DT, MODULE_KEY, check_dt, require_nir

if TYPE_CHECKING:
    from eventkit_train.neurons.readout import LeakyReadout

__all__ = ["to_nir", "save_nir", "DEFAULT_DT"]


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    from eventkit_train.models import SpikingNet

    if isinstance(model, SpikingNet):
        return list(model.layers.named_children())
    if isinstance(model, nn.Sequential):
        return list(model.named_children())
    raise ParameterError(f"to_nir: model must be a SpikingNet or an nn.Sequential of time-first layers, "
                         f"got {type(model).__name__}")


def _shapes(layers: list[tuple[str, nn.Module]], input_shape: tuple[int, ...]) -> list[tuple[tuple, tuple]]:
    """Per layer (input, output) shape of one sample at one step (no T, no B): a zero forward pass."""
    params = [p for _, m in layers for p in m.parameters()]
    x = torch.zeros((1, 1) + input_shape, dtype=params[0].dtype if params else torch.float32)
    out = []
    with torch.no_grad():
        for name, module in layers:
            before = tuple(x.shape[2:])
            try:
                x = module(x)
            except Exception as exc:  # a shape mismatch: say which layer and which input
                raise ParameterError(f"to_nir: layer {name!r} does not take input_shape {list(before)}: {exc}") from exc
            if isinstance(x, tuple):  # neurons with return_membrane
                x = x[0]
            out.append((before, tuple(x.shape[2:])))
    return out


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _meta_value(v: Any) -> Any:
    """A metadata value HDF5 can store: a 0-d array as a Python float, arrays as float64 arrays."""
    arr = np.asarray(v, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


def _full(shape: tuple, value: Any) -> np.ndarray:
    """A float64 parameter array of ``shape``: a scalar broadcast, or a per-channel vector on axis 0."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 1 and len(shape) > 1:
        v = v.reshape((-1,) + (1,) * (len(shape) - 1))
    return np.broadcast_to(v, shape).astype(np.float64)


def _bn_scale(bn: nn.BatchNorm1d | nn.BatchNorm2d, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of an eval-mode BatchNorm: ``y = scale·x + shift`` (float64)."""
    if bn.running_mean is None or bn.running_var is None:
        raise ParameterError(f"to_nir: BatchNorm layer {name!r} keeps no running statistics; it cannot be folded")
    mean, var = bn.running_mean.double(), bn.running_var.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(mean)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + bn.eps)
    return scale, beta - mean * scale


def _hard_reset(name: str, module: nn.Module) -> None:
    if getattr(module, "soft", False):
        raise ParameterError(
            f"to_nir: layer {name!r} ({type(module).__name__}) uses a soft (subtractive) reset; NIR's neurons reset "
            "to v_reset. Build the network with reset='hard' (and a v_reset) to export it")


def _neuron_node(nir: Any, name: str, module: nn.Module, shape: tuple, dt: float) -> Any:
    from eventkit_train.neurons import CUBALIF, IF, LIF, PLIF
    from eventkit_train.neurons.readout import LeakyReadout

    kind = type(module).__name__
    meta: dict[str, Any] = {MODULE_KEY: kind}
    if isinstance(module, (IF, LIF, PLIF)):
        _hard_reset(name, module)
        thr, reset = _full(shape, module.v_threshold), _full(shape, module.v_reset)
        if isinstance(module, IF):
            return nir.IF(r=_full(shape, 1.0 / dt), v_threshold=thr, v_reset=reset, metadata=meta)
        if isinstance(module, PLIF):
            a = float(module.a.detach())
            tau = 1.0 + math.exp(-a)  # 1/sigmoid(a), in float64
            meta["a"] = a
        else:
            tau = float(module.tau)
            meta["tau_steps"] = tau
        return nir.LIF(tau=_full(shape, tau * dt), r=_full(shape, 1.0), v_leak=reset.copy(), v_threshold=thr,
                       v_reset=reset, metadata=meta)
    if isinstance(module, CUBALIF):
        _hard_reset(name, module)
        if module.recurrent_weight is not None:
            raise ParameterError(f"to_nir: layer {name!r} is a recurrent CUBA-LIF; export supports feed-forward "
                                 "networks (build it with recurrent=False)")
        alpha, beta = module.alpha.double().numpy(), module.beta.double().numpy()
        if np.any(beta >= 1.0):
            raise ParameterError(f"to_nir: layer {name!r} (CUBALIF) has beta = 1 (no membrane leak), which NIR's "
                                 "CubaLIF cannot express with a finite tau_mem")
        meta.update(alpha=_meta_value(alpha), beta=_meta_value(beta), reset="next_step")
        if module.learnable:
            meta.update(alpha_logit=_meta_value(_np(module.alpha_logit)),
                        beta_logit=_meta_value(_np(module.beta_logit)))
        syn, mem = _full(shape, alpha), _full(shape, beta)
        return nir.CubaLIF(tau_syn=dt / (1.0 - syn), tau_mem=dt / (1.0 - mem), r=1.0 / (1.0 - mem),
                           v_leak=np.zeros(shape), v_threshold=_full(shape, module.v_threshold),
                           v_reset=_full(shape, module.v_reset), w_in=1.0 / (1.0 - syn), metadata=meta)
    if isinstance(module, LeakyReadout):
        return _readout_node(nir, name, module, shape, dt, meta)
    raise ParameterError(
        f"to_nir: layer {name!r} is a {kind} neuron, which NIR cannot express (its nodes are IF, LIF, CubaLIF, "
        "LI, CubaLI); SIT (Izhikevich, two state variables) and SRM (kernel responses) have no NIR node")


def _readout_node(nir: Any, name: str, module: LeakyReadout, shape: tuple, dt: float, meta: dict[str, Any]) -> Any:
    """``LI`` (α = 0), ``CubaLI`` (α > 0) or ``I`` (β = 1, α = 0) of a non-spiking readout."""
    p = module.params()
    alpha, beta = float(p.alpha.detach()), float(p.beta.detach())
    meta.update(alpha=alpha, beta=beta)
    if module.learnable:
        meta.update(alpha_logit=float(module.alpha_logit.detach()), beta_logit=float(module.beta_logit.detach()))
    if beta >= 1.0:
        if alpha > 0.0:
            raise ParameterError(f"to_nir: readout {name!r} has beta = 1 and alpha > 0: NIR's CubaLI needs a "
                                 "finite tau_mem")
        return nir.I(r=_full(shape, 1.0 / dt), metadata=meta)
    if alpha == 0.0:
        return nir.LI(tau=_full(shape, dt / (1.0 - beta)), r=_full(shape, 1.0 / (1.0 - beta)),
                      v_leak=np.zeros(shape), metadata=meta)
    return nir.CubaLI(tau_syn=_full(shape, dt / (1.0 - alpha)), tau_mem=_full(shape, dt / (1.0 - beta)),
                      r=_full(shape, 1.0 / (1.0 - beta)), v_leak=np.zeros(shape),
                      w_in=_full(shape, 1.0 / (1.0 - alpha)), metadata=meta)


def _weight_node(nir: Any, name: str, inner: nn.Conv2d | nn.Linear,
                 bn: tuple[str, nn.BatchNorm1d | nn.BatchNorm2d] | None, in_shape: tuple) -> Any:
    """Conv2d / Linear node, with a following eval-mode BatchNorm folded into weight and bias."""
    w = inner.weight.detach().double()
    b = inner.bias.detach().double() if inner.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    meta: dict[str, Any] = {MODULE_KEY: type(inner).__name__}
    if bn is not None:
        scale, shift = _bn_scale(bn[1], bn[0])
        w = w * scale.reshape((-1,) + (1,) * (w.dim() - 1))
        b = b * scale + shift
        meta["folded_batchnorm"] = bn[0]
    dtype = inner.weight.dtype
    weight, bias = _np(w.to(dtype)), _np(b.to(dtype))
    if isinstance(inner, nn.Linear):
        if inner.bias is None and bn is None:
            return nir.Linear(weight=weight, metadata=meta)
        return nir.Affine(weight=weight, bias=bias, metadata=meta)
    if inner.padding_mode != "zeros":
        raise ParameterError(f"to_nir: conv layer {name!r} uses padding_mode={inner.padding_mode!r}; "
                             "NIR pads with zeros")
    return nir.Conv2d(input_shape=tuple(int(v) for v in in_shape[1:]), weight=weight, stride=tuple(inner.stride),
                      padding=inner.padding if isinstance(inner.padding, str) else tuple(inner.padding),
                      dilation=tuple(inner.dilation), groups=inner.groups, bias=bias, metadata=meta)


def _voting_weight(n_in: int, k: int, s: int) -> np.ndarray:
    n_out = (n_in - k) // s + 1
    w = np.zeros((n_out, n_in), dtype=np.float32)
    for j in range(n_out):
        w[j, j * s:j * s + k] = 1.0 / k
    return w


def _node(nir: Any, name: str, module: nn.Module, nxt: tuple[str, nn.Module] | None, shapes: tuple, dt: float
          ) -> tuple[Any, bool]:
    """The NIR node of one layer (None: skipped) and whether it consumed the next layer (a folded BN)."""
    from eventkit_train.models.layers import (
        AvgPool2d,
        SpikeMaxPool2d,
        SpikingDropout,
        SumPool2d,
        TimeFolded,
        VotingLayer,
    )
    from eventkit_train.neurons import NeuronModule
    from eventkit_train.neurons.readout import LeakyReadout

    in_shape, out_shape = shapes
    if isinstance(module, (SpikingDropout, nn.Dropout, nn.Identity)):
        return None, False
    if isinstance(module, (NeuronModule, LeakyReadout)):
        return _neuron_node(nir, name, module, out_shape, dt), False
    if isinstance(module, VotingLayer):
        return nir.Linear(weight=_voting_weight(in_shape[0], module.kernel_size, module.stride),
                          metadata={MODULE_KEY: "VotingLayer", "kernel_size": module.kernel_size,
                                    "stride": module.stride}), False
    if isinstance(module, SpikeMaxPool2d) or isinstance(getattr(module, "module", None), nn.MaxPool2d):
        raise ParameterError(f"to_nir: layer {name!r} is max pooling, which NIR has no node for (it has AvgPool2d "
                             "and SumPool2d); use average or sum pooling to export")
    if isinstance(module, SumPool2d):
        k = module.module.kernel_size
        return nir.SumPool2d(kernel_size=np.array([k, k]), stride=np.array([k, k]), padding=np.array([0, 0]),
                             metadata={MODULE_KEY: "SumPool2d"}), False
    inner = module.module if isinstance(module, TimeFolded) else None
    if isinstance(module, AvgPool2d) or isinstance(inner, nn.AvgPool2d):
        pool = module.module
        assert isinstance(pool, nn.AvgPool2d)  # both forms wrap torch's AvgPool2d
        if pool.ceil_mode:
            raise ParameterError(f"to_nir: pooling layer {name!r} uses ceil_mode=True, which NIR cannot express")

        def pair(v: int | tuple[int, int]) -> np.ndarray:
            return np.array(v if isinstance(v, (tuple, list)) else (v, v))

        return nir.AvgPool2d(kernel_size=pair(pool.kernel_size), stride=pair(pool.stride),
                             padding=pair(pool.padding), metadata={MODULE_KEY: "AvgPool2d"}), False
    if isinstance(inner, (nn.Conv2d, nn.Linear)):
        nxt_inner = getattr(nxt[1], "module", None) if nxt is not None else None
        if isinstance(nxt_inner, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return _weight_node(nir, name, inner, (nxt[0], nxt_inner), in_shape), True  # type: ignore[index]
        return _weight_node(nir, name, inner, None, in_shape), False
    if isinstance(inner, nn.Flatten):
        start = inner.start_dim - 1 if inner.start_dim > 0 else inner.start_dim
        end = inner.end_dim - 1 if inner.end_dim > 0 else inner.end_dim
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start, end_dim=end,
                           metadata={MODULE_KEY: "Flatten"}), False
    if isinstance(inner, (nn.BatchNorm1d, nn.BatchNorm2d)):
        raise ParameterError(f"to_nir: BatchNorm layer {name!r} does not follow a conv or dense layer, so it cannot "
                             "be folded into one (NIR has no BatchNorm node)")
    raise ParameterError(f"to_nir: layer {name!r} ({type(module).__name__}"
                         + (f" of {type(inner).__name__}" if inner is not None else "") + ") has no NIR equivalent")


def to_nir(model: nn.Module, input_shape: Sequence[int], *, dt: float = DEFAULT_DT) -> Any:
    """Export a time-first network (``SpikingNet`` or ``nn.Sequential``) as a ``nir.NIRGraph``.

    Args:
        model: a network from :func:`eventkit_train.models.build` (or a Sequential of its layers).
        input_shape: one sample at one time step, channels first: ``(2, 34, 34)``, ``(700,)``.
        dt: seconds per time step; the continuous time constants are ``τ_steps · dt``
            (forward Euler). Importers must step with the same ``dt``; it is stored in the
            graph's metadata (``metadata["dt"]``).

    Returns:
        a ``nir.NIRGraph``: ``input -> <one node per layer> -> output`` (node names are the
        layer names, e.g. ``"0_conv"``). BatchNorm is folded into the layer before it
        (running statistics: the network as evaluated); dropout is left out.

    Raises:
        ParameterError: a layer NIR cannot express (named), a bad ``dt`` or input shape.
    """
    nir = require_nir()
    dt = check_dt(dt)
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise ParameterError(f"to_nir: input_shape must be positive dims (channels first), got {list(input_shape)}")
    layers = _layers(model)
    was_training = model.training
    model.eval()
    try:
        shapes = _shapes(layers, shape)
        nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(shape)})}
        skip = False
        for i, (name, module) in enumerate(layers):
            if skip:
                skip = False
                continue
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            node, skip = _node(nir, name, module, nxt, shapes[i], dt)
            if node is not None:
                nodes[name] = node
    finally:
        model.train(was_training)
    out_shape = shapes[-1][1] if shapes else shape
    nodes["output"] = nir.Output(output_type={"output": np.array(out_shape)})
    names = list(nodes)
    meta = {"dt": dt, "source": "eventkit", "time_step": "forward Euler, dt seconds per step"}
    spec = getattr(model, "spec", None)
    if isinstance(spec, str):
        meta["spec"] = spec
    return nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(names)), metadata=meta)


def save_nir(model: nn.Module, path: str | Path, input_shape: Sequence[int], *, dt: float = DEFAULT_DT) -> Any:
    """:func:`to_nir`, then ``nir.write(path, graph)``; returns the graph."""
    graph = to_nir(model, input_shape, dt=dt)
    require_nir().write(str(path), graph)
    return graph
