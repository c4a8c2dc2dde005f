"""The trainer applies a recipe's [augment] table: event ops in the training loader only
(framed on the fly from the event store, validation samples excluded), frame ops and
mixup on the training batches, evaluation never augmented."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from eventkit.event_stream import EventFrameStream
from eventkit.loader import FrameStream
from eventkit_train.augment import AugmentConfig
from eventkit_train.data import EVENTS, make_loaders, open_data, prepare_data
from eventkit_train.epoch import run_epoch
from eventkit_train.losses import get_loss
from eventkit_train.trainer import build_model, train
from tests.train.trainer_helpers import tiny_config, tiny_nmnist

EVENT_OPS = {"event": [{"op": "flip_lr"}, {"op": "drop_event", "p": 0.2}]}


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return tiny_nmnist(tmp_path_factory.mktemp("aug"), per_class_train=4)


def _data(fake, tmp_path, augment):
    cfg = tiny_config(fake, tmp_path / "run", augment=augment)
    stores = prepare_data(cfg, progress=False)
    return cfg, stores, open_data(cfg, stores, warn=False)


def test_event_ops_frame_the_training_split_on_the_fly(fake, tmp_path):
    cfg, stores, data = _data(fake, tmp_path, EVENT_OPS)
    assert set(stores) == {"train", "test", EVENTS + "train"}  # ops without an evaluation part: test as cached
    loaders = make_loaders(cfg, data, rank=0, world_size=1, pin_memory=False)
    train_ds = loaders["train"].dataset
    assert isinstance(train_ds, EventFrameStream) and train_ds.train
    assert np.array_equal(train_ds.indices, data.train_indices)  # the validation samples never train
    assert type(loaders["val"].dataset) is FrameStream and type(loaders["test"].dataset) is FrameStream
    seen = [int(i) for _, _, i in EventFrameStream(stores[EVENTS + "train"], T=cfg.T, samples=data.train_indices,
                                                     return_index=True)]
    assert sorted(seen) == sorted(data.train_indices.tolist())


def test_event_ops_draw_per_epoch_and_evaluation_is_plain(fake, tmp_path):
    cfg, stores, data = _data(fake, tmp_path, EVENT_OPS)
    ds = make_loaders(cfg, data, rank=0, world_size=1, pin_memory=False)["train"].dataset
    plain = FrameStream(stores["train"], shuffle=False, return_index=True)
    cached = {i: f for f, _, i in plain}

    def epoch(e):
        return _items(ds, e)

    a, b, c = epoch(1), epoch(1), epoch(2)
    assert all(torch.equal(a[i], b[i]) for i in a)
    assert any(not torch.equal(a[i], c[i]) for i in a)
    assert any(not torch.equal(a[i], cached[i]) for i in a)  # augmented, unlike the cache
    ev = EventFrameStream(stores[EVENTS + "train"], T=cfg.T, augment=ds.augment, train=False, return_index=True)
    assert all(torch.equal(f, cached[i]) for f, _, i in ev)  # evaluation: never a random draw


def _items(ds, epoch):
    ds.set_epoch(epoch)
    ds.return_index = True
    try:
        return {i: f for f, _, i in ds}
    finally:
        ds.return_index = False


def test_a_crop_changes_the_network_input_and_evaluates_centred(fake, tmp_path):
    cfg, stores, data = _data(fake, tmp_path, {"event": [{"op": "crop", "size": [30, 28]}]})
    assert data.input_shape == (2, 28, 30)
    assert EVENTS + "test" in stores  # the crop has an evaluation part: the test split is framed too
    loaders = make_loaders(cfg, data, rank=0, world_size=1, pin_memory=False)
    for split in ("val", "test"):
        ds = loaders[split].dataset
        assert isinstance(ds, EventFrameStream) and not ds.train
        x, _ = next(iter(loaders[split]))
        assert tuple(x.shape[2:]) == (2, 28, 30)
    model = build_model(cfg, data.input_shape)
    assert model(torch.zeros(cfg.T, 1, *data.input_shape)).shape[:2] == (cfg.T, 1)


def test_frame_ops_and_mixup_reach_the_training_batches_only(fake, tmp_path, monkeypatch):
    aug = {"frame": [{"op": "flip_lr"}, {"op": "mixup", "alpha": 0.4}]}
    cfg, stores, data = _data(fake, tmp_path, aug)
    assert set(stores) == {"train", "test"}  # frame ops need no event store
    calls = []
    real = AugmentConfig.frame_batch

    def spy(self, x, y, **kw):
        calls.append(kw)
        return real(self, x, y, **kw)

    monkeypatch.setattr(AugmentConfig, "frame_batch", spy)
    loaders = make_loaders(cfg, data, rank=0, world_size=1, pin_memory=False)
    model = build_model(cfg, data.input_shape)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    augment = AugmentConfig.from_table(aug, source="t")
    common = dict(amp=False, scale=data.scale)
    res = run_epoch(model, loaders["train"], get_loss(cfg.loss), cfg, torch.device("cpu"), optimizer=opt, epoch=4,
                    augment=augment, **common)
    assert np.isfinite(res["loss"]) and res["samples"] > 0
    assert [c["step"] for c in calls] == list(range(len(calls))) and all(c["epoch"] == 4 for c in calls)
    calls.clear()
    run_epoch(model, loaders["test"], get_loss(cfg.loss), cfg, torch.device("cpu"), augment=augment, **common)
    assert calls == []  # evaluation is never augmented


@pytest.mark.parametrize("aug", [
    {"event": [{"op": "flip_lr"}, {"op": "translate", "max_px": 2}]},
    {"frame": [{"op": "cutout", "size": 4}]},
], ids=["event", "frame"])
def test_training_with_augmentation_is_reproducible_and_changes_the_weights(fake, tmp_path, aug):
    configs = [dict(augment=aug), dict(augment=aug), dict()]
    runs = [train(tiny_config(fake, tmp_path / f"run{k}", epochs=2, **c), progress=False)
            for k, c in enumerate(configs)]
    assert runs[0]["epochs"] == 2 and runs[0]["test_loss"] == runs[1]["test_loss"]
    w = [torch.load(tmp_path / f"run{k}" / "checkpoint.pt", weights_only=True)["model"] for k in range(3)]
    assert all(torch.equal(w[0][k], w[1][k]) for k in w[0])
    assert not all(torch.equal(w[0][k], w[2][k]) for k in w[0])  # the augmentation reached the training


def test_given_stores_without_the_event_store_are_refused_not_trained_unaugmented(fake, tmp_path):
    """train(config, stores=...) skips the cache build; with event ops and no event store among the
    stores, the ops would be silently dropped: refused, naming the missing store, before any run folder."""
    from eventkit.errors import ParameterError

    cfg = tiny_config(fake, tmp_path / "run", augment=EVENT_OPS, epochs=1)
    with pytest.raises(ParameterError, match=r"events:train"):
        train(cfg, progress=False, stores=fake["stores"])
    assert not (tmp_path / "run").exists()
    stores = prepare_data(cfg, progress=False)  # with the event store given too, it trains
    assert train(cfg, progress=False, stores=stores)["epochs"] == 1


def test_split_loader_evaluates_a_split_as_the_run_does(fake, tmp_path):
    """``split_loader`` (for evaluating a finished run) gives the trainer's own test batches: with a
    crop, the centre crop of the event store, not the frame cache's full frames."""
    from eventkit_train.data import split_loader

    cfg, stores, data = _data(fake, tmp_path, {"event": [{"op": "crop", "size": [30, 28]}]})
    ours = split_loader(cfg, data, cfg.test_split, train=False, samples=None, batch_size=4, rank=0, world_size=1,
                        pin_memory=False)
    theirs = make_loaders(cfg, data, rank=0, world_size=1, pin_memory=False)["test"]
    a, b = list(ours), list(theirs)
    assert tuple(a[0][0].shape[2:]) == (2, 28, 30)
    assert torch.equal(torch.cat([x for x, _ in a]), torch.cat([x for x, _ in b]))


