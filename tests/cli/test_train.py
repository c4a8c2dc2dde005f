"""``eventkit train`` / ``eventkit plot`` smoke tests on a tiny fake N-MNIST root (CPU, < 30 s)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from eventkit.cli.main import cli

TINY_ARCH = "APk2s2-c4k3s1-BN-PLIF-MPk2s2-DP-FC20-PLIF-APk2s2"


@pytest.fixture(scope="module")
def nmnist_root(tmp_path_factory):
    from eventkit.testing import make_nmnist_root

    return make_nmnist_root(tmp_path_factory.mktemp("nm") / "raw", per_class_train=2, per_class_test=1)


def test_train_json_then_plot(nmnist_root, tmp_path):
    run = tmp_path / "run"
    args = ["train", "nmnist", "--root", str(nmnist_root), "--cache", str(tmp_path / "cache"), "--T", "4",
            "--arch", TINY_ARCH, "--epochs", "1", "--batch-size", "8", "--lr", "0.01", "--device", "cpu",
            "--seed", "1", "--out", str(run), "--workers", "0", "--json", "--no-progress"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    for key in ("test_accuracy", "train_accuracy", "epochs", "seconds", "run_dir"):
        assert key in summary
    assert summary["epochs"] == 1 and summary["run_dir"] == str(run)
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    for name in ("metrics.csv", "metrics.json", "config.json", "checkpoint.pt", "summary.json"):
        assert (run / name).is_file(), name
    assert json.loads((run / "config.json").read_text())["T"] == 4
    ck = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ck["epoch"] == 0
    # resume to 2 epochs, then plot
    res2 = CliRunner().invoke(cli, args[:args.index("--epochs")] + ["--epochs", "2"] +
                              args[args.index("--epochs") + 2:] + ["--resume"])
    assert res2.exit_code == 0, res2.output
    assert json.loads(res2.stdout.strip().splitlines()[-1])["epochs"] == 2
    res3 = CliRunner().invoke(cli, ["plot", str(run), "--json"])
    assert res3.exit_code == 0, res3.output
    files = json.loads(res3.stdout.strip().splitlines()[-1])["files"]
    assert {Path(f).name for f in files} == {"loss.png", "accuracy.png", "spike_rates.png", "latency.png", "synops.png"}


def test_train_config_file_and_errors(nmnist_root, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[train]\nT = 4\narch = "{TINY_ARCH}"\nepochs = 1\nbatch_size = 16\n')
    args = ["train", "nmnist", "--config", str(recipe), "--root", str(nmnist_root), "--cache", str(tmp_path / "c"),
            "--device", "cpu", "--out", str(tmp_path / "run"), "--json", "--no-progress"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["epochs"] == 1
    # a bad spec is one error line and exit code 2
    bad = CliRunner().invoke(cli, args[:2] + ["--arch", "c4k3s1-BOGUS-FC10"] + args[2:])
    assert bad.exit_code == 2 and "BOGUS" in bad.output
    nores = CliRunner().invoke(cli, ["train", "nmnist", "--resume"])
    assert nores.exit_code == 2 and "--out" in nores.output
    noplot = CliRunner().invoke(cli, ["plot", str(tmp_path)])
    assert noplot.exit_code == 2 and "metrics.json" in noplot.output


def test_train_zero_epochs_prints_summary(nmnist_root, tmp_path):
    # no epoch ran: the accuracies are None and the human summary line must not crash on them
    args = ["train", "nmnist", "--root", str(nmnist_root), "--cache", str(tmp_path / "cache"), "--T", "4",
            "--arch", TINY_ARCH, "--epochs", "0", "--device", "cpu", "--out", str(tmp_path / "run"), "--no-progress"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "0 epochs" in res.output and "test accuracy n/a" in res.output
