"""``ClusterHealth.poll()`` with a fake clock, client and jobqueue cluster (no batch system needed).

Each case is one situation of a build on a cluster: the workers are there; they all
left and the queue says the job ended (replaced); the job ended before any worker
connected, waits for a reason that never clears, or its replacement is rejected (one
line); nothing is connected for the grace period (one line, not a second earlier).
"""
from __future__ import annotations

import asyncio

import pytest

import eventkit.cluster.health as health_module
from eventkit.cluster import JOB_LOST_S, ClusterHealth, ClusterLostError, grace_from_env
from eventkit.cluster.queue import QueueState, parse_qstat, parse_squeue
from eventkit.errors import ParameterError

ADDRESS = "tcp://10.0.0.1:8786"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeClient:
    """``scheduler_info()`` lists the workers named in ``self.names``."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.calls = 0
        self.scheduler = type("S", (), {"address": ADDRESS})()

    def scheduler_info(self):
        self.calls += 1
        return {"workers": {f"tcp://w/{n}": {"name": n} for n in self.names}}


class FakeJob:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class FakeCluster:
    """The parts of a dask-jobqueue cluster ClusterHealth uses; submissions get ids 101, 102, ..."""

    job_cls = type("FakeSLURMJob", (), {"submit_command": "sbatch"})

    def __init__(self, jobs: int = 1) -> None:
        self.worker_spec = {f"J-{i}": {} for i in range(jobs)}
        self.workers = {f"J-{i}": FakeJob(str(11 + i)) for i in range(jobs)}
        self._job_kwargs = {"log_directory": "/scratch/logs"}
        self.next = jobs
        self.reject: str | None = None

    def new_worker_spec(self):
        self.next += 1
        return {f"J-{self.next - 1}": {}}

    async def _correct_state(self):
        for name in [n for n in self.worker_spec if n not in self.workers]:
            if self.reject:
                self.workers[name] = FakeJob(None)
                raise RuntimeError(f"Command exited with non-zero exit code.\nstderr:\n{self.reject}\n")
            self.workers[name] = FakeJob(str(100 + self.next))

    def sync(self, fn, *args):
        return asyncio.run(fn(*args))


@pytest.fixture
def queue(monkeypatch):
    """``queue[job_id] = QueueState(...)``: what squeue answers (absent: it cannot be asked)."""
    states: dict[str, QueueState] = {}
    monkeypatch.setattr(health_module, "queue_state", lambda kind, job_id: states.get(job_id))
    return states


def _health(cluster=None, grace_s=300.0):
    clock, client = Clock(), FakeClient()
    return ClusterHealth(client, cluster, grace_s=grace_s, clock=clock), client, clock


def _at(health, clock, t):
    clock.t = 1000.0 + t
    health.poll()


def _job_whose_workers_left():
    """A one-job cluster whose workers connected at t=0 and are gone now: ``(cluster, health, client, clock)``."""
    cluster = FakeCluster()
    health, client, clock = _health(cluster)
    client.names = {"J-0"}
    _at(health, clock, 0)
    client.names = set()
    return cluster, health, client, clock


def test_no_worker_for_the_grace_period_is_one_line_not_a_second_earlier():
    health, client, clock = _health(grace_s=300)
    client.names = {"w0"}
    _at(health, clock, 0)
    client.names = set()
    _at(health, clock, 299.5)
    with pytest.raises(ClusterLostError) as err:
        _at(health, clock, 301)
    message = str(err.value)
    assert message == (f"no Dask worker has been connected to the scheduler at {ADDRESS} for 301 s: the build "
                       f"cannot make progress (start workers, e.g. `dask worker {ADDRESS}`, then rerun to resume)")


def test_a_worker_coming_back_restarts_the_grace_period():
    health, client, clock = _health(grace_s=60)
    _at(health, clock, 50)
    client.names = {"w1"}
    _at(health, clock, 59)
    client.names = set()
    _at(health, clock, 100)  # 41 s without a worker
    with pytest.raises(ClusterLostError):
        _at(health, clock, 120)


def test_polls_closer_than_a_second_do_not_ask_the_scheduler():
    health, client, clock = _health()
    _at(health, clock, 0)
    _at(health, clock, 0.5)
    assert client.calls == 1
    _at(health, clock, 1.0)
    assert client.calls == 2


def test_a_cancelled_job_is_replaced(queue):
    cluster, health, client, clock = _job_whose_workers_left()
    queue["11"] = QueueState(False, False, "CANCELLED")
    old = cluster.workers["J-0"]
    _at(health, clock, 2)
    assert list(cluster.worker_spec) == ["J-1"] and cluster.workers["J-1"].job_id == "102"
    assert old.closed and health.replaced == 1
    queue["102"] = QueueState(True, False, "PENDING (Priority)")
    _at(health, clock, 2000)  # waiting in the queue: no grace period
    client.names = {"J-1-0", "J-1-1"}  # grouped workers of the new job
    _at(health, clock, 2001)


def test_a_job_whose_workers_left_is_replaced_after_the_lost_delay_when_the_queue_cannot_tell(queue):
    cluster, health, client, clock = _job_whose_workers_left()
    _at(health, clock, JOB_LOST_S - 1)
    assert list(cluster.worker_spec) == ["J-0"]
    _at(health, clock, JOB_LOST_S)
    assert list(cluster.worker_spec) == ["J-1"]


def test_a_job_that_ended_before_its_workers_connected_is_one_line(queue):
    cluster = FakeCluster()
    health, client, clock = _health(cluster)
    queue["11"] = QueueState(True, False, "RUNNING")
    _at(health, clock, 0)
    queue["11"] = QueueState(False, False, "FAILED (NonZeroExitCode)")
    with pytest.raises(ClusterLostError, match=r"batch job 11 ended \(FAILED \(NonZeroExitCode\)\) before its Dask "
                                               r"workers connected to tcp://10.0.0.1:8786: see its log in "
                                               r"/scratch/logs; a compute node needs this Python environment"):
        _at(health, clock, 10)


def test_a_job_pending_for_a_reason_that_never_clears_is_one_line(queue):
    health, client, clock = _health(FakeCluster())
    queue["11"] = QueueState(True, True, "PENDING (PartitionTimeLimit)")
    with pytest.raises(ClusterLostError, match=r"batch job 11 cannot start: the queue holds it as PENDING "
                                               r"\(PartitionTimeLimit\)"):
        _at(health, clock, 0)


def test_a_rejected_replacement_is_one_line(queue):
    cluster, health, client, clock = _job_whose_workers_left()
    queue["11"] = QueueState(False, False, "TIMEOUT")
    cluster.reject = "sbatch: error: QOSMaxSubmitJobPerUserLimit"
    with pytest.raises(ClusterLostError, match=r"^batch job 11 \(TIMEOUT\) ended and its replacement failed: "
                                               r"sbatch rejected the batch job: sbatch: error: "
                                               r"QOSMaxSubmitJobPerUserLimit$"):
        _at(health, clock, 1)
    assert cluster.worker_spec == {}  # nothing left that anything would wait for


def test_replacements_are_bounded(queue):
    cluster = FakeCluster()
    health, client, clock = _health(cluster)
    t = 0.0
    with pytest.raises(ClusterLostError, match=r"keep ending .* gave up after 4 replacements"):
        for _ in range(10):  # a job that starts, connects and dies, again and again
            name = next(iter(cluster.worker_spec))
            client.names = {name}
            _at(health, clock, t)
            client.names = set()
            queue[cluster.workers[name].job_id] = QueueState(False, False, "FAILED")
            t += 2
            _at(health, clock, t)
            t += 2
    assert health.replaced == 4


def test_grace_from_the_environment(monkeypatch):
    monkeypatch.delenv("EVENTKIT_WORKER_GRACE_S", raising=False)
    assert grace_from_env() == 300.0
    monkeypatch.setenv("EVENTKIT_WORKER_GRACE_S", "12.5")
    assert grace_from_env() == 12.5
    for bad in ("0", "-3", "soon"):
        monkeypatch.setenv("EVENTKIT_WORKER_GRACE_S", bad)
        with pytest.raises(ParameterError, match="EVENTKIT_WORKER_GRACE_S must be a number of seconds > 0"):
            grace_from_env()
    with pytest.raises(ParameterError, match="grace_s must be > 0"):
        ClusterHealth(FakeClient(), grace_s=0)


def test_queue_outputs_are_parsed():
    assert parse_squeue("PENDING|Priority\n") == ("PENDING", "Priority")
    assert parse_squeue("CANCELLED|None\n") == ("CANCELLED", "None")
    assert parse_squeue("\n") is None
    pbs_pro = ("Job id            Name             User              Time Use S Queue\n"
               "----------------  ---------------- ----------------  -------- - -----\n"
               "4242.pbs01        dask-worker      me                00:00:01 R workq\n")
    assert parse_qstat(pbs_pro) == "R"
    torque = ("Job ID                    Name             User            Time Use S Queue\n"
              "------------------------- ---------------- --------------- -------- - -----\n"
              "77.head                   dask-worker      me                     0 Q batch\n")
    assert parse_qstat(torque) == "Q"
    assert parse_qstat("") is None


def test_queue_state_reads_squeue_and_qstat(monkeypatch):
    import subprocess

    import eventkit.cluster.queue as queue_module

    monkeypatch.setattr(queue_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    answers = {}

    def run(cmd, **kwargs):
        rc, out, err = answers[cmd[0]]
        return subprocess.CompletedProcess(cmd, rc, out, err)

    answers["squeue"] = (0, "PENDING|PartitionTimeLimit\n", "")
    assert queue_module.queue_state("slurm", "5", run=run) == QueueState(True, True, "PENDING (PartitionTimeLimit)")
    answers["squeue"] = (0, "RUNNING|None\n", "")
    assert queue_module.queue_state("slurm", "5", run=run) == QueueState(True, False, "RUNNING")
    answers["squeue"] = (1, "", "slurm_load_jobs error: Invalid job id specified\n")
    assert queue_module.queue_state("slurm", "5", run=run) == QueueState(False, False, "no longer in the queue")
    answers["squeue"] = (1, "", "slurm_load_jobs error: Unable to contact slurm controller\n")
    assert queue_module.queue_state("slurm", "5", run=run) is None  # cannot tell: the grace period decides
    answers["qstat"] = (35, "", "qstat: 4242.pbs01 Job has finished, use -x or -H to obtain historical job info\n")
    assert queue_module.queue_state("pbs", "4242.pbs01", run=run).waiting is False
    answers["qstat"] = (0, "Job id  Name  User  Time Use S Queue\n4242.pbs01 dask-worker me 00:00:01 R workq\n", "")
    assert queue_module.queue_state("pbs", "4242.pbs01", run=run) == QueueState(True, False, "state R")
    assert queue_module.queue_state("lsf", "1", run=run) is None
