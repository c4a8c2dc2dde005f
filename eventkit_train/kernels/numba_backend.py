"""The CPU backend: Numba kernels generated from a neuron definition.

One kernel module per (definition, float32 | float64). The neurons are cut into blocks of
:data:`BLOCK`; for each block the time loop runs outside and the loop over the block's
neurons inside (independent recurrences side by side), on unit-stride rows of the block
(``x[t, j0:j0 + m]``, parameters gathered per block), so that LLVM vectorises the inner
loops. Flags and ``param_grads`` are runtime arguments (loop-invariant branches that LLVM
hoists); the surrogate kind is not: each kind has its own backward kernel
(``backward0`` … ``backward4``, compiled on first use), since a runtime kind would keep
every surrogate's branch and ``exp`` call inside the loop and stop it vectorising. The
kernels work on the tensors' own memory (``Tensor.numpy()`` of contiguous CPU tensors; a
non-contiguous input is made contiguous once) and write their big outputs into recycled
buffers (:mod:`eventkit_train.kernels.buffers`). Threads: the kernels release the GIL
(``nogil``) and each call splits the blocks over ``torch.get_num_threads()`` threads.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from . import buffers, codegen, ops, surrogates
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


# error_model="numpy": a division by zero gives inf/nan as in torch, without Python's ZeroDivisionError check,
# whose branch keeps LLVM from vectorising any loop that divides by a value
_JIT = '@njit(error_model="numpy")'
_DRIVER_JIT = '@njit(cache=True, nogil=True, error_model="numpy")'

BLOCK = 256  # neurons per block: the inner loop runs over a block at each step (independent chains, SIMD)


def _block_prologue(P: int) -> list[str]:
    """Per-call parameter scratch, then the loop over blocks b0..b1 with the block's parameters gathered into
    the rows ``p0, p1, ...`` (length m): unit-stride 1-D arrays, so that the inner loops vectorise."""
    return ["    C = params.shape[1]", f"    pb = np.empty(({max(P, 1)}, {BLOCK}), dtype=F)",
            "    for b in range(b0, b1):", f"        j0 = b * {BLOCK}", f"        m = min({BLOCK}, n - j0)",
            "        for jj in range(m):", "            c = ((j0 + jj) // inner) % C",
            f"            for i in range({P}):", "                pb[i, jj] = params[i, c]"] + \
        [f"        p{i} = pb[{i}, :m]" for i in range(P)]


def _forward_source(d: NeuronDefinition) -> str:
    k = kernel_names(d)
    P, st_in, st_out, sv, st, fl, svv, stv = k.P, k.st_in, k.st_out, k.sv, k.st, k.fl, k.svv, k.stv
    pv = [f"p{i}[jj]" for i in range(P)]
    args = ["b0", "b1", "x", *st_in, "spikes", *sv, *st_out, "params", "inner", *fl]
    lines = [_DRIVER_JIT, f"def forward({', '.join(args)}):",
             "    T = x.shape[0]", "    n = x.shape[1]"]
    lines += [f"    {s} = np.empty({BLOCK}, dtype=F)" for s in st]
    lines += _block_prologue(P)
    lines += ["        for jj in range(m):"] + [f"            {s}[jj] = {si}[j0 + jj]" for s, si in zip(st, st_in)]
    lines += ["        for t in range(T):", "            x_t = x[t, j0:j0 + m]", "            sp_t = spikes[t, j0:j0 + m]"]
    lines += [f"            {a}_t = {a}[t, j0:j0 + m]" for a in sv]
    lines += ["            for jj in range(m):",
              f"                s_, {', '.join(svv + stv)} = step(x_t[jj], "
              f"{', '.join([f'{s}[jj]' for s in st] + pv + fl)})",
              "                sp_t[jj] = s_"]
    lines += [f"                {a}_t[jj] = {b}" for a, b in zip(sv, svv)]
    lines += [f"                {a}[jj] = {b}" for a, b in zip(st, stv)]
    lines += ["        for jj in range(m):"] + [f"            {so}[j0 + jj] = {s}[jj]" for so, s in zip(st_out, st)]
    return "\n".join(lines) + "\n"


def _grad_rows(name: str, mode: str, src: str) -> list[str]:
    """A broadcast output gradient (mode 1: one value, 2: one row) copied once per block into ``name``."""
    return [f"        if {mode} == 1:", "            for jj in range(m):", f"                {name}[jj] = {src}[0, 0]",
            f"        elif {mode} == 2:", "            for jj in range(m):",
            f"                {name}[jj] = {src}[0, j0 + jj]"]


def _backward_source(d: NeuronDefinition, kind: int) -> str:
    """``backward{kind}``: the reverse pass for surrogate ``kind``, a constant (LLVM drops the other surrogates
    and vectorises the loop; a runtime kind keeps every branch, ``exp`` calls included, in the inner loop)."""
    k = kernel_names(d)
    R, P, g_out, g_in, g, sv, r_in, r, fl, acc, lv, gv = (k.R, k.P, k.g_out, k.g_in, k.g, k.sv, k.r_in, k.r, k.fl,
                                                         k.acc, k.lv, k.gv)
    pv = [f"p{i}[jj]" for i in range(P)]
    args = ["b0", "b1", "g_spikes", "g_membrane", "gs_mode", "gm_mode", *g_out, *sv, *r_in, "g_x", *g_in, "g_par",
            "params", "inner", *fl, "param_grads", "sa", "sb"]
    lines = [_DRIVER_JIT, f"def backward{kind}({', '.join(args)}):",
             "    T = sv0.shape[0]", "    n = sv0.shape[1]", "    a_ = F(sa)", "    b_ = F(sb)",
             f"    gs_b = np.zeros({BLOCK}, dtype=F)", f"    gm_b = np.zeros({BLOCK}, dtype=F)"]
    lines += [f"    {a} = np.empty({BLOCK}, dtype=F)" for a in g + acc + r]
    lines += _block_prologue(P)
    lines += _grad_rows("gs_b", "gs_mode", "g_spikes") + _grad_rows("gm_b", "gm_mode", "g_membrane")
    lines += ["        for jj in range(m):"] + [f"            {a}[jj] = {b}[j0 + jj]" for a, b in zip(g, g_out)]
    lines += [f"            {a}[jj] = F(0.0)" for a in acc]
    lines += ["        for tt in range(T):", "            t = T - 1 - tt"]
    if R:
        lines += ["            if t > 0:"] + [f"                {s}_p = {s}[t - 1, j0:j0 + m]" for s in sv]
        lines += ["                for jj in range(m):",
                  f"                    {', '.join(f'{a}_' for a in r)} = restore("
                  f"{', '.join([f'{s}_p[jj]' for s in sv] + pv + fl)})"]
        lines += [f"                    {a}[jj] = {a}_" for a in r]
        lines += ["            else:", "                for jj in range(m):"]
        lines += [f"                    {a}[jj] = {b}[j0 + jj]" for a, b in zip(r, r_in)]
    lines += ["            gs_t = g_spikes[t, j0:j0 + m] if gs_mode == 3 else gs_b[:m]",
              "            gm_t = g_membrane[t, j0:j0 + m] if gm_mode == 3 else gm_b[:m]",
              "            gx_t = g_x[t, j0:j0 + m]"]
    lines += [f"            {s}_t = {s}[t, j0:j0 + m]" for s in sv]
    call_args = ["gs_t[jj]", "gm_t[jj]", *[f"{a}[jj]" for a in g], *[f"{s}_t[jj]" for s in sv],
                 *[f"{a}[jj]" for a in r], *pv, *fl, "param_grads", str(kind), "a_", "b_"]
    lines += ["            for jj in range(m):",
              f"                {', '.join(['gx_', *gv, *lv])} = step_vjp({', '.join(call_args)})",
              "                gx_t[jj] = gx_"]
    lines += [f"                {a}[jj] = {b}" for a, b in zip(g, gv)]
    lines += [f"                {a}[jj] += {b}" for a, b in zip(acc, lv)]
    lines += ["        for jj in range(m):"] + [f"            {a}[j0 + jj] = {b}[jj]" for a, b in zip(g_in, g)]
    lines += [f"            g_par[{i}, j0 + jj] = {a}[jj]" for i, a in enumerate(acc)]
    return "\n".join(lines) + "\n"


def module_source(d: NeuronDefinition, dtype: str) -> list[str]:
    """The parts of the generated module for ``dtype`` ("float32" or "float64")."""
    parts = [_HEADER.format(dtype=dtype), ops.NUMBA_SOURCE.replace("@njit\n", _JIT + "\n")]
    for fn in codegen.module_functions(surrogates) + codegen.module_functions(d.module):
        parts.append(codegen.function_source(fn, _JIT, wrap_floats=True))
    parts += [_forward_source(d)] + [_backward_source(d, kind) for kind in sorted(surrogates.KINDS.values())]
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
    shape = tuple(x.shape)
    spikes = buffers.empty(shape, x.dtype)
    saved = [buffers.empty(shape, x.dtype) for _ in d.saved]
    st_out = [buffers.empty(shape[1:], x.dtype) for _ in d.state]
    pp, inner = _layout(x, params)
    st_in = [_np(_flat(s.to(x.dtype), 0)) for s in state]
    _run(k.forward, x2.shape[1], _np(x2), *st_in, _np(spikes.view(T, -1)), *(_np(s.view(T, -1)) for s in saved),
         *(_np(s.view(-1)) for s in st_out), pp, inner, *(bool(f) for f in flags))
    return spikes, saved, st_out


def _grad_mode(g: Tensor | None, t_step: int, j_step: int) -> int:
    """How the backward kernel reads an output gradient: 0 absent, 1 one value, 2 one row, 3 ``[T, n]``."""
    return 0 if g is None else 3 if t_step else 2 if j_step else 1


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
    g_x = buffers.empty(tuple(ref.shape), ref.dtype)
    g_in = [buffers.empty(tuple(ref.shape[1:]), ref.dtype) for _ in d.state]
    n = g_x[0].numel()
    g_par = buffers.empty((len(d.learnable), n), ref.dtype)
    pp, inner = _layout(ref, params)
    _run(getattr(k, f"backward{int(surrogate[0])}"), n, dummy if gs is None else _np(gs), dummy if gm is None else _np(gm),
         _grad_mode(gs, gs_t, gs_j), _grad_mode(gm, gm_t, gm_j),
         *(_np(_flat(g.to(ref.dtype), 0)) for g in g_state), *(_np(_flat(s, 1)) for s in saved),
         *(_np(_flat(r.to(ref.dtype), 0)) for r in restored0), _np(g_x.view(T, -1)),
         *(_np(g.view(-1)) for g in g_in), _np(g_par), pp, inner, *(bool(f) for f in flags),
         bool(param_grads), float(surrogate[1]), float(surrogate[2]))
    partials = [g_par[i].view(g_x.shape[1:]) for i in range(len(d.learnable))]
    return g_x, g_in, partials
