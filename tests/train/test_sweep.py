"""Sweeps: spec expansion, cells through the normal trainer (in-process and on a local Dask
cluster), mean ± std tables, resume after a kill, one sweep per folder. Tiny fake N-MNIST, CPU."""
from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventkit.cli.main import cli
from eventkit.errors import ParameterError
from eventkit_train.analysis.sweep_run import CELL_FILE, cell_result, run_sweep
from eventkit_train.analysis.sweep_spec import load_sweep
from eventkit_train.analysis.sweep_table import aggregate
from eventkit_train.trainer import TrainConfig, build_model, train

REPO = Path(__file__).resolve().parents[2]
TINY_ARCH = "APk2s2-c4k3s1-BN-PLIF-MPk2s2-DP-FC20-PLIF-APk2s2"


def write_spec(path: Path, body: str, fake: dict | None = None) -> Path:
    data = "" if fake is None else (
        f'[train]\ndataset = "nmnist"\nT = 4\narch = "{TINY_ARCH}"\nepochs = 1\nbatch_size = 8\nlr = 0.01\n'
        f'device = "cpu"\nthreads = 1\nroot = "{fake["root"]}"\ncache = "{fake["cache"]}"\n\n')
    path.write_text(data + body)
    return path


GRID_2x2 = """
[sweep]
seeds = [0, 1]
metric = "train_loss"
[[axis]]
name = "tau"
field = ["neuron_kwargs.tau_init"]
values = [2.0, 4.0]
[[axis]]
name = "loss"
levels = [{ label = "mse", set = { loss = "rate_mse" } }, { label = "ce", set = { loss = "rate_ce" } }]
"""


# ------------------------------------------------------------------ specs (no training)

def test_spec_expansion_union_levels_and_identity(tmp_path):
    recipe = tmp_path / "base.toml"
    recipe.write_text('[train]\ndataset = "nmnist"\narch = "2312-200-10"\nneuron = "cubalif"\n'
                      '[train.neuron_kwargs]\ntau_syn = 14.0\ntau_mem = 70.0\n')
    spec = write_spec(tmp_path / "s.toml", """
[sweep]
base = "base.toml"
seeds = [0, 1, 2]
rows = "tau_mem"
columns = ["tau_syn"]
[train]
neuron_kwargs = { dt = 14.0 }
[[grid]]
[[grid.axis]]
name = "tau_mem"
field = ["neuron_kwargs.tau_mem", "readout_kwargs.tau_mem"]
values = [14, 700]
[[grid.axis]]
name = "tau_syn"
levels = [{ label = "0", set = { "neuron_kwargs.alpha" = 0.0 } },
          { label = "14", set = { "neuron_kwargs.tau_syn" = 14.0 } }]
[[grid]]
[[grid.axis]]
name = "tau_mem"
levels = [{ label = "inf", set = { "neuron_kwargs.beta" = 1.0 } }]
[[grid.axis]]
name = "tau_syn"
levels = [{ label = "0", set = { "neuron_kwargs.alpha" = 0.0 } }]
[reference]
"700|14" = 97.41
""")
    s = load_sweep(spec)
    cells = s.cells()
    assert len(cells) == (2 * 2 + 1) * 3
    assert [c.key for c in cells[::3]] == ["14|0", "14|14", "700|0", "700|14", "inf|0"]
    first = cells[0].config
    # [train] replaces neuron_kwargs as a whole (tau_syn of the base is gone), then the axes add keys
    assert first["neuron_kwargs"] == {"dt": 14.0, "tau_mem": 14, "alpha": 0.0}
    assert first["readout_kwargs"] == {"tau_mem": 14} and first["arch"] == "2312-200-10"
    assert cells[-1].config["neuron_kwargs"] == {"dt": 14.0, "beta": 1.0, "alpha": 0.0}
    assert len({c.dirname for c in cells}) == len(cells) and len({c.digest for c in cells}) == len(cells)
    assert s.reference == {"700|14": 97.41}
    # identity ignores where the data live and the device; not what is computed
    moved = s.cells({"root": "/elsewhere", "device": "cuda", "threads": 4})
    assert [c.digest for c in moved] == [c.digest for c in cells]
    longer = s.cells({"epochs": 99})
    assert not {c.digest for c in longer} & {c.digest for c in cells}
    assert [c.seed for c in s.cells(seeds=[5])] == [5] * 5
    # the default metric: test accuracy at the validation-chosen epoch, else the best test accuracy
    assert s.value({"best_test_accuracy": 0.9}) == ("best_test_accuracy", 0.9)
    assert s.value({"best_test_accuracy": 0.9, "test_accuracy_at_best": 0.8}) == ("test_accuracy_at_best", 0.8)
    assert s.value({"test_accuracy": 0.7}) == (None, None)


