"""The executor-shaped runner: cluster health polled while waiting, failures reported once, in-process retries."""
from __future__ import annotations

import itertools
import time

import pytest

import eventkit.cluster
from eventkit import testing
from eventkit.build import build_cache
from eventkit.build.runner import HEALTH_POLL_S, DaskExecutor, InlineExecutor
from eventkit.errors import EventkitError


class LostError(EventkitError):
    """Stands for eventkit.cluster.ClusterLostError."""


class FakeHealth:
    """Records when poll() is called; raises LostError from the ``fail_at``-th call on."""

    instances: list[FakeHealth] = []

    def __init__(self, client=None, cluster=None, *, grace_s: float = 300.0, fail_at: int | None = None):
        self.client, self.cluster, self.times, self.fail_at = client, cluster, [], fail_at
        FakeHealth.instances.append(self)

    def poll(self) -> None:
        self.times.append(time.monotonic())
        if self.fail_at is not None and len(self.times) >= self.fail_at:
            raise LostError("no worker for 300 s: the cluster is gone")


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as c:
        yield c


def test_health_is_polled_at_most_every_5_s_while_waiting(cluster):
    from distributed import Client

    assert HEALTH_POLL_S <= 5
    health = FakeHealth()
    with Client(cluster) as client:
        executor = DaskExecutor(client, health)
        futures = [executor.submit(time.sleep, 5.5)]
        t0 = time.monotonic()
        assert list(executor.as_completed(futures)) == futures
    steps = [b - a for a, b in itertools.pairwise([t0, *health.times])]
    assert len(health.times) >= 3 and max(steps) <= 5.0, steps


def test_a_lost_cluster_stops_the_wait_with_its_error(cluster):
    from distributed import Client

    with Client(cluster) as client:
        executor = DaskExecutor(client, FakeHealth(fail_at=2))
        futures = [executor.submit(time.sleep, 12)]
        t0 = time.monotonic()
        with pytest.raises(LostError, match="the cluster is gone"):
            list(executor.as_completed(futures))
        assert time.monotonic() - t0 < 15
        executor.cancel(futures)


def test_builds_on_a_scheduler_or_cluster_poll_the_cluster_health(cluster, tmp_path, monkeypatch):
    """build_cache creates eventkit.cluster.ClusterHealth(client, cluster) when it exists and polls it."""
    monkeypatch.setattr(eventkit.cluster, "ClusterHealth", FakeHealth, raising=False)
    FakeHealth.instances.clear()
    root = testing.make_nmnist_root(tmp_path / "nmnist", per_class_train=1, per_class_test=1)
    kw = dict(T=3, root=root, splits=["test"], shard_size=4, progress=False)
    build_cache("nmnist", cache=tmp_path / "a", scheduler=cluster.scheduler_address, **kw)
    build_cache("nmnist", cache=tmp_path / "b", cluster=cluster, **kw)
    (by_address, by_cluster) = FakeHealth.instances
    assert by_address.cluster is None and by_cluster.cluster is cluster
    assert by_address.times and by_cluster.times
    monkeypatch.setattr(eventkit.cluster, "ClusterHealth", lambda client, cluster=None, **kw: FakeHealth(fail_at=1))
    with pytest.raises(LostError):
        build_cache("nmnist", cache=tmp_path / "c", scheduler=cluster.scheduler_address, **kw)


def test_inline_executor_retries_transient_errors_only():
    from eventkit.errors import ParameterError

    calls = []

    def flaky(fail_times, exc):
        calls.append(1)
        if len(calls) <= fail_times:
            raise exc
        return "done"

    ex = InlineExecutor()
    (fut,) = ex.as_completed([ex.submit(flaky, 2, OSError("network"))])
    assert fut.result() == "done" and len(calls) == 3
    calls.clear()
    (fut,) = ex.as_completed([ex.submit(flaky, 1, ParameterError("bad"))])
    with pytest.raises(ParameterError):
        fut.result()
    assert len(calls) == 1


def test_waiting_on_a_lost_result_keeps_polling_the_cluster():
    """A result lost with its worker (the future times out while Dask recomputes it) is waited
    for with the cluster's health polled meanwhile; a dead cluster ends the wait."""
    from eventkit.build.runner import DaskExecutor

    class SlowFuture:
        def __init__(self, timeouts):
            self.timeouts = timeouts

        def result(self, timeout=None):
            assert timeout is not None  # never an unbounded wait
            if self.timeouts:
                self.timeouts -= 1
                raise TimeoutError
            return "value"

    class Client:
        def cancel(self, futures):
            pass

    health = FakeHealth()
    assert DaskExecutor(Client(), health, poll_s=0.01).result(SlowFuture(3)) == "value"
    assert len(health.times) == 3
    with pytest.raises(LostError):
        DaskExecutor(Client(), FakeHealth(fail_at=2), poll_s=0.01).result(SlowFuture(10))
