"""The torch backend: a definition evaluated on whole ``[B, ...]`` tensors, one Python loop over T.

Runs on any device and dtype (the fallback where neither Numba nor Triton applies). No
autograd graph is recorded: the caller (:mod:`eventkit_train.kernels.sequence`) wraps the
forward and backward in one autograd node.

Shapes: ``x [T, B, ...]``; every state tensor ``[B, ...]``; a parameter is a 0-d tensor
or a vector ``[C]`` over dimension 2 of ``x`` (the channel axis).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .definition import NeuronDefinition

__all__ = ["forward", "backward", "broadcast_params", "reduce_param_grad", "grad_layout"]


def broadcast_params(params: Sequence[Tensor], x: Tensor) -> list[Tensor]:
    """Vectors ``[C]`` reshaped to broadcast over ``x[t] [B, C, ...]``; scalars stay 0-d."""
    out = []
    for p in params:
        if p.dim() == 1:
            p = p.reshape((p.shape[0],) + (1,) * (x.dim() - 3))
        out.append(p)
    return out


def grad_layout(g: Tensor | None, ref: Tensor) -> tuple[Tensor | None, int, int]:
    """An output gradient ``[T, B, ...]`` as the kernels read it, without materialising broadcasts:
    ``(tensor, t_step, j_step)`` — a contiguous ``[T, n]`` (1, 1), one row ``[1, n]`` constant over
    time (0, 1), or one value ``[1, 1]`` (0, 0, e.g. from ``spikes.sum().backward()``)."""
    if g is None:
        return None, 0, 0
    g = g.to(ref.dtype)
    if g.numel() == 0:
        return g.contiguous().reshape(g.shape[0], -1), 1, 1
    if all(st == 0 for st in g.stride()):
        return g.reshape(-1)[:1].reshape(1, 1).contiguous(), 0, 0
    if g.stride(0) == 0:
        return g[0].contiguous().reshape(1, -1), 0, 1
    return g.contiguous().reshape(g.shape[0], -1), 1, 1


def reduce_param_grad(partial: Tensor, param: Tensor) -> Tensor:
    """Per-neuron gradient contributions ``[B, ...]`` summed to the parameter's shape ([] or [C])."""
    if param.dim() == 0:
        return partial.sum().reshape(())
    c = param.shape[0]
    return partial.reshape(partial.shape[0], c, -1).sum(dim=(0, 2))


def forward(defn: NeuronDefinition, x: Tensor, state: Sequence[Tensor], params: Sequence[Tensor],
            flags: Sequence[bool], recurrent: tuple[Tensor, int] | None = None
            ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """``(spikes [T, ...], SAVED tensors [T, ...], final STATE [B, ...])``.

    ``recurrent=(W [N, N], i)`` adds ``STATE[i] @ W^T`` (the previous spikes) to the input of every step.
    """
    p = broadcast_params(params, x)
    spikes = torch.empty_like(x)
    saved = [torch.empty_like(x) for _ in defn.saved]
    st = list(state)
    n_saved = len(defn.saved)
    for t in range(x.shape[0]):
        x_t = x[t] if recurrent is None else x[t] + st[recurrent[1]] @ recurrent[0].t()
        out = defn.step(x_t, *st, *p, *flags)
        spikes[t] = out[0]
        for q in range(n_saved):
            saved[q][t] = out[1 + q]
        st = list(out[1 + n_saved:])
    return spikes, saved, [s.clone() if any(s is i for i in state) else s for s in st]


def backward(defn: NeuronDefinition, g_spikes: Tensor | None, g_membrane: Tensor | None, g_state: Sequence[Tensor],
             saved: Sequence[Tensor], restored0: Sequence[Tensor], params: Sequence[Tensor], flags: Sequence[bool],
             surrogate: Sequence[float], param_grads: bool, recurrent: tuple[Tensor, int] | None = None
             ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """``(g_x [T, ...], g of the initial STATE, per-neuron LEARNABLE gradients [B, ...])``.

    ``restored0`` are the initial values of the RESTORED state entries; ``surrogate`` is
    ``(kind, a, b)``; ``g_spikes`` / ``g_membrane`` None mean zero. With ``recurrent=(W, i)``
    (see :func:`forward`; STATE[i] must be RESTORED) the gradient of the recurrent input flows
    back into STATE[i] through ``W``, and the previous spikes of every step are appended to
    the returned list (``[T, B, N]``, for the gradient of ``W``).
    """
    p = broadcast_params(params, saved[0])
    kind, a, b = int(surrogate[0]), float(surrogate[1]), float(surrogate[2])
    T = saved[0].shape[0]
    n_state, n_restored = len(defn.state), len(defn.restored)
    g_x = torch.empty_like(saved[0])
    g_st = list(g_state)
    acc: list[Tensor | float] = [0.0] * len(defn.learnable)
    s_prev = None if recurrent is None else torch.empty_like(saved[0])
    for t in range(T - 1, -1, -1):
        if n_restored == 0:
            prev: tuple = ()
        elif t > 0:
            assert defn.restore is not None  # a definition with RESTORED state defines restore
            r = defn.restore(*(s[t - 1] for s in saved), *p, *flags)
            prev = r if n_restored > 1 else (r,)
        else:
            prev = tuple(restored0)
        gs = 0.0 if g_spikes is None else g_spikes[t]
        gm = 0.0 if g_membrane is None else g_membrane[t]
        out = defn.step_vjp(gs, gm, *g_st, *(s[t] for s in saved), *prev, *p, *flags, param_grads, kind, a, b)
        g_x[t] = out[0]
        g_st = list(out[1:1 + n_state])
        if recurrent is not None:
            weight, i = recurrent
            s_prev[t] = prev[defn.restored.index(defn.state[i])]  # type: ignore[index]
            g_st[i] = g_st[i] + out[0] @ weight
        if param_grads:
            acc = [acc[i] + out[1 + n_state + i] for i in range(len(acc))]
    like = saved[0][0]
    g_st = [g if isinstance(g, Tensor) else torch.full_like(like, g) for g in g_st]
    partials = [torch.zeros_like(like) if not isinstance(v, Tensor) else v.expand_as(like) for v in acc]
    return g_x, g_st, partials + ([] if s_prev is None else [s_prev])
