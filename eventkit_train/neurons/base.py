"""Shared machinery of the neurons: the scan helper, reset helpers, dtype/validation helpers.

A neuron is a pure step ``(x_t, state, params) -> (spike_t, membrane_t, new_state)``
(the public ``<name>_step`` drops ``membrane_t``). :func:`scan` lifts such a step over the
leading time axis of ``x [T, B, ...]``: one Python loop, one ``torch.stack`` at the end,
nothing else per step.

Precision / AMP: the state is computed in float32 for half and bfloat16 inputs (and in the
input's dtype for float32 / float64), with autocast disabled inside the scan so that a
recurrent matmul is not silently cast down. Spikes come back in the input's dtype (0/1 are
exact in any float dtype); membrane traces come back in the compute dtype.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, NamedTuple

import torch
from torch import Tensor

from eventkit.errors import ParameterError

__all__ = ["scan", "hard_reset", "soft_reset", "compute_dtype", "check_sequence", "parse_reset", "ScanResult",
           "no_autocast"]

StepFn = Callable[[Tensor, Any, Any], "tuple[Tensor, Tensor, Any]"]


class ScanResult(NamedTuple):
    """Output of :func:`scan`: spikes ``[T, B, ...]``, membranes ``[T, B, ...]`` or None, final state."""

    spikes: Tensor
    membrane: Tensor | None
    state: Any


def compute_dtype(x: Tensor) -> torch.dtype:
    """float64 stays float64; every other float dtype (float32, float16, bfloat16) computes in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def check_sequence(x: Tensor, who: str, min_dim: int = 2) -> None:
    """Raise :class:`ParameterError` unless ``x`` is a floating tensor ``[T, B, ...]`` with T >= 1."""
    if not isinstance(x, Tensor):
        raise ParameterError(f"{who}: input must be a torch.Tensor [T, B, ...], got {type(x).__name__}")
    if x.dim() < min_dim:
        raise ParameterError(
            f"{who}: input must have at least {min_dim} dimensions [T, B, ...] (time first), got shape {tuple(x.shape)}"
        )
    if x.shape[0] < 1:
        raise ParameterError(f"{who}: input has T = 0 time steps (shape {tuple(x.shape)})")
    if not torch.is_floating_point(x):
        raise ParameterError(
            f"{who}: input must be a floating tensor, got {x.dtype}; convert frames with .float() on the device"
        )


def parse_reset(reset: str, v_reset: float | None, who: str) -> tuple[bool, float]:
    """(soft, v_reset_value): ``v_reset=None`` forces the soft reset; the leak target is v_reset or 0."""
    if reset not in ("hard", "soft"):
        raise ParameterError(f"{who}: reset must be 'hard' or 'soft', got {reset!r}")
    soft = reset == "soft" or v_reset is None
    return soft, (0.0 if v_reset is None else float(v_reset))


def hard_reset(h: Tensor, s: Tensor, v_reset: float | Tensor) -> Tensor:
    """``V = H(1 - S) + V_reset·S`` (Fang et al. 2021, eq. 4)."""
    if isinstance(v_reset, (int, float)) and v_reset == 0:
        return h * (1.0 - s)  # the same values and gradients without the V_reset·S pass
    return h * (1.0 - s) + v_reset * s


def soft_reset(h: Tensor, s: Tensor, v_threshold: float | Tensor) -> Tensor:
    """``V = H - V_th·S`` (reset by subtraction)."""
    return h - v_threshold * s


def no_autocast(device_type: str):
    """A context that disables autocast on ``device_type`` when it is on (else does nothing)."""
    try:
        enabled = torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        enabled = torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled()
    return torch.autocast(device_type=device_type, enabled=False) if enabled else nullcontext()


def scan(step: StepFn, x: Tensor, state: Any, params: Any, *, return_membrane: bool = False) -> ScanResult:
    """Run ``step`` over ``x [T, B, ...]`` (time first) from ``state``.

    ``step(x_t, state, params) -> (spike_t, membrane_t, new_state)``. ``x`` is cast to the
    compute dtype (:func:`compute_dtype`) once; autocast is disabled inside the loop.
    Returns spikes in ``x``'s dtype, membranes (if asked) in the compute dtype, final state.
    """
    out_dtype = x.dtype
    xc = x.to(compute_dtype(x))
    ctx = no_autocast(x.device.type)
    spikes: list[Tensor] = []
    membranes: list[Tensor] = []
    with ctx:
        # unbind: one backward node for all steps (indexing xc[t] per step would make the
        # backward add a full [T, B, ...] zero-padded gradient per step: O(T^2) traffic)
        for x_t in xc.unbind(0):
            s, m, state = step(x_t, state, params)
            spikes.append(s)
            if return_membrane:
                membranes.append(m)
    spk = torch.stack(spikes).to(out_dtype)
    mem = torch.stack(membranes) if return_membrane else None
    return ScanResult(spk, mem, state)
