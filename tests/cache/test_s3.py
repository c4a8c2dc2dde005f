"""Object stores, on an S3-compatible server (moto) on 127.0.0.1: several workers, storage options,
request counts, the loader's requests, concurrent builders."""
from __future__ import annotations

import json
import subprocess
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from eventkit import testing
from eventkit.build import build_cache, verify_store
from eventkit.cache import CacheStore
from eventkit.cli.main import cli
from tests.cache.builders import REPO, builder_cmd, tree
from tests.cache.s3server import request_kind as _kind


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return testing.make_nmnist_root(tmp_path_factory.mktemp("raw") / "nmnist", per_class_train=3, per_class_test=1)


def test_two_workers_to_s3_finish_and_match_a_local_build(s3, raw, tmp_path):
    """Builds with several workers used to end with "shards [...] are still missing": s3fs answered the
    completion check from the listing it had cached before the workers wrote their markers."""
    bucket = s3.bucket()
    kw = dict(T=4, root=raw, splits=["train"], shard_size=4, progress=False)
    local = build_cache("nmnist", cache=tmp_path / "local", **kw)
    remote = build_cache("nmnist", cache=f"s3://{bucket}/c", workers=2, storage_options=s3.storage_options, **kw)
    url = remote.stores["train"]
    assert url.startswith(f"s3://{bucket}/c/nmnist/train/frames-")
    assert tree(url, s3.storage_options) == tree(local.stores["train"])
    assert CacheStore.open(url, storage_options=s3.storage_options).meta["complete"] is True
    assert verify_store(url, root=raw, all_shards=True, storage_options=s3.storage_options).ok


def test_requests_per_shard_written_and_per_sample_read(s3, raw):
    """The figures of docs/cache-format.md: 6 requests per shard written (a GET of its marker, 4 PUTs of
    data, the marker's conditional PUT); 1 GET per sample read once its shard's index is known."""
    bucket = s3.bucket()
    mark = s3.mark()
    r = build_cache("nmnist", T=4, root=raw, cache=f"s3://{bucket}/c", splits=["train"], shard_size=4,
                    progress=False, storage_options=s3.storage_options, task_timeout=None)
    requests = s3.requests(mark, bucket)
    store = CacheStore.open(r.stores["train"], storage_options=s3.storage_options)
    n = store.n_shards
    per_kind = Counter((m, _kind(p)) for m, p in requests)
    assert per_kind[("PUT", "frames")] == per_kind[("PUT", "label")] == per_kind[("PUT", "sample_id")] == n
    assert per_kind[("PUT", "marker")] == n and per_kind[("GET", "marker")] == n  # the skip check of each task
    shard_requests = sum(v for (m, kind), v in per_kind.items() if kind not in ("metadata", "list", "other"))
    assert shard_requests == 6 * n, per_kind
    assert sum(v for (m, kind), v in per_kind.items() if kind in ("metadata", "list", "other")) <= 30, per_kind
    mark = s3.mark()
    store = CacheStore.open(r.stores["train"], storage_options=s3.storage_options)
    assert Counter(_kind(p) for _, p in s3.requests(mark, bucket)) == {"metadata": 6}  # no marker read
    mark = s3.mark()
    store.labels()  # once per store open: one GET per shard
    assert Counter(_kind(p) for _, p in s3.requests(mark, bucket)) == {"label": n}
    mark = s3.mark()
    store.read_sample(0)  # the index of shard 0, then the sample
    store.read_sample(1)
    store.read_sample(2)
    assert [_kind(p) for _, p in s3.requests(mark, bucket)] == ["frames"] * 4
    mark = s3.mark()
    store.read_shard(1)  # a whole shard: one GET
    assert [_kind(p) for _, p in s3.requests(mark, bucket)] == ["frames"]


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("stream", [True, False])
def test_loader_fetches_each_sample_once_per_epoch(s3, raw, stream, monkeypatch):
    """Two DataLoader workers, two epochs: no store metadata, label or marker request in the workers, and
    no more frame requests than one per sample plus one index read per shard and worker."""
    import fsspec

    from eventkit.loader import make_loader

    bucket = s3.bucket()
    r = build_cache("nmnist", T=4, root=raw, cache=f"s3://{bucket}/c", splits=["train"], shard_size=4,
                    progress=False, storage_options=s3.storage_options)
    url = r.stores["train"]
    monkeypatch.setitem(fsspec.config.conf, "s3", dict(s3.storage_options))  # fsspec's FSSPEC_S3 route
    loader = make_loader(url, batch_size=3, stream=stream, workers=2, shuffle=True, seed=1)
    n, n_shards = len(loader.dataset), CacheStore.open(url, storage_options=s3.storage_options).n_shards
    for epoch in range(2):
        loader.set_epoch(epoch)
        mark = s3.mark()
        seen = [int(i) for batch in loader for i in batch[1]]
        kinds = Counter(_kind(p) for _, p in s3.requests(mark, bucket))
        assert len(seen) == n
        assert set(kinds) == {"frames"}, kinds
        assert kinds["frames"] <= n + 2 * n_shards, (kinds, n, n_shards)


