"""NIR graph -> eventkit network (the inverse of :mod:`eventkit_train.export.to_nir`).

A graph written by eventkit carries each layer's exact discrete parameters in its node
metadata and comes back bit for bit. A graph from another library (snnTorch, SpikingJelly,
norse, ...) is read from NIR's continuous parameters with the forward-Euler step ``dt``
(``graph.metadata["dt"]``, else the ``dt`` argument, else 1e-4 s):

* ``LIF``: ``τ_steps = tau/dt``; needs ``v_leak == v_reset``; an input gain ``r ≠ 1`` is
  moved into the threshold and reset (``v/r``: the same spikes);
* ``IF``: gain ``r·dt`` moved into threshold and reset the same way;
* ``CubaLIF``: ``α = 1 - dt/tau_syn``, ``β = 1 - dt/tau_mem``, gain
  ``w_in·(dt/tau_syn)·r·(dt/tau_mem)`` moved into threshold and reset; ``v_leak = 0``.
  eventkit's CUBA-LIF clears the membrane at the step after a spike (Bouanane et al.
  as written), most NIR simulators at the spike: a :class:`UserWarning` says so;
* ``LI`` / ``CubaLI`` / ``I`` -> :class:`~eventkit_train.neurons.readout.LeakyReadout`
  (times a constant gain where it is not 1);
* ``Affine``/``Linear``/``Conv1d``/``Conv2d``/``Flatten``/``AvgPool2d``/``SumPool2d``/``Scale``
  -> the torch layer, time folded into the batch.

Only chains (``input -> ... -> output``, one edge in and one out per node) are rebuilt;
anything else is a :class:`~eventkit.errors.ParameterError` naming the node.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from eventkit.errors import ParameterError
from eventkit_train.export._common import DEFAULT_DT, MODULE_KEY, check_dt, require_nir, text

__all__ = ["from_nir", "load_nir", "Gain"]


class Gain(nn.Module):
    """Multiply ``x [T, B, ...]`` by a constant (NIR ``Scale``, or an input gain of a readout)."""

    scale: Tensor

    def __init__(self, scale: Any) -> None:
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, dtype=np.float32)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale.to(x.dtype)


def _chain(nir: Any, graph: Any) -> list[str]:
    """Node names from the input to the output, or a ParameterError naming the node that branches."""
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise ParameterError(f"from_nir: the graph must have one input node, got {inputs}")
    succ: dict[str, list[str]] = {}
    n_pred: dict[str, int] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
        n_pred[b] = n_pred.get(b, 0) + 1
    order, cur = [], inputs[0]
    while succ.get(cur):
        nxt = succ[cur]
        if len(nxt) != 1 or n_pred[nxt[0]] != 1 or nxt[0] in order:
            raise ParameterError(f"from_nir: node {cur!r} -> {nxt}: only chain graphs (one edge in and one out per "
                                 "node, no recurrence) can be rebuilt as an eventkit network")
        cur = nxt[0]
        order.append(cur)
    if not order or not isinstance(graph.nodes[order[-1]], nir.Output):
        raise ParameterError(f"from_nir: the chain from {inputs[0]!r} does not end in an output node")
    if len(order) + 1 != len(graph.nodes):
        stray = sorted(set(graph.nodes) - set(order) - set(inputs))
        raise ParameterError(f"from_nir: nodes {stray} are not on the input -> output chain")
    return order[:-1]


def _uniform(value: Any, name: str, what: str) -> float:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0 or not np.all(arr == arr.flat[0]):
        raise ParameterError(f"from_nir: node {name!r}: {what} differs between neurons; eventkit's neuron takes "
                             "one value per layer")
    return float(arr.flat[0])


def _per_channel(value: Any, name: str, what: str) -> float | np.ndarray:
    """A scalar, or one value per channel (axis 0) when constant over the other axes."""
    arr = np.asarray(value, dtype=np.float64)
    if np.all(arr == arr.flat[0]):
        return float(arr.flat[0])
    per = arr.reshape(arr.shape[0], -1)
    if arr.ndim >= 1 and np.all(per == per[:, :1]):
        return per[:, 0].copy()
    raise ParameterError(f"from_nir: node {name!r}: {what} varies inside a channel; eventkit takes one per channel")


def _meta(node: Any) -> dict[str, Any]:
    return {k: text(v) for k, v in (getattr(node, "metadata", None) or {}).items()}


def _ints(v: Any) -> Any:
    if isinstance(v, str):
        return v
    return tuple(int(i) for i in np.atleast_1d(np.asarray(v)))


def _weights(module: nn.Conv1d | nn.Conv2d | nn.Linear, node: Any, bias: bool) -> nn.Module:
    with torch.no_grad():
        module.weight.copy_(torch.as_tensor(np.asarray(node.weight)))
        if bias:
            assert module.bias is not None  # the layer was made with bias=True
            module.bias.copy_(torch.as_tensor(np.asarray(node.bias)))
    return module


def _neuron(nir: Any, name: str, node: Any, dt: float) -> list[nn.Module]:
    from eventkit_train.neurons import CUBALIF, IF, LIF, PLIF

    meta = _meta(node)
    kind = meta.get(MODULE_KEY)
    if isinstance(node, nir.IF):
        g = _uniform(node.r, name, "r") * dt
        return [IF(v_threshold=_uniform(node.v_threshold, name, "v_threshold") / g,
                   v_reset=_uniform(node.v_reset, name, "v_reset") / g)]
    if isinstance(node, nir.LIF):
        r = 1.0 if kind in ("LIF", "PLIF") else _uniform(node.r, name, "r")
        thr = _uniform(node.v_threshold, name, "v_threshold") / r
        reset = _uniform(node.v_reset, name, "v_reset") / r
        if _uniform(node.v_leak, name, "v_leak") / r != reset:
            raise ParameterError(f"from_nir: LIF node {name!r} leaks towards v_leak != v_reset; eventkit's LIF "
                                 "leaks towards v_reset")
        if kind == "PLIF":
            plif = PLIF(v_threshold=thr, v_reset=reset)
            with torch.no_grad():
                plif.a.fill_(float(meta["a"]))
            return [plif]
        tau = float(meta["tau_steps"]) if kind == "LIF" else _uniform(node.tau, name, "tau") / dt
        return [LIF(tau=tau, v_threshold=thr, v_reset=reset)]
    if isinstance(node, nir.CubaLIF):
        alpha: float | np.ndarray
        beta: float | np.ndarray
        if kind == "CUBALIF":
            alpha, beta, gain = np.asarray(meta["alpha"]), np.asarray(meta["beta"]), 1.0
        else:
            alpha = _per_channel(1.0 - dt / np.asarray(node.tau_syn, np.float64), name, "tau_syn")
            beta = _per_channel(1.0 - dt / np.asarray(node.tau_mem, np.float64), name, "tau_mem")
            gain = _uniform(np.asarray(node.w_in) * dt / np.asarray(node.tau_syn) * np.asarray(node.r) * dt
                            / np.asarray(node.tau_mem), name, "input gain w_in·r·dt²/(tau_syn·tau_mem)")
            if _uniform(node.v_leak, name, "v_leak") != 0.0:
                raise ParameterError(f"from_nir: CubaLIF node {name!r} has v_leak != 0; eventkit's CUBA-LIF leaks to 0")
            warnings.warn(f"from_nir: CubaLIF node {name!r} comes from another library; eventkit's CUBA-LIF clears "
                          "the membrane at the step after a spike, NIR simulators usually at the spike itself",
                          UserWarning, stacklevel=3)
        for label, v in (("alpha", alpha), ("beta", beta)):
            if np.any(np.asarray(v) < 0) or np.any(np.asarray(v) > 1):
                raise ParameterError(f"from_nir: node {name!r}: {label} = 1 - dt/tau is outside [0, 1] with dt={dt} s; "
                                     "pass the dt the graph was made for")
        vec = np.ndim(alpha) == 1 or np.ndim(beta) == 1
        n = int(np.asarray(node.v_threshold).shape[0]) if vec else None
        mod = CUBALIF(alpha=torch.as_tensor(alpha), beta=torch.as_tensor(beta), n_features=n,
                      learnable="alpha_logit" in meta,
                      v_threshold=_uniform(node.v_threshold, name, "v_threshold") / gain,
                      v_reset=_uniform(node.v_reset, name, "v_reset") / gain)
        if "alpha_logit" in meta:
            with torch.no_grad():
                mod.alpha_logit.copy_(torch.as_tensor(np.asarray(meta["alpha_logit"])))
                mod.beta_logit.copy_(torch.as_tensor(np.asarray(meta["beta_logit"])))
        return [mod]
    return _readout(nir, name, node, meta, dt)


def _readout(nir: Any, name: str, node: Any, meta: dict[str, Any], dt: float) -> list[nn.Module]:
    """A non-spiking readout from an LI, CubaLI or I node (and a :class:`Gain` for its input gain)."""
    from eventkit_train.neurons.readout import LeakyReadout

    kind = meta.get(MODULE_KEY)
    if kind == "LeakyReadout":
        alpha, beta, gain = float(meta["alpha"]), float(meta["beta"]), 1.0
    elif isinstance(node, nir.I):
        alpha, beta, gain = 0.0, 1.0, _uniform(node.r, name, "r") * dt
    elif isinstance(node, nir.LI):
        alpha, beta = 0.0, 1.0 - dt / _uniform(node.tau, name, "tau")
        gain = _uniform(np.asarray(node.r) * dt / np.asarray(node.tau), name, "r·dt/tau")
    else:
        alpha = 1.0 - dt / _uniform(node.tau_syn, name, "tau_syn")
        beta = 1.0 - dt / _uniform(node.tau_mem, name, "tau_mem")
        gain = _uniform(np.asarray(node.w_in) * dt / np.asarray(node.tau_syn) * np.asarray(node.r) * dt
                        / np.asarray(node.tau_mem), name, "input gain")
    if not isinstance(node, nir.I) and _uniform(node.v_leak, name, "v_leak") != 0.0:
        raise ParameterError(f"from_nir: readout node {name!r} has v_leak != 0; eventkit's readout leaks to 0")
    if not (0.0 <= alpha <= 1.0 and 0.0 <= beta <= 1.0):
        raise ParameterError(f"from_nir: readout node {name!r}: decays alpha={alpha}, beta={beta} are outside [0, 1] "
                             f"with dt={dt} s; pass the dt the graph was made for")
    learnable = "alpha_logit" in meta
    mod = LeakyReadout(alpha=alpha, beta=beta, learnable=learnable)
    if learnable:
        with torch.no_grad():
            mod.alpha_logit.fill_(float(meta["alpha_logit"]))
            mod.beta_logit.fill_(float(meta["beta_logit"]))
    return [mod] if gain == 1.0 else [mod, Gain(gain)]


def _layer(nir: Any, name: str, node: Any, dt: float) -> list[nn.Module]:
    from eventkit_train.models.layers import AvgPool2d, SumPool2d, TimeFolded, VotingLayer

    meta = _meta(node)
    if isinstance(node, (nir.IF, nir.LIF, nir.CubaLIF, nir.LI, nir.CubaLI, nir.I)):
        return _neuron(nir, name, node, dt)
    if isinstance(node, (nir.Affine, nir.Linear)):
        if meta.get(MODULE_KEY) == "VotingLayer":
            return [VotingLayer(int(meta["kernel_size"]), int(meta["stride"]))]
        w = np.asarray(node.weight)
        if w.ndim != 2:
            raise ParameterError(f"from_nir: node {name!r} has a {w.ndim}-D weight; a dense layer needs [out, in]")
        bias = isinstance(node, nir.Affine)
        return [TimeFolded(_weights(nn.Linear(w.shape[1], w.shape[0], bias=bias), node, bias))]
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        w = np.asarray(node.weight)
        cls = nn.Conv2d if isinstance(node, nir.Conv2d) else nn.Conv1d
        conv = cls(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]), stride=_ints(node.stride),
                   padding=_ints(node.padding), dilation=_ints(node.dilation), groups=int(node.groups), bias=True)
        return [TimeFolded(_weights(conv, node, True))]
    if isinstance(node, nir.Flatten):
        start = node.start_dim + 1 if node.start_dim >= 0 else node.start_dim
        end = node.end_dim + 1 if node.end_dim >= 0 else node.end_dim
        return [TimeFolded(nn.Flatten(start, end))]
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        k, s, p = _ints(node.kernel_size), _ints(node.stride), _ints(node.padding)
        if isinstance(node, nir.SumPool2d):
            if meta.get(MODULE_KEY) == "SumPool2d":
                return [SumPool2d(k[0])]
            return [TimeFolded(nn.AvgPool2d(k, s, p, divisor_override=1))]  # a sum over each window
        return [AvgPool2d(k, s)] if not any(p) else [TimeFolded(nn.AvgPool2d(k, s, p))]
    if isinstance(node, nir.Scale):
        return [Gain(node.scale)]
    raise ParameterError(f"from_nir: node {name!r} is a {type(node).__name__}, which eventkit cannot rebuild "
                         "(supported: IF, LIF, CubaLIF, LI, CubaLI, I, Affine, Linear, Conv1d, Conv2d, Flatten, "
                         "AvgPool2d, SumPool2d, Scale)")


def from_nir(graph: Any, *, dt: float | None = None) -> nn.Module:
    """Rebuild a ``nir.NIRGraph`` (a chain) as a :class:`~eventkit_train.models.SpikingNet`.

    ``dt`` (seconds per step) defaults to ``graph.metadata["dt"]`` (written by
    :func:`~eventkit_train.export.to_nir`), else 1e-4 s; a ``dt`` that disagrees with the
    graph's is refused. The network takes ``[T, B, *input_shape]`` and returns spikes (or
    the readout membrane when the chain ends in ``LI``/``CubaLI``/``I``).
    """
    from eventkit_train.models import SpikingNet
    from eventkit_train.neurons import NeuronModule
    from eventkit_train.neurons.readout import LeakyReadout

    nir = require_nir()
    if not isinstance(graph, nir.NIRGraph):
        raise ParameterError(f"from_nir: expected a nir.NIRGraph (nir.read(path)), got {type(graph).__name__}")
    stored = {k: text(v) for k, v in (graph.metadata or {}).items()}
    if dt is not None and "dt" in stored and check_dt(dt) != float(stored["dt"]):
        raise ParameterError(f"from_nir: dt={dt} but the graph was exported with dt={stored['dt']} s")
    step = check_dt(dt if dt is not None else stored.get("dt", DEFAULT_DT))
    order = _chain(nir, graph)
    first = graph.nodes[[k for k, n in graph.nodes.items() if isinstance(n, nir.Input)][0]]
    input_shape = tuple(int(d) for d in np.asarray(first.input_type["input"]).ravel())
    modules: list[tuple[str, nn.Module]] = []
    neurons: list[str] = []
    for name in order:
        for mod in _layer(nir, name, graph.nodes[name], step):
            label = f"{len(modules)}_{name.replace('.', '_')}" if not name[:1].isdigit() else name.replace(".", "_")
            if any(label == m for m, _ in modules):
                label = f"{label}_{len(modules)}"
            modules.append((label, mod))
            if isinstance(mod, NeuronModule):
                neurons.append(label)
    net = SpikingNet(modules, spec=str(stored.get("spec", "nir")), input_shape=input_shape, n_classes=1,
                     output="spikes", neuron_layers=neurons)
    with torch.no_grad():
        out = net(torch.zeros((1, 1) + input_shape))
    net.n_classes = int(np.prod(out.shape[2:]))
    readouts = [m for _, m in modules if isinstance(m, (LeakyReadout, NeuronModule))]
    net.output = "membrane" if readouts and isinstance(readouts[-1], LeakyReadout) else "spikes"
    return net


def load_nir(path: str | Path, *, dt: float | None = None) -> nn.Module:
    """``from_nir(nir.read(path))``."""
    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"load_nir: no NIR file at {p}")
    return from_nir(require_nir().read(str(p)), dt=dt)
