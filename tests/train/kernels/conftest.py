"""Backends under test: Numba and torch always; Triton through its CPU interpreter.

``TRITON_INTERPRET=1`` is set for this directory before any Triton kernel is generated
(Triton reads it when a kernel is defined), so the GPU kernels run here on CPU tensors.
The Triton cases are skipped, with the reason, only where Triton cannot be imported.
"""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")

try:
    import triton  # noqa: F401

    TRITON_SKIP = None if os.environ["TRITON_INTERPRET"] == "1" else "TRITON_INTERPRET is not 1"
except Exception as exc:  # noqa: BLE001
    TRITON_SKIP = f"Triton cannot be imported here ({type(exc).__name__}: {exc}); pip install triton"

BACKENDS = ["numba", "torch", pytest.param("triton", marks=pytest.mark.skipif(TRITON_SKIP is not None,
                                                                             reason=str(TRITON_SKIP)))]
