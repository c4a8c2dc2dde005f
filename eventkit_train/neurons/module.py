"""The thin ``nn.Module`` base shared by every neuron: validate, build params, run, return.

A module whose class names a kernel ``definition`` runs the whole sequence as one autograd
node (:func:`eventkit_train.kernels.neuron_sequence`: Numba on the CPU, Triton on CUDA,
torch elsewhere) whenever its surrogate is a :class:`~eventkit_train.surrogate.Surrogate`
with a step forward; a smooth-forward surrogate (``smooth=True``, for gradcheck) or a plain
callable keeps the step-by-step path (:func:`~eventkit_train.neurons.base.scan` over the
public ``*_step`` function, or autograd through the definition's own step where a neuron has
no separate one), which is also the reference the fused path is tested against.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from eventkit_train.kernels import get_definition, neuron_sequence
from eventkit_train.kernels.autograd_reference import definition_scan
from eventkit_train.surrogate import Surrogate, get_surrogate

from .base import ScanResult, check_sequence, compute_dtype, no_autocast, scan

__all__ = ["NeuronModule"]


class NeuronModule(nn.Module):
    """Base of the neuron modules. ``forward(x [T, B, ...], state=None)`` → spikes ``[T, B, ...]``
    (and the membrane trace ``[T, B, ...]`` when ``return_membrane``). No state is kept between
    calls: the initial state is built from ``x`` on every call unless passed explicitly.

    ``backend`` (attribute, default None): force the fused path's backend (``"torch"``,
    ``"numba"``, ``"triton"``); None chooses by device (or ``$EVENTKIT_NEURON_BACKEND``).
    """

    min_dim: int = 2
    #: name of the kernel definition (eventkit_train.kernels.definition) of this neuron, None: step path only
    definition: str | None = None
    backend: str | None = None

    def __init__(self, surrogate: Any = "arctan", return_membrane: bool = False) -> None:
        super().__init__()
        self.surrogate: Callable[[Tensor], Tensor] = get_surrogate(surrogate)
        self.return_membrane = bool(return_membrane)

    # subclasses implement these three (and fused_args when they name a definition)
    def make_params(self, x: Tensor) -> Any:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} must implement make_params")

    def initial_state(self, x: Tensor) -> Any:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} must implement initial_state")

    def fused_args(self, x: Tensor) -> tuple[list, list[bool]]:  # pragma: no cover - abstract
        """The definition's PARAMS (floats or tensors in ``x``'s compute dtype) and FLAGS."""
        raise TypeError(f"{type(self).__name__} must implement fused_args")

    #: the separately written step ``(x_t, state, params) -> (spike, membrane, state)``; None: autograd
    #: through the definition's own step is the step path
    step_fn: Callable[..., tuple[Tensor, Tensor, Any]] | None

    def check_input(self, x: Tensor) -> None:
        check_sequence(x, type(self).__name__, self.min_dim)

    def uses_fused_path(self) -> bool:
        """True when forward runs the whole sequence as one autograd node."""
        s = self.surrogate
        return self.definition is not None and isinstance(s, Surrogate) and not s.smooth_forward

    def forward_with_state(self, x: Tensor, state: Any = None, *, return_membrane: bool | None = None) -> ScanResult:
        """Run the sequence and return :class:`~eventkit_train.neurons.base.ScanResult`
        (spikes, membrane or None, final state) — use it to carry the state across chunks."""
        self.check_input(x)
        if state is None:
            state = self.initial_state(x)
        want = self.return_membrane if return_membrane is None else bool(return_membrane)
        step = type(self).step_fn
        fused = self.uses_fused_path()
        if not fused and step is not None:
            return scan(step, x, state, self.make_params(x), return_membrane=want)
        # the fused node takes bfloat16 as it is (computed in float32; the CPU kernels read and write it directly)
        xc = x if fused and x.dtype == torch.bfloat16 else x.to(compute_dtype(x))
        with no_autocast(x.device.type):
            if fused:
                spikes, saved, final = self.run_fused(xc, list(state))
            else:  # no separately written step: autograd through the definition's own step
                params, flags = self.fused_args(xc)
                spikes, saved, final = definition_scan(get_definition(self.definition), xc,  # type: ignore[arg-type]
                                                       list(state), params, flags, self.surrogate)
        return ScanResult(spikes.to(x.dtype), saved[0] if want else None, type(state)(*final))

    def run_fused(self, x: Tensor, state: list[Tensor]) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """The fused node on ``x`` (compute dtype, or bfloat16): ``(spikes, SAVED, final STATE)``."""
        params, flags = self.fused_args(x)
        return neuron_sequence(self.definition, x, state, params, flags, self.surrogate,  # type: ignore[arg-type]
                               backend=self.backend)

    def forward(self, x: Tensor, state: Any = None) -> Tensor | tuple[Tensor, Tensor]:
        res = self.forward_with_state(x, state)
        if self.return_membrane:
            return res.spikes, res.membrane  # type: ignore[return-value]
        return res.spikes

    @staticmethod
    def _zeros(x: Tensor, fill: float = 0.0) -> Tensor:
        """``[B, ...]`` filled with ``fill`` in the compute dtype, laid out as ``x[0]`` (channels-last stays so)."""
        return torch.full_like(x[0], fill, dtype=compute_dtype(x))
