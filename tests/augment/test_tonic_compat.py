"""The dtype hand-off: tonic's own dataset dtypes and polarity conventions go through augmentation."""
from __future__ import annotations

import numpy as np
import pytest
import tonic.datasets

from eventkit.augment import EventAugment, from_tonic, to_tonic
from eventkit.errors import InvalidEventsError, ParameterError
from eventkit.events import AUDIO_DTYPE, VISION_DTYPE
from eventkit.frames import to_frames
from eventkit.testing import random_vision_events

SENSOR = (32, 24, 2)


@pytest.fixture(scope="module")
def events():
    return random_vision_events(np.random.default_rng(1), 400, SENSOR[0], SENSOR[1])


def as_dtype(events: np.ndarray, dtype: np.dtype, polarity: str = "01") -> np.ndarray:
    """``events`` in another structured dtype (field order and types of ``dtype``)."""
    out = np.empty(events.shape[0], dtype=dtype)
    for f in dtype.names:
        if f == "p":
            p = events["p"]
            out["p"] = p.astype(bool) if dtype["p"].kind == "b" else (2 * p.astype(np.int64) - 1 if polarity == "signed"
                                                                      else p)
        else:
            out[f] = events[f]
    return out


TONIC_DTYPES = {name: getattr(tonic.datasets, name).dtype for name in
                ("CIFAR10DVS", "DVSGesture", "DVSLip", "NMNIST", "POKERDVS", "DSEC", "NERDD")}


@pytest.mark.parametrize("name", sorted(TONIC_DTYPES))
def test_tonic_dataset_dtypes_are_accepted(events, name):
    dtype = np.dtype(TONIC_DTYPES[name])
    theirs = as_dtype(events, dtype)
    assert np.array_equal(from_tonic(theirs, SENSOR), events)
    aug = EventAugment.from_table([{"op": "flip_lr", "p": 1.0}, {"op": "drop_event", "p": 0.2}], source="t")
    assert np.array_equal(aug(theirs, SENSOR, seed=0, epoch=1, index=2), aug(events, SENSOR, seed=0, epoch=1, index=2))
    assert np.array_equal(aug.evaluate(theirs, SENSOR), events)


@pytest.mark.parametrize("p_dtype, polarity", [("?", "01"), ("i1", "signed"), ("i1", "01"), ("<i8", "signed"),
                                               ("u1", "01"), ("<u4", "01")])
@pytest.mark.parametrize("xy_dtype", ["<i2", "<u2", "u1", "<i4", "<i8", "<u8", ">i4"])
def test_polarity_and_coordinate_dtypes(events, p_dtype, polarity, xy_dtype):
    dtype = np.dtype([("x", xy_dtype), ("y", xy_dtype), ("p", p_dtype), ("t", "<u8")])
    back = from_tonic(as_dtype(events, dtype, polarity), SENSOR)
    assert back.dtype == VISION_DTYPE and np.array_equal(back, events)


@pytest.mark.parametrize("polarity", ["01", "signed", "bool"])
def test_to_tonic_round_trip(events, polarity):
    theirs = to_tonic(events, polarity=polarity)
    assert theirs["x"].dtype.kind == "i" and theirs["y"].dtype.kind == "i"  # room for negative shifts
    expected_p = {"01": events["p"], "signed": np.where(events["p"] == 1, 1, -1), "bool": events["p"] == 1}[polarity]
    assert np.array_equal(theirs["p"], expected_p)
    assert np.array_equal(from_tonic(theirs, SENSOR), events)


def test_unsorted_input_is_sorted_stably_and_framed(events):
    rng = np.random.default_rng(3)
    theirs = to_tonic(events)[rng.permutation(events.shape[0])]
    theirs["t"][:50] = theirs["t"][0]  # ties: their input order must be kept
    back = from_tonic(theirs, SENSOR)
    order = np.argsort(theirs["t"], kind="stable")
    assert np.array_equal(back["t"], theirs["t"][order]) and np.array_equal(back["x"], theirs["x"][order])
    assert to_frames(back, SENSOR, T=4).sum() == events.shape[0]


