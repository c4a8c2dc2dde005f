"""`eventkit show NAME:i --run RUN_DIR`: the spike raster of a trained run's network on a dataset
sample, fed the frames the run's evaluation reads for that sample (its cache, T, input scale)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import cli
from eventkit.cache import CacheStore
from eventkit.datasets import get_dataset
from eventkit_train.runs import load_run
from eventkit_train.trainer import train
from eventkit_train.views import record_spikes
from tests.train.trainer_helpers import tiny_config, tiny_nmnist

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("runraster")
    fake = tiny_nmnist(base)
    cfg = tiny_config(fake, base / "run", epochs=1, input_scale=20.0, arch="FC40-PLIF-FC20-PLIF-APk2s2")
    train(cfg, progress=False)
    return fake, cfg, base / "run"


def test_the_run_raster_counts_the_spikes_of_the_run_s_own_test_frames(trained, tmp_path):
    fake, cfg, run_dir = trained
    res = CliRunner().invoke(cli, ["show", "nmnist:1", "--split", "test", "--run", str(run_dir), "--out",
                                   str(tmp_path / "r.png"), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output.strip().splitlines()[-1])
    assert (tmp_path / "r.png").stat().st_size > 0 and got["T"] == cfg.T
    spec = get_dataset("nmnist")
    sample = spec.samples(fake["root"], "test")[1]
    assert got["label"] == sample.label
    # independently: the sample's frames straight from the run's test store, scaled as configured
    store = CacheStore.open(fake["stores"]["test"])
    frames, label = store.read_sample(store.sample_ids().index(sample.sample_id))
    x = torch.from_numpy(frames.astype(np.float32))[:, None] * 20.0
    run = load_run(run_dir)
    want = [int(r.output.sum()) for r in record_spikes(run.model, x) if r.spiking]
    assert [layer["spikes"] for layer in got["layers"]] == want
    assert label == sample.label and sum(want) > 0


def test_run_raster_refuses_files_and_two_networks(trained, tmp_path):
    fake, _, run_dir = trained
    raw = get_dataset("nmnist").samples(fake["root"], "test")[0].path
    res = CliRunner().invoke(cli, ["show", str(raw), "--run", str(run_dir), "--out", str(tmp_path / "r.png")])
    assert res.exit_code != 0 and "--net FILE.nir" in res.output
    res = CliRunner().invoke(cli, ["show", "nmnist:0", "--run", str(run_dir), "--kind", "grid"])
    assert res.exit_code != 0 and "leave --kind out" in res.output
