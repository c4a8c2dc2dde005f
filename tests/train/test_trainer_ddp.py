"""Two-process DDP training on the CPU (gloo) on real N-MNIST recordings (../shared/data).

Processes are started with ``torch.multiprocessing.spawn`` and join through the same
environment variables ``torchrun`` sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT). Tolerance for gradients: float32 sums in another order, rtol 1e-5 / atol 1e-7.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from tests.conftest import SHARED_DATA

NMNIST_SMALL = SHARED_DATA / "nmnist" / "NMNISTsmall"
N_SAMPLES, N_TRAIN = 81, 60  # ids 1..60 train (13 held out for validation at 0.2), 61..81 test
ARCH_PLAIN = "APk2s2-c4k3s1-PLIF-MPk2s2-FC20-PLIF-APk2s2"  # no BN/dropout: exactly a big-batch step
ARCH_FULL = "APk2s2-c4k3s1-BN-PLIF-MPk2s2-DP-FC20-PLIF-APk2s2"


@pytest.fixture(scope="module")
def real_nmnist(tmp_path_factory):
    if not (NMNIST_SMALL / "train1K.txt").is_file():
        pytest.skip(f"real N-MNIST samples not found under {NMNIST_SMALL} (set EVENTKIT_SHARED_DATA)")
    from eventkit.build import build_cache
    from eventkit.testing import arrange_nmnist_small, read_nmnist_small_labels

    base = tmp_path_factory.mktemp("ddp_nmnist")
    rows = read_nmnist_small_labels(NMNIST_SMALL / "train1K.txt")[:N_SAMPLES]
    labels = base / "labels.txt"
    labels.write_text("#sample #class\n" + "".join(f"{sid}\t{cls}\n" for sid, cls in rows))
    root = arrange_nmnist_small(NMNIST_SMALL, labels, base / "raw", n_train=N_TRAIN)
    res = build_cache("nmnist", T=4, root=root, cache=base / "cache", progress=False)
    return {"root": str(root), "cache": str(base / "cache"), "stores": {k: str(v) for k, v in res.stores.items()}}


def _config(real, **kw):
    from eventkit_train.trainer import TrainConfig

    base = dict(dataset="nmnist", T=4, arch=ARCH_PLAIN, epochs=1, batch_size=8, lr=0.05, optimizer="sgd",
                momentum=0.0, scheduler="none", val_fraction=0.2, root=real["root"], cache=real["cache"],
                device="cpu", seed=5, threads=1, shuffle_buffer=16)
    base.update(kw)
    return TrainConfig(**base)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _join(rank: int, world: int, port: int) -> None:
    """What torchrun sets; each Session (one per train() call) makes its own process group."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)


def _step(config, stores: dict, out: str, rank: int) -> None:
    """One training step through the trainer's own pieces, then every loader's sample indices."""
    from eventkit_train.data import make_loaders, open_data
    from eventkit_train.distributed import Session
    from eventkit_train.losses import get_loss
    from eventkit_train.optim import make_optimizer
    from eventkit_train.trainer import build_model, run_epoch

    with Session("cpu") as session:
        data = open_data(config, stores, warn=False)
        loaders = make_loaders(config, data, rank=session.rank, world_size=session.world_size, pin_memory=False)
        for loader in loaders.values():
            loader.dataset.return_index = True
        loaders["train"].set_epoch(0)
        first = next(iter(loaders["train"]))
        torch.manual_seed(config.seed)
        model = build_model(config, data.input_shape)
        w0 = {k: v.clone() for k, v in model.state_dict().items()}
        net = session.wrap(model, sync_bn=None)
        optimizer = make_optimizer(config, net.parameters())
        run_epoch(net, [first[:2]], get_loss(config.loss), config, torch.device("cpu"), amp=False, scale=1.0,
                  optimizer=optimizer, session=session)
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        seen = {}
        for split, loader in loaders.items():
            loader.set_epoch(0)
            seen[split] = [i for batch in loader for i in batch[2].tolist()]
        torch.save({"w0": w0, "grads": grads, "first": first[2].tolist(), "seen": seen,
                    "train_indices": data.train_indices.tolist(), "val_indices": data.val_indices.tolist()},
                   f"{out}/rank{rank}.pt")


def _worker(rank: int, world: int, ports: list[int], jobs: list, stores: dict, out: str) -> None:
    """Runs the jobs in order, each in its own process group: ("step", config) or
    ("train", name, config, resume)."""
    from eventkit_train.trainer import TrainConfig, train

    for port, job in zip(ports, jobs, strict=True):
        _join(rank, world, port)
        if job[0] == "step":
            _step(TrainConfig(**job[1]), stores, out, rank)
        else:
            _, name, config, resume = job
            summary = train(TrainConfig(**config), resume=resume, progress=False)
            Path(f"{out}/{name}{rank}.json").write_text(json.dumps(summary))


