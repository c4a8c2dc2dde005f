"""Run the cells of a sweep through the normal trainer, as Dask tasks, resumably.

Execution (as the cache builder): ``workers=1`` runs the cells one after the other in this
process; ``workers=N`` starts a local Dask cluster of N single-threaded processes;
``scheduler="tcp://..."`` submits to a running scheduler; ``cluster="slurm"|"pbs"`` starts a
dask-jobqueue cluster of ``jobs`` batch jobs (``eventkit.cluster.make_cluster``). With
``gpus_per_task``, every task asks for that many ``GPU`` worker resources (SLURM/PBS workers
are started with ``--resources GPU=<n>`` and ``--gres=gpu:<n>``; workers of a scheduler you run
yourself need ``--resources GPU=<n>``), so each cell has its GPU(s) to itself.

Layout of the output folder::

    OUT/sweep.lock            while a sweep runs into OUT (pid, host): a second one is refused
    OUT/spec.json             the spec and the cells of the last run
    OUT/cells/<cell>/         the cell's run folder (metrics, checkpoints) and, once done, cell.json
    OUT/table.{csv,json,md,png}

A cell is finished when its ``cell.json`` exists (written atomically after training). A cell
folder without it (a killed or failed run) is deleted and the cell is trained again from
scratch. Finished cells are never rerun. Cache stores are prepared once per distinct dataset
setting before any cell starts (on the machine running the sweep; with a cluster the cache
folder must be shared).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventkit.errors import ParameterError
from eventkit.progress import ProgressMode

from .sweep_spec import Cell, SweepSpec

__all__ = ["SweepResult", "run_sweep", "run_cell", "cell_result", "CELL_FILE", "DATA_KEYS"]

CELL_FILE = "cell.json"
#: TrainConfig fields that decide which cache stores a cell reads
DATA_KEYS = ("dataset", "T", "split_by", "dtype", "merge_polarity", "n_channels", "encoder", "root", "cache",
             "train_split", "test_split")


@dataclass
class SweepResult:
    """What :func:`run_sweep` did: ``ran`` / ``skipped`` (already finished) / ``failed`` cells and the table files."""

    out: Path
    cells: list[Cell]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    table: dict[str, Path] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"out": str(self.out), "cells": len(self.cells), "ran": self.ran, "skipped": self.skipped,
                "failed": self.failed, "table": {k: str(v) for k, v in self.table.items()}}


def cell_result(run_dir: Path, digest: str | None = None) -> dict[str, Any] | None:
    """The finished result of a cell folder (None when unfinished, unreadable, or of another configuration)."""
    path = Path(run_dir) / CELL_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if digest is None or data.get("digest") == digest else None


def run_cell(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Train one cell (a Dask task): clean its folder, call :func:`eventkit_train.trainer.train`,
    write ``cell.json`` atomically. ``payload``: ``config``, ``run_dir``, ``labels``, ``seed``,
    ``digest``, ``stores`` (or None)."""
    from eventkit_train.trainer import TrainConfig, train

    run_dir = Path(payload["run_dir"])
    if run_dir.exists():  # a killed or failed attempt: start again from nothing
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    config = TrainConfig.from_dict({**payload["config"], "out": str(run_dir)}, source=str(run_dir))
    t0 = time.time()
    summary = train(config, progress=False, stores=payload.get("stores"))
    result = {"labels": dict(payload["labels"]), "seed": payload["seed"], "digest": payload["digest"],
              "summary": summary, "host": socket.gethostname(), "finished": time.time(), "seconds": time.time() - t0}
    tmp = run_dir / f".{CELL_FILE}.{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(result, indent=1, default=str) + "\n")
    os.replace(tmp, run_dir / CELL_FILE)
    return result


def run_sweep(spec: SweepSpec, *, out: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
              seeds: list[int] | None = None, workers: int = 1, scheduler: str | None = None,
              cluster: str | None = None, jobs: int = 1, cluster_options: Mapping[str, Any] | None = None,
              gpus_per_task: int = 0, prepare: bool = True, progress: ProgressMode = True) -> SweepResult:
    """Run every unfinished cell of ``spec`` and write the table (see the module docstring)."""
    from .sweep_table import write_table

    if int(workers) < 1:
        raise ParameterError(f"workers must be >= 1, got {workers}")
    if scheduler is not None and cluster is not None:
        raise ParameterError("give a scheduler address or a cluster kind, not both")
    out_dir = Path(out) if out is not None else Path("runs") / "sweeps" / spec.name
    cells = spec.cells(overrides, seeds)
    result = SweepResult(out_dir, cells)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _sweep_lock(out_dir):
        (out_dir / "spec.json").write_text(json.dumps(
            {"spec": str(spec.path), "name": spec.name, "metric": list(spec.metrics), "axes": list(spec.axis_names),
             "cells": [{"dir": c.dirname, "labels": dict(c.labels), "seed": c.seed} for c in cells]},
            indent=1) + "\n")
        todo = []
        for cell in cells:
            if cell_result(out_dir / "cells" / cell.dirname, cell.digest) is not None:
                result.skipped.append(cell.dirname)
            else:
                todo.append(cell)
        say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)
        say(f"sweep {spec.name}: {len(cells)} cells, {len(result.skipped)} finished, {len(todo)} to run -> {out_dir}")
        stores = _prepare_stores(todo, progress) if prepare and todo else {}
        payloads = [{"config": c.config, "run_dir": str(out_dir / "cells" / c.dirname), "labels": list(c.labels),
                     "seed": c.seed, "digest": c.digest, "stores": stores.get(_data_key(c.config))} for c in todo]

        def done(payload: Mapping[str, Any], res: dict[str, Any] | None, error: str | None) -> None:
            name = Path(payload["run_dir"]).name
            n = len(result.ran) + len(result.failed) + 1
            if error is None:
                result.ran.append(name)
                key, value = spec.value(res["summary"]) if res else (None, None)
                took = f" ({res['seconds']:.1f} s)" if res else ""
                say(f"[{n}/{len(todo)}] {name}: {key or spec.metric} = {value}{took}")
            else:
                result.failed[name] = error
                say(f"[{n}/{len(todo)}] {name} FAILED: {error}")

        if payloads:
            if scheduler is None and cluster is None and int(workers) == 1:
                _run_here(payloads, done)
            else:
                _run_dask(payloads, done, workers=int(workers), scheduler=scheduler, cluster=cluster, jobs=jobs,
                          cluster_options=dict(cluster_options or {}), gpus_per_task=int(gpus_per_task))
        result.table = write_table(spec, cells, out_dir)
    return result


