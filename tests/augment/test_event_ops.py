"""Event ops against per-event references; determinism per (seed, epoch, sample); evaluation."""
from __future__ import annotations

import numpy as np
import pytest

from eventkit.augment import EventAugment
from eventkit.errors import ParameterError
from eventkit.events import VISION_DTYPE
from eventkit.testing import random_vision_events
from tests.augment import naive

SENSOR = (23, 17, 2)  # W != H catches swapped axes
SEED, EPOCH, INDEX = 7, 3, 41
KEY = (SEED, EPOCH, INDEX, 0)


@pytest.fixture(scope="module")
def events():
    rng = np.random.default_rng(5)
    ev = random_vision_events(rng, 600, SENSOR[0], SENSOR[1], t_start=1_000_000, t_stop=1_400_000)
    ev["t"][100:110] = ev["t"][100]  # runs of equal timestamps: order among them must be kept
    return ev


def run(table, events, sensor=SENSOR, key=KEY):
    aug = EventAugment.from_table([table], source="test")
    out = aug(events, sensor, seed=key[0], epoch=key[1], index=key[2])
    assert out.dtype == VISION_DTYPE
    assert np.all(np.diff(out["t"]) >= 0), "augmented events must stay sorted by t"
    return out


CASES = [
    ({"op": "time_crop", "duration_us": 120_000}, lambda ev: naive.time_crop(ev, 120_000, KEY)),
    ({"op": "translate", "max_px": [4, 3]}, lambda ev: naive.shift(ev, SENSOR, (4, 3), KEY, wrap=False)),
    ({"op": "roll", "max_px": 9}, lambda ev: naive.shift(ev, SENSOR, (9, 9), KEY, wrap=True)),
    ({"op": "rotate", "max_deg": 40}, lambda ev: naive.rotate(ev, SENSOR, 40, KEY)),
    ({"op": "shear", "max_deg": 30}, lambda ev: naive.shear(ev, SENSOR, 30, KEY)),
    ({"op": "drop_pixel", "p": 0.3}, lambda ev: naive.drop_pixel(ev, SENSOR, 0.3, KEY)),
    ({"op": "flip_lr", "p": 1.0}, lambda ev: naive.flip(ev, SENSOR, 1.0, KEY, "x")),
    ({"op": "flip_ud", "p": 1.0}, lambda ev: naive.flip(ev, SENSOR, 1.0, KEY, "y")),
    ({"op": "flip_polarity", "p": 1.0}, lambda ev: naive.flip(ev, SENSOR, 1.0, KEY, "p")),
    ({"op": "flip_lr", "p": 0.5}, lambda ev: naive.flip(ev, SENSOR, 0.5, KEY, "x")),
    ({"op": "crop", "size": [15, 9]}, lambda ev: naive.crop(ev, SENSOR, (15, 9), KEY)),
    ({"op": "drop_event", "p": 0.3}, lambda ev: naive.drop_event(ev, 0.3, KEY)),
    ({"op": "drop_event", "p": [0.1, 0.5]}, lambda ev: naive.drop_event(ev, (0.1, 0.5), KEY)),
    ({"op": "drop_time", "ratio": 0.25}, lambda ev: naive.drop_time(ev, 0.25, KEY)),
    ({"op": "drop_time", "ratio": [0.1, 0.4]}, lambda ev: naive.drop_time(ev, (0.1, 0.4), KEY)),
    ({"op": "drop_area", "ratio": 0.4}, lambda ev: naive.drop_area(ev, SENSOR, 0.4, KEY)),
    ({"op": "drop_area", "ratio": [0.2, 0.6]}, lambda ev: naive.drop_area(ev, SENSOR, (0.2, 0.6), KEY)),
    ({"op": "event_drop"}, lambda ev: naive.event_drop(ev, SENSOR, KEY)),
    ({"op": "time_jitter", "std_us": 3000}, lambda ev: naive.time_jitter(ev, 3000, KEY)),
    ({"op": "time_skew", "coefficient": [0.7, 1.3], "offset_us": [-500, 500]},
     lambda ev: naive.time_skew(ev, (0.7, 1.3), (-500.0, 500.0), KEY)),
    ({"op": "time_skew", "coefficient": 1.5}, lambda ev: naive.time_skew(ev, 1.5, 0.0, KEY)),
    ({"op": "spatial_jitter", "var_x": 2.0, "var_y": 0.5, "sigma_xy": 0.3},
     lambda ev: naive.spatial_jitter(ev, SENSOR, 2.0, 0.5, 0.3, KEY)),
    ({"op": "time_reversal", "p": 1.0}, lambda ev: naive.time_reversal(ev, 1.0, True, KEY)),
    ({"op": "time_reversal", "p": 1.0, "flip_polarities": False}, lambda ev: naive.time_reversal(ev, 1.0, False, KEY)),
    ({"op": "tonic", "name": "RandomFlipUD", "args": {"p": 1.0}}, lambda ev: naive.flip(ev, SENSOR, 1.0, KEY, "y")),
    ({"op": "tonic", "name": "DropEvent", "args": {"p": 0.2}}, lambda ev: naive.drop_event(ev, 0.2, KEY)),
]


