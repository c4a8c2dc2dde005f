"""Recycled CPU output buffers for the Numba kernels.

PyTorch's CPU allocator hands blocks above glibc's mmap threshold (32 MiB at most) back to
the operating system when they are freed, so every fresh big tensor pays a page fault and a
zeroed page per 4 KiB on first touch: about 35 ms for the 84 MB of a ``[20, 32, 32768]``
float32 tensor on a 2-core cloud VM, more than the LIF forward kernel takes to fill it
(28 ms). A neuron call makes three such tensors (spikes, the saved membrane, the input
gradient), and a training loop makes the same ones again at every step.

:func:`empty` hands out tensors made by ``torch.from_numpy`` from a fresh NumPy view of an
array that the pool keeps. The tensor's storage holds the view until the last tensor, view
or storage on it is gone; the pool watches the view through a weak reference, and once it
has died the array is handed out again for the next request of the same size in bytes (any dtype, any dense
layout). Requests below :data:`MIN_BYTES` get plain
``torch.empty``. The pool keeps at most ``$EVENTKIT_CPU_BUFFER_POOL_MB`` MiB (default 2048;
0 turns it off), dropping free buffers, least recently used first, to make room; beyond
that it allocates without keeping. :func:`release` drops every free buffer.
"""
from __future__ import annotations

import math
import os
import threading
import weakref
from collections import OrderedDict

import numpy as np
import torch
from torch import Tensor

from .layout import contiguous_strides

__all__ = ["empty", "release", "pool_bytes", "MIN_BYTES", "POOL_ENV"]

POOL_ENV = "EVENTKIT_CPU_BUFFER_POOL_MB"
MIN_BYTES = 1 << 20  # smaller blocks come from malloc's own free lists

_lock = threading.Lock()
_pid = os.getpid()


class _Buffer:
    __slots__ = ("array", "nbytes", "user")

    def __init__(self, nbytes: int) -> None:
        self.array, self.nbytes = np.empty(nbytes, dtype=np.uint8), nbytes
        self.user: weakref.ref | None = None  # the view handed out last

    def free(self) -> bool:
        return self.user is None or self.user() is None

    def hand_out(self, shape: tuple[int, ...], strides: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        view = self.array.view()  # a fresh array object: the storage below holds it, the pool watches it
        self.user = weakref.ref(view)
        storage = torch.from_numpy(view).untyped_storage()
        return torch.empty(0, dtype=dtype).set_(storage, 0, shape, strides)


_buffers: OrderedDict[int, _Buffer] = OrderedDict()  # by id(array), least recently used first


def _limit_bytes() -> int:
    raw = os.environ.get(POOL_ENV, "2048")
    try:
        return max(0, int(float(raw) * 2**20))
    except ValueError:
        return 0


def pool_bytes() -> int:
    """Bytes of the buffers the pool keeps (in use or free)."""
    with _lock:
        return sum(b.nbytes for b in _buffers.values())


def release() -> None:
    """Drop the free buffers (their memory goes back to the operating system)."""
    with _lock:
        for key in [k for k, b in _buffers.items() if b.free()]:
            del _buffers[key]


def empty(shape: tuple[int, ...], dtype: torch.dtype, strides: tuple[int, ...] | None = None) -> Tensor:
    """An uninitialised CPU tensor ``shape`` of ``dtype``, recycled when possible; ``strides`` (elements) must
    describe a dense layout (a permutation of the dimensions, as ``channels_last``), contiguous by default."""
    global _pid
    shape = tuple(shape)
    strides = contiguous_strides(shape) if strides is None else tuple(strides)
    nbytes = math.prod(shape) * dtype.itemsize
    limit = _limit_bytes()
    if nbytes < MIN_BYTES or nbytes > limit:
        return torch.empty_strided(shape, strides, dtype=dtype)
    with _lock:
        if _pid != os.getpid():  # a forked child starts with its own pool
            _buffers.clear()
            _pid = os.getpid()
        for key, buf in _buffers.items():
            if buf.nbytes == nbytes and buf.free():
                _buffers.move_to_end(key)
                return buf.hand_out(shape, strides, dtype)
        held = sum(b.nbytes for b in _buffers.values())
        if held + nbytes > limit:
            for key in [k for k, b in _buffers.items() if b.free()]:  # least recently used first
                held -= _buffers.pop(key).nbytes
                if held + nbytes <= limit:
                    break
        buf = _Buffer(nbytes)
        if held + nbytes <= limit:
            _buffers[id(buf.array)] = buf
        return buf.hand_out(shape, strides, dtype)
