"""TrainConfig: every bad value is a one-line ParameterError naming the key, before any cache
is built and without leaving a run folder; strict booleans; recipes vs the command's NAME."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventkit.cli.main import cli
from eventkit.errors import ParameterError
from eventkit_train.config import TrainConfig, check_buildable, expected_input_shape, load_config

REPO = Path(__file__).resolve().parents[2]

# (key, bad value, words the message must contain)
BAD_VALUES = [
    ("lr", math.inf, "lr"), ("lr", math.nan, "lr"), ("lr", 0.0, "lr"), ("lr", -1e-3, "lr"), ("lr", "0.1", "lr"),
    ("grad_clip", math.nan, "grad_clip"), ("grad_clip", 0.0, "grad_clip"), ("grad_clip", math.inf, "grad_clip"),
    ("input_scale", math.nan, "input_scale"), ("input_scale", math.inf, "input_scale"),
    ("input_scale", -1.0, "input_scale"), ("weight_decay", -0.1, "weight_decay"),
    ("weight_decay", math.nan, "weight_decay"), ("momentum", 1.0, "momentum"), ("momentum", math.nan, "momentum"),
    ("width", 0.0, "width"), ("width", math.inf, "width"), ("val_fraction", 0.9, "val_fraction"),
    ("val_fraction", -0.1, "val_fraction"), ("T", 0, "T"), ("T", 2.5, "T"), ("T", True, "T"),
    ("epochs", -1, "epochs"), ("epochs", 1.5, "epochs"), ("batch_size", 0, "batch_size"),
    ("batch_size", "32", "batch_size"), ("workers", -1, "workers"), ("seed", -1, "seed"), ("seed", 2**32, "seed"),
    ("threads", 0, "threads"), ("t_max", 0, "t_max"), ("shuffle_buffer", -1, "shuffle_buffer"),
    ("amp", "false", "amp"), ("amp", 0, "amp"), ("bias", "true", "bias"), ("merge_polarity", 1, "merge_polarity"),
    ("sync_bn", "no", "sync_bn"), ("optimizer", "rmsprop", "optimizer"), ("scheduler", "step", "scheduler"),
    ("split_by", "events", "split_by"), ("dtype", "float32", "dtype"), ("encoder", "temporal", "encoder"),
    ("readout", "voltage", "readout"), ("dataset", "", "dataset"), ("device", 3, "device"),
    ("neuron_kwargs", {"tau": math.nan}, "neuron_kwargs.tau"), ("loss_kwargs", {"true_rate": math.inf}, "true_rate"),
    ("neuron_kwargs", [1, 2], "neuron_kwargs"), ("neuron_map", {"lif": 3}, "neuron_map.lif"),
    ("dist_timeout_s", 0, "dist_timeout_s"), ("cache_wait_s", math.inf, "cache_wait_s"),
]


@pytest.mark.parametrize("key,value,words", BAD_VALUES, ids=[f"{k}={v!r}" for k, v, _ in BAD_VALUES])
def test_bad_values_are_one_line_errors(key, value, words):
    with pytest.raises(ParameterError) as info:
        TrainConfig(**{key: value})
    msg = str(info.value)
    assert words in msg and "\n" not in msg, msg


def test_recipe_errors_name_the_file_and_key(tmp_path):
    recipe = tmp_path / "r.toml"
    for body, words in [("[train]\namp = \"false\"\n", "amp"), ("[train]\nlr = inf\n", "lr = inf"),
                        ("[train]\ngrad_clip = nan\n", "grad_clip"), ("[train]\ninput_scale = -inf\n", "input_scale"),
                        ("[train]\nepochs = 2.5\n", "epochs"), ("[train]\nlearning_rate = 0.1\n", "learning_rate"),
                        ("[train]\nlr = 0.1\n[model]\nx = 1\n", "outside [train]"), ("[train\n", "invalid TOML")]:
        recipe.write_text(body)
        with pytest.raises(ParameterError) as info:
            load_config(recipe)
        assert str(recipe) in str(info.value) and words in str(info.value) and "\n" not in str(info.value)
    recipe.write_bytes(b"[train]\nlr = 0.1 # \xff\n")
    with pytest.raises(ParameterError, match="not UTF-8"):
        load_config(recipe)


def test_good_values_are_normalised():
    cfg = TrainConfig(lr=1, optimizer="Adam", scheduler="NONE", amp=False, grad_clip=2)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.optimizer == "adam" and cfg.scheduler == "none"
    assert cfg.amp is False and cfg.grad_clip == 2.0
    assert TrainConfig().replace(lr=None, epochs=3).epochs == 3


def test_augment_table(tmp_path):
    recipe = tmp_path / "aug.toml"
    recipe.write_text("[train]\nepochs = 1\n\n[augment]\n")
    assert load_config(recipe).augment == {}
    recipe.write_text("[train]\nepochs = 1\n[train.augment]\na = 1\n[augment]\nb = 2\n")
    with pytest.raises(ParameterError, match="once"):
        load_config(recipe)
    try:
        import eventkit_train.augment  # noqa: F401  (the augmentation module, where this build has it)
    except ImportError:
        with pytest.raises(ParameterError, match="no augmentation module"):
            TrainConfig(augment={"flip_lr": 0.5})


@pytest.mark.parametrize("changes,words", [
    ({"arch": "c4k3s1-BOGUS-FC10"}, "BOGUS"),
    ({"neuron_map": {"lif": "plif"}, "arch": "c4k3s1-PLIF-FC10-PLIF"}, "lif"),
    ({"neuron_kwargs": {"tua": 2.0}}, "tua"),
    ({"loss": "maxovertime"}, "unknown loss"),
    ({"loss": "max_over_time_ce", "readout": "spikes"}, "consumes membrane"),
    ({"arch": "APk2s2-c4k3s1-LIF-MPk2s2-FC3-LIF"}, "3 outputs"),
    ({"dataset": "nmnistt"}, "nmnistt"),
    ({"test_split": "validation"}, "no split"),
    ({"n_channels": 4}, "audio"),
])
def test_structure_is_checked_before_any_cache(changes, words, tmp_path):
    cfg = TrainConfig(T=4, arch="APk2s2-c4k3s1-BN-PLIF-MPk2s2-FC20-PLIF-APk2s2", root=str(tmp_path / "no-data"),
                      cache=str(tmp_path / "cache"), out=str(tmp_path / "run"), device="cpu").replace(**changes)
    from eventkit.errors import EventkitError
    from eventkit_train.trainer import train

    with pytest.raises(EventkitError) as info:
        train(cfg, progress=False)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()


def test_expected_shapes_follow_the_manifests():
    assert expected_input_shape(TrainConfig(dataset="nmnist")) == (2, 34, 34)
    assert expected_input_shape(TrainConfig(dataset="nmnist", merge_polarity=True)) == (1, 34, 34)
    assert expected_input_shape(TrainConfig(dataset="shd", n_channels=140)) == (1, 140)
    assert expected_input_shape(TrainConfig(dataset="cifar10")) == (3, 32, 32)
    for path in sorted((REPO / "configs").glob("*.toml")):  # every shipped recipe passes the whole check
        check_buildable(load_config(path))


def _cli(args):
    return CliRunner().invoke(cli, args)


def test_cli_refusals_leave_no_run_folder(tmp_path):
    recipe = tmp_path / "shd.toml"
    recipe.write_text('[train]\ndataset = "shd"\narch = "700-20-20"\n')
    run = tmp_path / "run"
    common = ["--out", str(run), "--cache", str(tmp_path / "c"), "--root", str(tmp_path / "raw"), "--no-progress"]
    res = _cli(["train", "nmnist", "--config", str(recipe), *common])
    assert res.exit_code == 2 and "recipe for dataset 'shd', not 'nmnist'" in res.output
    for extra, words in [(["--lr", "inf"], "lr"), (["--lr", "nan"], "lr"), (["--batch-size", "0"], "batch_size"),
                         (["--val-fraction", "0.7"], "val_fraction"), (["--arch", "c4k3s1-NOPE"], "NOPE"),
                         (["--augment", "flip"], "KEY=VALUE")]:
        res = _cli(["train", "nmnist", *extra, *common])
        assert res.exit_code == 2 and words in res.output, (extra, res.output)
        assert len(res.output.strip().splitlines()) == 1 or "Usage" in res.output
    assert not run.exists() and not (tmp_path / "c").exists()
    # data that is not there: a one-line error, no run folder either
    res = _cli(["train", "nmnist", "--T", "4", *common])
    assert res.exit_code == 2 and not run.exists()


def test_cli_augment_values_are_toml(tmp_path, monkeypatch):
    seen = {}

    def fake_train(config, resume=False, progress=True):
        seen["augment"] = config.augment
        raise ParameterError("stop here")

    import eventkit_train.trainer as trainer_mod

    monkeypatch.setattr(trainer_mod, "train", fake_train)
    monkeypatch.setattr("eventkit_train.config._checked_augment", lambda table: table)
    res = _cli(["train", "nmnist", "--augment", "event.flip_lr=0.5", "--augment", "frame.cutout=[4, 4]",
                "--augment", "mode=name", "--no-progress"])
    assert res.exit_code == 2 and "stop here" in res.output
    assert seen["augment"] == {"event": {"flip_lr": 0.5}, "frame": {"cutout": [4, 4]}, "mode": "name"}
    json.dumps(seen["augment"])
