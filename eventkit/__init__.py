"""eventkit: neuromorphic event datasets, exact frame kernels, Zarr caches and loaders.

Public API (the contract): ``read_events``, ``to_frames``, ``to_audio_frames``, the
event dtypes and the error types. torch, dask and zarr are imported only by the
modules that need them (``eventkit.encode``, ``eventkit.loader``, ``eventkit.build``,
``eventkit.cache``), so ``import eventkit`` stays light.
"""
__version__ = "0.1.0"  # before the imports: submodules may read it

from eventkit.audio import to_audio_frames
from eventkit.errors import (
    ArchiveError,
    CacheError,
    DatasetNotFound,
    EventFileError,
    EventkitError,
    ImageFileError,
    InvalidEventsError,
    ManifestError,
    ParameterError,
    RawFileError,
)
from eventkit.events import AUDIO_DTYPE, VISION_DTYPE, make_audio_events, make_events, sort_events, validate_events
from eventkit.frames import to_frames
from eventkit.io import read_events

__all__ = [
    "read_events", "to_frames", "to_audio_frames",
    "AUDIO_DTYPE", "VISION_DTYPE", "make_events", "make_audio_events", "sort_events", "validate_events",
    "EventkitError", "RawFileError", "EventFileError", "ManifestError", "ArchiveError", "ImageFileError",
    "InvalidEventsError", "ParameterError", "DatasetNotFound", "CacheError",
    "__version__",
]