def test_float_fields_and_out_of_sensor_events():
    dt = np.dtype([("t", "<f8"), ("x", "<f4"), ("y", "<f4"), ("p", "<f4")])
    ev = np.array([(10.4, 1.9, 2.0, 1.0), (10.6, -0.5, 3.0, 0.0), (12.0, 31.99, 23.5, 1.0), (13.0, 32.0, 0.0, 0.0)],
                  dtype=dt)
    back = from_tonic(ev, SENSOR)
    assert back.tolist() == [(10, 1, 2, 1), (12, 31, 23, 1)]  # t rounded, x/y floored, off-sensor dropped
    with pytest.raises(InvalidEventsError, match=r"x\[1\]=-1 outside the sensor"):
        from_tonic(ev, SENSOR, drop_outside=False)


def test_bad_polarities_and_fields_are_refused():
    dt = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])
    with pytest.raises(InvalidEventsError, match=r"signed polarity must be -1 or \+1, got p\[1\]=0"):
        from_tonic(np.array([(0, 0, 0, -1), (1, 0, 0, 0)], dtype=dt))
    with pytest.raises(InvalidEventsError, match=r"missing field\(s\) \['p'\]"):
        from_tonic(np.zeros(2, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2")]))
    with pytest.raises(InvalidEventsError, match=r"t\[0\]=nan is not a finite number"):
        from_tonic(np.array([(np.nan, 0, 0, 0)], dtype=[("t", "<f8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")]))
    with pytest.raises(ParameterError, match="polarity must be one of"):
        to_tonic(np.zeros(1, VISION_DTYPE), polarity="pm")


def test_audio_events():
    ev = np.zeros(3, dtype=tonic.datasets.SHD.dtype)
    ev["t"], ev["x"], ev["p"] = [5, 1, 3], [699, 3, 0], [0, 0, 0]
    back = from_tonic(ev, (700, 1, 1))
    assert back.dtype == AUDIO_DTYPE and back["t"].tolist() == [1, 3, 5] and back["x"].tolist() == [3, 0, 699]
    aug = EventAugment.from_table([{"op": "time_jitter", "std_us": 1}, {"op": "drop_event", "p": 0.5}], source="t")
    assert aug(ev, (700, 1, 1), seed=0, epoch=0, index=0).dtype == AUDIO_DTYPE
    spatial = EventAugment.from_table([{"op": "flip_lr"}], source="t")
    with pytest.raises(InvalidEventsError, match="augment op 'translate' moves pixels and needs vision events"):
        EventAugment.from_table([{"op": "translate", "max_px": 1}], source="t")(ev, (700, 1, 1), seed=0, epoch=0,
                                                                                 index=0)
    assert spatial.spatial and not aug.spatial


TONIC_ARGS = {"Decimation": {"n": 2}, "Denoise": {"filter_time": 10_000}, "DropEvent": {"p": 0.2},
              "DropEventByArea": {"area_ratio": 0.3}, "DropEventByTime": {"duration_ratio": 0.3},
              "DropPixel": {"coordinates": [[1, 1], [5, 7]]}, "EventDrop": {}, "MergePolarities": {},
              "RandomDropPixel": {"p": 0.1}, "RandomFlipLR": {"p": 1.0}, "RandomFlipPolarity": {"p": 1.0},
              "RandomFlipUD": {"p": 1.0}, "RandomTimeReversal": {"p": 1.0}, "RefractoryPeriod": {"delta": 5_000},
              "SpatialJitter": {"var_x": 4.0, "var_y": 4.0}, "TimeJitter": {"std": 20_000.0},
              "TimeSkew": {"coefficient": 1.5}, "UniformNoise": {"n": 50}}


@pytest.mark.parametrize("name", sorted(TONIC_ARGS))
def test_every_listed_tonic_transform_runs_through_the_hand_off(events, name):
    from eventkit.augment.tonic_ops import TONIC_OPS

    assert set(TONIC_ARGS) == set(TONIC_OPS)
    aug = EventAugment.from_table([{"op": "tonic", "name": name, "args": TONIC_ARGS[name]}], source="t")
    out = aug(events, SENSOR, seed=0, epoch=0, index=3)
    assert out.dtype == VISION_DTYPE and np.all(np.diff(out["t"]) >= 0)
    assert to_frames(out, SENSOR, T=5).sum() == out.shape[0]  # inside the sensor: every event is counted
    assert np.array_equal(out, aug(events, SENSOR, seed=0, epoch=0, index=3))
