"""Static images → spike tensors ``[T, C, H, W]`` (or ``[T, B, C, H, W]``): rate, Poisson, direct, latency.

Inputs are images ``[C, H, W]`` or batches ``[B, C, H, W]`` as torch tensors (any
device) or NumPy arrays (converted with :func:`torch.from_numpy`, so they end up on
the CPU). Floating images must lie in ``[0, 1]``; ``uint8`` images (0..255) are
scaled by ``1/255``; ``bool`` images read as 0/1. The output is on the input's
device, ``float32`` by default (``dtype=torch.uint8`` or ``torch.bool`` for compact
spikes; ``float16``/``bfloat16`` accepted). The time axis comes first.

Encodings (``I`` = intensity in [0, 1], ``k`` = step 0..T-1)

* ``rate``     — Bernoulli per step: ``S[k] = 1`` with probability ``I`` (``U[k] < I`` with
  ``U[k] ~ U[0, 1)`` drawn in float32, one draw per input and step).
* ``poisson``  — a Poisson process of rate ``r = max_rate_hz * I`` sampled on steps of
  ``dt_s`` seconds: ``S[k] = 1`` with probability ``1 - exp(-r * dt_s)`` (the chance of
  at least one event in the step; at most one spike per step).
* ``direct``   — the analog image repeated T times (the first layer does the encoding).
* ``latency``  — time to first spike, Sun 2023, eq. 11–12 (S4NN):
  ``t_i = floor((I_max - I_i) / I_max * t_max)`` and ``S_i[k] = 1`` iff ``k == t_i``.
  ``I_max`` is the top of the intensity range, 1.0 (the thesis: "intensity of each
  pixel ... ranging [0, I_max]"); ``i_max="image"`` uses each image's maximum instead.
  Every input with ``I >= threshold`` fires exactly once, so with the default
  ``threshold=0`` a zero-intensity input fires at ``t_max`` as eq. 11 gives; pass a
  small positive threshold (e.g. ``1e-6``) to silence zero inputs.

Randomness: ``seed`` builds a fresh :class:`torch.Generator` on the input's device, so
the same seed gives the same spikes on the same *device type*; CPU (Mersenne
Twister) and CUDA (Philox) streams differ, so a seed does not give the same spikes
on CPU and GPU. Without ``seed``/``generator`` torch's global RNG is used. For spikes
that depend only on ``(seed, sample index)`` whatever the batching or the worker
split, use :func:`sample_generator` or :class:`Encoder` with ``index=``.
"""
from __future__ import annotations

import hashlib
import inspect
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from eventkit.errors import ParameterError

__all__ = [
    "rate_encode",
    "poisson_encode",
    "direct_encode",
    "latency_encode",
    "encode",
    "Encoder",
    "sample_generator",
    "METHODS",
]

_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}


# --------------------------------------------------------------------------- input checks

def _as_tensor(images, name: str = "images") -> torch.Tensor:
    if isinstance(images, np.ndarray):
        if not images.dtype.isnative:  # e.g. big-endian '>f4' from a file: torch takes native byte order only
            images = images.astype(images.dtype.newbyteorder("="))
        try:
            images = torch.from_numpy(np.ascontiguousarray(images))
        except TypeError as exc:  # a dtype torch has no tensor type for (object, uint32 on old torch, ...)
            raise ParameterError(f"{name} dtype {images.dtype} not supported: pass floats in [0, 1] or uint8 "
                                 f"in 0..255 ({exc})") from None
    if not isinstance(images, torch.Tensor):
        raise ParameterError(
            f"{name} must be a torch.Tensor or NumPy array [C, H, W] or [B, C, H, W], got {type(images).__name__}"
        )
    if images.ndim not in (3, 4):
        raise ParameterError(
            f"{name} must have shape [C, H, W] or [B, C, H, W], got {tuple(images.shape)}"
            + (" (add a channel axis: images[None] or images.unsqueeze(-3))" if images.ndim == 2 else "")
        )
    if images.dtype not in (torch.uint8, torch.bool) and not images.dtype.is_floating_point:
        raise ParameterError(
            f"{name} dtype {images.dtype} not supported: pass floats in [0, 1] or uint8 in 0..255"
        )
    if images.dtype.is_floating_point and images.numel():
        bad = ~((images >= 0) & (images <= 1))  # NaN fails both comparisons
        if bool(bad.any()):
            value = images[bad].reshape(-1)[0].item()
            raise ParameterError(
                f"{name} must lie in [0, 1] (found {value!r}); scale the images first (uint8 0..255 is scaled for you)"
            )
    return images


