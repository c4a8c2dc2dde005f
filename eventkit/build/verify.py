""":func:`verify_store`: check a store against its markers and recompute shards from the raw files."""
from __future__ import annotations

import numpy as np

from eventkit.build.compute import _compute_frames_shard, _encode_images, _static_ids
from eventkit.build.params import _spec, store_order
from eventkit.build.result import VerifyReport
from eventkit.errors import CacheError, ParameterError

def _check_shard_bytes(store, k: int) -> str | None:
    """``None`` when shard k matches its sha256 marker, else the problem (decode errors included)."""
    try:
        if store.check_shard(k):
            return None
        return ("frames, n_events, labels or sample ids differ from the sha256 hashes of the completion marker, "
                "or do not decode")
    except Exception as exc:  # noqa: BLE001 - any decode failure is a corrupt shard
        return f"{type(exc).__name__}: {exc}"


def verify_store(url: str, *, root=None, n_shards: int | None = 3, seed: int = 0,
                 all_shards: bool = False) -> VerifyReport:
    """Check a store against its markers and its raw data.

    Every shard's bytes are checked against the sha256 of its completion marker; then
    ``n_shards`` shards drawn with ``numpy.random.default_rng(seed)`` (every shard when
    ``all_shards`` or ``n_shards is None``) are recomputed from the raw files with the
    store's own parameters and compared exactly (frames, labels, n_events, sample ids).
    Raises ``CacheError`` when ``url`` is not an eventkit store, ``DatasetNotFound`` when
    the raw data are absent.
    """
    from eventkit.cache import CacheStore
    from eventkit.datasets import resolve_root

    if n_shards is not None and (isinstance(n_shards, bool) or int(n_shards) < 0):
        raise ParameterError(f"n_shards (--shards) must be an integer >= 0, got {n_shards!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ParameterError(f"seed (--seed) of the shard draw must be an integer >= 0, got {seed!r}")
    store = CacheStore.open(url, require_complete=False)
    meta = store.meta
    params = meta["params"]
    spec = _spec(meta["dataset"])
    split = meta["split"]
    report = VerifyReport(url=store.url, n_shards=int(store.n_shards), checked_shards=[],
                          marked_complete=bool(meta.get("complete")))
    complete = []
    for k in range(store.n_shards):
        if not store.is_shard_complete(k):
            report.incomplete_shards.append(k)
            continue
        problem = _check_shard_bytes(store, k)
        if problem is not None:
            report.corrupt_shards.append((k, problem))
        complete.append(k)
    if all_shards or n_shards is None or int(n_shards) >= len(complete):
        chosen = complete
    else:
        rng = np.random.default_rng(seed)
        chosen = sorted(int(k) for k in rng.choice(np.asarray(complete), size=int(n_shards), replace=False))
    if not chosen:
        return report
    root_path = resolve_root(spec.name, root)
    stored_ids = list(store.sample_ids())
    stored_events = np.asarray(store.n_events(), dtype=np.int64)
    if params["kind"] == "static":
        images, all_labels = spec.load_images(root_path, split)
        if images.shape[0] != store.n_samples:
            raise CacheError(f"{url}: the store holds {store.n_samples} samples but {spec.name}/{split} under "
                             f"{root_path} has {images.shape[0]}: it was built from other raw data")
        all_ids = _static_ids(spec, root_path, split, images.shape[0])
    else:
        samples = store_order(spec.samples(root_path, split))
        if len(samples) != store.n_samples:
            raise CacheError(f"{url}: the store holds {store.n_samples} samples but {spec.name}/{split} under "
                             f"{root_path} has {len(samples)}: it was built from other raw data")
    for k in chosen:
        lo, hi = store.shard_range(k)
        if params["kind"] == "static":
            frames = _encode_images(np.ascontiguousarray(images[lo:hi]), lo, params)
            labels = np.asarray(all_labels[lo:hi], dtype=np.int64)
            n_events = np.count_nonzero(frames.reshape(frames.shape[0], -1), axis=1).astype(np.int64)
            ids = all_ids[lo:hi]
        else:
            frames, labels, n_events, ids = _compute_frames_shard(spec.name, split, k, samples[lo:hi], params)
        report.checked_shards.append(k)
        try:
            got_frames, got_labels = store.read_shard(k)
        except Exception:  # noqa: BLE001 - undecodable shard: every sample mismatches
            report.mismatches.extend((k, i, stored_ids[i] if i < len(stored_ids) else ids[i - lo])
                                     for i in range(lo, hi))
            continue
        for j, i in enumerate(range(lo, hi)):
            same = (got_frames.shape[1:] == frames.shape[1:] and got_frames.dtype == frames.dtype
                    and np.array_equal(got_frames[j], frames[j])
                    and int(got_labels[j]) == int(labels[j]) and int(stored_events[i]) == int(n_events[j])
                    and stored_ids[i] == ids[j])
            if not same:
                report.mismatches.append((k, i, ids[j]))
    return report