def test_cli_storage_options_reach_build_info_verify(s3, raw):
    bucket = s3.bucket()
    opts = [f"--storage-option=endpoint_url={s3.endpoint}", "--storage-option=key=testing",
            "--storage-option=secret=testing", '--storage-option=client_kwargs={"region_name": "us-east-1"}']
    runner = CliRunner()
    res = runner.invoke(cli, ["frames", "--T", "3", "nmnist", "--root", str(raw), "--cache", f"s3://{bucket}/c",
                              "--split", "test", "--json", *opts])
    assert res.exit_code == 0, res.output
    url = json.loads(res.stdout)["stores"]["test"]
    info = runner.invoke(cli, ["cache", "info", url, "--json", *opts])
    assert info.exit_code == 0 and json.loads(info.stdout)["complete"] is True, info.output
    ok = runner.invoke(cli, ["cache", "verify", url, "--root", str(raw), "--all", *opts])
    assert ok.exit_code == 0 and "OK" in ok.output, ok.output
    listing = runner.invoke(cli, ["cache", "ls", "--cache", f"s3://{bucket}/c", "--json", *opts])
    assert [e["url"] for e in json.loads(listing.stdout)["stores"]] == [url]
    no_creds = runner.invoke(cli, ["cache", "info", url, "--storage-option", "endpoint_url=http://127.0.0.1:1"])
    assert no_creds.exit_code == 2 and "Traceback" not in no_creds.output


def test_two_builders_of_one_s3_store_at_once_both_succeed(s3, raw, tmp_path):
    bucket = s3.bucket()
    kw = dict(T=4, root=raw, splits=["train"], shard_size=2, progress=False)
    ref = build_cache("nmnist", cache=tmp_path / "ref", **kw)
    go = tmp_path / "go"
    args = dict(kw, cache=f"s3://{bucket}/c", storage_options=s3.storage_options, go=str(go))
    procs = [subprocess.Popen(builder_cmd(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
             for _ in range(2)]
    go.write_text("")
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    url = json.loads(outs[0][0])["stores"]["train"]
    assert tree(url, s3.storage_options) == tree(ref.stores["train"])
    frames, _ = CacheStore.open(url, storage_options=s3.storage_options).read_range(0, 30)
    assert np.array_equal(frames, CacheStore.open(ref.stores["train"]).read_range(0, 30)[0])


def test_create_if_absent_is_one_conditional_put_on_s3(s3):
    """Markers and metadata documents are created with If-None-Match (no check-then-put race)."""
    from eventkit.cache.objects import StoreIO

    bucket = s3.bucket()
    io = StoreIO(f"s3://{bucket}/x", s3.storage_options)
    mark = s3.mark()
    assert io.put_new("completion/0.json", b"first") is True
    assert io.put_new("completion/0.json", b"second") is False
    assert [m for m, _ in s3.requests(mark, bucket)] == ["PUT", "PUT"]
    assert io.get("completion/0.json") == b"first"
