"""Model selection on a validation split, non-finite losses/weights, the closed-form schedule,
and the launcher environment (torchrun / srun) read without starting processes."""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch

from eventkit.errors import ParameterError
from eventkit_train.checkpoint import load_checkpoint
from eventkit_train.data import MIN_VALIDATION, per_rank_batch, validation_split
from eventkit_train.distributed import LaunchEnv, detect_launch, first_host, rank_seed
from eventkit_train.optim import lr_at
from eventkit_train.runlog import read_metrics
from eventkit_train.trainer import TrainConfig, TrainingDiverged, train
from tests.train.trainer_helpers import tiny_config, tiny_nmnist

# ---------------------------------------------------------------- the validation split

def _naive_split(labels, ids, fraction):
    held = []
    for c in sorted(set(labels)):
        members = [i for i, lab in enumerate(labels) if lab == c]
        k = int(math.floor(fraction * len(members) + 0.5))
        held += sorted(members, key=lambda i: hashlib.sha256(ids[i].encode()).hexdigest())[:k]
    return sorted(held)


def test_validation_split_per_class_deterministic():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 300)
    ids = [f"train/{lab}/{i:05d}.bin" for i, lab in enumerate(labels)]
    tr, va = validation_split(labels, ids, 0.1)
    assert va.tolist() == _naive_split(labels.tolist(), ids, 0.1)
    assert sorted(tr.tolist() + va.tolist()) == list(range(300)) and not set(tr) & set(va)
    for c in range(7):  # per class: round(10 %) of its samples
        n_c = int((labels == c).sum())
        assert int((labels[va] == c).sum()) == math.floor(0.1 * n_c + 0.5)
    # the same samples whatever the store order (ids decide, not positions)
    perm = rng.permutation(300)
    _, va_perm = validation_split(labels[perm], [ids[i] for i in perm], 0.1)
    assert sorted(ids[perm[i]] for i in va_perm) == sorted(ids[i] for i in va)
    assert validation_split(labels, ids, 0.0)[1].size == 0
    small = np.arange(20) % 10  # 2 per class: 10 % holds out nothing
    assert validation_split(small, [str(i) for i in range(20)], 0.1)[1].size == 0 and MIN_VALIDATION == 10


@pytest.fixture(scope="module")
def fake_nmnist(tmp_path_factory):
    return tiny_nmnist(tmp_path_factory.mktemp("nmnist_sel"))


def _config(fake, out, **kw):
    return tiny_config(fake, out, **{"epochs": 4, "scheduler": "none", **kw})


def test_best_is_chosen_on_validation_not_on_test(fake_nmnist, tmp_path, monkeypatch):
    """Scripted evaluation scores: validation peaks at epoch 1, test at epoch 2."""
    import eventkit_train.trainer as trainer_mod

    real = trainer_mod.run_epoch
    scripted = {"val": [0.2, 0.9, 0.5, 0.9], "test": [0.1, 0.3, 0.8, 0.2]}
    calls = {"val": 0, "test": 0}

    def fake_run_epoch(model, loader, loss_fn, config, device, **kw):
        res = real(model, loader, loss_fn, config, device, **kw)
        split = kw.get("desc", "").split()[-1]
        if kw.get("optimizer") is None and split in scripted:
            res["accuracy"] = scripted[split][calls[split]]
            calls[split] += 1
        return res

    monkeypatch.setattr(trainer_mod, "run_epoch", fake_run_epoch)
    summary = train(_config(fake_nmnist, tmp_path / "run"), progress=False, stores=fake_nmnist["stores"])
    assert summary["best_epoch"] == 1 and summary["best_val_accuracy"] == 0.9  # ties keep the earlier epoch
    assert summary["test_accuracy_at_best"] == 0.3 and summary["test_accuracy"] == 0.2
    assert load_checkpoint(tmp_path / "run" / "best.pt")["epoch"] == 1
    recs = read_metrics(tmp_path / "run")
    assert [r["val_accuracy"] for r in recs] == scripted["val"] and "val_loss" in recs[0]
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["validation_samples"] == 20


def test_without_validation_best_follows_the_last_epoch(fake_nmnist, tmp_path, capsys):
    summary = train(_config(fake_nmnist, tmp_path / "run", epochs=2, val_fraction=0.1), progress=False,
                    stores=fake_nmnist["stores"])
    assert "too few to hold out" in capsys.readouterr().err
    assert summary["best_epoch"] == 1 and summary["best_val_accuracy"] is None
    assert load_checkpoint(tmp_path / "run" / "best.pt")["epoch"] == 1