def _intensity(images: torch.Tensor) -> torch.Tensor:
    """float32 intensities in [0, 1] on the images' device."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32) / 255.0
    return images.to(torch.float32)


def _check_T(T) -> int:
    if isinstance(T, (bool, np.bool_)):
        raise ParameterError(f"T must be a positive integer, got {T!r}")
    try:
        T = operator.index(T)
    except TypeError:
        raise ParameterError(f"T must be a positive integer number of steps, got {T!r}") from None
    if T < 1:
        raise ParameterError(f"T must be >= 1, got {T}")
    return int(T)


def _out_dtype(dtype, *, floating_only: bool = False) -> torch.dtype:
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ParameterError(f"dtype={dtype!r} not supported; use one of {sorted(_DTYPES)}")
        dtype = _DTYPES[dtype]
    if dtype not in _DTYPE_NAMES:
        raise ParameterError(f"dtype={dtype!r} not supported; use one of {sorted(_DTYPES)}")
    if floating_only and not dtype.is_floating_point:
        raise ParameterError(f"dtype={dtype} cannot hold analog values; use float32, float16 or bfloat16")
    return dtype


def _generator(seed, generator, device: torch.device) -> torch.Generator | None:
    if seed is not None and generator is not None:
        raise ParameterError("give seed or generator, not both")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise ParameterError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if generator.device.type != device.type:
            raise ParameterError(
                f"generator is on {generator.device.type} but the images are on {device.type}; "
                f"build it with torch.Generator(device=images.device) or use sample_generator(seed, index, device)"
            )
        return generator
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)):
        raise ParameterError(f"seed must be an integer, got {seed!r}")
    try:
        seed = operator.index(seed)
    except TypeError:
        raise ParameterError(f"seed must be an integer, got {seed!r}") from None
    g = torch.Generator(device=device)
    g.manual_seed(_mix(int(seed)))
    return g


def _mix(*ints: int) -> int:
    """A 63-bit seed from any Python ints (stable across processes and platforms)."""
    h = hashlib.blake2b(digest_size=8)
    for v in ints:
        h.update(int(v).to_bytes(16, "little", signed=True))
    return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)


def sample_generator(seed: int, index: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded from ``(seed, index)`` only.

    Sample ``index``'s random spikes then depend on the dataset seed and its index,
    never on which batch or worker encodes it (same device type assumed, see module doc).
    """
    for label, v in (("seed", seed), ("index", index)):
        if isinstance(v, (bool, np.bool_)):
            raise ParameterError(f"{label} must be an integer, got {v!r}")
        try:
            operator.index(v)
        except TypeError:
            raise ParameterError(f"{label} must be an integer, got {v!r}") from None
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(_mix(int(seed), int(index)))
    return g


def _bernoulli_steps(p: torch.Tensor, T: int, g: torch.Generator | None, dtype: torch.dtype) -> torch.Tensor:
    """``out[k] = U[k] < p`` for k = 0..T-1, one float32 uniform draw per element and step."""
    out = torch.empty((T, *p.shape), dtype=dtype, device=p.device)
    for k in range(T):
        u = torch.rand(p.shape, generator=g, dtype=torch.float32, device=p.device)
        out[k] = u < p
    return out


# --------------------------------------------------------------------------- encoders

def rate_encode(
    images,
    T: int,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | str = torch.float32,
) -> torch.Tensor:
    """Bernoulli rate code: ``S[k] = 1`` with probability ``I`` at every step k.

    Args:
        images: ``[C, H, W]`` or ``[B, C, H, W]``, floats in [0, 1] or uint8.
        T: number of steps (>= 1).
        seed: seeds a fresh generator on the images' device (exclusive with ``generator``).
        generator: a :class:`torch.Generator` on the images' device type.
        dtype: output dtype (float32, float16, bfloat16, uint8, bool).

    Returns:
        ``[T, *images.shape]`` spikes (0/1) on the images' device.
    """
    x = _as_tensor(images)
    T = _check_T(T)
    dtype = _out_dtype(dtype)
    g = _generator(seed, generator, x.device)
    return _bernoulli_steps(_intensity(x), T, g, dtype)


def poisson_encode(
    images,
    T: int,
    *,
    max_rate_hz: float = 1000.0,
    dt_s: float = 1e-3,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | str = torch.float32,
) -> torch.Tensor:
    """Poisson code: rate ``r = max_rate_hz * I``; ``S[k] = 1`` with probability ``1 - exp(-r * dt_s)``.

    With the defaults (1000 Hz, 1 ms steps) a white pixel fires with probability
    ``1 - e^-1 ≈ 0.632`` per step. Arguments as :func:`rate_encode` plus
    ``max_rate_hz >= 0`` (Hz, rate of intensity 1) and ``dt_s > 0`` (seconds per step).
    """
    x = _as_tensor(images)
    T = _check_T(T)
    dtype = _out_dtype(dtype)
    for label, v, positive in (("max_rate_hz", max_rate_hz, False), ("dt_s", dt_s, True)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v) \
                or v < 0 or (positive and v == 0):
            raise ParameterError(f"{label} must be a finite number {'> 0' if positive else '>= 0'}, got {v!r}")
    g = _generator(seed, generator, x.device)
    lam = _intensity(x) * float(max_rate_hz * dt_s)
    p = -torch.expm1(-lam)
    return _bernoulli_steps(p, T, g, dtype)