@pytest.mark.parametrize("body, match", [
    ('[[axis]]\nname = "x"\nfield = "nope"\nvalues = [1]\n', "not a training field"),
    ('[[axis]]\nname = "x"\nfield = "lr"\nvalues = [0.1, 0.1]\n', "distinct level labels"),
    ('[[axis]]\nname = "x"\nlevels = [{label = "a", set = {lr = 0.1}}, {label = "b", set = {lr = 0.1}}]\n',
     "same configuration"),
    ('[[grid]]\n[[grid.axis]]\nname = "x"\nfield = "lr"\nvalues = [0.1]\n[[grid]]\n[[grid.axis]]\nname = "y"\n'
     'field = "lr"\nvalues = [0.2]\n', "same axes"),
    ('[sweep]\nrows = "z"\n[[axis]]\nname = "x"\nfield = "lr"\nvalues = [0.1]\n', "unknown axis"),
    ('[oops]\n[[axis]]\nname = "x"\nfield = "lr"\nvalues = [0.1]\n', "unknown table"),
    ('[[axis]]\nname = "x"\nfield = "lr"\nvalues = [-1.0]\n', "lr = -1.0.*not allowed"),
])
def test_spec_errors_name_the_problem(tmp_path, body, match):
    with pytest.raises(ParameterError, match=match):
        load_sweep(write_spec(tmp_path / "bad.toml", body)).cells()


def test_shipped_specs_expand():
    specs = {p.name: load_sweep(p) for p in sorted((REPO / "configs" / "sweeps").glob("*.toml"))}
    counts = {name: len(s.cells()) // len(s.seeds) for name, s in specs.items()}
    assert counts["sit-position-dvsgesture.toml"] == 6  # Table 4 of the SIT paper: w/o SIT, 1st..5th
    assert counts["leakage-fsnn-nmnist.toml"] == 7 * 5 + 1  # Table IIb: tau_mem x (LIF + 4 tau_syn), IF
    assert counts["leakage-rsnn-shd.toml"] == 7 * 5 + 1
    assert counts["plif-table4.toml"] == 4 * 4
    assert all(len(s.seeds) >= 3 for name, s in specs.items() if not name.startswith("small-"))
    shapes = {"nmnist": (2, 34, 34), "shd": (1, 700), "dvsgesture": (2, 128, 128), "cifar10dvs": (2, 128, 128),
              "fashionmnist": (1, 28, 28), "cifar10": (3, 32, 32)}
    for name, s in specs.items():  # every network of a grid point builds (one seed each)
        for cell in s.cells()[:: len(s.seeds)]:
            config = TrainConfig.from_dict(cell.config)
            net = build_model(config, shapes[config.dataset])
            kinds = {type(m).__name__ for _, m in net.spiking_layers()}
            if "LIF" in cell.key.split("|"):
                assert kinds == {"LIF"}, (name, cell.key)
    sit = specs["sit-position-dvsgesture.toml"].cells()
    assert [c.config["arch"].count("SIT") for c in sit[:: len(specs["sit-position-dvsgesture.toml"].seeds)]] == \
        [0, 1, 1, 1, 1, 1]


# ------------------------------------------------------------------ end to end

@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    from eventkit.build import build_cache
    from eventkit.testing import make_nmnist_root

    base = tmp_path_factory.mktemp("sweep-data")
    root = make_nmnist_root(base / "raw", per_class_train=2, per_class_test=1)
    build_cache("nmnist", T=4, root=root, cache=base / "cache", progress=False)
    return {"root": str(root), "cache": str(base / "cache")}


@pytest.fixture(scope="module")
def in_process(fake, tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep-in-process")
    spec = load_sweep(write_spec(d / "grid.toml", GRID_2x2, fake))
    return spec, run_sweep(spec, out=d / "out", progress=False)


def test_2x2x2_sweep_in_process_runs_the_normal_trainer(in_process, tmp_path):
    spec, result = in_process
    assert len(result.ran) == 8 and not result.failed and not result.skipped
    groups = aggregate(spec, result.cells, result.out)
    assert [g["key"] for g in groups] == ["2|mse", "2|ce", "4|mse", "4|ce"]
    for g in groups:
        vals = [cell_result(result.out / "cells" / c.dirname)["summary"]["train_loss"]
                for c in result.cells if c.key == g["key"]]
        mean = sum(vals) / 2
        assert g["n"] == 2 and g["mean"] == pytest.approx(mean)
        assert g["std"] == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in vals)))  # n - 1 = 1
    assert len({round(g["mean"], 9) for g in groups}) > 1  # the axes change what is trained
    # a cell is exactly `train` on its config
    cell = result.cells[3]
    direct = train(TrainConfig.from_dict({**cell.config, "out": str(tmp_path / "direct")}), progress=False)
    assert cell_result(result.out / "cells" / cell.dirname)["summary"]["train_loss"] == direct["train_loss"]
    md = result.table["md"].read_text()
    assert "| tau | mse | ce |" in md and " ± " in md
    csv_rows = result.table["csv"].read_text().splitlines()
    assert csv_rows[0].startswith("tau,loss,n,mean,std") and len(csv_rows) == 5
    assert json.loads(result.table["json"].read_text())["groups"][0]["n"] == 2
    assert result.table["png"].stat().st_size > 1000
    again = run_sweep(spec, out=result.out, progress=False)  # everything finished: nothing reruns
    assert again.ran == [] and len(again.skipped) == 8


