"""The walk-throughs of docs/building-caches.md, run as written (paths moved under a temporary HOME).

- scheduler address: the bash block runs verbatim (``dask scheduler``, ``dask worker``,
  ``eventkit frames --scheduler``) and its store equals a local build;
- SLURM / PBS: the ``jobqueue.yaml`` and Python blocks render exactly the job scripts shown
  (interpreter, scheduler address and cache folder are the only machine-specific parts);
  every ``eventkit`` command of the walk-throughs parses with the real CLI;
- S3 (engine): the build, ``cache verify`` and loader blocks run against the S3 server.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from eventkit import testing
from tests.engines._cli import env_with, store_tree

pytest.importorskip("dask_jobqueue")  # registers the jobqueue.* config before any test sets part of it

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "building-caches.md"
SCRATCH = "/scratch/me/caches"
SHOWN_PYTHON = "/home/me/venvs/eventkit/bin/python"
SHOWN_SCHEDULER = "tcp://10.1.0.5:40321"


def section(title: str) -> str:
    """The text of the ``### <title>`` section (up to the next heading of level 2 or 3)."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^##)", text, flags=re.S | re.M)
    assert match, f"docs/building-caches.md has no section '### {title}'"
    return match.group(1)


def blocks(title: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section(title), flags=re.S)


def commands(text: str) -> list[list[str]]:
    """The ``eventkit ...`` command lines of a bash block (continuations joined), as argument lists."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [shlex.split(line.split("#")[0] if " #" in line else line)
            for line in joined.splitlines() if line.startswith("eventkit ")]


def rendered(code: str, tmp_path: Path) -> str:
    """Run a Python block that prints a job script (with ``$EVENTKIT_CACHE`` = the doc's cache root,
    moved to ``tmp_path``); machine-specific parts replaced by the doc's."""
    out = io.StringIO()
    scope: dict = {}
    with contextlib.redirect_stdout(out), mock.patch.dict(os.environ, {"EVENTKIT_CACHE": str(tmp_path)}):
        exec(code.replace(SCRATCH, str(tmp_path)), scope)  # noqa: S102 - the doc's own example
    text = out.getvalue().replace(sys.executable, SHOWN_PYTHON).replace(str(tmp_path), SCRATCH)
    return re.sub(r"tcp://[0-9.]+:\d+", SHOWN_SCHEDULER, text)


def test_scheduler_walkthrough_runs_as_written(tmp_path, local_build):
    (bash,) = blocks("Walk-through: a scheduler address", "bash")
    home = tmp_path / "home"
    root = testing.make_nmnist_root(home / "data" / "nmnist", per_class_train=2, per_class_test=1)
    env = env_with(HOME=home, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                   EVENTKIT_WORKER_GRACE_S="60")
    log = tmp_path / "walkthrough.log"
    with open(log, "w") as sink:  # files, not pipes: the background servers keep their output open
        proc = subprocess.Popen(["bash", "-c", f"set -e\n{bash}"], env=env, cwd=tmp_path, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=240)
        finally:  # the scheduler and workers the block started in the background
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    out = log.read_text()
    assert proc.returncode == 0, out
    local = local_build(root, 20, T=10)  # the doc's T; default shard size: the whole split (20 and 10 samples)
    for split in ("train", "test"):
        (built,) = (home / "caches" / "nmnist" / split).glob("frames-*.zarr")
        assert store_tree(built) == store_tree(local[split]), split
    assert "built 30 samples" in out, out


def test_slurm_walkthrough_yaml_and_job_script(tmp_path):
    import dask
    import yaml

    (site,) = blocks("Walk-through: SLURM", "yaml")
    code, = blocks("Walk-through: SLURM", "python")
    (shown,) = blocks("Walk-through: SLURM", "text")
    merged = copy.deepcopy(dask.config.config)
    dask.config.update(merged, yaml.safe_load(site))  # merged as dask merges a jobqueue.yaml it reads
    with dask.config.set(merged):
        assert rendered(code, tmp_path).strip() == shown.strip()


def test_pbs_walkthrough_job_script(tmp_path):
    code, = blocks("Walk-through: PBS (the rendered job script)", "python")
    (shown,) = blocks("Walk-through: PBS (the rendered job script)", "text")
    assert rendered(code, tmp_path).strip() == shown.strip()


@pytest.mark.parametrize("title", ["Walk-through: SLURM", "Walk-through: PBS (the rendered job script)",
                                   "Walk-through: a scheduler address", "Walk-through: S3"])
def test_walkthrough_commands_parse(title):
    """Every ``eventkit`` line of a walk-through is accepted by the real CLI (options, values, JSON lists)."""
    from eventkit.cli.main import cli

    found = [c for block in blocks(title, "bash") for c in commands(block)]
    assert found, title
    for args in found:
        group = cli.make_context("eventkit", [], resilient_parsing=True)
        name, command, rest = cli.resolve_command(group, args[1:])
        command.make_context(name, [a.replace("$ADDR", "tcp://127.0.0.1:8786") for a in rest], parent=group)


def test_container_python_option_reaches_the_job_script(tmp_path):
    from eventkit.cli.options import parse_key_value
    from eventkit.cluster import make_cluster

    text = re.search(r"--cluster-option '(python=[^']+)'", section("What a compute node needs")).group(1)
    key, value = parse_key_value(text)
    with make_cluster("slurm", cache=tmp_path, **{key: value}) as cluster:
        assert "\napptainer exec /shared/eventkit.sif python -m distributed.cli.dask_worker " in cluster.job_script()


@pytest.mark.engine
def test_s3_walkthrough(s3_url, tmp_path, local_build):
    build, = blocks("Walk-through: S3", "bash")
    code, = blocks("Walk-through: S3", "python")
    home = tmp_path / "home"
    root = testing.make_nmnist_root(home / "data" / "nmnist", per_class_train=2, per_class_test=1)
    script = build.replace("s3://my-bucket/caches", s3_url)
    first, verify = commands(script)
    env = env_with(HOME=home, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    r = subprocess.run([a.replace("~", str(home)) for a in first], capture_output=True,
                       text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr
    stores = json.loads(r.stdout)["stores"]
    hash12 = stores["test"].rsplit("frames-", 1)[1][:-len(".zarr")]
    args = [a.replace("<hash12>", hash12).replace("~", str(home)) for a in verify]
    r = subprocess.run(args, capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    train = stores["train"]
    assert store_tree(train) == store_tree(local_build(root, 20, T=10)["train"])
    loop = code.replace("s3://my-bucket/caches/nmnist/train/frames-<hash12>.zarr", train)
    loop = loop.replace("    ...", "    seen.append(len(labels))")
    scope = {"seen": []}
    exec(loop, scope)  # noqa: S102 - the doc's own example
    assert sum(scope["seen"]) == 20