@pytest.mark.parametrize("table, reference", CASES, ids=[f"{c[0]['op']}-{i}" for i, c in enumerate(CASES)])
def test_op_matches_per_event_reference(events, table, reference):
    assert naive.rows(run(table, events)) == reference(events)


def test_noise_adds_the_reference_events(events):
    out = run({"op": "noise", "n": [50, 80]}, events)
    assert sorted(naive.rows(out)) == naive.noise(events, SENSOR, (50, 80), KEY)
    assert 50 <= len(out) - len(events) < 80


def test_one_of_applies_the_chosen_op_with_its_own_seed(events):
    table = {"op": "one_of", "choices": [{"op": "roll", "max_px": 5}, {"op": "rotate", "max_deg": 30},
                                         {"op": "shear", "max_deg": 30}]}
    chosen = set()
    for index in range(12):
        j = int(naive.step_generator(SEED, EPOCH, index, 0).integers(3))
        chosen.add(j)
        sub = (SEED, EPOCH, index, (0, j))
        expected = [naive.shift(events, SENSOR, (5, 5), sub, wrap=True), naive.rotate(events, SENSOR, 30, sub),
                    naive.shear(events, SENSOR, 30, sub)][j]
        assert naive.rows(run(table, events, key=(SEED, EPOCH, index))) == expected
    assert chosen == {0, 1, 2}


def test_pipeline_seeds_each_step_by_its_position(events):
    aug = EventAugment.from_table([{"op": "flip_lr", "p": 0.5}, {"op": "translate", "max_px": 3}], source="t")
    out = aug(events, SENSOR, seed=SEED, epoch=EPOCH, index=INDEX)
    first = naive.flip(events, SENSOR, 0.5, (SEED, EPOCH, INDEX, 0), "x")
    first_ev = np.array(first, dtype=[("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", "<i8")])
    assert naive.rows(out) == naive.shift(first_ev, SENSOR, (3, 3), (SEED, EPOCH, INDEX, 1), wrap=False)


ALL_RANDOM = [{"op": "time_crop", "duration_us": 300_000}, {"op": "flip_lr"}, {"op": "rotate", "max_deg": 20},
              {"op": "drop_event", "p": 0.3}, {"op": "time_jitter", "std_us": 500}, {"op": "noise", "n": 40}]


def test_same_seed_epoch_sample_same_events_other_epochs_differ(events):
    aug = EventAugment.from_table(ALL_RANDOM, source="t")
    a = aug(events, SENSOR, seed=1, epoch=4, index=9)
    state = np.random.get_state()
    b = aug(events, SENSOR, seed=1, epoch=4, index=9)
    assert np.array_equal(a, b)
    restored = all(np.array_equal(x, y) for x, y in zip(state, np.random.get_state(), strict=True))
    assert restored, "global RNG state restored"
    others = [aug(events, SENSOR, seed=1, epoch=e, index=9) for e in (0, 1, 2, 3, 5)]
    assert all(not np.array_equal(a, o) for o in others)
    assert not np.array_equal(a, aug(events, SENSOR, seed=1, epoch=4, index=10))
    assert not np.array_equal(a, aug(events, SENSOR, seed=2, epoch=4, index=9))


