"""Run folders after a kill at every point of the commit sequence, damaged checkpoints,
``load_run`` and ``eventkit eval``."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import eventkit_train.checkpoint as ckpt
from eventkit.cli.main import cli
from eventkit.errors import EventkitError
from eventkit_train.checkpoint import commit_epoch, committed_state, load_checkpoint, load_state
from eventkit_train.runlog import RunLog, json_text
from tests.train.trainer_helpers import TINY_ARCH, tiny_config, tiny_nmnist

REPO = Path(__file__).resolve().parents[2]
SCORES = [0.5, 0.7, 0.6, 0.8]  # validation accuracy per epoch: best = 0, 1, 1, 3


def _state(epoch: int, best_epoch: int) -> dict:
    torch.manual_seed(epoch)
    model = torch.nn.Linear(3, 2)
    return {"format": 2, "model": model.state_dict(), "optimizer": {"state": {}, "param_groups": []},
            "config": {"dataset": "toy"}, "epoch": epoch, "best_epoch": best_epoch, "best_score": SCORES[best_epoch]}


def _commit(run: Path, epoch: int) -> None:
    best = max(range(epoch + 1), key=lambda e: (SCORES[e], -e))
    log = RunLog([{"epoch": e, "val_accuracy": SCORES[e]} for e in range(epoch + 1)])
    summary = {"epochs": epoch + 1, "best_epoch": best, "best_val_accuracy": SCORES[best]}
    commit_epoch(run, _state(epoch, best), improved=best == epoch, best_epoch=best,
                 texts={"config.json": json_text({"epochs": 4}), **log.texts(), "summary.json": json_text(summary)})


def _check_consistent(run: Path) -> tuple[int, int] | None:
    """(checkpoint epoch, best epoch) of a run folder whose files all agree, or None (no epoch yet)."""
    state = committed_state(run)
    if state is None:
        return None
    for name in ckpt.LINKED_FILES:  # a top-level name is missing or shows the committed file
        top = run / name
        assert not top.exists() or top.resolve() == (state / name).resolve(), name
    summary = json.loads((state / "summary.json").read_text())
    last = load_state(run, "checkpoint")  # SHA-256 checked against the manifest
    best = load_state(run, "best")
    metrics = json.loads((state / "metrics.json").read_text())
    assert last["epoch"] == summary["epochs"] - 1 == metrics[-1]["epoch"]
    assert best["epoch"] == summary["best_epoch"] == last["best_epoch"]
    assert torch.equal(best["model"]["weight"], _state(best["epoch"], 0)["model"]["weight"])
    return last["epoch"], best["epoch"]


def _kill_at(run: Path, epoch: int, k: int) -> int:
    """Commit ``epoch`` in a forked child that dies (os._exit) at the k-th step; returns its exit status."""
    pid = os.fork()
    if pid == 0:  # the child: no exception handler or atexit runs
        calls = [0]

        def die(label: str) -> None:
            calls[0] += 1
            if calls[0] == k:
                os._exit(137)
        ckpt._after_step = die
        try:
            _commit(run, epoch)
        finally:
            os._exit(0)
    return os.waitpid(pid, 0)[1] >> 8


def _steps_of_commit(tmp_path: Path, epoch: int) -> list[str]:
    run = tmp_path / f"count{epoch}"
    for e in range(epoch):
        _commit(run, e)
    labels: list[str] = []
    ckpt._after_step = labels.append
    try:
        _commit(run, epoch)
    finally:
        ckpt._after_step = None
    return labels


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("epoch", [0, 1, 2, 3])  # first commit; improved; not improved; improved again
def test_kill_at_every_point_leaves_a_consistent_run(tmp_path, epoch):
    labels = _steps_of_commit(tmp_path, epoch)
    assert len(labels) >= 12 and "switched current" in labels
    before = None
    for k in range(1, len(labels) + 1):
        run = tmp_path / f"kill{k}"
        for e in range(epoch):
            _commit(run, e)
        if epoch:
            before = _check_consistent(run)
        assert _kill_at(run, epoch, k) == 137, labels[k - 1]
        got = _check_consistent(run)
        after_switch = k >= labels.index("switched current") + 1
        expected_new = (epoch, max(range(epoch + 1), key=lambda e: (SCORES[e], -e)))
        assert got == (expected_new if after_switch else before), (k, labels[k - 1], got)
        # the next commit (a resumed run) succeeds and clears what the kill left
        _commit(run, epoch)
        assert _check_consistent(run) == expected_new
        assert len([p for p in run.iterdir() if p.name.startswith("state-")]) == 1
        assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- damaged checkpoints

@pytest.fixture()
def committed_run(tmp_path):
    run = tmp_path / "run"
    _commit(run, 0)
    _commit(run, 1)
    return run


def _one_line_error(fn, *names):
    with pytest.raises(EventkitError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg and all(n in msg for n in names), msg
    return msg


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_damaged_checkpoints_are_one_line_errors(committed_run, tmp_path):
    state = committed_state(committed_run)
    path = state / "checkpoint.pt"
    good = path.read_bytes()
    n = len(good)
    path.unlink()  # a fresh inode (best.pt is a hard link of it)
    for offset in (0, 1, 60, n // 3, n // 2, n - 30, n - 1):
        flipped = bytearray(good)
        flipped[offset] ^= 0xFF
        path.write_bytes(bytes(flipped))
        _one_line_error(lambda: load_state(committed_run, "checkpoint"), "checkpoint.pt", "damaged")
    for size in (0, 10, n // 2, n - 1):
        path.write_bytes(good[:size])
        _one_line_error(lambda: load_state(committed_run, "checkpoint"), "checkpoint.pt")
    # without a manifest (a lone file): torch's own errors, still one line naming the file
    lone = tmp_path / "lone.pt"
    for payload in (good[: n // 2], b"", os.urandom(4096), b'{"model": 1}', good[:60] + b"\x00" * (n - 60)):
        lone.write_bytes(payload)
        _one_line_error(lambda: load_checkpoint(lone), "lone.pt")
    torch.save([1, 2, 3], lone)
    _one_line_error(lambda: load_checkpoint(lone), "not an eventkit checkpoint")
    torch.save({"model": {"w": 1}, "optimizer": {}, "config": {}, "epoch": 0}, lone)
    _one_line_error(lambda: load_checkpoint(lone), "state dict of tensors")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    lone.write_bytes(pickle.dumps({"model": Evil()}))
    _one_line_error(lambda: load_checkpoint(lone), "lone.pt")
    with pytest.raises(EventkitError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_damaged_manifest_and_current(committed_run):
    state = committed_state(committed_run)
    (state / "manifest.json").write_text("{not json")
    _one_line_error(lambda: load_state(committed_run), "manifest.json", "damaged")
    (state / "manifest.json").unlink()
    _one_line_error(lambda: committed_state(committed_run), "current", "manifest.json")


# ---------------------------------------------------------------- a real run: kill, resume, load_run, eval

@pytest.fixture(scope="module")
def fake_nmnist(tmp_path_factory):
    return tiny_nmnist(tmp_path_factory.mktemp("nmnist_ck"))


_config = tiny_config


KILLED_RUN = """
import os, sys
import eventkit_train.checkpoint as ckpt
from eventkit_train.trainer import TrainConfig, train
config = TrainConfig(**{config!r})
label, nth = {label!r}, {nth}
seen = [0]
def die(step):
    if step == label:
        seen[0] += 1
        if seen[0] == nth:
            os._exit(137)
