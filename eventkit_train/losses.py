"""Classification losses on spiking outputs ``[T, B, C]`` with integer targets ``[B]``.

Every loss takes an optional ``mask [T, B]`` (bool, True = valid step) for variable-length
input: invalid steps are ignored (spikes zeroed, steps left out of every time average and
of the max over time). Each returns the mean over the batch by default
(``reduction="mean" | "sum" | "none"``; ``"none"`` gives ``[B]``).

=================== ========= =====================================================================
name                input     loss per sample (``r_i = (1/T) Σ_t s_{t,i}``, ``c_i = Σ_t s_{t,i}``)
=================== ========= =====================================================================
``rate_mse``        spikes    ``(1/C) Σ_i (r_i - y_i)²`` (Fang et al. 2021, Sect. 3.7, y one-hot)
``rate_ce``         spikes    ``-log softmax(r / temperature)_y``
``max_over_time_ce`` membrane ``-log softmax(max_t U_{t,i})_y`` (Bouanane et al. 2023, eq. 13)
``spike_rate``      spikes    ``(1/C) Σ_i (r_i - r̂_i)²``, r̂ = true_rate / false_rate (Shrestha et al. 2022, eq. 4)
``spikemax``        spikes    ``(1/T) Σ_t -log p_y(t)``, ``p_i(t) = c_i(t)/Σ_j c_j(t)`` over a window (eqs. 5, 6, 8)
``spikemax_g``      spikes    ``-log(c_y / Σ_j c_j)`` (eqs. 7, 12)
``spikemax_s``      spikes    ``-log softmax(c)_y`` (eqs. 13, 14)
=================== ========= =====================================================================

:data:`LOSS_INPUT` says which output each loss consumes (``"spikes"`` or ``"membrane"``);
:func:`get_loss` maps a name to the function.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from eventkit.errors import ParameterError

__all__ = [
    "rate_mse", "rate_ce", "max_over_time_ce", "spike_rate", "spikemax", "spikemax_g", "spikemax_s",
    "get_loss", "LOSSES", "LOSS_INPUT",
]

_REDUCTIONS = ("mean", "sum", "none")


# --------------------------------------------------------------------------- helpers
def _check(x: Tensor, target: Tensor, mask: Tensor | None, who: str, reduction: str) -> Tensor | None:
    if not isinstance(x, Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ParameterError(f"{who}: output must be a tensor [T, B, C] (time first), got {shape}")
    if not torch.is_floating_point(x):
        raise ParameterError(f"{who}: output must be a floating tensor, got {x.dtype}")
    T, B, C = x.shape
    if T < 1 or C < 1:
        raise ParameterError(f"{who}: output [T, B, C] = {tuple(x.shape)} has no time steps or no classes")
    if (not isinstance(target, Tensor) or target.shape != (B,) or torch.is_floating_point(target)
            or target.dtype == torch.bool):
        got = (tuple(target.shape), target.dtype) if isinstance(target, Tensor) else type(target).__name__
        raise ParameterError(f"{who}: target must be an integer tensor [B] = [{B}] of class indices, got {got}")
    if B and (int(target.min()) < 0 or int(target.max()) >= C):
        raise ParameterError(
            f"{who}: target class indices must lie in [0, {C - 1}], "
            f"got min {int(target.min())}, max {int(target.max())}"
        )
    if reduction not in _REDUCTIONS:
        raise ParameterError(f"{who}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if mask is None:
        return None
    if not isinstance(mask, Tensor) or mask.shape != (T, B):
        shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise ParameterError(f"{who}: mask must be a bool tensor [T, B] = [{T}, {B}] (True = valid step), "
                             f"got {shape}")
    mask = mask.to(device=x.device, dtype=torch.bool)
    if B and bool((mask.sum(0) == 0).any()):
        bad = torch.nonzero(mask.sum(0) == 0).flatten().tolist()
        raise ParameterError(f"{who}: samples {bad[:10]} have no valid time step in the mask")
    return mask


def _reduce(per_sample: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def _masked(x: Tensor, mask: Tensor | None) -> Tensor:
    return x if mask is None else x * mask.unsqueeze(-1).to(x.dtype)


def _n_valid(x: Tensor, mask: Tensor | None) -> Tensor:
    """Number of valid steps per sample, ``[B, 1]`` in x's dtype."""
    if mask is None:
        return torch.full((x.shape[1], 1), float(x.shape[0]), dtype=x.dtype, device=x.device)
    return mask.sum(0).to(x.dtype).unsqueeze(-1)


def _counts(spikes: Tensor, mask: Tensor | None) -> Tensor:
    """Spike counts ``c_i = Σ_t s_{t,i}`` over valid steps, ``[B, C]``."""
    return _masked(spikes, mask).sum(0)