def test_eval_scores_a_cropped_run_as_the_trainer_does(fake, tmp_path):
    """`eventkit eval` evaluates on the ops' deterministic part (the centre crop), like the trainer."""
    from eventkit_train.runs import evaluate_run, load_run

    cfg = tiny_config(fake, tmp_path / "run", epochs=1, augment={"event": [{"op": "crop", "size": [30, 28]}]})
    summary = train(cfg, progress=False)
    res = evaluate_run(load_run(tmp_path / "run"), split="test", device="cpu")
    assert res["accuracy"] == pytest.approx(summary["test_accuracy"])


TIME_CROP = {"event": [{"op": "time_crop", "duration_us": 40_000, "eval_duration_us": 120_000}]}


def test_eval_T_frames_the_evaluation_window_at_its_own_steps(fake, tmp_path):
    """A short training crop and a longer evaluation window at the same step length (the DVS Gesture
    protocol: 300 ms at T = 300, the first 1.5 s at eval_T = 1500): validation and test have eval_T
    frames, exactly the evaluation framing of the event store; training keeps T."""
    cfg = tiny_config(fake, tmp_path / "run", augment=TIME_CROP, split_by="time", eval_T=12)
    stores = prepare_data(cfg, progress=False)
    data = open_data(cfg, stores, warn=False)
    loaders = make_loaders(cfg, data, rank=0, world_size=1, pin_memory=False)
    x_train, _ = next(iter(loaders["train"]))  # loaders give [B, T, ...]
    assert x_train.shape[1] == cfg.T == 4
    for split, key in (("val", "train"), ("test", "test")):
        got = torch.cat([x for x, _ in loaders[split]])
        assert got.shape[1] == 12
        ds = loaders[split].dataset
        ref = EventFrameStream(stores[EVENTS + key], T=12, split_by="time", augment=ds.augment, train=False,
                               shuffle=False, samples=ds.indices)
        assert torch.equal(got, torch.stack([f for f, _ in ref]))
    summary = train(cfg.replace(epochs=1), progress=False, stores=stores)
    assert len(summary["latency_accuracy"]) == 12


def test_eval_T_without_on_the_fly_evaluation_is_refused_before_any_build(fake, tmp_path):
    from eventkit.errors import ParameterError

    for aug in ({}, EVENT_OPS):  # no ops; ops without an evaluation part (the test split reads the frame store)
        cfg = tiny_config(fake, tmp_path / "run", augment=aug, eval_T=8)
        with pytest.raises(ParameterError, match=r"eval_T = 8 differs from T = 4"):
            train(cfg, progress=False)
        assert not (tmp_path / "run").exists()
    assert tiny_config(fake, tmp_path / "run", eval_T=4).eval_steps == 4  # equal to T: nothing to frame anew