ckpt._after_step = die
train(config, progress=False, stores={stores!r})
"""


@pytest.fixture(scope="module")
def uninterrupted(fake_nmnist, tmp_path_factory):
    from eventkit_train.trainer import train

    out = tmp_path_factory.mktemp("uninterrupted") / "full"
    summary = train(_config(fake_nmnist, out), progress=False, stores=fake_nmnist["stores"])
    assert summary["epochs"] == 3
    return out, summary


@pytest.mark.parametrize("label,nth", [("half of checkpoint.pt", 2), ("switched current", 2),
                                       ("linked best.pt", 3)])
def test_killed_training_resumes_to_the_same_weights(fake_nmnist, uninterrupted, tmp_path, label, nth):
    from eventkit_train.runs import load_run
    from eventkit_train.trainer import train

    full_dir, full = uninterrupted
    cfg = _config(fake_nmnist, tmp_path / "killed")
    code = KILLED_RUN.format(config=cfg.to_dict(), label=label, nth=nth, stores=fake_nmnist["stores"])
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 137, proc.stderr
    done = _check_run(tmp_path / "killed")
    assert done == (nth - 1 if label != "switched current" else nth)  # epochs committed
    resumed = train(cfg, resume=True, progress=False, stores=fake_nmnist["stores"])
    assert resumed["epochs"] == 3 and resumed["best_epoch"] == full["best_epoch"]
    a, b = load_run(full_dir, weights="last").model, load_run(tmp_path / "killed", weights="last").model
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert json.loads((tmp_path / "killed" / "summary.json").read_text())["best_epoch"] == \
        load_checkpoint(tmp_path / "killed" / "best.pt")["epoch"]


def _check_run(run: Path) -> int:
    state = committed_state(run)
    if state is None:
        return 0
    summary = json.loads((state / "summary.json").read_text())
    assert load_state(run, "best")["epoch"] == summary["best_epoch"]
    assert load_state(run, "checkpoint")["epoch"] == summary["epochs"] - 1
    return summary["epochs"]


def test_load_run_and_eval_cli(fake_nmnist, tmp_path):
    from eventkit_train import load_run
    from eventkit_train.trainer import train

    summary = train(_config(fake_nmnist, tmp_path / "run", epochs=2), progress=False, stores=fake_nmnist["stores"])
    run = load_run(tmp_path / "run")
    assert run.epoch == summary["best_epoch"] and run.weights == "best" and not run.model.training
    assert run.config.arch == TINY_ARCH and [r["epoch"] for r in run.metrics] == [0, 1]
    assert run.summary["best_epoch"] == summary["best_epoch"] and run.input_shape == (2, 34, 34)
    res = CliRunner().invoke(cli, ["eval", str(tmp_path / "run"), "--weights", "last", "--device", "cpu", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["accuracy"] == summary["test_accuracy"] and out["samples"] == 10 and out["epoch"] == 1
    val = CliRunner().invoke(cli, ["eval", str(tmp_path / "run"), "--split", "val", "--device", "cpu", "--json"])
    assert val.exit_code == 0, val.output
    assert json.loads(val.stdout.strip().splitlines()[-1])["samples"] == 20  # 2 of the 3 samples of each class
    # damaged best.pt: one line, exit 2
    best = committed_state(tmp_path / "run") / "best.pt"
    data = bytearray(best.read_bytes())
    best.unlink()
    data[len(data) // 2] ^= 1
    best.write_bytes(bytes(data))
    bad = CliRunner().invoke(cli, ["eval", str(tmp_path / "run"), "--device", "cpu"])
    assert bad.exit_code == 2 and "best.pt is damaged" in bad.output
    none = CliRunner().invoke(cli, ["eval", str(tmp_path)])
    assert none.exit_code == 2 and "no completed epoch" in none.output
