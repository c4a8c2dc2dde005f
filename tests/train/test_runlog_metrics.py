"""Epoch records, summary fields, silent-layer warnings and titled plots (runlog / plots / epoch)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import torch

from eventkit_train.runlog import (
    RunLog,
    epoch_record,
    flatten_record,
    read_metrics,
    silent_layers,
    summary_fields,
    warn_silent_layers,
)

TINY_ARCH = "APk2s2-c4k3s1-BN-PLIF-MPk2s2-DP-FC20-PLIF-APk2s2"


def _synops(total: float) -> dict:
    layers = {"1_conv": {"kind": "conv", "ac": 0.0, "mac": total, "ann_mac": 4 * total, "ann_ac": 0.0},
              "7_fc": {"kind": "dense", "ac": 2.0, "mac": 0.0, "ann_mac": 50.0, "ann_ac": 0.0}}
    return {"layers": layers, "ac": 2.0, "mac": total, "total": total + 2.0, "ann_mac": 4 * total + 50.0, "ann_ac": 0.0}


def _eval(acc: float, silent: list[str], total: float = 100.0) -> dict:
    rates = {"3_plif": 0.0 if "3_plif" in silent else 0.1, "8_plif": 0.0 if "8_plif" in silent else 0.2}
    return {"loss": 1.0 - acc, "accuracy": acc, "samples": 10, "spike_rates": rates, "silent_layers": silent,
            "latency_accuracy": [acc / 2, acc], "synops": _synops(total),
            "energy_pj": {"snn": 4.6 * total + 1.8, "ann": 4.6 * (4 * total + 50), "pj_per_ac": 0.9,
                          "pj_per_mac": 4.6, "source": "M. Horowitz, ISSCC 2014"}}


def _write_run(run: Path, evals: list[dict], arch: str = TINY_ARCH) -> list[dict]:
    log = RunLog()
    for e, ev in enumerate(evals):
        log.append(epoch_record(e, 0.01, {"loss": 0.5, "accuracy": 0.6}, {"val": ev, "test": ev}, seconds=1.5))
    log.write(run)
    summary = {"dataset": "nmnist", "arch": arch, "best_epoch": 0, **summary_fields(log.records)}
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "config.json").write_text(json.dumps({"dataset": "nmnist", "arch": arch, "T": 2}))
    return log.records


def test_epoch_record_csv_and_summary(tmp_path):
    records = _write_run(tmp_path, [_eval(0.5, []), _eval(0.7, ["8_plif"], total=80.0)])
    rec = read_metrics(tmp_path)[-1]
    assert rec["test_accuracy"] == 0.7 and rec["val_accuracy"] == 0.7 and rec["seconds"] == 1.5
    assert rec["synops"]["total"] == 82.0 and rec["silent_layers"] == ["8_plif"]
    assert rec["energy_pj"]["pj_per_mac"] == 4.6 and rec["latency_accuracy"] == [0.35, 0.7]
    row = list(csv.DictReader(io.StringIO((tmp_path / "metrics.csv").read_text())))[-1]
    assert float(row["synops/1_conv"]) == 80.0 and float(row["synops/7_fc"]) == 2.0
    assert float(row["synops_total"]) == 82.0 and float(row["energy_pj/snn"]) == pytest.approx(4.6 * 80 + 1.8)
    assert "silent_layers" not in row and "latency_accuracy" not in row
    s = summary_fields(records)
    assert s["silent_layers"] == ["8_plif"] and s["synops"]["total"] == 82.0 and s["latency_accuracy"] == [0.35, 0.7]
    assert summary_fields([]) == {"silent_layers": None, "latency_accuracy": None, "synops": None, "energy_pj": None}
    assert flatten_record({"epoch": 0, "spike_rates": {"a": 0.5}}) == {"epoch": 0, "rate/a": 0.5}


def test_silent_layers_warned_once_per_layer():
    # records written before silent_layers existed: a rate of exactly 0
    assert silent_layers({"spike_rates": {"a": 0.0, "b": 1e-9}}) == ["a"]
    err, warned = io.StringIO(), set()
    assert warn_silent_layers({"epoch": 0, "silent_layers": ["3_plif"]}, warned, err) == ["3_plif"]
    assert warn_silent_layers({"epoch": 1, "silent_layers": ["3_plif"]}, warned, err) == []
    assert warn_silent_layers({"epoch": 2, "silent_layers": ["3_plif", "8_plif"]}, warned, err) == ["8_plif"]
    lines = err.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("warning: layer 3_plif fired no spike on the test set in epoch 1;")
    assert lines[1].startswith("warning: layer 8_plif fired no spike on the test set in epoch 3;")


def _capture_figures(monkeypatch) -> dict[str, dict]:
    from matplotlib.figure import Figure

    seen: dict[str, dict] = {}
    original = Figure.savefig

    def savefig(fig, path, *a, **kw):
        seen[Path(path).name] = {"title": fig._suptitle.get_text() if fig._suptitle else "",
                                 "footer": fig._supxlabel.get_text() if fig._supxlabel else ""}
        return original(fig, path, *a, **kw)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return seen


def test_every_plot_is_titled_and_warns_of_silent_layers(tmp_path, monkeypatch):
    from eventkit_train.plots import plot_run

    long_arch = "c128k3s1-BN-LIF-MPk2s2-c128k3s1-BN-SIT-MPk2s2-DP-FC2048-LIF-DP-FC100-LIF-APk10s10"
    run = tmp_path / "nm-run"
    _write_run(run, [_eval(0.5, []), _eval(0.7, ["8_plif"])], arch=long_arch)
    seen = _capture_figures(monkeypatch)
    files = plot_run(run, tmp_path / "png")
    assert {p.name for p in files} == set(seen) == {"loss.png", "accuracy.png", "spike_rates.png", "latency.png",
                                                    "synops.png"}
    for name, fig in seen.items():
        assert "run nm-run" in fig["title"] and "dataset nmnist" in fig["title"] and "T = 2" in fig["title"], name
        assert fig["title"].replace("\n", "").replace("network ", "").endswith(long_arch), name
        assert "layer 8_plif fired no spike" in fig["footer"] and "epoch 2" in fig["footer"], name
    # a run whose layers all fire: no warning
    ok = tmp_path / "ok"
    _write_run(ok, [_eval(0.5, [])])
    seen.clear()
    plot_run(ok)
    assert seen and all(fig["footer"] == "" for fig in seen.values())


def test_run_epoch_records_synops_of_the_pass():
    """run_epoch's evaluation result holds the same per-sample counts as an OpCounter run
    directly over the same batches, and names the silent layers."""
    from eventkit_train.epoch import run_epoch
    from eventkit_train.losses import get_loss
    from eventkit_train.models import build
    from eventkit_train.synops import OpCounter
    from eventkit_train.trainer import TrainConfig

    torch.manual_seed(0)
    net = build(TINY_ARCH, (2, 34, 34), "plif", v_threshold=0.05)
    batches = [((torch.rand(3, 4, 2, 34, 34) < 0.2).to(torch.uint8) * 2, torch.tensor([0, 1, 2])) for _ in range(2)]
    cfg = TrainConfig(dataset="nmnist", T=4, arch=TINY_ARCH)
    res = run_epoch(net, batches, get_loss("rate_mse"), cfg, torch.device("cpu"), amp=False, scale=1.0)
    net.eval()
    with torch.no_grad(), OpCounter(net) as ops:
        for x, _ in batches:
            net(x.float().transpose(0, 1))
    direct = ops.summary(6)
    assert res["synops"]["layers"].keys() == direct["synops"]["layers"].keys()
    for name, layer in direct["synops"]["layers"].items():
        for key, value in layer.items():
            assert res["synops"]["layers"][name][key] == pytest.approx(value), (name, key)
    assert res["energy_pj"]["snn"] == pytest.approx(direct["energy_pj"]["snn"])
    assert res["silent_layers"] == [n for n, r in res["spike_rates"].items() if r == 0]


def test_train_writes_synops_energy_and_warns_once(tmp_path, capsys):
    from eventkit_train.trainer import train
    from tests.train.trainer_helpers import tiny_config, tiny_nmnist

    fake = tiny_nmnist(tmp_path)
    summary = train(tiny_config(fake, tmp_path / "run", epochs=2), progress=False, stores=fake["stores"])
    records = read_metrics(tmp_path / "run")
    for rec in records:
        assert rec["synops"]["total"] == pytest.approx(rec["synops"]["ac"] + rec["synops"]["mac"])
        assert {"1_conv", "7_fc"} <= set(rec["synops"]["layers"]) and rec["energy_pj"]["ann"] > 0
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    for key in ("synops", "energy_pj", "silent_layers", "latency_accuracy"):
        assert on_disk[key] == records[-1][key] == summary[key], key
    err = capsys.readouterr().err
    silent = records[0]["silent_layers"]
    assert silent  # the synthetic recordings are too sparse for the default threshold: the layers stay silent
    for name in silent:  # each silent layer named once per run, however many epochs it stays silent
        assert sum(name in line for line in err.splitlines() if "fired no spike" in line) == 1, err
