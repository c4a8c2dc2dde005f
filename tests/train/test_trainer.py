"""Trainer, TrainConfig/recipes, metrics and checkpoints (tiny fake N-MNIST, CPU)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from eventkit.errors import ParameterError
from eventkit_train.metrics import RunLog, SpikeRecorder, latency_correct, plot_run, predict, read_metrics
from eventkit_train.models import build, parse_spec
from eventkit_train.trainer import TrainConfig, load_checkpoint, load_config, train

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.toml"))
TINY_ARCH = "APk2s2-c4k3s1-BN-PLIF-MPk2s2-DP-FC20-PLIF-APk2s2"
SHAPES = {"nmnist": (2, 34, 34), "cifar10dvs": (2, 128, 128), "dvsgesture": (2, 128, 128), "mnist": (1, 28, 28),
          "fashionmnist": (1, 28, 28), "cifar10": (3, 32, 32), "shd": (1, 700), "ntidigits18": (1, 64)}


# ---------------------------------------------------------------- config / recipes

def test_recipes_load_and_build():
    assert len(CONFIGS) >= 10
    for path in CONFIGS:
        cfg = load_config(path)
        assert cfg.arch and parse_spec(cfg.arch)
        readout = "membrane" if cfg.loss == "max_over_time_ce" else "spikes"
        # width-scaled so the big nets stay quick; the output layer keeps its size
        net = build(cfg.arch, SHAPES[cfg.dataset], cfg.neuron, readout=readout, width=1 / 16,
                    neuron_map=cfg.neuron_map or None, readout_kwargs=cfg.readout_kwargs or None, **cfg.neuron_kwargs)
        assert net.n_classes in (10, 11, 20), path.name


def test_paper_hyperparameters_in_recipes():
    hnn = load_config(REPO / "configs" / "hnn-nmnist.toml")  # Jin et al. 2022, Sect. 4.3
    assert (hnn.optimizer, hnn.lr, hnn.t_max, hnn.batch_size, hnn.T) == ("adam", 0.01, 64, 16, 10)
    shd = load_config(REPO / "configs" / "fsnn-shd.toml")  # Bouanane et al. 2023, Table I
    assert (shd.arch, shd.lr, shd.batch_size, shd.epochs, shd.optimizer) == ("700-200-20", 2e-4, 128, 200, "adamax")
    slayer = load_config(REPO / "configs" / "slayer-nmnist.toml")  # Shrestha et al. 2022, Sect. IV-A
    assert slayer.neuron_kwargs["theta"] == 10.0 and slayer.loss_kwargs == {"true_rate": 0.2, "false_rate": 0.04}


def test_defaults_are_the_small_nmnist_recipe():
    from eventkit_train.trainer import DEFAULT_ARCH

    recipe = load_config(REPO / "configs" / "nmnist-small.toml")
    default = TrainConfig()
    assert recipe.arch == DEFAULT_ARCH["nmnist"]
    for key in ("T", "split_by", "neuron", "loss", "optimizer", "lr", "scheduler", "epochs", "batch_size",
                "shuffle_buffer", "seed"):
        assert getattr(recipe, key) == getattr(default, key), key


def test_config_toml_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\nlr = 0.1\nlearning_rate = 0.2\n')
    with pytest.raises(ParameterError, match="learning_rate"):
        load_config(bad)
    bad.write_text("[train\n")
    with pytest.raises(ParameterError, match="invalid TOML"):
        load_config(bad)
    with pytest.raises(ParameterError):
        TrainConfig(batch_size=0)
    with pytest.raises(ParameterError):
        TrainConfig(optimizer="rmsprop")
    cfg = TrainConfig().replace(lr=None, epochs=3)
    assert cfg.epochs == 3 and cfg.lr == TrainConfig().lr


# ---------------------------------------------------------------- metrics vs direct loops

def test_predict_ties_go_to_lowest_index():
    out = torch.zeros(4, 3, 5)
    out[:, 1, 2] = 1
    out[:, 1, 4] = 1  # tie 2 vs 4
    out[0, 2, 3] = 1
    assert predict(out, "spikes").tolist() == [0, 2, 3]  # silent -> class 0


def test_voting_ties_consistent():
    """Voting outputs are multiples of 1/M: equal counts must tie exactly (lowest index wins)
    and the latency curve at t = T must equal the final accuracy."""
    torch.manual_seed(2)
    spikes = (torch.rand(10, 64, 30) < 0.2).float()
    out = spikes.reshape(10, 64, 3, 10).mean(-1)  # the voting layer, float32 like the network's output
    y = torch.randint(0, 3, (64,))
    counts = spikes.reshape(10, 64, 3, 10).sum(dim=(0, 3))  # exact integer votes
    ref = [max(range(3), key=lambda c: (counts[b, c].item(), -c)) for b in range(64)]
    assert predict(out, "spikes").tolist() == ref
    n_right = sum(int(r == t) for r, t in zip(ref, y.tolist(), strict=True))
    assert latency_correct(out, y, "spikes")[-1].item() == n_right


def test_latency_curve_against_loop():
    torch.manual_seed(0)
    out = (torch.rand(6, 8, 4) < 0.3).float()
    y = torch.randint(0, 4, (8,))
    got = latency_correct(out, y, "spikes")
    for t in range(6):
        counts = out[: t + 1].sum(0)
        ref = 0
        for b in range(8):
            best = max(range(4), key=lambda c: (counts[b, c].item(), -c))
            ref += int(best == y[b].item())
        assert got[t].item() == ref
    mem = torch.randn(6, 8, 4)
    got_m = latency_correct(mem, y, "membrane")
    for t in range(6):
        assert got_m[t].item() == int((mem[: t + 1].amax(0).argmax(-1) == y).sum())


def test_spike_recorder_counts():
    net = build("c4k3s1-BN-LIF-MPk2s2-FC10-LIF", (2, 8, 8))
    x = (torch.rand(3, 2, 2, 8, 8) < 0.5).float() * 3
    outs = {}
    handles = [m.register_forward_hook(lambda m, i, o, n=n: outs.__setitem__(n, o)) for n, m in net.spiking_layers()]
    with SpikeRecorder(net) as rec:
        net(x)
    for h in handles:
        h.remove()
    rates = rec.rates()
    assert set(rates) == {"2_lif", "6_lif"}
    for name, o in outs.items():
        assert rates[name] == pytest.approx(float(o.detach().mean()))
    assert not net.layers[2]._forward_hooks  # hooks removed on exit


def test_runlog_roundtrip(tmp_path):
    log = RunLog()
    for e in range(3):
        log.append({"epoch": e, "test_accuracy": 0.1 * e, "spike_rates": {"a": 0.5}, "latency_accuracy": [0.1, 0.2]})
    log.append({"epoch": 1, "test_accuracy": 0.9, "spike_rates": {"a": 0.4}}, keep_epochs_below=1)
    log.write(tmp_path)
    recs = read_metrics(tmp_path)
    assert [r["epoch"] for r in recs] == [0, 1]
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "rate/a" in header and "latency_accuracy" not in header


# ---------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def fake_nmnist(tmp_path_factory):
    from eventkit.build import build_cache
    from eventkit.testing import make_nmnist_root

    base = tmp_path_factory.mktemp("nmnist")
    root = make_nmnist_root(base / "raw", per_class_train=2, per_class_test=1)
    res = build_cache("nmnist", T=4, root=root, cache=base / "cache", progress=False)
    return {"root": str(root), "cache": str(base / "cache"), "stores": res.stores}


def tiny_config(fake, out, **kw) -> TrainConfig:
    base = dict(dataset="nmnist", T=4, arch=TINY_ARCH, epochs=2, batch_size=8, lr=1e-2, root=fake["root"],
                cache=fake["cache"], out=str(out), device="cpu", seed=3, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def test_train_amp_clip_checkpoint_and_plot(fake_nmnist, tmp_path):
    # bf16 autocast on the CPU exercises the GPU code path (AMP) in a smoke test
    cfg = tiny_config(fake_nmnist, tmp_path / "run", amp=True, grad_clip=1.0, optimizer="sgd")
    summary = train(cfg, progress=False)
    assert summary["epochs"] == 2 and summary["amp"] is True
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and 0.0 <= summary["train_accuracy"] <= 1.0
    run = Path(summary["run_dir"])
    recs = json.loads((run / "metrics.json").read_text())
    assert [r["epoch"] for r in recs] == [0, 1]
    assert len(recs[-1]["latency_accuracy"]) == 4
    assert set(recs[-1]["spike_rates"]) == {"3_plif", "8_plif"}
    assert all(0.0 <= v <= 1.0 for v in recs[-1]["spike_rates"].values())
    assert recs[0]["lr"] > recs[1]["lr"]  # cosine annealing
    cfg_json = json.loads((run / "config.json").read_text())
    assert cfg_json["arch"] == TINY_ARCH and cfg_json["input_shape"] == [2, 34, 34]
    ck = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert {"model", "optimizer", "config", "epoch", "best_epoch", "best_score"} <= set(ck)
    assert ck["epoch"] == 1 and ck["config"]["arch"] == TINY_ARCH
    assert (run / "best.pt").exists()
    pngs = plot_run(run)
    assert {p.name for p in pngs} == {"loss.png", "accuracy.png", "spike_rates.png", "latency.png", "synops.png"}
    assert all(p.stat().st_size > 1000 for p in pngs)


def test_resume_continues_and_matches(fake_nmnist, tmp_path):
    """3 epochs in one go == 2 epochs + resume to 3 (same seed, data order and dropout RNG)."""
    stores = fake_nmnist["stores"]
    train(tiny_config(fake_nmnist, tmp_path / "full", epochs=3, scheduler="none"), progress=False, stores=stores)
    part = tiny_config(fake_nmnist, tmp_path / "part", epochs=2, scheduler="none")
    train(part, progress=False, stores=stores)
    resumed = train(part.replace(epochs=3), resume=True, progress=False, stores=stores)
    assert resumed["epochs"] == 3
    assert [r["epoch"] for r in read_metrics(tmp_path / "part")] == [0, 1, 2]
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "part" / "checkpoint.pt")["model"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    with pytest.raises(ParameterError, match="trained with arch"):
        train(part.replace(epochs=4, arch="APk2s2-c4k3s1-BN-LIF-MPk2s2-FC10-LIF"), resume=True, progress=False,
              stores=stores)


def test_loss_reduction_is_not_a_loss_kwarg():
    from eventkit_train.trainer import TrainConfig

    with pytest.raises(ParameterError, match="may not set 'reduction'"):
        TrainConfig(loss_kwargs={"reduction": "sum"})


def test_loss_names_read_like_get_loss():
    from eventkit_train.trainer import loss_input

    assert loss_input("max-over-time-ce") == loss_input("MAX_OVER_TIME_CE") == "membrane"
    assert loss_input("rate_mse") == "spikes"
    with pytest.raises(ParameterError, match="unknown loss"):
        loss_input("maxovertime")


def test_resume_with_more_epochs_stretches_the_cosine_schedule(fake_nmnist, tmp_path):
    """2 epochs of cosine, then --resume --epochs 4: the rate follows the 4-epoch closed form
    from epoch 2 on (0.5, 0.146 of the base) instead of climbing back up from 0."""
    import math

    cfg = tiny_config(fake_nmnist, tmp_path / "cos", epochs=2, scheduler="cosine")
    train(cfg, progress=False, stores=fake_nmnist["stores"])
    train(cfg.replace(epochs=4), resume=True, progress=False, stores=fake_nmnist["stores"])
    lrs = [r["lr"] for r in read_metrics(tmp_path / "cos")]
    base = cfg.lr
    assert lrs[:2] == pytest.approx([base, base * (1 + math.cos(math.pi / 2)) / 2])  # the 2-epoch plan
    assert lrs[2:] == pytest.approx([base * (1 + math.cos(math.pi * e / 4)) / 2 for e in (2, 3)])


def test_resume_without_checkpoint_starts_fresh_and_says_so(fake_nmnist, tmp_path, capsys):
    """A requeued job passes --resume on its first run: it trains from epoch 0 and names the missing file."""
    cfg = tiny_config(fake_nmnist, tmp_path / "new", epochs=1, scheduler="none")
    summary = train(cfg, resume=True, progress=False, stores=fake_nmnist["stores"])
    assert summary["epochs"] == 1
    assert [r["epoch"] for r in read_metrics(tmp_path / "new")] == [0]
    err = capsys.readouterr().err
    assert "no checkpoint at" in err and str(tmp_path / "new" / "checkpoint.pt") in err


def test_membrane_loss_builds_readout(fake_nmnist, tmp_path):
    cfg = tiny_config(fake_nmnist, tmp_path / "mot", arch="2312-32-10", neuron="cubalif", loss="max_over_time_ce",
                      optimizer="adamax", epochs=1, scheduler="none")
    summary = train(cfg, progress=False, stores=fake_nmnist["stores"])
    assert summary["epochs"] == 1
    assert json.loads((tmp_path / "mot" / "config.json").read_text())["output"] == "membrane"


def test_bad_device_and_labels(fake_nmnist, tmp_path):
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA"):
            train(tiny_config(fake_nmnist, tmp_path / "x", device="cuda"), progress=False,
                  stores=fake_nmnist["stores"])
    with pytest.raises(ParameterError, match="3 outputs but nmnist has 10 classes"):
        train(tiny_config(fake_nmnist, tmp_path / "y", arch="APk2s2-c4k3s1-LIF-MPk2s2-FC3-LIF", epochs=1),
              progress=False, stores=fake_nmnist["stores"])
    assert not (tmp_path / "y").exists()  # a refusal leaves no run folder


def test_run_epoch_sees_through_data_parallel_wrappers():
    """DDP / DataParallel hide SpikingNet.output: a membrane net must still be scored by its
    running maximum (not as spike counts) and its layers recorded under their own names."""
    from torch.utils.data import DataLoader, TensorDataset

    from eventkit_train.losses import max_over_time_ce
    from eventkit_train.trainer import run_epoch

    torch.manual_seed(0)
    T, n = 6, 12
    net = build("16-8-4", (16,), "cubalif", readout="membrane", alpha=0.0, beta=0.5, v_threshold=0.5)
    frames = torch.randint(0, 3, (n, T, 16), dtype=torch.uint8)
    labels = torch.randint(0, 4, (n,))
    loader = DataLoader(TensorDataset(frames, labels), batch_size=4)
    cfg = TrainConfig(T=T, batch_size=4)
    kw = dict(amp=False, scale=1.0)
    plain = run_epoch(net, loader, max_over_time_ce, cfg, torch.device("cpu"), **kw)
    wrapped = run_epoch(torch.nn.DataParallel(net), loader, max_over_time_ce, cfg, torch.device("cpu"), **kw)
    assert set(plain["spike_rates"]) == {"1_cubalif"}
    assert wrapped == plain
    # the scores really are the membrane's: the latency curve is the running-max prediction
    with torch.no_grad():
        u = net(frames.transpose(0, 1).float())
    expected = [float((u[: t + 1].max(0).values.argmax(-1) == labels).float().mean()) for t in range(T)]
    assert plain["latency_accuracy"] == pytest.approx(expected)
