"""Small array helpers shared by the frame and audio APIs (private).

``INT64_MIN`` / ``INT64_MAX``: the range of µs timestamps and of every integer parameter
handed to the kernels. :func:`allocate`: an output array, or a ``ParameterError`` naming the
request that made it too big (never a bare ``MemoryError`` / NumPy ``ValueError``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from eventkit.errors import ParameterError

INT64_MIN = int(np.iinfo(np.int64).min)
INT64_MAX = int(np.iinfo(np.int64).max)


def allocate(shape: tuple[int, ...], dtype: Any, why: str, *, zeros: bool = False) -> np.ndarray:
    """``np.empty``/``np.zeros`` of ``shape``, or a ParameterError saying ``why`` it was asked for."""
    try:
        return np.zeros(shape, dtype=dtype) if zeros else np.empty(shape, dtype=dtype)
    except (ValueError, MemoryError) as exc:
        raise ParameterError(f"{why}: the frames (an array of shape {shape}, {np.dtype(dtype)}) do not fit in "
                             f"memory ({type(exc).__name__}); ask for fewer or shorter windows") from None
