"""The CPU backend: Numba kernels generated from a neuron definition (:mod:`.numba_source`).

One kernel module per (definition, float32 | float64); bfloat16 inputs (autocast) run the
float32 kernels, which read and write bf16 activations directly. The kernels work on the
tensors' own memory, in the tensors' own layout when it is dense with time outermost
(:mod:`.layout`: ``contiguous`` or ``channels_last`` activations; anything else is made
contiguous once), and write their big outputs into recycled buffers
(:mod:`.buffers`). Flags and ``param_grads`` are runtime arguments (loop-invariant branches);
the surrogate kind selects one of the backward kernels (``backward0`` … ``backward4``,
compiled on first use), since a runtime kind would keep every surrogate's branch and ``exp``
call inside the loop and stop it vectorising. Threads: the kernels release the GIL
(``nogil``) and each call splits the blocks over ``torch.get_num_threads()`` threads.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from . import buffers, codegen, layout
from .definition import NeuronDefinition
from .numba_source import BLOCK, module_source

__all__ = ["forward", "backward", "kernels", "available", "IO_DTYPES"]

#: dtypes of the activations (x, spikes, their gradients) the kernels read and write directly
IO_DTYPES = (torch.float32, torch.float64, torch.bfloat16)


def available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


_KERNELS: dict[tuple[str, str], object] = {}


def kernels(d: NeuronDefinition, dtype: torch.dtype):
    """The generated module (``forward``, ``backward0`` …) of ``d`` for compute ``dtype`` (float64, else float32)."""
    key = (d.name, "float64" if dtype == torch.float64 else "float32")
    if key not in _KERNELS:
        _KERNELS[key] = codegen.write_and_import(f"{d.name}_numba_{key[1]}", module_source(d, key[1]))
    return _KERNELS[key]


def _rows(t: Tensor, T: int) -> np.ndarray:
    """``t`` (dense, time outermost) as the array ``[T, n]`` of its memory; bfloat16 as int16 bits."""
    n = t.numel() // T if T else 0
    flat = torch.as_strided(t.detach(), (T, n), (n, 1))
    return (flat.view(torch.int16) if flat.dtype == torch.bfloat16 else flat).numpy()


def _params(params: Sequence[Tensor], shape: tuple[int, ...], strides: tuple[int, ...],
            dtype: torch.dtype) -> tuple[np.ndarray, int]:
    """Parameters stacked ``[P, C]`` (scalars repeated over C) and the channel stride ``inner``."""
    C = max([p.shape[0] for p in params if p.dim() == 1], default=1)
    stacked = torch.stack([p.expand(C) if p.dim() == 0 else p for p in params]) if params else \
        torch.zeros((0, 1), dtype=dtype)
    return stacked.detach().to(dtype).contiguous().numpy(), layout.channel_stride(strides, shape)


_POOL: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, size, pool)


def _run(kernel: Callable, n: int, *args) -> None:
    """Call ``kernel(b0, b1, *args)`` over all blocks, split across ``torch.get_num_threads()`` threads."""
    global _POOL
    nblocks = (n + BLOCK - 1) // BLOCK
    threads = max(1, min(torch.get_num_threads(), nblocks))
    if threads == 1:
        kernel(0, nblocks, *args)
        return
    if _POOL is None or _POOL[0] != os.getpid() or _POOL[1] < threads:  # new pool after fork or growth
        if _POOL is not None and _POOL[0] == os.getpid():
            _POOL[2].shutdown(wait=False)
        _POOL = (os.getpid(), threads, ThreadPoolExecutor(threads, thread_name_prefix="eventkit-neurons"))
    bounds = [nblocks * i // threads for i in range(threads + 1)]
    futures = [_POOL[2].submit(kernel, bounds[i], bounds[i + 1], *args) for i in range(threads)]
    for f in futures:
        f.result()


def forward(d: NeuronDefinition, x: Tensor, state: Sequence[Tensor], params: Sequence[Tensor],
            flags: Sequence[bool]) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """As :func:`eventkit_train.kernels.torch_backend.forward`, for float32/float64/bfloat16 CPU tensors
    (spikes in ``x``'s dtype and layout, SAVED and STATE in the compute dtype)."""
    cd = torch.float64 if x.dtype == torch.float64 else torch.float32
    k = kernels(d, cd)
    shape, strides = tuple(x.shape), layout.time_major_strides(x)
    x = layout.in_layout(x, shape, strides, x.dtype)
    T, n = shape[0], math.prod(shape[1:])
    spikes = buffers.empty(shape, x.dtype, strides)
    saved = [buffers.empty(shape, cd, strides) for _ in d.saved]
    st_out = [buffers.empty(shape[1:], cd, strides[1:]) for _ in d.state]
    st_in = [layout.in_layout(s, shape[1:], strides[1:], cd) for s in state]
    pp, inner = _params(params, shape, strides, cd)
    _run(k.forward, n, _rows(x, T), *(_rows(s, 1)[0] for s in st_in), _rows(spikes, T),
         *(_rows(s, T) for s in saved), *(_rows(s, 1)[0] for s in st_out), pp, inner, *(bool(f) for f in flags))
    return spikes, saved, st_out


def _grad(g: Tensor | None, ref: Tensor) -> tuple[np.ndarray | None, int]:
    """An output gradient as the backward kernel reads it, without materialising broadcasts: ``(array, mode)``
    with mode 0 (absent), 1 (one value ``[1, 1]``, e.g. from ``spikes.sum()``), 2 (one row ``[1, n]``, constant
    over time) or 3 (``[T, n]`` in ``ref``'s layout)."""
    if g is None:
        return None, 0
    shape, strides = tuple(ref.shape), tuple(ref.stride())
    io = g.dtype if g.dtype in IO_DTYPES else ref.dtype
    if g.numel() and all(st == 0 for st in g.stride()):
        return _rows(g.reshape(-1)[:1].to(io).reshape(1, 1).clone(), 1), 1
    if g.numel() and g.stride(0) == 0:
        return _rows(layout.in_layout(g[0], shape[1:], strides[1:], io).unsqueeze(0), 1), 2
    return _rows(layout.in_layout(g, shape, strides, io), shape[0]), 3


def backward(d: NeuronDefinition, g_spikes: Tensor | None, g_membrane: Tensor | None, g_state: Sequence[Tensor],
             saved: Sequence[Tensor], restored0: Sequence[Tensor], params: Sequence[Tensor], flags: Sequence[bool],
             surrogate: Sequence[float], param_grads: bool, grad_dtype: torch.dtype | None = None
             ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """As :func:`eventkit_train.kernels.torch_backend.backward`, for float32/float64 CPU tensors; ``g_x`` in
    ``grad_dtype`` (the input's dtype, bfloat16 under autocast; default: the compute dtype) and ``saved``'s layout."""
    ref = saved[0]
    cd = ref.dtype
    k = kernels(d, cd)
    shape, strides = tuple(ref.shape), tuple(ref.stride())
    T, n = shape[0], math.prod(shape[1:])
    dummy = np.zeros((1, 1), dtype=np.float64 if cd == torch.float64 else np.float32)
    (gs, gs_mode), (gm, gm_mode) = _grad(g_spikes, ref), _grad(g_membrane, ref)
    g_x = buffers.empty(shape, grad_dtype or cd, strides)
    g_in = [buffers.empty(shape[1:], cd, strides[1:]) for _ in d.state]
    g_par = buffers.empty((len(d.learnable), n), cd)
    pp, inner = _params(params, shape, strides, cd)
    _run(getattr(k, f"backward{int(surrogate[0])}"), n, dummy if gs is None else gs, dummy if gm is None else gm,
         gs_mode, gm_mode, *(_rows(layout.in_layout(g, shape[1:], strides[1:], cd), 1)[0] for g in g_state),
         *(_rows(s, T) for s in saved), *(_rows(layout.in_layout(r, shape[1:], strides[1:], cd), 1)[0]
                                         for r in restored0),
         _rows(g_x, T), *(_rows(g, 1)[0] for g in g_in), g_par.numpy(), pp, inner, *(bool(f) for f in flags),
         bool(param_grads), float(surrogate[1]), float(surrogate[2]))
    partials = [torch.as_strided(g_par[i], shape[1:], strides[1:]) for i in range(len(d.learnable))]
    return g_x, g_in, partials