def _rates(spikes: Tensor, mask: Tensor | None) -> Tensor:
    """Firing rates ``r_i = c_i / T_valid``, ``[B, C]``."""
    return _counts(spikes, mask) / _n_valid(spikes, mask)


# --------------------------------------------------------------------------- losses
def rate_mse(spikes: Tensor, target: Tensor, *, mask: Tensor | None = None, reduction: str = "mean",
             per_step: bool = False) -> Tensor:
    """Firing-rate MSE against the one-hot target (Fang et al. 2021, Sect. 3.7, SpikingJelly/PLIF practice).

    ``L = (1/C) Σ_i (r_i - y_i)²`` with ``r_i = (1/T) Σ_t s_{t,i}``. ``per_step=True`` gives the
    formula as printed in Sect. 3.7, ``(1/T) Σ_t (1/C) Σ_i (s_{t,i} - y_i)²``, which for binary
    spikes is linear in the rate; the reference implementation uses the rate form (default).
    """
    mask = _check(spikes, target, mask, "rate_mse", reduction)
    C = spikes.shape[2]
    y = F.one_hot(target.to(torch.long), C).to(spikes.dtype)
    if per_step:
        err = ((spikes - y.unsqueeze(0)) ** 2).mean(-1)  # [T, B]
        if mask is not None:
            err = err * mask.to(err.dtype)
        per = err.sum(0) / _n_valid(spikes, mask).squeeze(-1)
    else:
        per = ((_rates(spikes, mask) - y) ** 2).mean(-1)
    return _reduce(per, reduction)


def rate_ce(spikes: Tensor, target: Tensor, *, mask: Tensor | None = None, reduction: str = "mean",
            temperature: float = 1.0) -> Tensor:
    """Cross-entropy of the firing rates used as logits: ``-log softmax(r / temperature)_y``.

    Rates lie in [0, 1], so with ``temperature = 1`` the softmax is soft (the loss stays near
    ``log C``); ``temperature = 1/T`` turns the logits into spike counts, i.e. ``spikemax_s``.
    """
    mask = _check(spikes, target, mask, "rate_ce", reduction)
    if not float(temperature) > 0:
        raise ParameterError(f"rate_ce: temperature must be > 0, got {temperature}")
    logits = _rates(spikes, mask) / float(temperature)
    return _reduce(F.cross_entropy(logits, target.to(torch.long), reduction="none"), reduction)


def max_over_time_ce(membrane: Tensor, target: Tensor, *, mask: Tensor | None = None,
                     reduction: str = "mean") -> Tensor:
    """Max-over-time cross-entropy (Bouanane et al. 2023, eq. 13): ``-log softmax_i(U_i[t̃_i])_y``,
    ``t̃_i = argmax_t U_i[t]`` over the valid steps of the readout membrane ``[T, B, C]``."""
    mask = _check(membrane, target, mask, "max_over_time_ce", reduction)
    if mask is not None:
        membrane = membrane.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    logits = membrane.max(0).values
    return _reduce(F.cross_entropy(logits, target.to(torch.long), reduction="none"), reduction)


def spike_rate(spikes: Tensor, target: Tensor, true_rate: float = 0.2, false_rate: float = 0.03, *,
               mask: Tensor | None = None, reduction: str = "mean") -> Tensor:
    """Spike-rate loss (Shrestha et al. 2022, eq. 4): ``(1/C) Σ_i (r_i - r̂_i)²`` with ``r_i = (1/T) Σ_t s_{t,i}``,
    ``r̂ = true_rate`` for the target class and ``false_rate`` for the others.

    Eq. 4 is written for the rate of one output; we average it over the C outputs. The MSE
    of spike counts against the target counts ``r̂·T`` (SLAYER's ``numSpikes``) is ``T²`` times this.
    """
    mask = _check(spikes, target, mask, "spike_rate", reduction)
    if not (0.0 <= true_rate <= 1.0 and 0.0 <= false_rate <= 1.0):
        raise ParameterError(f"spike_rate: rates must lie in [0, 1] spikes/step, got true_rate={true_rate}, "
                             f"false_rate={false_rate}")
    C = spikes.shape[2]
    y = F.one_hot(target.to(torch.long), C).to(spikes.dtype)
    r_hat = false_rate + (true_rate - false_rate) * y
    return _reduce(((_rates(spikes, mask) - r_hat) ** 2).mean(-1), reduction)