# ---------------------------------------------------------------- non-finite losses and weights

def test_nan_loss_stops_the_run_naming_epoch_and_step(fake_nmnist, tmp_path, monkeypatch):
    import eventkit_train.losses as losses

    real = losses.get_loss
    calls = [0]

    def poisoned(name):
        fn = real(name)

        def loss(out, y, **kw):
            value = fn(out, y, **kw)
            if not torch.is_grad_enabled():  # evaluation
                return value
            calls[0] += 1
            return value * float("nan") if calls[0] == 10 else value  # 2nd epoch, 2nd training step
        loss.loss_input = fn.loss_input
        return loss

    monkeypatch.setattr(losses, "get_loss", poisoned)
    cfg = _config(fake_nmnist, tmp_path / "run", batch_size=4, val_fraction=0.0)  # 30 samples: 8 steps
    with pytest.raises(TrainingDiverged, match=r"non-finite .* at epoch 2, step 2 of 8") as info:
        train(cfg, progress=False, stores=fake_nmnist["stores"])
    assert "\n" not in str(info.value)
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["epoch"] == 0 and all(torch.isfinite(v).all() for v in best["model"].values())
    assert [r["epoch"] for r in read_metrics(tmp_path / "run")] == [0]


def test_non_finite_weights_are_never_saved(fake_nmnist, tmp_path, monkeypatch):
    real_step = torch.optim.Adam.step

    def step(self, *a, **kw):  # a finite loss, but the last update overflows one weight
        out = real_step(self, *a, **kw)
        self.param_groups[0]["params"][0].data[0] = float("inf")
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    with pytest.raises(TrainingDiverged, match="weights became non-finite in epoch 1"):
        train(_config(fake_nmnist, tmp_path / "run", epochs=1), progress=False, stores=fake_nmnist["stores"])
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- schedule, batch, launch environment

def test_cosine_closed_form_matches_torch_scheduler():
    cfg = TrainConfig(lr=0.01, scheduler="cosine", epochs=40, t_max=8)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)
    for e in range(40):  # beyond T_max too: periodic, as torch's
        assert lr_at(cfg, e) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15), e
        opt.step()
        sched.step()
    assert lr_at(TrainConfig(lr=0.01, scheduler="none"), 17) == 0.01


def test_global_batch_split():
    assert per_rank_batch(TrainConfig(batch_size=32), 4) == 8
    with pytest.raises(ParameterError, match="not divisible by the 3 processes"):
        per_rank_batch(TrainConfig(batch_size=32), 3)


def test_launch_environment():
    assert detect_launch({}) == LaunchEnv()
    tr = detect_launch({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "h0", "MASTER_PORT": "29500"})
    assert (tr.rank, tr.world_size, tr.local_rank, tr.master_addr, tr.master_port, tr.launcher) == \
        (3, 8, 1, "h0", 29500, "torchrun")
    slurm = {"SLURM_PROCID": "5", "SLURM_STEP_NUM_TASKS": "8", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1",
             "SLURM_STEP_NODELIST": "gpu[07-09,12],cpu1", "SLURM_JOB_ID": "123456"}
    s = detect_launch(slurm)
    assert (s.rank, s.world_size, s.local_rank, s.master_addr, s.master_port, s.launcher) == \
        (5, 8, 1, "gpu07", 20000 + 123456 % 20000, "slurm")
    assert detect_launch({**slurm, "MASTER_ADDR": "x", "MASTER_PORT": "1234"}).master_port == 1234
    # an sbatch script without srun: SLURM_NTASKS is set but no step variables -> one process
    assert detect_launch({"SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_JOB_NODELIST": "n[1-2]"}) == LaunchEnv()
    assert first_host("node001") == "node001" and first_host("a[1-3]-b[4,5]") == "a1-b4"
    assert first_host("n[010-012],m1") == "n010"
    with pytest.raises(ParameterError, match="not an integer"):
        detect_launch({"RANK": "x", "WORLD_SIZE": "2"})
    seeds = {rank_seed(7, r, e) for r in range(4) for e in range(4)}
    assert len(seeds) == 16 and rank_seed(7, 0) == 7 and rank_seed(7, 1, 2) == rank_seed(7, 1, 2)


@pytest.mark.parametrize("env", [
    {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "h0", "MASTER_PORT": "29500x"},
    {"SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_NODELIST": "n1", "MASTER_PORT": "p"},
], ids=["torchrun", "slurm"])
def test_a_bad_master_port_is_a_one_line_error_naming_it(env):
    with pytest.raises(ParameterError, match="MASTER_PORT"):
        detect_launch(env)
