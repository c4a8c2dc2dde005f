"""What the batch system says about a job (``squeue`` for SLURM, ``qstat`` for PBS/Torque)."""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["QueueState", "queue_state", "parse_squeue", "parse_qstat", "SLURM_WAITING", "SLURM_HOPELESS",
           "PBS_WAITING"]

#: SLURM states of a job that may still run, and pending reasons that never clear by themselves
SLURM_WAITING = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
                 "RESIZING", "SIGNALING", "STAGE_OUT"}
SLURM_HOPELESS = {"PartitionTimeLimit", "PartitionNodeLimit", "PartitionConfig", "BadConstraints",
                  "InvalidAccount", "InvalidQOS", "QOSMaxWallDurationPerJobLimit", "DependencyNeverSatisfied"}
#: PBS/Torque one-letter states of a job that may still run (F, C, X: finished)
PBS_WAITING = set("QHWTRBESUM")


def parse_squeue(text: str) -> tuple[str, str] | None:
    """``squeue -h -t all -j ID -o "%T|%r"`` output -> ``(state, reason)``, None when the job is not listed."""
    for line in text.splitlines():
        if line.strip():
            state, _, reason = line.strip().partition("|")
            return state.strip(), reason.strip()
    return None


def parse_qstat(text: str) -> str | None:
    """``qstat ID`` output (PBS Pro / Torque table) -> the one-letter state, None when not listed."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[0][:1].isdigit():
            return fields[4]
    return None


@dataclass
class QueueState:
    """What the batch system says about a job: ``waiting`` (queued or running), ``hopeless`` (queued
    for a reason that never clears), ``text`` (its state, e.g. ``CANCELLED`` or ``PENDING (Priority)``)."""

    waiting: bool
    hopeless: bool
    text: str


def queue_state(kind: str, job_id: str, run: Callable[..., Any] = subprocess.run) -> QueueState | None:
    """Ask the batch system (``squeue`` / ``qstat``) about ``job_id``; None when it cannot be asked."""
    cmd = {"slurm": ["squeue", "-h", "-t", "all", "-j", str(job_id), "-o", "%T|%r"],
           "pbs": ["qstat", str(job_id)]}.get(kind)
    if cmd is None or shutil.which(cmd[0]) is None:
        return None
    try:
        out = run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if kind == "slurm":
        found = parse_squeue(out.stdout) if out.returncode == 0 else None
        if found is None:  # purged from the controller, or "Invalid job id specified": it ended
            return QueueState(False, False, "no longer in the queue") if "Invalid job id" in out.stderr or \
                out.returncode == 0 else None
        state, reason = found
        text = f"{state} ({reason})" if reason and reason != "None" else state
        return QueueState(state in SLURM_WAITING, state == "PENDING" and reason in SLURM_HOPELESS, text)
    letter = parse_qstat(out.stdout) if out.returncode == 0 else None
    if letter is None:
        gone = out.returncode == 0 or any(m in out.stderr for m in ("Unknown Job", "Job has finished"))
        return QueueState(False, False, "no longer in the queue") if gone else None
    return QueueState(letter in PBS_WAITING, False, f"state {letter}")