def test_evaluation_draws_nothing_and_changes_nothing(events):
    aug = EventAugment.from_table(ALL_RANDOM, source="t")
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    assert np.array_equal(aug.evaluate(events, SENSOR), events)
    assert np.array_equal(np.random.get_state()[1], before)
    assert not aug.changes_evaluation


def test_deterministic_evaluation_parts(events):
    aug = EventAugment.from_table([{"op": "time_crop", "duration_us": 100_000, "eval_duration_us": 150_000},
                                   {"op": "flip_lr"}, {"op": "crop", "size": [15, 9]}], source="t")
    assert aug.changes_evaluation and aug.output_sensor(SENSOR) == (15, 9, 2)
    t0 = int(events["t"][0])
    first = events[events["t"] < t0 + 150_000]
    assert naive.rows(aug.evaluate(events, SENSOR)) == naive.center_crop(first, SENSOR, (15, 9))
    filt = EventAugment.from_table([{"op": "tonic", "name": "Denoise", "args": {"filter_time": 5000}, "eval": True}],
                                   source="t")
    import tonic.transforms

    from eventkit.augment import from_tonic, to_tonic

    rebased = to_tonic(events)  # tonic sees t - t_0 (its Denoise starts every pixel's memory at filter_time)
    rebased["t"] -= events["t"][0]
    expected = from_tonic(tonic.transforms.Denoise(filter_time=5000)(rebased), SENSOR, t_offset=int(events["t"][0]))
    assert np.array_equal(filt.evaluate(events, SENSOR), expected)


def test_ranges_cover_their_bounds(events):
    """Draws reach both ends of their ranges (the references replay the draws; this checks the ranges)."""
    aug = EventAugment.from_table([{"op": "translate", "max_px": [2, 0]}], source="t")
    one = events[:1]
    shifts = {int(aug(one, SENSOR, seed=0, epoch=0, index=i)["x"][0]) - int(one["x"][0]) for i in range(200)}
    assert shifts == {-2, -1, 0, 1, 2} - {s for s in (-2, -1, 1, 2) if not 0 <= int(one["x"][0]) + s < SENSOR[0]}


def test_empty_and_short_samples(events):
    empty = events[:0]
    aug = EventAugment.from_table(ALL_RANDOM + [{"op": "drop_area"}, {"op": "crop", "size": [5, 5]}], source="t")
    assert aug(empty, SENSOR, seed=0, epoch=0, index=0).shape == (0,)
    short = EventAugment.from_table([{"op": "time_crop", "duration_us": 10**9}], source="t")
    assert np.array_equal(short(events, SENSOR, seed=0, epoch=0, index=0), events)


@pytest.mark.parametrize("table, message", [
    ({"op": "nope"}, r"augment.event\[0\].op: unknown event op 'nope'"),
    ({"op": "flip_lr", "p": 2}, r"augment.event\[0\].p: must be a probability"),
    ({"op": "drop_time", "ratio": 1.0}, r"augment.event\[0\].ratio: must be below 1"),
    ({"op": "time_skew", "coefficient": 0}, r"coefficient: must be a number in \(0.0"),
    ({"op": "translate"}, r"max_px: is required"),
    ({"op": "tonic", "name": "ToFrame"}, r"name: must be one of tonic's event transforms"),
    ({"op": "tonic", "name": "DropEvent", "args": {"p": 0.1}, "eval": True}, r"eval: only the deterministic"),
    ({"op": "tonic", "name": "DropEvent", "args": {"q": 0.1}}, r"args: DropEvent takes"),
    ({"op": "one_of", "choices": [{"op": "crop", "size": 4}]}, r"choices\[0\]: op 'crop'"),
])
def test_bad_tables_name_the_key(table, message):
    with pytest.raises(ParameterError, match=message):
        EventAugment.from_table([table], source="recipe.toml")


def test_crop_larger_than_sensor_is_refused(events):
    aug = EventAugment.from_table([{"op": "crop", "size": [40, 5]}], source="t")
    with pytest.raises(ParameterError, match=r"crop.*larger than the sensor"):
        aug.output_sensor(SENSOR)


def test_table_round_trip():
    aug = EventAugment.from_table(ALL_RANDOM + [{"op": "one_of", "choices": [{"op": "roll", "max_px": 2}],
                                                 "weights": [1]}], source="t")
    assert EventAugment.from_table(aug.to_table(), source="t") == aug