def direct_encode(
    images,
    T: int,
    *,
    dtype: torch.dtype | str = torch.float32,
    copy: bool = False,
) -> torch.Tensor:
    """The analog image (intensities in [0, 1]) repeated T times: ``[T, *images.shape]``.

    By default an ``expand`` view (no memory, stride 0 along T; it may share memory with a
    float32 input — do not write into it). ``copy=True`` returns a contiguous copy.
    """
    x = _as_tensor(images)
    T = _check_T(T)
    dtype = _out_dtype(dtype, floating_only=True)
    v = _intensity(x).to(dtype)
    out = v.unsqueeze(0).expand(T, *v.shape)
    return out.contiguous() if copy else out


def latency_encode(
    images,
    T: int,
    *,
    t_max: int | None = None,
    threshold: float = 0.0,
    i_max: float | str = 1.0,
    dtype: torch.dtype | str = torch.float32,
) -> torch.Tensor:
    """Time-to-first-spike code (eq. 11–12 of Sun 2023): one spike per input.

    ``t_i = floor((I_max - I_i) / I_max * t_max)``, clamped to ``[0, t_max]``; ``S[t_i] = 1``
    for every input with ``I_i >= threshold``, no other spike. Brighter inputs fire earlier;
    ``I_i = I_max`` fires at step 0, ``I_i = 0`` at ``t_max``.

    Args:
        images: ``[C, H, W]`` or ``[B, C, H, W]``, floats in [0, 1] or uint8.
        T: number of steps (>= 1).
        t_max: latest spike step, ``0 <= t_max <= T - 1`` (default ``T - 1``).
        threshold: intensity (in [0, 1] units) below which an input does not fire.
        i_max: ``I_max`` in [0, 1] units (default 1.0, the top of the range), or ``"image"``
            for each image's own maximum (an all-zero image then fires everywhere at ``t_max``).
        dtype: output dtype.

    Evaluated as ``t_max - ceil(I_i * t_max / I_max)`` (the same integer for integer
    ``t_max``) in float64 on the raw values (0..255 for uint8, with ``I_max = 255 * i_max``),
    which is exact for uint8 images and for float32 images with ``i_max=1.0``. (On Apple
    ``mps`` devices, which lack float64, in float32.)
    """
    x = _as_tensor(images)
    T = _check_T(T)
    dtype = _out_dtype(dtype)
    if t_max is None:
        t_max = T - 1
    if isinstance(t_max, bool):
        raise ParameterError(f"t_max must be an integer step, got {t_max!r}")
    try:
        t_max = int(operator.index(t_max))
    except TypeError:
        raise ParameterError(f"t_max must be an integer step, got {t_max!r}") from None
    if not 0 <= t_max <= T - 1:
        raise ParameterError(f"t_max must be in 0..T-1 = 0..{T - 1}, got {t_max}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(threshold) <= 1.0:
        raise ParameterError(f"threshold must be a number in [0, 1], got {threshold!r}")

    calc = torch.float32 if x.device.type == "mps" else torch.float64
    scale = 255.0 if x.dtype == torch.uint8 else 1.0
    v = x.to(calc)
    if isinstance(i_max, str):
        if i_max != "image":
            raise ParameterError(f"i_max must be a number in (0, 1] or 'image', got {i_max!r}")
        top = v.amax(dim=(-3, -2, -1), keepdim=True)
    else:
        if isinstance(i_max, bool) or not isinstance(i_max, (int, float, np.integer, np.floating)) \
                or not 0.0 < float(i_max) <= 1.0:
            raise ParameterError(f"i_max must be a number in (0, 1] or 'image', got {i_max!r}")
        top = torch.tensor(float(i_max) * scale, dtype=calc, device=x.device)
    safe_top = torch.where(top > 0, top, torch.ones_like(top))
    # floor((I_max - I) / I_max * t_max) == t_max - ceil(I * t_max / I_max) for integer t_max;
    # the right-hand form has no cancellation in (I_max - I), so it stays exact for tiny I.
    t_i = t_max - torch.ceil(v * t_max / safe_top)
    t_i = torch.where(top > 0, t_i, torch.full_like(t_i, t_max))
    t_i = t_i.clamp(0, t_max).to(torch.int64)
    fires = v >= float(threshold) * scale

    out = torch.zeros((T, *x.shape), dtype=dtype, device=x.device)
    out.scatter_(0, t_i.unsqueeze(0), fires.unsqueeze(0).to(dtype))
    return out


# --------------------------------------------------------------------------- dispatcher

METHODS: dict[str, Callable[..., torch.Tensor]] = {
    "rate": rate_encode,
    "poisson": poisson_encode,
    "direct": direct_encode,
    "latency": latency_encode,
}
_STOCHASTIC = frozenset({"rate", "poisson"})


def _keywords(method: str) -> set[str]:
    sig = inspect.signature(METHODS[method])
    return {n for n, prm in sig.parameters.items() if prm.kind is inspect.Parameter.KEYWORD_ONLY}


def _check_method(method: str, params: Mapping[str, Any]) -> None:
    if method not in METHODS:
        raise ParameterError(f"unknown encoding method {method!r}; choose one of {sorted(METHODS)}")
    unknown = set(params) - _keywords(method)
    if unknown:
        raise ParameterError(
            f"{method} encoding does not take {sorted(unknown)}; it takes {sorted(_keywords(method))}"
        )


def encode(images, T: int, method: str, **kw) -> torch.Tensor:
    """Dispatch to ``<method>_encode(images, T, **kw)``; ``method`` in rate, poisson, direct, latency."""
    _check_method(method, kw)
    return METHODS[method](images, T, **kw)


@dataclass(frozen=True)
class Encoder:
    """A configured encoding ``method`` with ``T`` steps and keyword ``params``; call it on images.

    ``Encoder("rate", 16, {"seed": 0, "dtype": "uint8"})(img, index=i)`` encodes sample ``i``
    with :func:`sample_generator` ``(0, i, img.device)``: with a ``seed`` in ``params`` and an
    ``index`` (an int for one image ``[C, H, W]``, a sequence of B ints for ``[B, C, H, W]``),
    each sample's spikes depend only on ``(seed, index)``. Without ``index`` the seed seeds
    one generator for the whole call. ``to_dict``/``from_dict`` give a JSON-friendly form
    (dtype as its name) for cache metadata.
    """

    method: str
    T: int
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "T", _check_T(self.T))
        params = dict(self.params)
        _check_method(self.method, params)
        if "dtype" in params:
            params["dtype"] = _out_dtype(params["dtype"], floating_only=self.method == "direct")
        if "generator" in params:
            raise ParameterError("Encoder params cannot hold a generator (not reproducible); give a seed")
        if params.get("seed") is not None:
            seed = params["seed"]
            if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
                raise ParameterError(f"Encoder seed must be an integer, got {seed!r}")
            params["seed"] = int(seed)
        object.__setattr__(self, "params", params)

    def __hash__(self) -> int:
        return hash((self.method, self.T, tuple(sorted(self.to_dict()["params"].items()))))

    def __call__(self, images, *, index: int | Sequence[int] | torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """Encode ``images`` → ``[T, *images.shape]`` (see the class docstring for ``index``)."""
        fn = METHODS[self.method]
        seed = self.params.get("seed")
        if index is None or self.method not in _STOCHASTIC:
            return fn(images, self.T, **self.params)
        if seed is None:
            raise ParameterError(f"index= needs a seed in the {self.method} encoder's params for per-sample seeding")
        x = _as_tensor(images)
        rest = {k: v for k, v in self.params.items() if k != "seed"}
        if x.ndim == 3:
            one = int(index) if isinstance(index, (torch.Tensor, np.ndarray)) and index.ndim == 0 else index
            if isinstance(one, (Sequence, torch.Tensor, np.ndarray)):
                raise ParameterError(f"one image [C, H, W] needs index= as one sample index, got {index!r}")
            return fn(x, self.T, generator=sample_generator(seed, one, x.device), **rest)
        if isinstance(index, (torch.Tensor, np.ndarray)):
            index = index.reshape(-1).tolist()
        if not isinstance(index, Sequence) or isinstance(index, str):
            raise ParameterError(
                f"a batch [B, C, H, W] needs index= as B sample indices, got {index!r}"
            )
        idx = [int(i) for i in index]
        if len(idx) != x.shape[0]:
            raise ParameterError(f"index has {len(idx)} entries but the batch has B={x.shape[0]} images")
        parts = [fn(x[b], self.T, generator=sample_generator(seed, i, x.device), **rest) for b, i in enumerate(idx)]
        return torch.stack(parts, dim=1)

    def to_dict(self) -> dict[str, Any]:
        """``{"method", "T", "params"}`` with plain JSON types (dtype as its name)."""
        params = {k: (_DTYPE_NAMES[v] if isinstance(v, torch.dtype) else v) for k, v in self.params.items()}
        return {"method": self.method, "T": self.T, "params": params}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Encoder:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(d["method"], d["T"], dict(d.get("params", {})))
        except KeyError as exc:
            raise ParameterError(f"encoder description lacks {exc.args[0]!r}: {dict(d)!r}") from None
