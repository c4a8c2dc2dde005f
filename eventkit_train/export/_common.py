"""Shared pieces of the NIR bridge (private): the lazy ``nir`` import, ``dt`` checks, metadata keys."""
from __future__ import annotations

import math
from typing import Any

from eventkit.errors import ParameterError

#: forward-Euler step (seconds) assumed when a graph does not say: the NIR libraries' default
DEFAULT_DT = 1e-4
#: node metadata key naming the eventkit module a node was exported from (exact re-import)
MODULE_KEY = "eventkit_module"


def require_nir() -> Any:
    """The ``nir`` module, or a ParameterError saying how to install it."""
    try:
        import nir
    except ImportError:  # pragma: no cover - nir is in the dev extra
        raise ParameterError("NIR export/import needs the 'nir' package: pip install 'eventkit-snn[nir]'") from None
    return nir


def check_dt(dt: Any) -> float:
    """``dt`` as a positive finite float (seconds per time step)."""
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(float(dt)) or float(dt) <= 0:
        raise ParameterError(f"dt must be a positive number of seconds per time step (e.g. 1e-4), got {dt!r}")
    return float(dt)


def text(value: Any) -> Any:
    """A metadata value as read back from HDF5 (bytes -> str, 0-d arrays -> Python scalars)."""
    if isinstance(value, bytes):
        return value.decode("utf8")
    if hasattr(value, "shape") and getattr(value, "shape", None) == ():
        return value.item()
    return value
