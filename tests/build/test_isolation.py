"""Builder isolation: a sample that crashes or hangs the reader is named in one line, the other shards are
kept; ``skip_bad`` leaves such samples out and records them in the store (shown by ``cache info``)."""
from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest
from click.testing import CliRunner

from eventkit import testing
from eventkit.build import BuildError, build_cache, isolation, store_order, verify_store
from eventkit.cache import CacheStore
from eventkit.cli.main import cli
from eventkit.datasets import get_dataset
from eventkit.datasets.access import Dataset
from eventkit.errors import CacheError

pytestmark = pytest.mark.skipif(not isolation.can_isolate(), reason="isolation needs os.fork")


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return testing.make_nmnist_root(tmp_path_factory.mktemp("raw") / "nmnist", per_class_train=2, per_class_test=1)


@pytest.fixture
def bad_sample(raw, monkeypatch):
    """Make one sample's read crash (SIGSEGV), hang or raise, in the isolated task processes."""
    sample = store_order(get_dataset("nmnist").samples(raw, "test"))[4]  # shard 1 of 3-sample shards
    real = Dataset.iter_events
    behaviour = {}

    def iter_events(self, samples):
        for s in samples:
            if s.sample_id == sample.sample_id:
                how = behaviour["how"]
                if how == "crash":
                    os.kill(os.getpid(), signal.SIGSEGV)
                elif how == "hang":
                    time.sleep(600)
                else:
                    raise ValueError("a decoder refused the file")
            yield from real(self, [s])

    monkeypatch.setattr(Dataset, "iter_events", iter_events)

    def arm(how: str):
        behaviour["how"] = how
        isolation.reset_sandbox()  # the next task forks a sandbox that has the patched reader
        return sample

    yield arm
    monkeypatch.undo()
    isolation.reset_sandbox()


def _kw(raw, cache, **extra):
    return dict(T=3, root=raw, cache=cache, splits=["test"], shard_size=3, progress=False, **extra)


@pytest.mark.parametrize("how, reason", [("crash", r"killed the builder process \(SIGSEGV\)"),
                                         ("hang", r"did not finish within 3 s \(the task time limit\)")])
def test_a_sample_that_crashes_or_hangs_is_named_and_the_other_shards_are_kept(raw, tmp_path, bad_sample, how,
                                                                                reason):
    sample = bad_sample(how)
    t0 = time.monotonic()
    with pytest.raises(BuildError, match=reason) as info:
        build_cache("nmnist", **_kw(raw, tmp_path / "c", task_timeout=3))
    assert time.monotonic() - t0 < 120
    message = str(info.value)
    assert "\n" not in message and sample.sample_id in message and str(sample.path) in message
    assert message.startswith("nmnist/test shard 1: sample ") and info.value.sample_id == sample.sample_id
    url = _url(raw, tmp_path / "c")
    store = CacheStore.open(url, require_complete=False)
    assert store.missing_shards() == [1]  # every other shard was built and kept for the resume
    assert not store.meta["complete"]


def _url(raw, cache) -> str:
    from eventkit.build import frames_store_url

    return frames_store_url("nmnist", "test", T=3, cache=cache)


@pytest.mark.parametrize("how", ["crash", "hang", "raise"])
def test_skip_bad_leaves_the_sample_out_and_records_it(raw, tmp_path, bad_sample, how):
    sample = bad_sample(how)
    result = build_cache("nmnist", **_kw(raw, tmp_path / "c", task_timeout=3, skip_bad=True))
    url = result.stores["test"]
    store = CacheStore.open(url)
    (skipped,) = store.skipped_samples()
    index = store.sample_ids().index(sample.sample_id)
    assert skipped["index"] == index and skipped["sample_id"] == sample.sample_id
    assert {"crash": "SIGSEGV", "hang": "did not finish", "raise": "a decoder refused"}[how] in skipped["error"] \
        or how != "raise" and "killed or hung" in skipped["error"]
    assert store.labels()[index] == -1 and not store.read_sample(index)[0].any()
    assert store.n_events()[index] == 0 and result.skipped == {"test": [skipped]}
    others = [i for i in range(store.n_samples) if i != index]
    assert (store.labels()[others] >= 0).all()
    info = CliRunner().invoke(cli, ["cache", "info", url])
    assert f"skipped:    sample {index} ({sample.sample_id}): " in info.output
    assert json.loads(CliRunner().invoke(cli, ["cache", "info", url, "--json"]).output)["skipped_samples"] == [skipped]
    assert verify_store(url, root=raw, all_shards=True).mismatches == []  # the recomputed shard skips it too
    from eventkit.loader import FrameDataset, FrameStream

    served = [i for _, _, i in FrameStream(url, return_index=True)]
    assert sorted(served) == others  # the loaders never serve a skipped sample
    assert len(FrameDataset(url)) == len(others) and -1 not in FrameDataset(url).labels()
    assert len(FrameDataset(url, samples=[index, others[0]])) == 1
    with pytest.raises(CacheError, match="leaves out 1 bad samples .*rerun with --skip-bad"):
        build_cache("nmnist", **_kw(raw, tmp_path / "c"))  # strict by default: never served silently
    assert build_cache("nmnist", **_kw(raw, tmp_path / "c", skip_bad=True)).built_samples == 0


def test_a_python_error_is_named_without_isolation_too(raw, tmp_path, bad_sample):
    sample = bad_sample("raise")
    with pytest.raises(BuildError, match="ValueError: a decoder refused the file") as info:
        build_cache("nmnist", **_kw(raw, tmp_path / "c", task_timeout=None))
    assert sample.sample_id in str(info.value)
    assert np.array_equal(CacheStore.open(_url(raw, tmp_path / "c"), require_complete=False).missing_shards(), [1])


def test_task_timeout_is_checked(raw, tmp_path):
    from eventkit.errors import ParameterError

    for bad in (0, -1, float("nan"), "x"):
        with pytest.raises(ParameterError, match="task_timeout"):
            build_cache("nmnist", **_kw(raw, tmp_path / "c", task_timeout=bad))
