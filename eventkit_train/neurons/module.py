"""The thin ``nn.Module`` base shared by every neuron: validate, build params, scan, return."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from eventkit_train.surrogate import get_surrogate

from .base import ScanResult, check_sequence, compute_dtype, scan

__all__ = ["NeuronModule"]


class NeuronModule(nn.Module):
    """Base of the neuron modules. ``forward(x [T, B, ...], state=None)`` → spikes ``[T, B, ...]``
    (and the membrane trace ``[T, B, ...]`` when ``return_membrane``). No state is kept between
    calls: the initial state is built from ``x`` on every call unless passed explicitly.
    """

    min_dim: int = 2

    def __init__(self, surrogate: Any = "arctan", return_membrane: bool = False) -> None:
        super().__init__()
        self.surrogate: Callable[[Tensor], Tensor] = get_surrogate(surrogate)
        self.return_membrane = bool(return_membrane)

    # subclasses implement these three
    def make_params(self, x: Tensor) -> Any:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} must implement make_params")

    def initial_state(self, x: Tensor) -> Any:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} must implement initial_state")

    step_fn: Callable[..., tuple[Tensor, Tensor, Any]]

    def check_input(self, x: Tensor) -> None:
        check_sequence(x, type(self).__name__, self.min_dim)

    def forward_with_state(self, x: Tensor, state: Any = None, *, return_membrane: bool | None = None) -> ScanResult:
        """Run the sequence and return :class:`~eventkit_train.neurons.base.ScanResult`
        (spikes, membrane or None, final state) — use it to carry the state across chunks."""
        self.check_input(x)
        if state is None:
            state = self.initial_state(x)
        want = self.return_membrane if return_membrane is None else bool(return_membrane)
        return scan(type(self).step_fn, x, state, self.make_params(x), return_membrane=want)

    def forward(self, x: Tensor, state: Any = None) -> Tensor | tuple[Tensor, Tensor]:
        res = self.forward_with_state(x, state)
        if self.return_membrane:
            return res.spikes, res.membrane  # type: ignore[return-value]
        return res.spikes

    @staticmethod
    def _zeros(x: Tensor, fill: float = 0.0) -> Tensor:
        return torch.full(x.shape[1:], fill, dtype=compute_dtype(x), device=x.device)
