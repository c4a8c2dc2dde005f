"""``eventkit frames --cluster slurm`` on a real single-node SLURM (scripts/ci/slurm_up.sh).

A SLURM build is byte-identical to a local one; a job cancelled mid-build is replaced and
the build still ends byte-identical; a job that sbatch rejects, or that dies before its
workers connect, is one error line and exit 2 — each under a subprocess timeout, so a
hang fails the test instead of blocking CI.
"""
from __future__ import annotations

import subprocess
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

pytestmark = pytest.mark.engine

#: the guard: no SLURM test may take longer (a hang fails here)
GUARD_S = 240


def _our_jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=30).stdout
    return out.split()


def test_slurm_build_is_byte_identical_to_a_local_build(slurm, small_root, local_build, tmp_path, port_8787_taken):
    """One batch job, the site's jobqueue.yaml prologue runs in it, logs land under the cache, and with
    --json stdout is one JSON object and stderr is empty (no dashboard-port warning)."""
    site = tmp_path / "dask-config"
    site.mkdir()
    marker = tmp_path / "site-prologue-ran"
    (site / "jobqueue.yaml").write_text(
        "jobqueue:\n  slurm:\n    walltime: '00:15:00'\n"
        f"    job-script-prologue:\n      - 'echo $SLURM_JOB_ID > {marker}'\n")
    cache = tmp_path / "slurm-cache"
    r = eventkit("frames", "--T", "3", "nmnist", "--root", small_root, "--shard-size", "4", "--json",
                 "--cluster", "slurm", timeout=GUARD_S,
                 env=env_with(DASK_CONFIG=site, EVENTKIT_CACHE=cache))
    stores = stores_of(r)
    # --json: stdout is the JSON; stderr has only plain progress lines (no bar redraws, no warnings)
    assert "\r" not in r.stderr and all(" samples" in line for line in r.stderr.splitlines()), r.stderr
    local = local_build(small_root, 4)
    for split in ("train", "test"):
        assert store_tree(stores[split]) == store_tree(local[split]), split
    job_id = marker.read_text().strip()
    assert job_id.isdigit(), "the site's job-script-prologue did not run in the batch job"
    logs = sorted(p.name for p in (cache / "logs" / "slurm").iterdir())
    assert f"dask-worker-{job_id}.err" in logs and f"dask-worker-{job_id}.out" in logs, logs
    assert job_id not in _our_jobs()  # the job was cancelled when the build ended


def test_a_job_cancelled_mid_build_is_replaced_and_the_store_is_byte_identical(slurm, medium_root, local_build,
                                                                               tmp_path):
    """scancel of the only job while shards are being written: a new job is submitted, the build
    completes (exit 0) well within the guard, and the store equals a local build."""
    cache = tmp_path / "cache"
    t0 = time.monotonic()
    proc = start_eventkit("frames", "--T", "3", "nmnist", "--root", medium_root, "--cache", cache,
                          "--shard-size", "1", "--json", "--cluster", "slurm",
                          env=env_with(EVENTKIT_WORKER_GRACE_S="60"))
    try:
        wait_for(lambda: count_markers(cache) >= 3 or proc.poll() is not None, 120, "the first shards")
        assert proc.poll() is None, "the build ended before the job could be cancelled"
        written = count_markers(cache)
        assert written < 80, "nothing left to build after the cancel"
        jobs = _our_jobs()
        assert len(jobs) == 1, jobs
        subprocess.run(["scancel", *jobs], check=True, timeout=30)
        out, err = proc.communicate(timeout=GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    elapsed = time.monotonic() - t0
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    stores = stores_of(result)
    assert f"batch job {jobs[0]} (CANCELLED" in err and "submitting 1 replacement job" in err, err
    local = local_build(medium_root, 1)
    for split in ("train", "test"):
        assert store_tree(stores[split]) == store_tree(local[split]), split
    assert elapsed < GUARD_S


@pytest.mark.parametrize("option, message", [
    ("memory=100TB", "sbatch rejected the batch job: sbatch: error: Memory specification can not be satisfied"),
    ("queue=no-such-partition", "sbatch rejected the batch job: sbatch: error: invalid partition specified"),
])
def test_a_job_sbatch_rejects_is_one_line_and_exit_2(slurm, small_root, tmp_path, option, message):
    t0 = time.monotonic()
    r = eventkit("frames", "--T", "3", "nmnist", "--root", small_root, "--cache", tmp_path / "c", "--json",
                 "--cluster", "slurm", "--cluster-option", option, timeout=GUARD_S)
    line = one_line_error(r)
    assert line.startswith(f"error: {message}"), line
    assert time.monotonic() - t0 < 60
    assert not _our_jobs()


def test_a_job_whose_workers_cannot_start_is_one_line_and_exit_2(slurm, small_root, tmp_path):
    """The compute node lacks the Python environment: the job fails at once; the error names the job,
    its log folder and what a compute node needs, instead of waiting for the grace period."""
    cache = tmp_path / "c"
    t0 = time.monotonic()
    r = eventkit("frames", "--T", "3", "nmnist", "--root", small_root, "--json", "--cluster", "slurm",
                 "--cluster-option", "python=/nonexistent/bin/python", timeout=GUARD_S,
                 env=env_with(EVENTKIT_CACHE=cache))
    line = one_line_error(r)
    assert "before its Dask workers connected" in line and str(cache / "logs" / "slurm") in line, line
    assert "needs this Python environment" in line, line
    assert time.monotonic() - t0 < 90  # found from the queue's state, not after the 300 s grace period
