"""Reading a store: frames by sample, range or shard, and the small arrays — every chunk checked.

Every inner chunk and every small-array chunk carries a crc32c, and every shard index too;
they are checked on every read, so a damaged byte is a :class:`CacheError` naming the store,
the shard and the sample, never data. Requests (object stores): a whole shard is one GET;
a sample is one ranged GET once the shard's index is known (one ranged GET per shard and
process, then kept); the labels are one GET per shard, read once per store open.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eventkit.cache import codec
from eventkit.cache.layout import chunk_key, frames_key
from eventkit.cache.objects import StoreIO
from eventkit.errors import CacheError, ParameterError

__all__ = ["ShardReader", "ShardBlob"]

_FILL = {"label": -1, "n_events": 0}


class ShardBlob:
    """Compressed chunks of one shard held for :meth:`ShardReader.decode_from_blob`.

    ``data``: the whole shard file (local stores), else chunks fetched on demand, one ranged
    read each (or all of ``samples`` at once), so every sample's bytes are fetched once.
    """

    def __init__(self, k: int, index: np.ndarray, data: bytes | None, chunks: dict[int, bytes] | None = None):
        self.k, self.index, self.data = k, index, data
        self.chunks = {} if chunks is None else chunks


class ShardReader:
    """Read methods of :class:`eventkit.cache.CacheStore` (the attributes are set by the store)."""

    url: str
    meta: dict
    n_samples: int
    shard_size: int
    n_shards: int
    frame_shape: tuple[int, ...]
    dtype: np.dtype
    _io: StoreIO
    _labels: np.ndarray | None
    _indexes: dict[int, np.ndarray]
    _writable: bool

    # -- shards ------------------------------------------------------------------------

    def shard_range(self, k: int) -> tuple[int, int]:
        """Sample index range ``[start, stop)`` of shard ``k``."""
        k = self._check_shard(k)
        return k * self.shard_size, min((k + 1) * self.shard_size, self.n_samples)

    def _check_shard(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= int(k) < self.n_shards:
            raise ParameterError(f"{self.url}: shard {k!r} out of range (store has {self.n_shards} shards)")
        return int(k)

    def _frames_key(self, k: int) -> str:
        return frames_key(k, len(self.frame_shape))

    def _damaged(self, k: int, what: str, exc: Exception) -> CacheError:
        return CacheError(f"{self.url}: shard {k} {what} is damaged ({exc}); rebuild the store "
                          "(`eventkit cache verify --all` names every damaged shard)")

    def _lost(self, k: int, key: str) -> CacheError:
        return CacheError(f"{self.url}: shard {k} of frames is missing ({key}) although the store is marked "
                          "complete; rebuild the store (`eventkit cache verify` names the shards)")

    def _index(self, k: int, data: bytes | None = None) -> np.ndarray | None:
        """Shard ``k``'s index (kept once read); ``data``: the whole file when already read. None when absent."""
        index = self._indexes.get(k)
        if index is not None:
            return index
        nbytes = codec.index_nbytes(self.shard_size)
        try:
            tail = data[-nbytes:] if data is not None else self._io.get_range(self._frames_key(k), -nbytes)
        except FileNotFoundError:
            if self.meta.get("complete"):
                raise self._lost(k, self._frames_key(k)) from None
            return None
        try:
            index = codec.parse_index(tail, self.shard_size, None if data is None else len(data))
        except codec.ChunkError as exc:
            raise CacheError(f"{self.url}: shard {k} of frames has a corrupt index ({exc}); rebuild the store "
                             "(`eventkit cache verify` names the shards)") from None
        self._indexes[k] = index
        return index

    def _decode(self, k: int, blob, i: int, out: np.ndarray) -> None:
        try:
            codec.decode_chunk_into(blob, out)
        except codec.ChunkError as exc:
            raise self._damaged(k, f"sample {i}", exc) from None

    def _span(self, k: int, index: np.ndarray, i: int) -> tuple[int, int] | None:
        """Byte span of sample ``i``'s chunk in shard ``k``; None for a chunk left out (all fill value 0)."""
        offset, nbytes = index[i - k * self.shard_size]
        if offset == np.uint64(codec.ABSENT):
            return None
        return int(offset), int(offset) + int(nbytes)

    def _read_shard_span(self, k: int, start: int, stop: int) -> np.ndarray:
        """Frames ``[stop - start, *frame_shape]`` of samples ``[start, stop)`` of shard ``k``."""
        s = self.shard_size
        out = np.empty((stop - start, *self.frame_shape), dtype=self.dtype)
        whole = stop - start == min(s, self.n_samples - k * s)
        data, base = None, 0
        if whole and k not in self._indexes:
            try:
                data = self._io.get_range(self._frames_key(k), 0)
            except FileNotFoundError:
                data = None
        index = self._index(k, data)
        if index is None:  # not written yet in a store being built: the fill value
            out[...] = 0
            return out
        spans = [self._span(k, index, i) for i in range(start, stop)]
        present = [span for span in spans if span is not None]
        if data is None and present:
            base = min(a for a, _ in present)
            data = self._io.get_range(self._frames_key(k), base, max(b for _, b in present))
        view = memoryview(data or b"")
        for j, span in enumerate(spans):
            if span is None:  # zarr leaves an all-zero chunk out of the shard (eventkit writes every chunk)
                out[j] = 0
            else:
                self._decode(k, view[span[0] - base:span[1] - base], start + j, out[j])
        return out

    # -- frames ------------------------------------------------------------------------

    def read_range(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples ``[start, stop)``: frames ``[stop - start, *frame_shape]`` and int64 labels.

        Each shard's part of the range is one read of its byte span (the whole file when the
        range covers the shard), decoded chunk by chunk after the crc32c checks.
        """
        if not 0 <= start <= stop <= self.n_samples:
            raise ParameterError(f"{self.url}: range [{start}, {stop}) outside [0, {self.n_samples})")
        pieces = []
        for k in range(start // self.shard_size, (stop - 1) // self.shard_size + 1) if stop > start else ():
            lo, hi = max(start, k * self.shard_size), min(stop, (k + 1) * self.shard_size)
            pieces.append(self._read_shard_span(k, lo, hi))
        if not pieces:
            frames = np.empty((0, *self.frame_shape), dtype=self.dtype)
        else:
            frames = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        return frames, self.labels()[start:stop].copy()

    def read_shard(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Shard ``k``: frames ``[n, *frame_shape]`` (store dtype) and int64 labels ``[n]``."""
        start, stop = self.shard_range(k)
        return self.read_range(start, stop)

    def read_frames(self, k: int) -> np.ndarray:
        """Shard ``k``'s frames ``[n, *frame_shape]`` (no label read)."""
        start, stop = self.shard_range(k)
        return self._read_shard_span(k, start, stop)

    def read_sample(self, i: int) -> tuple[np.ndarray, int]:
        """Sample ``i``: frames ``[*frame_shape]`` (one ranged read of its chunk) and its label."""
        n = self.n_samples
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -n <= int(i) < n:
            raise IndexError(f"{self.url}: sample {i!r} out of range (store has {self.n_samples} samples)")
        i = int(i) % self.n_samples
        k = i // self.shard_size
        return self._read_shard_span(k, i, i + 1)[0], int(self.labels()[i])

    def shard_blob(self, k: int, samples: Sequence[int] | None = None) -> ShardBlob | None:
        """Shard ``k``'s compressed chunks for :meth:`decode_from_blob` (None when the shard is not written).

        Local stores: one read of the whole file. Object stores: the index, then the chunks of
        ``samples`` in one batch of ranged reads (or each chunk when first decoded).
        """
        k = self._check_shard(k)
        if self._io.local:
            try:
                data = self._io.get_range(self._frames_key(k), 0)
            except FileNotFoundError:
                data = None
                if self.meta.get("complete"):
                    raise self._lost(k, self._frames_key(k)) from None
            whole = None if data is None else self._index(k, data)
            return None if data is None or whole is None else ShardBlob(k, whole, data)
        index = self._index(k)
        if index is None:
            return None
        blob = ShardBlob(k, index, None)
        if samples:
            spans = {i: span for i in sorted(set(int(i) for i in samples))
                     if (span := self._span(k, index, i)) is not None}
            got = self._io.get_ranges(self._frames_key(k), list(spans.values()))
            blob.chunks.update(zip(spans, got, strict=True))
        return blob

    def decode_from_blob(self, k: int, blob: ShardBlob, i: int) -> np.ndarray:
        """Frames ``[*frame_shape]`` of sample ``i`` (in shard ``k``) from :meth:`shard_blob`'s result."""
        out = np.empty(self.frame_shape, dtype=self.dtype)
        span = self._span(k, blob.index, i)
        if span is None:
            out[...] = 0
            return out
        a, b = span
        chunk: bytes | memoryview | None
        if blob.data is not None:
            chunk = memoryview(blob.data)[a:b]
        else:
            chunk = blob.chunks.pop(i, None)
            if chunk is None:
                chunk = self._io.get_range(self._frames_key(k), a, b)
        self._decode(k, chunk, i, out)
        return out

    # -- small arrays ------------------------------------------------------------------

    def shard_columns(self, k: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Shard ``k``'s int64 labels, int64 event counts and sample ids (one read of each chunk)."""
        start, stop = self.shard_range(k)
        out = []
        for name in ("label", "n_events", "sample_id"):
            out.append(self._small_chunks(name, [k])[0][:stop - start])
        return np.asarray(out[0], dtype=np.int64), np.asarray(out[1], dtype=np.int64), list(out[2])

    def _small_chunks(self, name: str, shards: list[int] | None = None) -> list:
        """Decoded chunks of ``label``/``n_events`` (int64) or ``sample_id`` (str), one per shard."""
        shards = list(range(self.n_shards)) if shards is None else shards
        keys = [chunk_key(name, k) for k in shards]
        raw = self._io.get_many(keys)
        out = []
        for k, key in zip(shards, keys, strict=True):
            blob = raw.get(key)
            if blob is None:
                if self.meta.get("complete"):
                    raise CacheError(f"{self.url}: chunk {k} of {name} is missing ({key}) although the store is "
                                     "marked complete; rebuild the store")
                fill = [""] * self.shard_size if name == "sample_id" else np.full(self.shard_size, _FILL[name])
                out.append(fill)
                continue
            start, stop = self.shard_range(k)
            try:
                if name == "sample_id":
                    out.append(codec.decode_strings_chunk(blob, self.shard_size))
                else:
                    out.append(codec.decode_int64_chunk(blob, self.shard_size))
            except codec.ChunkError as exc:
                raise self._damaged(k, f"{name} chunk (samples {start}..{stop - 1})", exc) from None
        return out

    def labels(self) -> np.ndarray:
        """int64 labels ``[N]`` (-1 where a shard is not written; read once for a complete store)."""
        if self._labels is not None:
            return self._labels
        labels = np.concatenate(self._small_chunks("label"))[:self.n_samples].astype(np.int64)
        if self.meta.get("complete") and not self._writable:
            self._labels = labels
        return labels

    def n_events(self) -> np.ndarray:
        """int64 number of events that went into each sample ``[N]``."""
        return np.concatenate(self._small_chunks("n_events"))[:self.n_samples].astype(np.int64)

    def sample_ids(self) -> list[str]:
        """The samples' ids (raw file path relative to the dataset root, ``#k`` for rows), ``N`` strings."""
        return [s for chunk in self._small_chunks("sample_id") for s in chunk][:self.n_samples]