def _run_here(payloads: list[dict[str, Any]], done: Callable) -> None:
    for payload in payloads:
        try:
            res = run_cell(payload)
        except Exception as exc:  # noqa: BLE001 - a failed cell is reported, the others still run
            done(payload, None, f"{type(exc).__name__}: {exc}")
        else:
            done(payload, res, None)


def _run_dask(payloads: list[dict[str, Any]], done: Callable, *, workers: int, scheduler: str | None,
              cluster: str | None, jobs: int, cluster_options: dict[str, Any], gpus_per_task: int) -> None:
    from distributed import Client, wait

    from eventkit import cluster as ek_cluster

    with contextlib.ExitStack() as stack:
        stack.enter_context(ek_cluster.quiet_logs())
        handle = None
        if scheduler is not None:
            try:
                client = Client(scheduler, timeout="30s")
            except OSError as exc:
                raise ParameterError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        elif cluster is not None:
            if gpus_per_task:
                cluster_options.setdefault("job_extra_directives", [f"--gres=gpu:{gpus_per_task}"])
                cluster_options.setdefault("worker_extra_args", ["--resources", f"GPU={gpus_per_task}"])
            handle = stack.enter_context(ek_cluster.make_cluster(cluster, jobs=jobs, **cluster_options))
            client = Client(handle)
        else:
            handle = ek_cluster.local_cluster(workers)
            stack.callback(handle.close)
            client = Client(handle)
        stack.callback(client.close)
        health_cls = getattr(ek_cluster, "ClusterHealth", None)  # raises ClusterLostError when no progress is possible
        health = health_cls(client, handle) if health_cls is not None else None
        resources = {"GPU": gpus_per_task} if gpus_per_task else None
        futures = {client.submit(run_cell, p, key=f"sweep-{Path(p['run_dir']).name}-{uuid.uuid4().hex[:6]}",
                                 pure=False, retries=1, resources=resources): p for p in payloads}
        pending = set(futures)
        while pending:
            try:
                finished, pending = wait(pending, timeout=5, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished in 5 s: check the cluster, wait again
                finished = set()
            for fut in finished:
                failure = fut.exception() if fut.status != "finished" else None
                error = None if failure is None else f"{type(failure).__name__}: {failure}"
                done(futures[fut], None if failure else fut.result(), error)
            if health is not None:
                health.poll()


def _data_key(config: Mapping[str, Any]) -> str:
    """Cells with equal keys read the same stores (the seed is part of it: static-image encoders
    draw their spikes from it; for event data a second seed only reopens the stores)."""
    return json.dumps({k: config.get(k) for k in (*DATA_KEYS, "seed")}, sort_keys=True, default=str)


def _prepare_stores(cells: list[Cell], progress: ProgressMode) -> dict[str, dict[str, str]]:
    """Build (or open) the cache stores once per distinct dataset setting, before the cells run."""
    from eventkit_train.trainer import TrainConfig, prepare_data

    stores: dict[str, dict[str, str]] = {}
    for cell in cells:
        key = _data_key(cell.config)
        if key not in stores:
            stores[key] = prepare_data(TrainConfig.from_dict(cell.config), progress=progress)
    return stores


@contextlib.contextmanager
def _sweep_lock(out_dir: Path):
    """One sweep at a time per output folder; a lock left by a dead process on this host is taken over."""
    lock = out_dir / "sweep.lock"
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    for attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                other = json.loads(lock.read_text())
            except (OSError, ValueError):
                other = {}
            if attempt == 0 and other.get("host") == me["host"] and not _alive(int(other.get("pid", -1))):
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            raise ParameterError(f"{out_dir} is in use by another sweep (pid {other.get('pid')} on "
                                 f"{other.get('host')}); wait for it, or delete {lock} if that sweep is dead") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(me))
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
