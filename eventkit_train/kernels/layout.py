"""Memory layouts the CPU kernels work on in place: dense, time outermost, any order of the other dimensions.

A convolution in ``channels_last`` hands the neurons ``[T, B, C, H, W]`` tensors whose
channels are innermost in memory. The kernels treat each time step as a flat run of
``n = B·C·H·W`` neurons in memory order, so they can read such a tensor and write their
outputs in the same layout, instead of copying it to ``contiguous`` and handing the next
layer (pooling, the next convolution) a layout it has to copy back. The channel of the
neuron at memory offset ``j`` of a step is ``(j // stride_c) % C`` (``stride_c``: the stride
of dimension 2) in any dense layout.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["time_major_strides", "contiguous_strides", "channel_stride", "in_layout"]


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major strides (elements) of ``shape``."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _dense(shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
    """The elements fill ``prod(shape)`` consecutive slots: no gaps, no overlaps (size-1 dims ignored)."""
    dims = sorted((st, size) for size, st in zip(shape, strides, strict=True) if size != 1)
    step = 1
    for st, size in dims:
        if st != step:
            return False
        step *= size
    return True


def time_major_strides(x: Tensor) -> tuple[int, ...]:
    """The strides (elements) the kernels give their outputs for ``x [T, ...]``: ``x``'s own when ``x`` is
    dense with time outermost (``contiguous``, ``channels_last`` folded into ``[T, B, ...]``), else row-major."""
    shape = tuple(x.shape)
    if x.numel() == 0:
        return contiguous_strides(shape)
    n = math.prod(shape[1:])
    strides = tuple(x.stride())
    if _dense(shape[1:], strides[1:]) and (shape[0] == 1 or strides[0] == n):
        return (n,) + strides[1:]
    return contiguous_strides(shape)


def channel_stride(strides: tuple[int, ...], shape: tuple[int, ...]) -> int:
    """Stride (elements) of dimension 2, the channel axis of per-channel parameters (1 when there is none)."""
    return max(1, strides[2]) if len(shape) > 2 and shape[2] > 1 else 1


def in_layout(t: Tensor, shape: tuple[int, ...], strides: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """``t`` (broadcast to ``shape``) as a ``dtype`` tensor with exactly ``strides`` (``t`` itself when it is)."""
    if t.dtype == dtype and tuple(t.shape) == shape and (t.numel() <= 1 or tuple(t.stride()) == strides):
        return t
    return torch.empty_strided(shape, strides, dtype=dtype, device=t.device).copy_(t)
