"""The CPU backend: Numba kernels generated from a neuron definition.

One kernel pair per (definition, float32 | float64). The neurons are cut into blocks of
:data:`BLOCK`; for each block the time loop runs outside and the loop over the block's
neurons inside (independent recurrences side by side, which the compiler vectorises), the
state in a small block-local array. The kernels work on the tensors' own memory
(``Tensor.numpy()`` of contiguous CPU tensors, no copies; a non-contiguous input is made
contiguous once). Flags, the surrogate kind and ``param_grads`` are runtime arguments, so
one compiled kernel serves every reset mode and surrogate. Threads: the kernels release the
GIL (``nogil``) and each call splits the blocks over ``torch.get_num_threads()`` threads.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from . import codegen, ops, surrogates
from .codegen import kernel_names
from .definition import NeuronDefinition
from .torch_backend import grad_layout

__all__ = ["forward", "backward", "kernels", "available"]

_HEADER = """# Generated from a neuron definition by eventkit_train.kernels.numba_backend; do not edit.
import math

import numpy as np
from numba import njit

F = np.{dtype}
"""


def available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


BLOCK = 256  # neurons per block: the inner loop runs over a block at each step (independent chains, SIMD)


def _block_prologue(P: int) -> list[str]:
    """Open the loop over blocks b0..b1 and load each block's parameters into ``pb [P, BLOCK]``."""
    return ["    C = params.shape[1]", "    for b in range(b0, b1):", f"        j0 = b * {BLOCK}",
            f"        m = min({BLOCK}, n - j0)",
            f"        pb = np.empty(({max(P, 1)}, {BLOCK}), dtype=F)",
            "        for jj in range(m):", "            c = ((j0 + jj) // inner) % C",
            f"            for i in range({P}):", "                pb[i, jj] = params[i, c]"]


def _forward_source(d: NeuronDefinition) -> str:
    k = kernel_names(d)
    P, st_in, st_out, sv, st, fl, svv, stv = k.P, k.st_in, k.st_out, k.sv, k.st, k.fl, k.svv, k.stv
    pv = [f"pb[{i}, jj]" for i in range(P)]
    args = ["b0", "b1", "x", *st_in, "spikes", *sv, *st_out, "params", "inner", *fl]
    lines = ["@njit(cache=True, nogil=True)", f"def forward({', '.join(args)}):",
             "    T = x.shape[0]", "    n = x.shape[1]", *_block_prologue(P)]
    lines += [f"        {s} = np.empty({BLOCK}, dtype=F)" for s in st]
    lines += ["        for jj in range(m):"] + [f"            {s}[jj] = {si}[j0 + jj]" for s, si in zip(st, st_in)]
    lines += ["        for t in range(T):", "            for jj in range(m):", "                j = j0 + jj",
              f"                s_, {', '.join(svv + stv)} = step(x[t, j], "
              f"{', '.join([f'{s}[jj]' for s in st] + pv + fl)})",
              "                spikes[t, j] = s_"]
    lines += [f"                {a}[t, j] = {b}" for a, b in zip(sv, svv)]
    lines += [f"                {a}[jj] = {b}" for a, b in zip(st, stv)]
    lines += ["        for jj in range(m):"] + [f"            {so}[j0 + jj] = {s}[jj]" for so, s in zip(st_out, st)]
    return "\n".join(lines) + "\n"


def _backward_source(d: NeuronDefinition) -> str:
    k = kernel_names(d)
    R, P, g_out, g_in, g, sv, r_in, r, fl, acc, lv, gv = (k.R, k.P, k.g_out, k.g_in, k.g, k.sv, k.r_in, k.r, k.fl,
                                                         k.acc, k.lv, k.gv)
    pv = [f"pb[{i}, jj]" for i in range(P)]
    args = ["b0", "b1", "g_spikes", "g_membrane", "has_gs", "has_gm", "gs_t", "gs_j", "gm_t", "gm_j", *g_out, *sv,
            *r_in, "g_x", *g_in, "g_par",
            "params", "inner", *fl, "param_grads", "sk", "sa", "sb"]
    lines = ["@njit(cache=True, nogil=True)", f"def backward({', '.join(args)}):",
             "    T = sv0.shape[0]", "    n = sv0.shape[1]", "    a_ = F(sa)", "    b_ = F(sb)", *_block_prologue(P)]
    lines += [f"        {a} = np.empty({BLOCK}, dtype=F)" for a in g]
    lines += [f"        {a} = np.zeros({BLOCK}, dtype=F)" for a in acc]
    lines += ["        for jj in range(m):"] + [f"            {a}[jj] = {b}[j0 + jj]" for a, b in zip(g, g_out)]
    lines += ["        for tt in range(T):", "            t = T - 1 - tt", "            for jj in range(m):",
              "                j = j0 + jj"]
    if R:
        prev = ", ".join(f"{s}[t - 1, j]" for s in sv)
        lines += ["                if t > 0:",
                  f"                    {', '.join(r)} = restore({prev}, {', '.join(pv + fl)})",
                  "                else:"]
        lines += [f"                    {a} = {b}[j]" for a, b in zip(r, r_in)]
    lines += ["                gs_ = g_spikes[t * gs_t, j * gs_j] if has_gs else F(0.0)",
              "                gm_ = g_membrane[t * gm_t, j * gm_j] if has_gm else F(0.0)"]
    call_args = ["gs_", "gm_", *[f"{a}[jj]" for a in g], *[f"{s}[t, j]" for s in sv], *r, *pv, *fl,
                 "param_grads", "sk", "a_", "b_"]
    lines += [f"                {', '.join(['gx_', *gv, *lv])} = step_vjp({', '.join(call_args)})",
              "                g_x[t, j] = gx_"]
    lines += [f"                {a}[jj] = {b}" for a, b in zip(g, gv)]
    lines += [f"                {a}[jj] += {b}" for a, b in zip(acc, lv)]
    lines += ["        for jj in range(m):"] + [f"            {a}[j0 + jj] = {b}[jj]" for a, b in zip(g_in, g)]
    lines += [f"            g_par[{i}, j0 + jj] = {a}[jj]" for i, a in enumerate(acc)]
    return "\n".join(lines) + "\n"


