"""eventkit.cache.codec: byte for byte what zarr's own writer writes, and read back by zarr's own reader."""
from __future__ import annotations

import json

import google_crc32c
import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from zarr.codecs import Crc32cCodec, ZstdCodec
from zarr.storage import MemoryStore

from eventkit.cache import codec
from eventkit.cache.layout import build_attrs, render_documents

COMPRESSORS = [ZstdCodec(level=3, checksum=False), Crc32cCodec()]


def _zarr_group(n: int, s: int, shape: tuple[int, ...], dtype) -> tuple[MemoryStore, zarr.Group]:
    """Arrays with the cache's codecs, written by zarr itself (every chunk stored, as eventkit does)."""
    store = MemoryStore()
    group = zarr.open_group(store, mode="w")
    cfg = {"write_empty_chunks": True}
    group.create_array("frames", shape=(n, *shape), chunks=(1, *shape), shards=(s, *shape), dtype=dtype,
                       compressors=COMPRESSORS, fill_value=0, config=cfg)
    group.create_array("label", shape=(n,), chunks=(s,), dtype="<i8", compressors=COMPRESSORS, fill_value=-1,
                       config=cfg)
    group.create_array("sample_id", shape=(n,), chunks=(s,), dtype=str, compressors=COMPRESSORS, fill_value="",
                       config=cfg)
    return store, group


def _bytes(store: MemoryStore, key: str) -> bytes:
    return store._store_dict[key].to_bytes()


ids_strategy = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 9), s=st.integers(1, 4), dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       dtype=st.sampled_from(["<u2", "|u1"]), seed=st.integers(0, 2**16), data=st.data())
def test_codec_writes_the_bytes_zarr_writes_and_reads_what_zarr_writes(n, s, dims, dtype, seed, data):
    shape = tuple(dims)
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 4, size=(n, *shape)).astype(dtype)
    frames[rng.random(n) < 0.3] = 0  # all-zero samples: left out of the shard by both writers
    labels = rng.integers(-3, 10**12, size=n)
    ids = data.draw(st.lists(ids_strategy, min_size=n, max_size=n))
    store, group = _zarr_group(n, s, shape, dtype)
    group["frames"][:] = frames
    group["label"][:] = labels
    group["sample_id"][:] = np.array(ids, dtype=object)
    for k in range(-(-n // s)):
        a, b = k * s, min((k + 1) * s, n)
        ours = codec.encode_shard([codec.encode_chunk(frames[i]) if frames[i].any() else None for i in range(a, b)], s)
        key = f"frames/c/{k}" + "/0" * len(shape)
        if key not in store._store_dict:  # zarr leaves out a shard of zeros only; eventkit stores it
            assert not frames[a:b].any()
            continue
        theirs = _bytes(store, key)
        assert ours == theirs, k
        assert codec.encode_int64_chunk(labels[a:b], s, -1) == _bytes(store, f"label/c/{k}")
        if any(ids[a:b]):  # zarr leaves out a chunk of fill values only (eventkit writes every chunk)
            assert codec.encode_strings_chunk(ids[a:b], s) == _bytes(store, f"sample_id/c/{k}")
        # ... and our decoder reads zarr's bytes
        index = codec.parse_index(theirs[-codec.index_nbytes(s):], s, len(theirs))
        for j, i in enumerate(range(a, b)):
            if index[j, 0] == codec.ABSENT:
                assert not frames[i].any()
                continue
            out = np.empty(shape, dtype=dtype)
            off, nb = (int(v) for v in index[j])
            codec.decode_chunk_into(theirs[off:off + nb], out)
            assert np.array_equal(out, frames[i])
        assert codec.decode_int64_chunk(_bytes(store, f"label/c/{k}"), s)[:b - a].tolist() == labels[a:b].tolist()
        if any(ids[a:b]):
            assert codec.decode_strings_chunk(_bytes(store, f"sample_id/c/{k}"), s)[:b - a] == ids[a:b]


def test_zarr_reads_the_bytes_the_codec_writes():
    n, s, shape = 7, 3, (2, 3, 4)
    frames = np.arange(n * 24, dtype="<u2").reshape(n, *shape) % 5
    store, group = _zarr_group(n, s, shape, "<u2")
    for k in range(3):
        a, b = k * s, min((k + 1) * s, n)
        store._store_dict[f"frames/c/{k}/0/0/0"] = store._store_dict["frames/zarr.json"].__class__.from_bytes(
            codec.encode_shard([codec.encode_chunk(frames[i]) for i in range(a, b)], s))
    assert np.array_equal(zarr.open_group(store, mode="r")["frames"][:], frames)


def test_store_metadata_documents_are_zarrs():
    attrs = build_attrs({"dataset": "x", "split": "train", "representation": "frames", "params": {"T": 2}},
                        (2, 1, 3, 3), "uint16", 10, 4)
    docs = render_documents(attrs)
    store, _ = _zarr_group(10, 4, (2, 1, 3, 3), "<u2")
    for key in ("frames/zarr.json", "label/zarr.json", "sample_id/zarr.json"):
        assert json.loads(docs[key]) == json.loads(_bytes(store, key)), key
    assert json.loads(docs["zarr.json"])["attributes"]["eventkit"]["format_version"] == 2


def test_every_damaged_byte_is_a_chunk_error():
    chunk = codec.encode_chunk(np.arange(60, dtype="<u2"))
    shard = codec.encode_shard([chunk, codec.encode_chunk(np.ones(60, dtype="<u2"))], 3)
    for pos in range(len(chunk)):
        bad = bytearray(chunk)
        bad[pos] ^= 0x10
        with pytest.raises(codec.ChunkError):
            codec.decode_chunk_into(bytes(bad), np.empty(60, dtype="<u2"))
    tail = shard[-codec.index_nbytes(3):]
    for pos in range(len(tail)):
        bad = bytearray(tail)
        bad[pos] ^= 0x01
        with pytest.raises(codec.ChunkError):
            codec.parse_index(bytes(bad), 3, len(shard))
    for blob in (b"", b"\x00\x01", chunk[:-1]):
        with pytest.raises(codec.ChunkError):
            codec.decode_chunk(blob, 120)
    label = codec.encode_int64_chunk([1, 2], 3, -1)
    strings = codec.encode_strings_chunk(["a", "é"], 3)
    for blob, decode in ((label, lambda b: codec.decode_int64_chunk(b, 3)),
                         (strings, lambda b: codec.decode_strings_chunk(b, 3))):
        for pos in range(len(blob)):
            bad = bytearray(blob)
            bad[pos] ^= 0x80
            with pytest.raises(codec.ChunkError):
                decode(bytes(bad))


def test_a_valid_crc_does_not_hide_a_wrong_size_or_count():
    body = bytes(codec._ZSTD_WRITE.encode(b"\x00" * 10))
    blob = body + google_crc32c.value(body).to_bytes(4, "little")
    with pytest.raises(codec.ChunkError, match="declares 10 bytes, expected 120"):
        codec.decode_chunk(blob, 120)
    with pytest.raises(codec.ChunkError, match="holds 2 strings, expected 3"):
        codec.decode_strings_chunk(codec.encode_strings_chunk(["a", "b"], 2), 3)
    index_past_end = codec.encode_shard([b"x" * 10], 1)
    with pytest.raises(codec.ChunkError, match="past the chunk data"):
        codec.parse_index(index_past_end[-20:], 1, 15)
