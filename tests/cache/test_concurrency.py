"""Several builders of one store at once (processes, DDP ranks), and the files killed writers leave behind."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from eventkit import testing
from eventkit.build import build_cache, verify_store
from eventkit.cache import CacheStore
from eventkit.cache.objects import _HOST, StoreIO
from tests.cache.builders import REPO, builder_cmd, tree
from tests.cache.helpers import write_store


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return testing.make_nmnist_root(tmp_path_factory.mktemp("raw") / "nmnist", per_class_train=3, per_class_test=1)


def _race(n: int, kwargs: dict, go) -> list[tuple[int, str, str]]:
    procs = [subprocess.Popen(builder_cmd(dict(kwargs, go=str(go))), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=REPO) for _ in range(n)]
    go.write_text("")
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append((p.returncode, stdout, stderr))
    return out


@pytest.mark.parametrize("n", [2, 3])
def test_builders_of_one_local_store_at_once_all_succeed_with_the_same_bytes(raw, tmp_path, n):
    """n processes (two users, or n DDP ranks) call build_cache on one store at once: all exit 0 and the
    store is byte-identical to a one-process build, with no stray file."""
    kw = dict(T=4, root=raw, splits=["train"], shard_size=2, progress=False)
    ref = build_cache("nmnist", cache=tmp_path / "ref", **kw)
    runs = _race(n, dict(kw, cache=str(tmp_path / "shared")), tmp_path / "go")
    assert [rc for rc, _, _ in runs] == [0] * n, [err[-3000:] for _, _, err in runs]
    urls = {json.loads(out)["stores"]["train"] for _, out, _ in runs}
    assert len(urls) == 1
    (url,) = urls
    assert tree(url) == tree(ref.stores["train"])
    assert verify_store(url, root=raw, all_shards=True).ok


def test_a_valid_marker_is_never_deleted_or_rewritten(tmp_path):
    """A second writer of a marked shard writes the same data and keeps the first marker."""
    url = str(tmp_path / "toy.zarr")
    store = write_store(url, 9, 3, complete=False)
    marker = tmp_path / "toy.zarr" / "completion" / "1.json"
    first = marker.read_bytes()
    os.utime(marker, (1, 1))
    other = CacheStore.create_resume(url)
    frames, labels = store.read_range(3, 6)
    assert other.write_shard(1, frames, labels, store.n_events()[3:6], store.sample_ids()[3:6]) is False
    assert marker.read_bytes() == first and marker.stat().st_mtime == 1
    marker.write_text("{cut sho")  # a marker damaged by something else is replaced
    assert other.write_shard(1, frames, labels, store.n_events()[3:6], store.sample_ids()[3:6]) is True
    assert marker.read_bytes() == first


def test_a_resumed_build_removes_the_temporary_files_of_dead_writers_only(raw, tmp_path):
    kw = dict(T=4, root=raw, splits=["train"], shard_size=4, progress=False)
    url = build_cache("nmnist", cache=tmp_path / "c", **kw).stores["train"]
    expected = tree(url)
    dead = _dead_pid()
    frames = "frames/c/1/0/0/0/0"
    left = {f"{frames}.{_HOST}-{dead}.tmp": b"half a shard", f"completion/2.json.{_HOST}-{dead}.tmp": b"{",
            f"label/c/0.otherhost-{dead}.tmp": b"recent, from another machine: may be in flight"}
    alive = f"sample_id/c/3.{_HOST}-{os.getpid()}.tmp"  # a writer that is running (this process)
    io = StoreIO(url)
    for key, data in {**left, alive: b"x"}.items():
        (tmp_path / "c").joinpath(url, key).write_bytes(data)
    report = verify_store(url, root=raw, n_shards=0)
    assert not report.ok and report.stray_files == sorted([*left, alive])
    assert sorted(io.stale_temp_files()) == sorted(k for k in left if "otherhost" not in k)
    (tmp_path / "c").joinpath(url, "completion", "0.json").unlink()  # a shard to resume
    _unmark(url)
    build_cache("nmnist", cache=tmp_path / "c", **kw)
    files = tree(url)
    assert set(files) - set(expected) == {alive, f"label/c/0.otherhost-{dead}.tmp"}
    os.utime(os.path.join(url, f"label/c/0.otherhost-{dead}.tmp"), (0, 0))  # an hour old and more: stale
    assert io.stale_temp_files() == [f"label/c/0.otherhost-{dead}.tmp"]


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _unmark(url: str) -> None:
    import zarr

    group = zarr.open_group(url, mode="r+")
    group.attrs.put({"eventkit": {**group.attrs["eventkit"], "complete": False}})
