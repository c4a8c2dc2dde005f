"""Source of the Numba kernel module generated from a neuron definition (used by :mod:`.numba_backend`).

The module holds, in order: the math names of :data:`eventkit_train.kernels.ops.NUMBA_SOURCE`,
the element loads and stores of :data:`IO_SOURCE`, the surrogate derivatives and the
definition's functions (float literals typed as the kernel's float ``F``), then the drivers
``forward`` and ``backward0`` … ``backward4`` (one per surrogate kind). Each driver takes a
range of neuron blocks ``b0..b1`` and arrays ``[T, n]`` laid out as the tensors are in
memory (:mod:`.layout`); the loop over the neurons of a block is innermost and runs over
unit-stride rows, so that LLVM vectorises it.

Inputs and outputs may be bfloat16 tensors (viewed as ``int16`` arrays): ``_ld`` widens an
element to ``F`` and ``_put`` rounds ``F`` to bfloat16 (to nearest even, as torch), so bf16
activations under autocast need no float32 copies; states and saved tensors stay ``F``.
"""
from __future__ import annotations

from . import codegen, ops, surrogates
from .codegen import kernel_names
from .definition import NeuronDefinition

__all__ = ["module_source", "BLOCK"]

_HEADER = """# Generated from a neuron definition by eventkit_train.kernels.numba_source; do not edit.
import math

import numpy as np
from numba import njit
from numba.extending import overload as _overload

F = np.{dtype}
"""

IO_SOURCE = '''
@_intrinsic
def _as_bits(typingctx, value):
    """Reinterpret float32 / float64 as int32 / int64 bits."""
    if value == _types.float32:
        return _types.int32(value), lambda ctx, builder, sig, args: builder.bitcast(args[0], _ir.IntType(32))
    if value == _types.float64:
        return _types.int64(value), lambda ctx, builder, sig, args: builder.bitcast(args[0], _ir.IntType(64))
    return None


@njit
def _bf16(v):
    u = np.int64(_as_bits(np.float32(v))) & 0xFFFFFFFF
    return np.int16(0x7FC0) if v != v else np.int16((u + ((u >> 16) & 1) + 0x7FFF) >> 16)


def _ld(v):
    return v


@_overload(_ld, jit_options={"error_model": "numpy"})
def _ld_typed(v):
    if isinstance(v, _types.Integer):  # bfloat16 bits
        return lambda v: F(_as_float(np.int32(np.int64(v) << 16)))
    return lambda v: v


def _put(a, i, v):
    a[i] = v


@_overload(_put, jit_options={"error_model": "numpy"})
def _put_typed(a, i, v):
    if isinstance(a.dtype, _types.Integer):  # bfloat16 bits
        def put_bf16(a, i, v):
            a[i] = _bf16(v)
        return put_bf16

    def put(a, i, v):
        a[i] = v
    return put
'''


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
    lines += ["        for jj in range(m):"]
    lines += [f"            {s}[jj] = {si}[j0 + jj]" for s, si in zip(st, st_in, strict=True)]
    lines += ["        for t in range(T):", "            x_t = x[t, j0:j0 + m]",
              "            sp_t = spikes[t, j0:j0 + m]"]
    lines += [f"            {a}_t = {a}[t, j0:j0 + m]" for a in sv]
    lines += ["            for jj in range(m):",
              f"                s_, {', '.join(svv + stv)} = step(_ld(x_t[jj]), "
              f"{', '.join([f'{s}[jj]' for s in st] + pv + fl)})",
              "                _put(sp_t, jj, s_)"]
    lines += [f"                {a}_t[jj] = {b}" for a, b in zip(sv, svv, strict=True)]
    lines += [f"                {a}[jj] = {b}" for a, b in zip(st, stv, strict=True)]
    lines += ["        for jj in range(m):"]
    lines += [f"            {so}[j0 + jj] = {s}[jj]" for so, s in zip(st_out, st, strict=True)]
    return "\n".join(lines) + "\n"


def _grad_rows(name: str, mode: str, src: str) -> list[str]:
    """A broadcast output gradient (mode 1: one value, 2: one row) loaded once per block into ``name``."""
    return [f"        if {mode} == 1:", "            for jj in range(m):",
            f"                {name}[jj] = _ld({src}[0, 0])",
            f"        elif {mode} == 2:", "            for jj in range(m):",
            f"                {name}[jj] = _ld({src}[0, j0 + jj])"]


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
    lines += ["        for jj in range(m):"]
    lines += [f"            {a}[jj] = {b}[j0 + jj]" for a, b in zip(g, g_out, strict=True)]
    lines += [f"            {a}[jj] = F(0.0)" for a in acc]
    lines += ["        for tt in range(T):", "            t = T - 1 - tt"]
    if R:
        lines += ["            if t > 0:"] + [f"                {s}_p = {s}[t - 1, j0:j0 + m]" for s in sv]
        lines += ["                for jj in range(m):",
                  f"                    {', '.join(f'{a}_' for a in r)} = restore("
                  f"{', '.join([f'{s}_p[jj]' for s in sv] + pv + fl)})"]
        lines += [f"                    {a}[jj] = {a}_" for a in r]
        lines += ["            else:", "                for jj in range(m):"]
        lines += [f"                    {a}[jj] = {b}[j0 + jj]" for a, b in zip(r, r_in, strict=True)]
    for name, mode, src in (("gs_b", "gs_mode", "g_spikes"), ("gm_b", "gm_mode", "g_membrane")):
        lines += [f"            if {mode} == 3:", f"                {src}_t = {src}[t, j0:j0 + m]",
                  "                for jj in range(m):", f"                    {name}[jj] = _ld({src}_t[jj])"]
    lines += ["            gx_t = g_x[t, j0:j0 + m]"]
    lines += [f"            {s}_t = {s}[t, j0:j0 + m]" for s in sv]
    call_args = ["gs_b[jj]", "gm_b[jj]", *[f"{a}[jj]" for a in g], *[f"{s}_t[jj]" for s in sv],
                 *[f"{a}[jj]" for a in r], *pv, *fl, "param_grads", str(kind), "a_", "b_"]
    lines += ["            for jj in range(m):",
              f"                {', '.join(['gx_', *gv, *lv])} = step_vjp({', '.join(call_args)})",
              "                _put(gx_t, jj, gx_)"]
    lines += [f"                {a}[jj] = {b}" for a, b in zip(g, gv, strict=True)]
    lines += [f"                {a}[jj] += {b}" for a, b in zip(acc, lv, strict=True)]
    lines += ["        for jj in range(m):"]
    lines += [f"            {a}[j0 + jj] = {b}[jj]" for a, b in zip(g_in, g, strict=True)]
    lines += [f"            g_par[{i}, j0 + jj] = {a}[jj]" for i, a in enumerate(acc)]
    return "\n".join(lines) + "\n"


def module_source(d: NeuronDefinition, dtype: str) -> list[str]:
    """The parts of the generated module for ``dtype`` ("float32" or "float64")."""
    parts = [_HEADER.format(dtype=dtype), (ops.NUMBA_SOURCE + IO_SOURCE).replace("@njit\n", _JIT + "\n")]
    for fn in codegen.module_functions(surrogates) + codegen.module_functions(d.module):
        parts.append(codegen.function_source(fn, _JIT, wrap_floats=True))
    parts += [_forward_source(d)] + [_backward_source(d, kind) for kind in sorted(surrogates.KINDS.values())]
    return parts
