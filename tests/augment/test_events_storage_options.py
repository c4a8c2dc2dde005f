"""Event stores on an fsspec URL reached with storage options (as s3fs needs ``endpoint_url``).

The URLs here are ``ekopts://``: fsspec's in-memory filesystem that refuses to start without
the storage option ``token=TOKEN`` and records every refusal. Building, resuming, opening,
pickling into DataLoader workers and the trainer's event-store call sites must hand the
options on: one call without them is a failed test (also where the code would swallow the
error, through the refusal record checked after every test).
"""
from __future__ import annotations

import pickle
import uuid

import numpy as np
import pytest
import torch
from fsspec import register_implementation
from fsspec.implementations.memory import MemoryFileSystem

import eventkit.events_build as events_build
from eventkit.augment import EventAugment
from eventkit.build import build_cache
from eventkit.errors import CacheError, ParameterError
from eventkit.event_stream import EventFrameStream, make_event_loader
from eventkit.events_build import build_events_store
from eventkit.events_store import EventStore
from eventkit.testing import make_nmnist_root
from tests.train.trainer_helpers import tiny_config

TOKEN = "sesame"
OPTIONS = {"token": TOKEN}
SHARD = 4


class OptionsFS(MemoryFileSystem):
    """``ekopts://``: an in-memory filesystem of its own that needs ``token=TOKEN`` to start."""

    protocol = ("ekopts",)
    store: dict = {}
    pseudo_dirs = [""]
    refused: list = []

    def __init__(self, *args, token=None, **kwargs):
        if token != TOKEN:
            OptionsFS.refused.append(token)
            raise PermissionError(f"ekopts: token {token!r} refused")
        super().__init__(*args, **kwargs)

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path).removeprefix("ekopts://").strip("/")
        return "/" + path if path else ""


register_implementation("ekopts", OptionsFS, clobber=True)


def _keys(prefix: str) -> list[str]:
    root = OptionsFS._strip_protocol(prefix)
    return [k for k in OptionsFS.store if k.startswith(root + "/")]


@pytest.fixture(autouse=True)
def every_call_has_the_options():
    OptionsFS.refused.clear()
    yield
    assert OptionsFS.refused == [], "a filesystem call went out without the storage options"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("opts")
    root = make_nmnist_root(d / "raw", per_class_train=2)
    cache = f"ekopts://bucket-{uuid.uuid4().hex[:8]}/cache"
    OptionsFS.refused.clear()
    remote = build_events_store("nmnist", root=root, cache=cache, shard_size=SHARD, progress=False,
                                storage_options=OPTIONS)
    assert OptionsFS.refused == [], "the build made a filesystem call without the storage options"
    local = build_events_store("nmnist", root=root, cache=d / "c", shard_size=SHARD, progress=False)
    return {"root": root, "cache": cache, "remote": remote, "local": local}


def _same_samples(a: EventStore, b: EventStore) -> None:
    assert a.n_samples == b.n_samples > 0 and a.sample_ids() == b.sample_ids()
    for i in range(a.n_samples):
        (ea, la), (eb, lb) = a.read_sample(i), b.read_sample(i)
        assert la == lb and np.array_equal(ea, eb), i


def test_build_and_open_on_a_url_with_storage_options(built):
    remote, cache = built["remote"], built["cache"]
    assert set(remote.stores) == {"train", "test"}
    for split, url in remote.stores.items():
        assert url.startswith(cache + "/nmnist/" + split + "/events-"), url
        assert any(k.endswith("/zarr.json") for k in _keys(url))  # on the URL's own filesystem
        assert not _keys(url + ".staging")  # staging removed through the same filesystem
        store = EventStore.open(url, storage_options=OPTIONS)
        assert store.storage_options == OPTIONS
        _same_samples(store, EventStore.open(built["local"].stores[split]))
        assert remote.store_bytes[split] == sum(len(OptionsFS.store[k].getvalue()) for k in _keys(url)) > 0
    again = build_events_store("nmnist", root=built["root"], cache=cache, shard_size=SHARD, progress=False,
                               storage_options=OPTIONS)
    assert again.built_samples == 0 and again.stores == remote.stores  # the complete store is found and reused


def test_without_the_options_the_store_is_a_cache_error_naming_the_url(built, tmp_path):
    url = built["remote"].stores["train"]
    with pytest.raises(CacheError, match=f"{url}: cannot read the event store .*PermissionError.*storage_options"):
        EventStore.open(url)
    with pytest.raises(CacheError, match=f"{url}x: no event store"):
        EventStore.open(url + "x", storage_options=OPTIONS)
    with pytest.raises(CacheError, match=built["cache"]):
        build_events_store("nmnist", root=built["root"], cache=built["cache"], splits=["train"], progress=False)
    assert OptionsFS.refused  # the filesystem was asked without its token
    OptionsFS.refused.clear()
    with pytest.raises(ParameterError, match="apply to URLs"):
        build_events_store("nmnist", root=built["root"], cache=tmp_path / "c", splits=["train"], progress=False,
                           storage_options=OPTIONS)
    with pytest.raises(ParameterError, match="apply to URLs"):
        EventStore.open(built["local"].stores["train"], storage_options=OPTIONS)


