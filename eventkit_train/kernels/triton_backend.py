"""The GPU backend: Triton kernels generated from a neuron definition.

One program per block of neurons loops over T (forward) or over T in reverse (backward),
the state in registers. Flags, the surrogate kind, ``param_grads`` and the presence of the
output gradients are ``tl.constexpr`` (each combination compiles once). Parameters (and the
surrogate widths) are read from one ``[P, C]`` tensor in the compute dtype, so float64 stays
float64. Used automatically for CUDA tensors when Triton imports; on the CPU it runs through
Triton's interpreter (``TRITON_INTERPRET=1``, set before Triton is imported), which is how
the tests check it without a GPU.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor

from . import codegen, ops, surrogates
from .codegen import kernel_names
from .definition import NeuronDefinition
from .torch_backend import grad_layout

__all__ = ["forward", "backward", "available", "interpreting", "kernels"]

_HEADER = """# Generated from a neuron definition by eventkit_train.kernels.triton_backend; do not edit.
import triton
import triton.language as tl
"""


def available() -> bool:
    """True when Triton imports."""
    try:
        import triton  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "no Triton"
        return False
    return True


def interpreting() -> bool:
    """True when Triton runs kernels through its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _prologue(P: int, extra_rows: int = 0) -> list[str]:
    lines = ["    pid = tl.program_id(0)", "    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)",
             "    mask = offs < n", "    c = (offs // inner) % C"]  # a valid channel for every lane, masked or not
    lines += [f"    p{i} = tl.load(params + {i} * C + c)" for i in range(P + extra_rows)]
    return lines


def _forward_source(d: NeuronDefinition) -> str:
    k = kernel_names(d)
    P, st_in, st_out, sv, st, fl, svv, pv = k.P, k.st_in, k.st_out, k.sv, k.st, k.fl, k.svv, k.pv
    args = ["x", *st_in, "spikes", *sv, *st_out, "params", "T", "n", "C", "inner",
            *(f"{f}: tl.constexpr" for f in fl), "BLOCK: tl.constexpr"]
    lines = ["@triton.jit", f"def forward({', '.join(args)}):", *_prologue(P)]
    lines += [f"    {s} = tl.load({si} + offs, mask=mask, other=0.0)" for s, si in zip(st, st_in, strict=True)]
    lines += ["    xp = x + offs", "    sp = spikes + offs"] + [f"    {a}p = {a} + offs" for a in sv]
    lines += ["    for t in range(T):", "        x_t = tl.load(xp, mask=mask, other=0.0)",
              f"        s_, {', '.join(svv + st)} = step(x_t, {', '.join(st + pv + fl)})",
              "        tl.store(sp, s_, mask=mask)"]
    lines += [f"        tl.store({a}p, {b}, mask=mask)" for a, b in zip(sv, svv, strict=True)]
    lines += ["        xp += n", "        sp += n"] + [f"        {a}p += n" for a in sv]
    lines += [f"    tl.store({so} + offs, {s}, mask=mask)" for so, s in zip(st_out, st, strict=True)]
    return "\n".join(lines) + "\n"


def _backward_source(d: NeuronDefinition) -> str:
    k = kernel_names(d)
    R, P, g_out, g_in, g, sv, r_in, r, fl, acc, lv, pv = (k.R, k.P, k.g_out, k.g_in, k.g, k.sv, k.r_in, k.r, k.fl,
                                                         k.acc, k.lv, k.pv)
    args = ["g_spikes", "g_membrane", *g_out, *sv, *r_in, "g_x", *g_in, "g_par", "params", "T", "n", "C", "inner",
            *(f"{f}: tl.constexpr" for f in fl), "HAS_GS: tl.constexpr", "HAS_GM: tl.constexpr",
            "GS_T: tl.constexpr", "GS_J: tl.constexpr", "GM_T: tl.constexpr", "GM_J: tl.constexpr",
            "PARAM_GRADS: tl.constexpr", "SK: tl.constexpr", "BLOCK: tl.constexpr"]
    lines = ["@triton.jit", f"def backward({', '.join(args)}):", *_prologue(P, extra_rows=2)]
    lines += [f"    {a} = tl.load({b} + offs, mask=mask, other=0.0)" for a, b in zip(g, g_out, strict=True)]
    lines += [f"    {a}0 = tl.load({b} + offs, mask=mask, other=0.0)" for a, b in zip(r, r_in, strict=True)]
    lines += ["    last = (T - 1).to(tl.int64) * n"] + [f"    {a}p = {a} + offs + last" for a in sv]
    lines += ["    gsp = g_spikes + offs * GS_J + last * GS_T", "    gmp = g_membrane + offs * GM_J + last * GM_T",
              "    gxp = g_x + offs + last"]
    lines += [f"    {a} = tl.zeros([BLOCK], dtype=g_x.dtype.element_ty)" for a in acc]
    lines += ["    for tt in range(T):", "        t = T - 1 - tt"]
    if R:
        lines += ["        has_prev = mask & ((offs * 0 + t) > 0)"]
        prev = ", ".join(f"tl.load({s}p - n, mask=has_prev, other=0.0)" for s in sv)
        lines += [f"        {', '.join(r)} = restore({prev}, {', '.join(pv + fl)})"]
        lines += [f"        {a} = tl.where(has_prev, {a}, {a}0)" for a in r]
    lines += ["        if HAS_GS:", "            gs_ = tl.load(gsp, mask=mask, other=0.0)", "        else:",
              "            gs_ = tl.zeros_like(g0)", "        if HAS_GM:",
              "            gm_ = tl.load(gmp, mask=mask, other=0.0)", "        else:",
              "            gm_ = tl.zeros_like(g0)"]
    cur = [f"tl.load({s}p, mask=mask, other=0.0)" for s in sv]
    call_args = ["gs_", "gm_", *g, *cur, *r, *pv, *fl, "PARAM_GRADS", "SK", f"p{P}", f"p{P + 1}"]
    lines += [f"        {', '.join(['gx_', *g, *lv])} = step_vjp({', '.join(call_args)})",
              "        tl.store(gxp, gx_, mask=mask)"]
    lines += [f"        {a} += {b}" for a, b in zip(acc, lv, strict=True)]
    lines += ["        gsp -= n * GS_T", "        gmp -= n * GM_T", "        gxp -= n"]
    lines += [f"        {a}p -= n" for a in sv]
    lines += [f"    tl.store({a} + offs, {b}, mask=mask)" for a, b in zip(g_in, g, strict=True)]
    lines += [f"    tl.store(g_par + {i} * n + offs, {a}, mask=mask)" for i, a in enumerate(acc)]
    return "\n".join(lines) + "\n"


