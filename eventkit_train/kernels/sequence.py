"""A whole ``[T, B, ...]`` neuron sequence as one autograd node, on the backend that fits the tensors.

:func:`neuron_sequence` runs a registered definition (:mod:`eventkit_train.kernels.definition`)
through two torch custom ops, ``eventkit::neuron_forward`` and ``eventkit::neuron_backward``
(``torch.library.custom_op`` with fake implementations and ``register_autograd``), so the
node also works under ``torch.compile``. The backward recomputes spikes and earlier states
from the SAVED tensors (the forward keeps nothing else).

Backends (:func:`resolve_backend`): ``"triton"`` for CUDA tensors when Triton imports,
``"numba"`` for CPU tensors, ``"torch"`` otherwise. ``backend=`` or the environment
variable ``EVENTKIT_NEURON_BACKEND`` (``auto``, ``torch``, ``numba``, ``triton``) forces one;
``triton`` on CPU tensors needs ``TRITON_INTERPRET=1`` (Triton's interpreter, for tests).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from eventkit.errors import ParameterError

from . import layout, numba_backend, torch_backend, triton_backend
from .definition import get_definition

__all__ = ["neuron_sequence", "resolve_backend", "BACKEND_ENV", "BACKEND_NAMES"]

BACKEND_ENV = "EVENTKIT_NEURON_BACKEND"
BACKEND_NAMES = ("auto", "torch", "numba", "triton")
_MODULES = {"torch": torch_backend, "numba": numba_backend, "triton": triton_backend}


def resolve_backend(device: torch.device, requested: str | None = None) -> str:
    """The backend for tensors on ``device``: ``requested``, else ``$EVENTKIT_NEURON_BACKEND``, else automatic."""
    req = (requested or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if req not in BACKEND_NAMES:
        raise ParameterError(f"neuron backend must be one of {BACKEND_NAMES}, got {req!r} "
                             f"(from {'backend=' if requested else BACKEND_ENV})")
    if req == "auto":
        if device.type == "cuda" and triton_backend.available():
            return "triton"
        if device.type == "cpu" and numba_backend.available():
            return "numba"
        return "torch"
    if req == "numba" and (device.type != "cpu" or not numba_backend.available()):
        raise ParameterError(f"neuron backend 'numba' runs on CPU tensors only (got a {device.type} tensor)")
    if req == "triton":
        if not triton_backend.available():
            raise ParameterError("neuron backend 'triton' needs Triton: pip install 'eventkit-snn[gpu]'")
        if device.type == "cpu" and not triton_backend.interpreting():
            raise ParameterError("neuron backend 'triton' on CPU tensors needs TRITON_INTERPRET=1 "
                                 "(set before Triton is imported)")
    return req


# --------------------------------------------------------------------------- custom ops
def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _out_strides(backend: str, x: Tensor) -> tuple[int, ...]:
    """Strides of the op's ``[T, ...]`` outputs: the Numba kernels keep a dense layout (channels-last), the
    other backends work on contiguous tensors."""
    return layout.time_major_strides(x) if backend == "numba" else layout.contiguous_strides(tuple(x.shape))


@torch.library.custom_op("eventkit::neuron_forward", mutates_args=())
def _forward_op(neuron: str, backend: str, x: Tensor, state: list[Tensor], params: list[Tensor], flags: list[bool],
                surrogate: list[float]) -> list[Tensor]:
    spikes, saved, final = _MODULES[backend].forward(get_definition(neuron), x, state, params, flags)
    return [spikes, *saved, *final]


@_forward_op.register_fake
def _forward_fake(neuron, backend, x, state, params, flags, surrogate):
    d = get_definition(neuron)
    st, cd = _out_strides(backend, x), _compute_dtype(x.dtype)
    return [x.new_empty_strided(x.shape, st)] + [x.new_empty_strided(x.shape, st, dtype=cd) for _ in d.saved] + \
        [x.new_empty_strided(x.shape[1:], st[1:], dtype=cd) for _ in d.state]


@torch.library.custom_op("eventkit::neuron_backward", mutates_args=())
def _backward_op(neuron: str, backend: str, g_spikes: Tensor | None, g_membrane: Tensor | None, g_state: list[Tensor],
                 saved: list[Tensor], restored0: list[Tensor], params: list[Tensor], flags: list[bool],
                 surrogate: list[float], param_grads: bool, grad_dtype: torch.dtype) -> list[Tensor]:
    d = get_definition(neuron)
    extra = {"grad_dtype": grad_dtype} if backend == "numba" else {}
    g_x, g_in, partials = _MODULES[backend].backward(d, g_spikes, g_membrane, g_state, saved, restored0, params,
                                                     flags, surrogate, param_grads, **extra)
    grads = [torch_backend.reduce_param_grad(p, params[d.params.index(name)])
             for p, name in zip(partials, d.learnable, strict=True)]
    return [g_x, *g_in, *grads]


@_backward_op.register_fake
def _backward_fake(neuron, backend, g_spikes, g_membrane, g_state, saved, restored0, params, flags, surrogate,
                   param_grads, grad_dtype):
    d = get_definition(neuron)
    ref = saved[0]
    st = tuple(ref.stride())
    return [ref.new_empty_strided(ref.shape, st, dtype=grad_dtype)] + \
        [ref.new_empty_strided(ref.shape[1:], st[1:]) for _ in d.state] + \
        [params[d.params.index(name)].new_empty(params[d.params.index(name)].shape) for name in d.learnable]


def _setup_context(ctx: Any, inputs: tuple, output: list[Tensor]) -> None:
    neuron, backend, x, state, params, flags, surrogate = inputs
    d = get_definition(neuron)
    saved = output[1:1 + len(d.saved)]
    restored0 = [state[d.state.index(r)] for r in d.restored]
    ctx.save_for_backward(*saved, *restored0, *params)
    ctx.meta = (neuron, backend, list(flags), list(surrogate), len(saved), len(restored0),
                [p.requires_grad for p in params], x.dtype)
    ctx.set_materialize_grads(False)


def _backward(ctx: Any, grads: list[Tensor | None]):
    neuron, backend, flags, surrogate, n_saved, n_restored, wants, x_dtype = ctx.meta
    d = get_definition(neuron)
    tensors = ctx.saved_tensors
    saved = list(tensors[:n_saved])
    restored0 = list(tensors[n_saved:n_saved + n_restored])
    params = list(tensors[n_saved + n_restored:])
    g_spikes, g_membrane = grads[0], grads[1]
    g_state = list(grads[1 + n_saved:])
    none_params = [None] * len(params)
    if g_spikes is None and g_membrane is None and all(g is None for g in g_state):
        return None, None, None, [None] * len(d.state), none_params, None, None
    zero = torch.zeros_like(saved[0][0]) if any(g is None for g in g_state) else None
    g_state = [zero if g is None else g for g in g_state]
    learn = [wants[d.params.index(name)] for name in d.learnable]
    out = _backward_op(neuron, backend, g_spikes, g_membrane, g_state, saved, restored0, params, flags, surrogate,
                       any(learn), x_dtype)
    S = len(d.state)
    g_params: list[Tensor | None] = list(none_params)
    for i, name in enumerate(d.learnable):
        if learn[i]:
            g_params[d.params.index(name)] = out[1 + S + i]
    return None, None, out[0], list(out[1:1 + S]), g_params, None, None


_forward_op.register_autograd(_backward, setup_context=_setup_context)


# --------------------------------------------------------------------------- public entry point
def neuron_sequence(neuron: str, x: Tensor, state: Sequence[Tensor], params: Sequence[float | Tensor],
                    flags: Sequence[bool], surrogate: Any, *,
                    backend: str | None = None) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """Run definition ``neuron`` over ``x [T, B, ...]`` as one autograd node.

    ``x``: float32 or float64, or bfloat16 (autocast), which is computed in float32 (the Numba
    kernels read and write bf16 directly; the other backends get a float32 copy). ``state``:
    the initial STATE tensors ``[B, ...]``; ``params``: floats, 0-d tensors or per-channel
    vectors ``[C]`` (channel = dimension 2 of ``x``), in PARAMS order; ``flags`` in FLAGS
    order; ``surrogate``: a :class:`~eventkit_train.surrogate.Surrogate` (its ``kernel_spec()``
    names the derivative). Returns ``(spikes [T, B, ...] in x's dtype, SAVED tensors [T, B, ...]
    (SAVED[0] is the membrane), final STATE [B, ...])``, SAVED and STATE in the compute dtype
    (float64 for float64, else float32); on the Numba backend the outputs keep ``x``'s memory
    layout when it is dense with time outermost (``channels_last`` activations). Gradients reach
    ``x``, ``state`` and the LEARNABLE parameters that require them.
    """
    d = get_definition(neuron)
    if x.dtype not in (torch.float32, torch.float64, torch.bfloat16):
        raise ParameterError(f"neuron_sequence({neuron!r}): x must be float32 or float64 (or bfloat16, computed in "
                             f"float32), got {x.dtype}")
    if len(state) != len(d.state) or len(params) != len(d.params) or len(flags) != len(d.flags):
        raise ParameterError(f"neuron_sequence({neuron!r}): expected {len(d.state)} state tensors {d.state}, "
                             f"{len(d.params)} parameters {d.params} and {len(d.flags)} flags {d.flags}")
    be = resolve_backend(x.device, backend)
    cd = _compute_dtype(x.dtype)
    xin = x if be == "numba" else x.to(cd).contiguous()
    st = [s.to(cd).expand(x.shape[1:]) for s in state]
    if be != "numba":
        st = [s.contiguous() for s in st]
    ps = [p.to(cd) if isinstance(p, Tensor) else torch.full((), float(p), dtype=cd, device=x.device)
          for p in params]
    for name, p in zip(d.params, ps, strict=True):
        if p.dim() > 1 or (p.dim() == 1 and (x.dim() < 3 or p.shape[0] != x.shape[2])):
            raise ParameterError(f"neuron_sequence({neuron!r}): parameter {name} must be a scalar or a vector over "
                                 f"dimension 2 of x {tuple(x.shape)}, got shape {tuple(p.shape)}")
    kind, a, b = surrogate.kernel_spec()
    out = _forward_op(d.name, be, xin, st, ps, [bool(f) for f in flags], [float(kind), float(a), float(b)])
    n_saved = len(d.saved)
    return out[0].to(x.dtype), list(out[1:1 + n_saved]), list(out[1 + n_saved:])
