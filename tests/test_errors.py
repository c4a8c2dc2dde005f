"""The error tree: every eventkit error survives pickling (it crosses process boundaries:
DataLoader workers, the builder's isolated tasks, Dask workers) with its message and fields."""
from __future__ import annotations

import pickle

import pytest

from eventkit import errors


@pytest.mark.parametrize("exc", [
    errors.EventFileError("/data/x.bin", "truncated event record", 40),
    errors.EventFileError(None, "bad header"),
    errors.InvalidEventsError("t is not sorted at event 3"),
    errors.ParameterError("T must be >= 1, got 0"),
    errors.DatasetNotFound("nmnist: no raw files under /r"),
    errors.CacheError("/c/store.zarr: shard 3 is damaged"),
])
def test_errors_pickle_with_their_message_and_fields(exc):
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc)
    for name in ("path", "problem", "offset"):
        assert getattr(back, name, None) == getattr(exc, name, None)
