"""Seeds of event augmentation: one random stream per (seed, epoch, sample index, step).

A step's draws depend only on these four integers, never on the DataLoader worker,
the rank or the order in which samples are read, so an augmented sample is the same
whatever ``num_workers`` and ``world_size``, and another epoch gives other draws.

eventkit's own transforms draw from a :class:`numpy.random.Generator`
(:func:`step_generator`). tonic's transforms draw from NumPy's *global* generator
(``np.random.rand``, ``np.random.choice``...): :func:`seed_numpy_global` seeds it before
each tonic call, and :func:`preserved_numpy_global` (used once per sample by
``EventAugment``) restores the caller's state afterwards. DataLoader workers are
processes; do not run augmentation in threads that use ``np.random`` at the same time.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from eventkit.errors import ParameterError

__all__ = ["step_seed", "step_generator", "seed_numpy_global", "preserved_numpy_global"]

#: distinguishes augmentation streams from the loader's shuffling streams (same seed)
_EVENT_TAG = 0x65766175  # "evau"


def _check_counter(value: object, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or int(value) < 0:
        raise ParameterError(f"augmentation {name} must be an integer >= 0, got {value!r}")
    return int(value)


def step_seed(seed: int, epoch: int, index: int, step: tuple[int, ...] | int = 0) -> np.random.SeedSequence:
    """The seed sequence of one transform step of one sample in one epoch.

    ``step``: the transform's position in the pipeline (a tuple for nested steps, e.g.
    ``(2, 1)`` for the second choice of a ``one_of`` at position 2).
    """
    key = (step,) if isinstance(step, (int, np.integer)) else tuple(step)
    entropy = [_check_counter(seed, "seed"), _check_counter(epoch, "epoch"), _check_counter(index, "sample index"),
               _EVENT_TAG]
    return np.random.SeedSequence(entropy, spawn_key=tuple(int(k) for k in key))


def step_generator(seed: int, epoch: int, index: int, step: tuple[int, ...] | int = 0) -> np.random.Generator:
    """A NumPy generator for one step (see :func:`step_seed`)."""
    return np.random.default_rng(step_seed(seed, epoch, index, step))


def seed_numpy_global(seq: np.random.SeedSequence) -> None:
    """Seed NumPy's global generator (what tonic draws from) from ``seq``: 256 bits, MT19937's
    ``init_by_array``."""
    np.random.seed(seq.generate_state(8, dtype=np.uint32))


@contextmanager
def preserved_numpy_global() -> Iterator[None]:
    """Restore NumPy's global generator state at the end of the block (whatever seeded it inside)."""
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)
