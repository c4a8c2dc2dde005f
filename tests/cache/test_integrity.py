"""A damaged byte anywhere in a shard file or a label chunk is a CacheError from the loaders, never data."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from eventkit.errors import CacheError
from eventkit.loader import FrameDataset, FrameStream
from tests.cache.helpers import write_store

N, SHARD = 20, 3  # 7 shards


def _offsets(size: int, n: int = 40) -> list[int]:
    """``n`` offsets spread over a file, plus every byte of its last 56 (index and crc32c)."""
    spread = {int(round(i * (size - 1) / (n - 1))) for i in range(n)}
    return sorted(spread | set(range(max(0, size - 56), size)))


def _read_everything(url: str) -> None:
    ds = FrameDataset(url)
    for i in range(len(ds)):
        ds[i]
    for _ in FrameStream(url, shuffle=False):
        pass


@pytest.fixture
def store_url(tmp_path):
    url = str(tmp_path / "toy.zarr")
    write_store(url, N, SHARD)
    return url


def _expect_cache_error(url: str, shard: int) -> None:
    for reader in (lambda: [FrameDataset(url)[i] for i in range(N)], lambda: list(FrameStream(url, shuffle=False))):
        with pytest.raises(CacheError) as info:
            reader()
        message = str(info.value)
        assert message.startswith(url) and f"shard {shard} " in message, message
        assert re.search(r"sample \d+|samples \d+\.\.\d+|corrupt index", message), message


def test_any_flipped_byte_of_a_shard_file_is_a_cache_error(store_url):
    _read_everything(store_url)  # intact: no error
    for shard in (0, 3, 6):  # the first, a middle and the short last shard
        path = Path(store_url, "frames", "c", str(shard), "0", "0", "0", "0")
        original = path.read_bytes()
        for pos in _offsets(len(original)):
            damaged = bytearray(original)
            damaged[pos] ^= 1 << (pos % 8)
            path.write_bytes(bytes(damaged))
            _expect_cache_error(store_url, shard)
        path.write_bytes(original)
    _read_everything(store_url)


def test_any_flipped_byte_of_a_label_chunk_is_a_cache_error(store_url):
    for shard in (1, 6):
        path = Path(store_url, "label", "c", str(shard))
        original = path.read_bytes()
        for pos in range(len(original)):  # every byte
            damaged = bytearray(original)
            damaged[pos] ^= 0x80
            path.write_bytes(bytes(damaged))
            for make in (FrameDataset, FrameStream):
                with pytest.raises(CacheError, match=re.escape(f"{store_url}: shard {shard} label chunk (samples ")):
                    make(store_url)
        path.write_bytes(original)
    _read_everything(store_url)
