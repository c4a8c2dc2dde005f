"""``eventkit frames --scheduler tcp://...`` on a ``dask scheduler`` + ``dask worker`` started here.

No server outside this machine is needed, so these run in every test run. A build on the
scheduler is byte-identical to a local one; when every worker disappears mid-build the
build stops with one error line and exit 2 after the grace period instead of hanging.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.engines._cli import (
    count_markers,
    env_with,
    eventkit,
    one_line_error,
    start_eventkit,
    store_tree,
    stores_of,
    wait_for,
)

GUARD_S = 180


def _start(args: list[str]) -> subprocess.Popen:
    # own process group: the worker's nanny and its worker process are stopped together
    return subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=env_with(NUMBA_NUM_THREADS="1"))


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def scheduler(tmp_path):
    """A ``dask scheduler`` on 127.0.0.1 (free port) and one single-threaded ``dask worker``:
    ``(address, worker process)``."""
    info = tmp_path / "scheduler.json"
    sched = _start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(info)])
    worker = None
    try:
        wait_for(lambda: info.exists() and info.stat().st_size > 0, 60, "the scheduler file")
        address = json.loads(info.read_text())["address"]
        worker = _start(["distributed.cli.dask_worker", address, "--nthreads", "1", "--nworkers", "1",
                         "--no-dashboard", "--name", "test-worker"])
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=60)
        yield address, worker
    finally:
        if worker is not None:
            _stop(worker)
        _stop(sched)


def test_build_on_a_scheduler_address_is_byte_identical_to_a_local_build(scheduler, small_root, local_build,
                                                                        tmp_path):
    address, _ = scheduler
    r = eventkit("frames", "--T", "3", "nmnist", "--root", small_root, "--cache", tmp_path / "c", "--shard-size",
                 "4", "--json", "--scheduler", address, timeout=GUARD_S)
    stores = stores_of(r)
    # --json: stdout is the JSON; stderr has only plain progress lines (no bar redraws, no warnings)
    assert "\r" not in r.stderr and all(" samples" in line for line in r.stderr.splitlines()), r.stderr
    local = local_build(small_root, 4)
    for split in ("train", "test"):
        assert store_tree(stores[split]) == store_tree(local[split]), split


def test_a_build_whose_workers_all_vanish_stops_with_one_line_after_the_grace_period(scheduler, medium_root,
                                                                                    tmp_path):
    """The only worker (nanny and process) is killed mid-build: exit 2 with one line naming the scheduler
    and the grace period, a few seconds after EVENTKIT_WORKER_GRACE_S — never a hang."""
    address, worker = scheduler
    cache = tmp_path / "c"
    proc = start_eventkit("frames", "--T", "3", "nmnist", "--root", medium_root, "--cache", cache, "--shard-size",
                          "1", "--json", "--scheduler", address, env=env_with(EVENTKIT_WORKER_GRACE_S="8"))
    try:
        wait_for(lambda: count_markers(cache) >= 2 or proc.poll() is not None, 120, "the first shards")
        assert proc.poll() is None, "the build ended before its worker could be killed"
        os.killpg(worker.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        out, err = proc.communicate(timeout=GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    waited = time.monotonic() - killed_at
    line = one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    assert f"no Dask worker has been connected to the scheduler at {address} for" in line, line
    assert "rerun to resume" in line, line
    assert 8 <= waited < 8 + 30, waited  # grace period + at most a few poll intervals
