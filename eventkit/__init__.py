"""eventkit: neuromorphic event datasets, exact frame kernels, Zarr caches and loaders.

Public API (the contract): ``read_events``, ``to_frames``, the event dtypes and the
error types. Heavy and optional dependencies (torch, dask, zarr) are imported where used.
"""
from eventkit.errors import (
    CacheError,
    DatasetNotFound,
    EventFileError,
    EventkitError,
    InvalidEventsError,
    ParameterError,
)
from eventkit.events import AUDIO_DTYPE, VISION_DTYPE, make_audio_events, make_events, sort_events, validate_events

__version__ = "0.1.0"

__all__ = [
    "AUDIO_DTYPE", "VISION_DTYPE", "make_events", "make_audio_events", "sort_events", "validate_events",
    "EventkitError", "EventFileError", "InvalidEventsError", "ParameterError", "DatasetNotFound", "CacheError",
    "__version__",
]
