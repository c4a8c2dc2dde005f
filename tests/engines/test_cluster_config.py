"""``make_cluster`` on top of the site's ``jobqueue.yaml``: rendered job scripts (no batch system needed).

The site's values are kept, eventkit fills only what they leave unset, and an argument
passed explicitly overrides the site; logs go under the cache; the dashboard never
takes port 8787 (nor warns that it is taken).
"""
from __future__ import annotations

import warnings

import pytest

dask = pytest.importorskip("dask")
pytest.importorskip("dask_jobqueue")  # a dev dependency: registers the jobqueue.* defaults

from eventkit.cluster import ClusterLostError, default_log_directory, local_cluster, make_cluster  # noqa: E402 - after the importorskip above
from eventkit.cluster.jobqueue import _rejected  # noqa: E402 - after the importorskip above
from eventkit.errors import ParameterError  # noqa: E402 - after the importorskip above

EXPORTS = ["export NUMBA_NUM_THREADS=1", "export OMP_NUM_THREADS=1", "export MKL_NUM_THREADS=1",
           "export OPENBLAS_NUM_THREADS=1"]


def _script(kind="slurm", **kwargs) -> str:
    with make_cluster(kind, **kwargs) as cluster:
        return cluster.job_script()


def _body(script: str) -> list[str]:
    """The job script's lines after the directives (prologue, then the worker command)."""
    return [line for line in script.splitlines() if line and not line.startswith("#")]


@pytest.fixture
def site(tmp_path):
    """A site configuration as an admin's jobqueue.yaml would set it (dask config ``jobqueue.slurm``)."""
    values = {
        "jobqueue.slurm.cores": 8,
        "jobqueue.slurm.memory": "32GB",
        "jobqueue.slurm.walltime": "02:00:00",
        "jobqueue.slurm.queue": "cpu",
        "jobqueue.slurm.job-script-prologue": ["module load python/3.11", "conda activate eventkit"],
        "jobqueue.slurm.log-directory": str(tmp_path / "site-logs"),
    }
    with dask.config.set(values):
        yield tmp_path / "site-logs"


def test_the_sites_values_are_kept_and_extended(site, tmp_path):
    script = _script(cache=tmp_path / "cache")
    for line in ("#SBATCH -p cpu", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=30G", "#SBATCH -t 02:00:00",
                 f"#SBATCH -e {site}/dask-worker-%J.err"):
        assert line in script.splitlines(), (line, script)
    body = _body(script)
    assert body[:6] == [*EXPORTS, "module load python/3.11", "conda activate eventkit"], body
    assert "--nworkers 8" in body[6] and "--nthreads 1" in body[6]  # processes: one per site core
    assert not (tmp_path / "cache" / "logs").exists()


def test_explicit_arguments_override_the_site(site, tmp_path):
    script = _script(cores=2, walltime="00:05:00", job_script_prologue=["source /opt/env.sh"],
                     log_directory=str(tmp_path / "mine"))
    lines = script.splitlines()
    assert "#SBATCH --cpus-per-task=2" in lines and "#SBATCH -t 00:05:00" in lines
    assert "#SBATCH --mem=30G" in lines and "#SBATCH -p cpu" in lines  # not overridden: the site's
    assert f"#SBATCH -o {tmp_path / 'mine'}/dask-worker-%J.out" in lines
    assert _body(script)[:5] == [*EXPORTS, "source /opt/env.sh"]


def test_defaults_fill_what_the_site_leaves_unset(tmp_path, monkeypatch):
    monkeypatch.setenv("EVENTKIT_CACHE", str(tmp_path / "env-cache"))
    script = _script(processes=2, cache=tmp_path / "cache")
    lines = script.splitlines()
    assert "#SBATCH --cpus-per-task=2" in lines and "#SBATCH --mem=8G" in lines  # 4 GB per core
    assert "#SBATCH -t 00:30:00" in lines  # dask-jobqueue's default walltime: eventkit sets none
    assert f"#SBATCH -e {tmp_path / 'cache'}/logs/slurm/dask-worker-%J.err" in lines
    assert (tmp_path / "cache" / "logs" / "slurm").is_dir()
    assert default_log_directory("pbs") == str(tmp_path / "env-cache" / "logs" / "pbs")
    monkeypatch.chdir(tmp_path)
    assert default_log_directory("slurm", "s3://bucket/caches") == str(tmp_path / "eventkit-logs" / "slurm")


def test_pbs_script_has_the_same_environment_and_logs(tmp_path):
    script = _script("pbs", queue="workq", account="proj1", cores=4, walltime="02:00:00", cache=tmp_path)
    lines = script.splitlines()
    for line in ("#PBS -q workq", "#PBS -A proj1", "#PBS -l select=1:ncpus=4:mem=15GB",
                 "#PBS -l walltime=02:00:00", f"#PBS -e {tmp_path}/logs/pbs/"):
        assert line in lines, (line, script)
    assert _body(script)[:4] == EXPORTS


def test_the_dashboard_never_takes_port_8787(tmp_path, port_8787_taken):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Port 8787 is already in use" would be a UserWarning
        with make_cluster("slurm", cache=tmp_path) as cluster:
            assert ":8787" not in cluster.dashboard_link
        with make_cluster("slurm", cache=tmp_path, dashboard_address=None) as cluster:
            assert ":8787" not in cluster.dashboard_link
        with local_cluster(1) as cluster:  # --workers N: its scheduler's HTTP server too
            assert ":8787" not in cluster.dashboard_link


def test_a_site_with_bad_cores_is_named(tmp_path):
    with dask.config.set({"jobqueue.slurm.cores": 2, "jobqueue.slurm.processes": 4}):
        with pytest.raises(ParameterError, match=r"jobqueue.slurm \(dask config\) processes=4 exceeds cores=2"):
            make_cluster("slurm", cache=tmp_path)


def test_rejected_submission_message_is_the_batch_systems_own_lines():
    exc = RuntimeError("Command exited with non-zero exit code.\nExit code: 1\nCommand:\nsbatch /tmp/x.sh\n"
                       "stdout:\n\nstderr:\nsbatch: error: Memory specification can not be satisfied\n"
                       "sbatch: error: Batch job submission failed: Requested node configuration is not available\n")
    assert _rejected("sbatch", exc) == (
        "sbatch rejected the batch job: sbatch: error: Memory specification can not be satisfied; "
        "sbatch: error: Batch job submission failed: Requested node configuration is not available")
    assert _rejected("qsub", OSError("qsub: Unknown queue")) == "qsub rejected the batch job: qsub: Unknown queue"
    assert issubclass(ClusterLostError, RuntimeError)


def test_jobs_need_the_submit_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    with pytest.raises(ParameterError, match="`sbatch`, which is not on this machine's PATH"):
        make_cluster("slurm", jobs=1, cache=tmp_path)