def test_an_interrupted_build_resumes_from_the_markers_on_the_url(built, monkeypatch):
    cache = f"ekopts://bucket-{uuid.uuid4().hex[:8]}/cache"
    real = events_build._stage_task
    staged: list[int] = []
    kill_at = [3]

    def failing(staging, name, split, k, samples, **kw):
        assert kw == {"storage_options": OPTIONS}  # the options reach the staging step
        if k in kill_at:
            raise RuntimeError("killed")
        staged.append(k)
        return real(staging, name, split, k, samples, **kw)

    monkeypatch.setattr(events_build, "_stage_task", failing)
    run = dict(root=built["root"], cache=cache, splits=["train"], progress=False, storage_options=OPTIONS)
    with pytest.raises(RuntimeError, match="killed"):
        build_events_store("nmnist", shard_size=SHARD, **run)
    url = built["remote"].stores["train"].replace(built["cache"], cache)
    assert staged == [0, 1, 2] and not any(k.endswith("/zarr.json") for k in _keys(url))
    assert {k.rsplit("/", 1)[1] for k in _keys(url + ".staging")} >= {"plan.json", "0.json", "2.part"}
    staged.clear()
    kill_at.clear()
    result = build_events_store("nmnist", **run)  # the plan's shard size is read back from the URL
    assert staged == [3, 4] and result.built_samples == 8 and result.stores["train"] == url
    _same_samples(EventStore.open(url, storage_options=OPTIONS), EventStore.open(built["local"].stores["train"]))


def test_pickles_and_loader_workers_keep_the_options(built):
    url = built["remote"].stores["train"]
    clone = pickle.loads(pickle.dumps(EventStore.open(url, storage_options=OPTIONS)))
    assert clone.storage_options == OPTIONS and clone.read_sample(3)[1] == clone.labels()[3]
    aug = EventAugment.from_table([{"op": "flip_lr"}, {"op": "drop_event", "p": 0.3}], source="t")
    stream = EventFrameStream(url, T=6, augment=aug, storage_options=OPTIONS)
    assert pickle.loads(pickle.dumps(stream))._lazy.store().storage_options == OPTIONS
    local = make_event_loader(built["local"].stores["train"], 4, T=6, augment=aug, workers=0, seed=2)
    remote = make_event_loader(url, 4, T=6, augment=aug, workers=2, seed=2, storage_options=OPTIONS,
                               multiprocessing_context="fork")  # the workers open the store themselves
    want, got = list(local), list(remote)
    assert len(got) == len(want) == 5
    for (xg, yg), (xw, yw) in zip(got, want, strict=True):
        assert torch.equal(xg, xw) and torch.equal(yg, yw)


def test_the_trainer_builds_and_reads_the_event_store_with_config_storage_options(tmp_path):
    from eventkit_train.data import EVENTS, open_data, prepare_data, split_loader
    from eventkit_train.trainer import train

    cache = f"ekopts://bucket-{uuid.uuid4().hex[:8]}/cache"
    fake = {"root": str(make_nmnist_root(tmp_path / "raw", per_class_train=2)), "cache": cache}
    cfg = tiny_config(fake, tmp_path / "run", storage_options=OPTIONS, epochs=1,
                      augment={"event": [{"op": "flip_lr"}, {"op": "crop", "size": [30, 30]}]})
    # the frame cache first, in this process (its isolated shard tasks would write another process's memory)
    frames = build_cache("nmnist", T=cfg.T, split_by=cfg.split_by, dtype=cfg.dtype, root=fake["root"], cache=cache,
                         storage_options=OPTIONS, task_timeout=None, progress=False)
    stores = prepare_data(cfg, progress=False)
    assert {s: stores[s] for s in ("train", "test")} == frames.stores
    assert set(stores) == {"train", "test", EVENTS + "train", EVENTS + "test"}  # crop evaluates: test on the fly
    assert all(url.startswith(cache + "/") and _keys(url) for url in stores.values())
    data = open_data(cfg, stores, warn=False)
    assert data.input_shape[-2:] == (30, 30)
    loader = split_loader(cfg, data, "test", train=False, samples=None, batch_size=5, rank=0, world_size=1,
                          pin_memory=False, workers=1)
    assert isinstance(loader.dataset, EventFrameStream) and sum(len(y) for _, y in loader) == data_size(stores)
    assert train(cfg, progress=False)["epochs"] == 1


def data_size(stores: dict[str, str]) -> int:
    return EventStore.open(stores["events:test"], storage_options=OPTIONS).n_samples


def test_make_augmented_loader_hands_the_options_to_the_event_store(built):
    from eventkit_train.augment import make_augmented_loader

    aug = {"event": [{"op": "flip_lr"}]}
    loader = make_augmented_loader("nmnist", "train", T=3, batch_size=2, augment=aug, root=built["root"],
                                   cache=built["cache"], storage_options=OPTIONS, seed=1)
    local = make_augmented_loader("nmnist", "train", T=3, batch_size=2, augment=aug, root=built["root"],
                                  cache=built["local"].stores["train"].rsplit("/nmnist/", 1)[0], seed=1)
    for (a, la), (b, lb) in zip(loader, local, strict=True):
        assert torch.equal(a, b) and torch.equal(la, lb)