def module_source(d: NeuronDefinition) -> list[str]:
    parts = [_HEADER, ops.TRITON_SOURCE]
    for fn in codegen.module_functions(surrogates) + codegen.module_functions(d.module):
        parts.append(codegen.function_source(fn, "@triton.jit", wrap_floats=False))
    parts += [_forward_source(d), _backward_source(d)]
    return parts


_KERNELS: dict[tuple[str, bool], object] = {}


def kernels(d: NeuronDefinition):
    """The generated module (``forward``, ``backward``) of ``d``."""
    key = (d.name, interpreting())
    if key not in _KERNELS:
        stem = f"{d.name}_triton_interpreter" if key[1] else f"{d.name}_triton"
        _KERNELS[key] = codegen.write_and_import(stem, module_source(d))
    return _KERNELS[key]


def _block(n: int) -> int:
    """Neurons per program: 1024 for large layers; the smallest power of two >= n (>= 16) for small ones."""
    b = 16
    while b < n and b < 1024:
        b *= 2
    return b


def _params(ref: Tensor, params: Sequence[Tensor], extra: Sequence[float] = ()) -> tuple[Tensor, int, int]:
    """``[P (+ extra), C]`` parameter table in ``ref``'s dtype and device, ``C``, channel stride ``inner``."""
    C = max([p.shape[0] for p in params if p.dim() == 1], default=1)
    inner = 1
    for s in ref.shape[3:]:
        inner *= s
    rows = [p.to(ref.dtype).expand(C) for p in params]
    rows += [torch.full((C,), float(v), dtype=ref.dtype, device=ref.device) for v in extra]
    table = torch.stack(rows).contiguous() if rows else torch.zeros((1, C), dtype=ref.dtype, device=ref.device)
    return table, C, inner


def forward(d: NeuronDefinition, x: Tensor, state: Sequence[Tensor], params: Sequence[Tensor],
            flags: Sequence[bool]) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """As :func:`eventkit_train.kernels.torch_backend.forward` (float32 / float64 tensors)."""
    k = kernels(d)
    x = x.contiguous()
    T, n = x.shape[0], x[0].numel()
    spikes = torch.empty_like(x)
    saved = [torch.empty_like(x) for _ in d.saved]
    st_out = [torch.empty_like(x[0]) for _ in d.state]
    if n == 0:
        return spikes, saved, st_out
    table, C, inner = _params(x, params)
    block = _block(n)
    grid = (triton_cdiv(n, block),)
    k.forward[grid](x, *(s.to(x.dtype).contiguous() for s in state), spikes, *saved, *st_out, table, T, n, C, inner,
                    *(bool(f) for f in flags), BLOCK=block)
    return spikes, saved, st_out


def backward(d: NeuronDefinition, g_spikes: Tensor | None, g_membrane: Tensor | None, g_state: Sequence[Tensor],
             saved: Sequence[Tensor], restored0: Sequence[Tensor], params: Sequence[Tensor], flags: Sequence[bool],
             surrogate: Sequence[float], param_grads: bool) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """As :func:`eventkit_train.kernels.torch_backend.backward` (float32 / float64 tensors)."""
    k = kernels(d)
    ref = saved[0]
    T, n = ref.shape[0], ref[0].numel()
    g_x = torch.empty_like(ref)
    g_in = [torch.empty_like(ref[0]) for _ in d.state]
    g_par = torch.empty((max(len(d.learnable), 1), n), dtype=ref.dtype, device=ref.device)
    if n == 0:
        return g_x, g_in, [g_par[i].view(ref.shape[1:]) for i in range(len(d.learnable))]
    table, C, inner = _params(ref, params, extra=(surrogate[1], surrogate[2]))
    gs, gs_t, gs_j = grad_layout(g_spikes, ref)
    gm, gm_t, gm_j = grad_layout(g_membrane, ref)
    block = _block(n)
    grid = (triton_cdiv(n, block),)
    k.backward[grid](ref if gs is None else gs, ref if gm is None else gm,
                     *(g.to(ref.dtype).contiguous() for g in g_state), *(s.contiguous() for s in saved),
                     *(r.to(ref.dtype).contiguous() for r in restored0), g_x, *g_in, g_par, table, T, n, C, inner,
                     *(bool(f) for f in flags), HAS_GS=gs is not None, HAS_GM=gm is not None,
                     GS_T=gs_t, GS_J=gs_j, GM_T=gm_t, GM_J=gm_j,
                     PARAM_GRADS=bool(param_grads), SK=int(surrogate[0]), BLOCK=block)
    partials = [g_par[i].view(ref.shape[1:]) for i in range(len(d.learnable))]
    return g_x, g_in, partials


def triton_cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b
