"""A ``memory://`` cache lives in one process: the sandboxed shard writers cannot reach it, and
the error says so and how to build it; in-process (``task_timeout=None``) it builds."""
from __future__ import annotations

import uuid

import pytest

from eventkit.build import build_cache
from eventkit.cache import CacheStore
from eventkit.errors import CacheError
from eventkit.testing import make_nmnist_root


def test_a_memory_cache_names_the_process_boundary_and_builds_in_process(tmp_path):
    root = make_nmnist_root(tmp_path / "raw", per_class_train=1, per_class_test=1)
    url = f"memory://ek-{uuid.uuid4().hex[:8]}"
    with pytest.raises(CacheError, match=r"memory:// store exists in one process only.*task_timeout=None"):
        build_cache("nmnist", T=3, root=root, cache=url, progress=False)
    res = build_cache("nmnist", T=3, root=root, cache=url + "-inproc", progress=False, task_timeout=None)
    assert CacheStore.open(res.stores["train"]).n_samples == 10