def module_source(d: NeuronDefinition, dtype: str) -> list[str]:
    """The parts of the generated module for ``dtype`` ("float32" or "float64")."""
    parts = [_HEADER.format(dtype=dtype), ops.NUMBA_SOURCE]
    for fn in codegen.module_functions(surrogates) + codegen.module_functions(d.module):
        parts.append(codegen.function_source(fn, "@njit", wrap_floats=True))
    parts += [_forward_source(d), _backward_source(d)]
    return parts


_KERNELS: dict[tuple[str, str], object] = {}


def kernels(d: NeuronDefinition, dtype: torch.dtype):
    """The generated module (``forward``, ``backward``) of ``d`` for ``dtype``."""
    key = (d.name, "float64" if dtype == torch.float64 else "float32")
    if key not in _KERNELS:
        _KERNELS[key] = codegen.write_and_import(f"{d.name}_numba_{key[1]}", module_source(d, key[1]))
    return _KERNELS[key]


def _np(t: Tensor) -> np.ndarray:
    return t.detach().numpy()


def _flat(t: Tensor, lead: int) -> Tensor:
    """Contiguous view ``[lead..., n]`` (a copy only when ``t`` is not contiguous)."""
    t = t.contiguous()
    return t.reshape(t.shape[:lead] + (-1,)) if lead else t.reshape(-1)


def _layout(x: Tensor, params: Sequence[Tensor]) -> tuple[np.ndarray, int]:
    """Parameters stacked ``[P, C]`` (scalars repeated over C) and the channel stride ``inner``."""
    C = max([p.shape[0] for p in params if p.dim() == 1], default=1)
    inner = 1
    for s in x.shape[3:]:
        inner *= s
    stacked = torch.stack([p.expand(C) if p.dim() == 0 else p for p in params]) if params else \
        torch.zeros((0, 1), dtype=x.dtype)
    return _np(stacked.to(x.dtype).contiguous()), inner


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
    """As :func:`eventkit_train.kernels.torch_backend.forward`, for float32/float64 CPU tensors."""
    k = kernels(d, x.dtype)
    T = x.shape[0]
    x2 = _flat(x, 1)
    spikes = torch.empty_like(x, memory_format=torch.contiguous_format)
    saved = [torch.empty_like(spikes) for _ in d.saved]
    st_out = [torch.empty_like(spikes[0]) for _ in d.state]
    pp, inner = _layout(x, params)
    st_in = [_np(_flat(s.to(x.dtype), 0)) for s in state]
    _run(k.forward, x2.shape[1], _np(x2), *st_in, _np(spikes.view(T, -1)), *(_np(s.view(T, -1)) for s in saved),
         *(_np(s.view(-1)) for s in st_out), pp, inner, *(bool(f) for f in flags))
    return spikes, saved, st_out


def backward(d: NeuronDefinition, g_spikes: Tensor | None, g_membrane: Tensor | None, g_state: Sequence[Tensor],
             saved: Sequence[Tensor], restored0: Sequence[Tensor], params: Sequence[Tensor], flags: Sequence[bool],
             surrogate: Sequence[float], param_grads: bool) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """As :func:`eventkit_train.kernels.torch_backend.backward`, for float32/float64 CPU tensors."""
    ref = saved[0]
    k = kernels(d, ref.dtype)
    T = ref.shape[0]
    dummy = np.zeros((1, 1), dtype=_np(ref[:0]).dtype)
    gs, gs_t, gs_j = grad_layout(g_spikes, ref)
    gm, gm_t, gm_j = grad_layout(g_membrane, ref)
    g_x = torch.empty_like(ref, memory_format=torch.contiguous_format)
    g_in = [torch.empty_like(g_x[0]) for _ in d.state]
    n = g_x[0].numel()
    g_par = torch.empty((len(d.learnable), n), dtype=ref.dtype)
    pp, inner = _layout(ref, params)
    _run(k.backward, n, dummy if gs is None else _np(gs), dummy if gm is None else _np(gm), gs is not None,
         gm is not None, gs_t, gs_j, gm_t, gm_j,
         *(_np(_flat(g.to(ref.dtype), 0)) for g in g_state), *(_np(_flat(s, 1)) for s in saved),
         *(_np(_flat(r.to(ref.dtype), 0)) for r in restored0), _np(g_x.view(T, -1)),
         *(_np(g.view(-1)) for g in g_in), _np(g_par), pp, inner, *(bool(f) for f in flags),
         bool(param_grads), int(surrogate[0]), float(surrogate[1]), float(surrogate[2]))
    partials = [g_par[i].view(g_x.shape[1:]) for i in range(len(d.learnable))]
    return g_x, g_in, partials
