"""AugmentConfig.from_table: the recipe's [augment] table, validated; the docs' examples parse."""
from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from eventkit.errors import ParameterError
from eventkit_train.augment import AugmentConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "augmentation.md"


def test_empty_tables():
    for table in (None, {}, {"event": [], "frame": []}):
        cfg = AugmentConfig.from_table(table, source="r.toml")
        assert cfg.is_empty and cfg.event.is_empty and cfg.frame.is_empty and cfg.to_table() == {}


def test_parts_and_round_trip():
    table = {"event": [{"op": "flip_lr", "p": 0.5}, {"op": "drop_event", "p": [0.0, 0.2]}],
             "frame": [{"op": "cutout", "size": [8, 4]}, {"op": "mixup", "alpha": 0.2}]}
    cfg = AugmentConfig.from_table(table, source="r.toml")
    assert not cfg.is_empty and [op.op for op in cfg.event.ops] == ["flip_lr", "drop_event"]
    assert [op.op for op in cfg.frame.ops] == ["cutout"] and cfg.frame.mixes
    assert AugmentConfig.from_table(cfg.to_table(), source="again") == cfg
    assert cfg.to_table()["event"][1] == {"op": "drop_event", "p": [0.0, 0.2]}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.event = None  # type: ignore[misc]
    hash(cfg)


def test_from_toml_cli_value():
    cfg = AugmentConfig.from_toml('event = [{op = "flip_lr", p = 0.5}]\nframe = [{op = "roll", max_px = 2}]')
    assert cfg.event.ops[0].p == 0.5 and cfg.frame.ops[0].max_px == (2, 2)
    with pytest.raises(ParameterError, match=r"^--augment: not a TOML \[augment\] table body"):
        AugmentConfig.from_toml("event = [")


@pytest.mark.parametrize("table, message", [
    ([1], r"^r.toml: augment: must be a table"),
    ({"events": []}, r"^r.toml: augment.events: unknown key"),
    ({"event": [{"op": "flip_lr", "prob": 0.5}]}, r"^r.toml: augment.event\[0\]: unknown key\(s\) \['prob'\]"),
    ({"event": [{"op": "noise", "n": 10**10}]}, r"augment.event\[0\].n: must be an integer in \[0, 100000000\]"),
    ({"event": [{"p": 0.5}]}, r"^r.toml: augment.event\[0\].op: is required"),
    ({"event": [{"op": "rotate", "max_deg": "30"}]}, r"^r.toml: augment.event\[0\].max_deg: must be a number"),
    ({"event": [{"op": "time_crop", "duration_us": 0.5}]}, r"augment.event\[0\].duration_us: must be an integer"),
    ({"frame": [{"op": "cutout", "size": [4, 4, 4]}]}, r"^r.toml: augment.frame\[0\].size: must be one value or"),
    ({"frame": [{"op": "rotate", "max_deg": 200}]}, r"augment.frame\[0\].max_deg: must be a number in \[0.0, 180.0\]"),
    ({"frame": [{"op": "flip_lr", "p": True}]}, r"augment.frame\[0\].p: must be a probability"),
    ({"frame": [{"op": "one_of", "choices": []}]}, r"augment.frame\[0\].choices: must be a non-empty array"),
    ({"event": [{"op": "one_of", "choices": [{"op": "roll", "max_px": 2}, {"op": "rotate", "max_deg": 5}],
                 "weights": [float("inf"), 1.0]}]}, r"augment.event\[0\].weights: must be 2 finite non-negative"),
    ({"frame": [{"op": "one_of", "choices": [{"op": "flip_lr"}], "weights": [float("inf")]}]},
     r"augment.frame\[0\].weights: must be 1 finite non-negative"),
])
def test_errors_name_the_key(table, message):
    with pytest.raises(ParameterError, match=message):
        AugmentConfig.from_table(table, source="r.toml")


def test_documented_recipes_parse():
    text = DOC.read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2, "docs/augmentation.md shows the DVS Gesture and CIFAR10-DVS tables"
    for block in blocks:
        cfg = AugmentConfig.from_table(tomllib.loads(block)["augment"], source="docs/augmentation.md")
        assert not cfg.is_empty


def test_documented_python_runs(tmp_path, monkeypatch):
    """The Python blocks of docs/augmentation.md run, in order, in a scratch folder."""
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S):
        exec(compile(block, str(DOC), "exec"), scope)  # noqa: S102 - the doc's own code; its results checked below
    assert scope["store"].n_samples == 20 and scope["loss"].requires_grad