def spikemax(spikes: Tensor, target: Tensor, window: int | None = None, *, eps: float = 1e-3,
             mask: Tensor | None = None, reduction: str = "mean") -> Tensor:
    """Spikemax (Shrestha et al. 2022, eqs. 5, 6, 8): running probability from windowed spike counts.

    ``c_i(t) = Σ_{τ=t-W+1}^{t} s_i(τ)`` (eq. 5, causal window of ``window`` steps, truncated at
    the start; ``window=None`` counts from the first step, the window "as large as the
    simulation interval"), ``p_i(t) = (c_i(t) + ε) / Σ_j (c_j(t) + ε)`` (eq. 6; ε the "infinitesimal count"
    the paper adds for stability), ``L = (1/T) Σ_t -log p_y(t)`` over the valid steps (eq. 8).
    Autograd reproduces eq. 11: ``∂l(t)/∂c_i(t) = (p_i(t) - y_i)/(c_i(t) + ε)``.
    """
    mask = _check(spikes, target, mask, "spikemax", reduction)
    if window is None:
        window = spikes.shape[0]
    if isinstance(window, bool) or int(window) != window or window < 1:
        raise ParameterError(f"spikemax: window must be a positive number of time steps (or None), got {window}")
    if not eps > 0:
        raise ParameterError(f"spikemax: eps must be > 0, got {eps}")
    window = int(window)
    s = _masked(spikes, mask)
    cs = torch.cumsum(s, 0)
    if window < s.shape[0]:
        shifted = torch.cat([torch.zeros_like(cs[:window]), cs[:-window]], 0)
        c = cs - shifted
    else:
        c = cs
    c = c + eps
    logp = torch.log(c) - torch.log(c.sum(-1, keepdim=True))  # [T, B, C]
    idx = target.to(torch.long).view(1, -1, 1).expand(c.shape[0], -1, 1)
    nll = -logp.gather(-1, idx).squeeze(-1)  # [T, B]
    if mask is not None:
        nll = nll * mask.to(nll.dtype)
    per = nll.sum(0) / _n_valid(spikes, mask).squeeze(-1)
    return _reduce(per, reduction)


def spikemax_g(spikes: Tensor, target: Tensor, *, eps: float = 1e-3, mask: Tensor | None = None,
               reduction: str = "mean") -> Tensor:
    """Spikemax_g (Shrestha et al. 2022, eqs. 7, 12): ``-log p_y`` with the global estimate
    ``p_i = (c_i + ε)/Σ_j (c_j + ε)``, ``c_i = Σ_t s_i(t)`` over the valid steps.
    Autograd gives eq. 12's ``∂L/∂s_i(t) = (p_i - y_i)/(c_i + ε)``."""
    mask = _check(spikes, target, mask, "spikemax_g", reduction)
    if not eps > 0:
        raise ParameterError(f"spikemax_g: eps must be > 0, got {eps}")
    c = _counts(spikes, mask) + eps
    logp = torch.log(c) - torch.log(c.sum(-1, keepdim=True))
    return _reduce(F.nll_loss(logp, target.to(torch.long), reduction="none"), reduction)


def spikemax_s(spikes: Tensor, target: Tensor, *, mask: Tensor | None = None, reduction: str = "mean") -> Tensor:
    """Spikemax_s (Shrestha et al. 2022, eqs. 13, 14): ``-log softmax(c)_y`` of the spike counts
    ``c_i = Σ_t s_i(t)``; autograd gives eq. 14's ``∂L/∂s_i(t) = p^s_i - y_i``."""
    mask = _check(spikes, target, mask, "spikemax_s", reduction)
    c = _counts(spikes, mask)
    return _reduce(F.cross_entropy(c, target.to(torch.long), reduction="none"), reduction)


LOSSES: dict[str, Callable[..., Tensor]] = {
    "rate_mse": rate_mse,
    "rate_ce": rate_ce,
    "max_over_time_ce": max_over_time_ce,
    "spike_rate": spike_rate,
    "spikemax": spikemax,
    "spikemax_g": spikemax_g,
    "spikemax_s": spikemax_s,
}

#: Which network output each loss consumes.
LOSS_INPUT: dict[str, str] = {
    "rate_mse": "spikes",
    "rate_ce": "spikes",
    "max_over_time_ce": "membrane",
    "spike_rate": "spikes",
    "spikemax": "spikes",
    "spikemax_g": "spikes",
    "spikemax_s": "spikes",
}


def loss_key(name: str) -> str:
    """The key in :data:`LOSSES` of the loss called ``name`` (case-insensitive; ``-`` = ``_``)."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in LOSSES:
        raise ParameterError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return key


def get_loss(name: str) -> Callable[..., Tensor]:
    """The loss function called ``name`` (case-insensitive; ``-`` = ``_``); see :data:`LOSSES`."""
    return LOSSES[loss_key(name)]

for _name, _fn in LOSSES.items():
    _fn.loss_input = LOSS_INPUT[_name]  # type: ignore[attr-defined]  # read as get_loss(name).loss_input
del _name, _fn