@pytest.fixture(scope="module")
def ddp_runs(real_nmnist, tmp_path_factory):
    """One spawn of 2 processes: a single step, a 2-epoch run, its resume to 3 epochs, a 3-epoch run."""
    out = tmp_path_factory.mktemp("ddp_runs")
    step_cfg = _config(real_nmnist)
    full_cfg = _config(real_nmnist, arch=ARCH_FULL, epochs=3, optimizer="adam", lr=0.01, out=str(out / "full"))
    part_cfg = full_cfg.replace(epochs=2, out=str(out / "part"))
    jobs = [("step", step_cfg.to_dict()), ("train", "part", part_cfg.to_dict(), False),
            ("train", "resume", part_cfg.replace(epochs=3).to_dict(), True),
            ("train", "full", full_cfg.to_dict(), False)]
    mp.spawn(_worker, args=(2, _free_ports(len(jobs)), jobs, real_nmnist["stores"], str(out)), nprocs=2, join=True)
    return {"out": out, "step_config": step_cfg}


def test_one_step_equals_single_process_on_the_concatenated_batch(real_nmnist, ddp_runs):
    from eventkit.loader import FrameDataset
    from eventkit_train.losses import get_loss
    from eventkit_train.trainer import build_model

    config, out = ddp_runs["step_config"], ddp_runs["out"]
    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for k in r0["w0"]:
        assert torch.equal(r0["w0"][k], r1["w0"][k])  # same initial weights on both ranks
    # the gradient of one DDP step (per-rank batch 4, averaged over ranks) == one process, batch 8
    idx = r0["first"] + r1["first"]
    assert len(r0["first"]) == len(r1["first"]) == 4 and not set(r0["first"]) & set(r1["first"])
    ds = FrameDataset(real_nmnist["stores"]["train"])
    x = torch.stack([ds[i][0] for i in idx]).transpose(0, 1).float()
    y = torch.tensor([ds[i][1] for i in idx])
    model = build_model(config, tuple(ds.frame_shape[1:]))
    model.load_state_dict(r0["w0"])
    get_loss(config.loss)(model(x), y).backward()
    for name, p in model.named_parameters():
        assert p.grad.abs().max() > 0, name
        torch.testing.assert_close(r0["grads"][name], p.grad, rtol=1e-5, atol=1e-7)
        assert torch.equal(r0["grads"][name], r1["grads"][name])
    # each rank saw a disjoint part of every split; the parts cover it (training: drop_last drops 1 of 47)
    train_idx, val_idx = set(r0["train_indices"]), set(r0["val_indices"])
    assert len(val_idx) == 13 and len(train_idx) == 47 and not train_idx & val_idx
    for split, full in (("train", train_idx), ("val", val_idx), ("test", set(range(N_SAMPLES - N_TRAIN)))):
        a, b = r0["seen"][split], r1["seen"][split]
        assert not set(a) & set(b) and len(set(a)) == len(a) and len(set(b)) == len(b), split
        if split == "train":
            assert len(a) == len(b) == 23 and (set(a) | set(b)) <= full and len(full - set(a) - set(b)) == 1
        else:
            assert set(a) | set(b) == full and abs(len(a) - len(b)) <= 1, split


def test_ddp_run_folder_and_test_accuracy(ddp_runs):
    from eventkit_train.runlog import read_metrics
    from eventkit_train.runs import evaluate_run, load_run

    out = ddp_runs["out"]
    s0, s1 = (json.loads((out / f"part{r}.json").read_text()) for r in (0, 1))
    assert s0["world_size"] == 2 and s0["epochs"] == 2 and s0["test_accuracy"] == s1["test_accuracy"]
    assert s0["rank"] == 0 and s1["rank"] == 1
    # one run folder per run, written by rank 0 only: one state, one checkpoint (+ its link)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["full", "part"]
    for run_dir in (out / "part", out / "full"):
        assert len([p for p in run_dir.iterdir() if p.name.startswith("state-")]) == 1
        assert len([p for p in run_dir.rglob("checkpoint.pt") if not p.is_symlink()]) == 1
    # the reported test accuracy == one process evaluating the same weights on the whole test set
    # (the 'part' folder now holds the resumed run: its epoch-2 record is checked against the 3rd epoch)
    run = load_run(out / "part", weights="last")
    assert run.epoch == 2
    last = read_metrics(out / "part")[-1]
    single = evaluate_run(run, split="test", device="cpu")
    assert single["samples"] == N_SAMPLES - N_TRAIN and single["accuracy"] == last["test_accuracy"]
    assert single["loss"] == pytest.approx(last["test_loss"], rel=1e-6)
    assert evaluate_run(run, split="val", device="cpu")["accuracy"] == last["val_accuracy"]


def test_ddp_resume_continues_where_it_stopped(ddp_runs):
    from eventkit_train.runlog import read_metrics
    from eventkit_train.runs import load_run

    out = ddp_runs["out"]
    assert json.loads((out / "resume0.json").read_text())["epochs"] == 3
    part, full = read_metrics(out / "part"), read_metrics(out / "full")
    assert [r["epoch"] for r in part] == [0, 1, 2]
    for a, b in zip(part, full, strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    wa, wb = load_run(out / "part", weights="last").model, load_run(out / "full", weights="last").model
    for (name, a), b in zip(wa.state_dict().items(), wb.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
