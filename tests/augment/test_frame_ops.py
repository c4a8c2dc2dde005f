"""Frame ops on float [T, B, C, H, W] batches against per-pixel loops; seeding per (seed, epoch, step)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from eventkit.errors import ParameterError
from eventkit_train.augment import AugmentConfig, FrameAugment, MixedTargets
from eventkit_train.augment.config import frame_seed
from eventkit_train.augment.frame import Cutout, FlipLR, FlipUD, OneOf, Roll, Rotate, Shear, Translate
from tests.augment import naive

T, B, C, H, W = 2, 6, 2, 7, 9  # H != W catches swapped axes


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(T, B, C, H, W, generator=g, dtype=torch.float64), torch.arange(B) % 3


def draw(op, k=0, seed=1, epoch=2, step=3):
    return op.draw(np.random.default_rng(frame_seed(seed, epoch, step, 0, k)), B, H, W)


def reference(op, params, x):
    if isinstance(op, FlipUD):
        return naive.frame_map(x, lambda b, h, w: (H - 1 - h if params["flip"][b] else h, w))
    if isinstance(op, FlipLR):
        return naive.frame_map(x, lambda b, h, w: (h, W - 1 - w if params["flip"][b] else w))
    if isinstance(op, Translate):
        return naive.frame_map(x, lambda b, h, w: (h - params["dy"][b], w - params["dx"][b]))
    if isinstance(op, Roll):
        return naive.frame_map(x, lambda b, h, w: ((h - params["dy"][b]) % H, (w - params["dx"][b]) % W))
    if isinstance(op, Rotate):
        return naive.frame_map(x, lambda b, h, w: naive.rotate_source(params["degrees"][b], H, W)(h, w))
    if isinstance(op, Shear):
        return naive.frame_map(x, lambda b, h, w: naive.shear_source(params["degrees"][b], H, W)(h, w))
    if isinstance(op, Cutout):
        bw, bh = op.size

        def keep(b, h, w):
            x0, y0 = params["cx"][b] - bw // 2, params["cy"][b] - bh // 2
            cut = params["cut"][b] and x0 <= w < x0 + bw and y0 <= h < y0 + bh
            return None if cut else (h, w)
        return naive.frame_map(x, keep)
    if isinstance(op, OneOf):
        out = np.zeros_like(x)
        for j, choice in enumerate(op.choices):
            sub = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(f"{j}.")}
            full = reference(choice, sub, x)
            chosen = params["choice"] == j
            out[:, chosen] = full[:, chosen]
        return out
    raise AssertionError(op)


OPS = [FlipLR(0.5), FlipUD(0.5), Roll((3, 2)), Translate((3, 2)), Rotate(35.0), Shear(25.0), Cutout((4, 3), 0.8),
       OneOf((Roll((4, 4)), Rotate(30.0), Shear(30.0)))]


@pytest.mark.parametrize("op", OPS, ids=[o.op for o in OPS])
def test_frame_op_matches_per_pixel_reference(batch, op):
    x, _ = batch
    params = draw(op)
    got = op.apply(x, params).numpy()
    assert np.array_equal(got, reference(op, params, x.numpy()))


def test_roll_is_torch_roll_per_sample(batch):
    x, _ = batch
    op = Roll((4, 3))
    params = draw(op)
    got = op.apply(x, params)
    for b in range(B):
        assert torch.equal(got[:, b], torch.roll(x[:, b], (int(params["dy"][b]), int(params["dx"][b])), (-2, -1)))


def test_rotation_turns_frames_the_way_event_rotation_turns_events():
    """90 degrees is exact: the frame op's output pixel (x', y') holds the input at (x, y) where the event op
    sends an event at (x, y) to (x', y')."""
    from eventkit.augment.own_ops import Rotate as EventRotate
    from eventkit.events import make_events

    size = 9
    x = torch.zeros(1, 1, 1, size, size)
    x[0, 0, 0, 2, 6] = 1.0  # pixel y=2, x=6
    out = Rotate(90.0).apply(x, {"degrees": np.array([90.0])})
    ev = EventRotate(90.0).apply(make_events([0], [6], [2], [0]), (size, size, 2), 90.0)
    assert out[0, 0, 0, int(ev["y"][0]), int(ev["x"][0])] == 1.0 and out.sum() == 1.0


def test_mixup_and_cutmix_match_references(batch):
    x, y = batch
    cfg = AugmentConfig.from_table({"frame": [{"op": "mixup", "alpha": 0.4}]}, source="t").frame
    out, targets = cfg(x, y, seed=1, epoch=2, step=3)
    params = cfg.mix.draw(np.random.default_rng(frame_seed(1, 2, 3, 0, 0)), B, H, W)
    lam, perm = params["lam"], params["perm"]
    assert isinstance(targets, MixedTargets) and targets.lam == lam and 0 < lam < 1
    for b in range(B):
        assert torch.allclose(out[:, b], lam * x[:, b] + (1 - lam) * x[:, perm[b]])
        assert targets.y_a[b] == y[b] and targets.y_b[b] == y[perm[b]]
    cut = AugmentConfig.from_table({"frame": [{"op": "cutmix"}]}, source="t").frame
    out, targets = cut(x, y, seed=1, epoch=2, step=3)
    params = cut.mix.draw(np.random.default_rng(frame_seed(1, 2, 3, 0, 0)), B, H, W)
    y1, y2, x1, x2 = params["box"]
    expected = x.clone().numpy()
    for b in range(B):
        for h in range(y1, y2):
            for w in range(x1, x2):
                expected[:, b, :, h, w] = x[:, params["perm"][b], :, h, w].numpy()
    assert np.array_equal(out.numpy(), expected)
    assert targets.lam == pytest.approx(1 - (y2 - y1) * (x2 - x1) / (H * W))


def test_mixed_targets_loss_and_soft_labels():
    out = torch.randn(4, 3)
    t = MixedTargets(torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2, 1, 0]), 0.3)
    ce = torch.nn.functional.cross_entropy
    assert torch.allclose(t.loss(ce, out), 0.3 * ce(out, t.y_a) + 0.7 * ce(out, t.y_b))
    soft = t.soft(3)
    assert torch.allclose(soft.sum(1), torch.ones(4)) and soft[0, 0] == pytest.approx(0.3) and soft[0, 2] == 0.7
    assert torch.equal(t.hard(), t.y_b)


ALL = {"frame": [{"op": "flip_lr"}, {"op": "roll", "max_px": 2}, {"op": "rotate", "max_deg": 20},
                 {"op": "cutout", "size": 3}, {"op": "mixup", "p": 0.5}]}


def test_same_seed_epoch_step_same_batch_other_epochs_and_steps_differ(batch):
    x, y = batch
    aug = AugmentConfig.from_table(ALL, source="t")
    a, ta = aug.frame_batch(x, y, seed=0, epoch=1, step=5)
    b, tb = aug.frame_batch(x, y, seed=0, epoch=1, step=5)
    assert torch.equal(a, b) and ta.lam == tb.lam and torch.equal(ta.y_b, tb.y_b)
    for other in ({"epoch": 2, "step": 5}, {"epoch": 1, "step": 6}, {"epoch": 1, "step": 5, "seed": 1}):
        kw = {"seed": 0, **other}
        assert not torch.equal(a, aug.frame_batch(x, y, **kw)[0])


def test_evaluation_is_never_augmented(batch):
    x, y = batch
    aug = AugmentConfig.from_table(ALL, source="t")
    for epoch in range(3):
        out, targets = aug.frame_batch(x, y, seed=0, epoch=epoch, step=1, train=False)
        assert out is x and targets is y


def test_bad_inputs_and_tables():
    aug = FrameAugment.from_table([{"op": "flip_lr"}], source="t")
    with pytest.raises(ParameterError, match=r"need frames \[T, B, C, H, W\]"):
        aug(torch.zeros(3, 2, 700), torch.zeros(2), seed=0, epoch=0, step=0)
    with pytest.raises(ParameterError, match="needs a float batch"):
        aug(torch.zeros(3, 2, 2, 4, 4, dtype=torch.uint8), torch.zeros(2), seed=0, epoch=0, step=0)
    with pytest.raises(ParameterError, match=r"recipe.toml: augment.frame\[1\].op: 'cutmix' mixes whole batches"):
        FrameAugment.from_table([{"op": "flip_lr"}, {"op": "cutmix"}, {"op": "flip_ud"}], source="recipe.toml")
    with pytest.raises(ParameterError, match=r"augment.frame\[0\].alpha: must be a number in \(0.0"):
        FrameAugment.from_table([{"op": "mixup", "alpha": 0}], source="recipe.toml")
    with pytest.raises(ParameterError, match=r"augment.frame\[0\].choices\[0\]: op 'mixup' cannot be a choice"):
        FrameAugment.from_table([{"op": "one_of", "choices": [{"op": "mixup"}]}], source="recipe.toml")