def test_local_dask_cluster_gives_the_same_cells(in_process, fake, tmp_path):
    spec, first = in_process
    result = run_sweep(spec, out=tmp_path / "dask", workers=2, progress=False)
    assert len(result.ran) == 8 and not result.failed
    for cell in result.cells:
        a = cell_result(first.out / "cells" / cell.dirname)["summary"]
        b = cell_result(result.out / "cells" / cell.dirname)["summary"]
        assert a["train_loss"] == b["train_loss"] and a["test_accuracy"] == b["test_accuracy"]


def test_resume_after_a_kill(fake, tmp_path):
    spec_path = write_spec(tmp_path / "grid.toml", GRID_2x2, fake)
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "from eventkit.cli.main import cli; cli()", "sweep", str(spec_path), "--out", str(out),
           "--set", "epochs=3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not list(out.glob(f"cells/*/{CELL_FILE}")):
            assert proc.poll() is None and time.time() < deadline, "the sweep ended before finishing a cell"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done_before = {p.parent.name: p.stat().st_mtime_ns for p in out.glob(f"cells/*/{CELL_FILE}")}
    assert (out / "sweep.lock").exists()  # left behind by the killed process
    assert 1 <= len(done_before) < 8
    spec = load_sweep(spec_path)
    cells = spec.cells({"epochs": 3})
    victim = out / "cells" / next(c.dirname for c in cells if c.dirname not in done_before)
    victim.mkdir(parents=True, exist_ok=True)
    (victim / "left-by-the-killed-run.pt").write_bytes(b"half-written")
    result = run_sweep(spec, out=out, overrides={"epochs": 3}, progress=False)
    assert sorted(result.skipped) == sorted(done_before) and len(result.ran) == 8 - len(done_before)
    for name, mtime in done_before.items():  # finished cells were not touched
        assert (out / "cells" / name / CELL_FILE).stat().st_mtime_ns == mtime
    assert not (victim / "left-by-the-killed-run.pt").exists()  # trained again from a clean folder
    assert cell_result(victim)["summary"]["epochs"] == 3
    assert not (out / "sweep.lock").exists()
    assert all(g["n"] == 2 for g in aggregate(spec, cells, out))


def test_one_sweep_per_folder_and_cli(fake, tmp_path):
    spec_path = write_spec(tmp_path / "grid.toml", GRID_2x2, fake)
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    with pytest.raises(ParameterError, match="in use by another sweep"):
        run_sweep(load_sweep(spec_path), out=out, progress=False)
    (out / "sweep.lock").unlink()
    runner = CliRunner()
    res = runner.invoke(cli, ["sweep", str(spec_path), "--out", str(out), "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["cells"]
    assert len(rows) == 8 and not any(r["finished"] for r in rows)
    res = runner.invoke(cli, ["sweep", str(spec_path), "--out", str(out), "--seeds", "7", "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["ran"]) == 4
    res = runner.invoke(cli, ["sweep", str(spec_path), "--out", str(out), "--seeds", "7", "--table-only"])
    assert res.exit_code == 0 and (out / "table.md").is_file()
    res = runner.invoke(cli, ["sweep", str(spec_path), "--set", "bogus=1", "--dry-run"])
    assert res.exit_code == 2 and "not a training field" in res.output


def test_a_failing_cell_is_reported_and_the_others_run(fake, tmp_path):
    spec_path = write_spec(tmp_path / "grid.toml", """
[sweep]
seeds = [0]
metric = "train_loss"
[[axis]]
name = "variant"
levels = [{ label = "ok", set = {} }, { label = "broken", set = { "neuron_kwargs.no_such_option" = 1 } }]
""", fake)
    result = run_sweep(load_sweep(spec_path), out=tmp_path / "out", progress=False)
    assert len(result.ran) == 1 and list(result.failed) == [c.dirname for c in result.cells if c.key == "broken"]
    assert "no_such_option" in next(iter(result.failed.values()))
    assert cell_result(tmp_path / "out" / "cells" / result.cells[1].dirname) is None
    res = CliRunner().invoke(cli, ["sweep", str(spec_path), "--out", str(tmp_path / "out")])
    # the finished cell is skipped, the broken one retried
    assert res.exit_code == 2 and "1 cell(s) failed" in res.output
