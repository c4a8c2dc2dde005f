"""tonic's events go straight into eventkit: dataset dtypes, signed/bool polarity, unsorted
transform output, 20 tonic transforms, and the one argument order (the old one deprecated)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import tonic.datasets
import tonic.transforms as tt

from eventkit.audio import to_audio_frames
from eventkit.augment import from_tonic, to_tonic
from eventkit.errors import InvalidEventsError, ParameterError
from eventkit.events import AUDIO_DTYPE, VISION_DTYPE, polarity_index, validate_events
from eventkit.frames import ToFrames, to_frames, to_frames_by_duration, to_frames_by_event_count, to_frames_many
from eventkit.testing import random_audio_events, random_vision_events

SENSOR = (32, 24, 2)
#: tonic's own sample dtypes, read from its dataset classes (nothing is downloaded)
VISION_DATASETS = ("DVSGesture", "CIFAR10DVS", "DVSLip", "NMNIST", "POKERDVS", "ASLDVS", "NCALTECH101")
AUDIO_DATASETS = ("SHD", "SSC", "NTIDIGITS18")


@pytest.fixture(scope="module")
def events():
    return random_vision_events(np.random.default_rng(7), 600, SENSOR[0], SENSOR[1])


def as_dtype(events: np.ndarray, dtype: np.dtype, signed: bool = False) -> np.ndarray:
    """``events`` in another structured dtype: tonic's field order and types; ``signed`` -> p in {-1, +1}."""
    out = np.empty(events.shape[0], dtype=dtype)
    for f in dtype.names:
        p = events[f]
        if f == "p" and dtype["p"].kind == "b":
            p = p.astype(bool)
        elif f == "p" and signed:
            p = 2 * p.astype(np.int64) - 1
        out[f] = p
    return out


def histogram(ev: np.ndarray, sensor) -> np.ndarray:
    """Per-event reference: counts [P, H, W] with the polarity read as tonic means it."""
    W, H, P = sensor
    p = ev["p"].astype(np.int64)
    p = (p > 0).astype(np.int64) if p.size and p.min() < 0 else p
    out = np.zeros((P, H, W), np.int64)
    for pi, yi, xi in zip(p, ev["y"].astype(np.int64), ev["x"].astype(np.int64), strict=True):
        out[pi, yi, xi] += 1
    return out


@pytest.mark.parametrize("name", VISION_DATASETS)
def test_tonic_vision_dataset_dtypes_frame_like_the_contract(events, name):
    theirs = as_dtype(events, np.dtype(getattr(tonic.datasets, name).dtype))
    assert validate_events(theirs, SENSOR) is theirs
    for split_by in ("count", "time"):
        np.testing.assert_array_equal(to_frames(theirs, SENSOR, T=5, split_by=split_by),
                                      to_frames(events, SENSOR, T=5, split_by=split_by))
    np.testing.assert_array_equal(to_frames_by_duration(theirs, SENSOR, duration_us=40_000),
                                  to_frames_by_duration(events, SENSOR, duration_us=40_000))
    np.testing.assert_array_equal(to_frames_by_event_count(theirs, SENSOR, event_count=100),
                                  to_frames_by_event_count(events, SENSOR, event_count=100))
    np.testing.assert_array_equal(to_frames_many([theirs, events[:10]], SENSOR, T=3)[0],
                                  to_frames(events, SENSOR, T=3))
    np.testing.assert_array_equal(to_frames(theirs, SENSOR, T=1)[0], histogram(events, SENSOR))


@pytest.mark.parametrize("name", AUDIO_DATASETS)
def test_tonic_audio_dataset_dtypes_frame_like_the_contract(name):
    ev = random_audio_events(np.random.default_rng(2), 500, 700, 1_000_000)
    theirs = as_dtype(ev, np.dtype(getattr(tonic.datasets, name).dtype))
    assert theirs.dtype != AUDIO_DTYPE
    validate_events(theirs, (700, 1, 1))
    for kw in ({"dt_us": 14_000, "T": 80, "n_channels": 140}, {"T": 6, "split_by": "count"}):
        np.testing.assert_array_equal(to_audio_frames(theirs, (700, 1, 1), **kw),
                                      to_audio_frames(ev, (700, 1, 1), **kw))


@pytest.mark.parametrize("p_dtype", ["i1", "<i2", "<i8"])
def test_signed_polarity_is_mapped_once(events, p_dtype):
    theirs = as_dtype(events, np.dtype([("t", "<i8"), ("x", "<i4"), ("y", "<i4"), ("p", p_dtype)]), signed=True)
    assert set(np.unique(theirs["p"])) == {-1, 1}
    np.testing.assert_array_equal(to_frames(theirs, SENSOR, T=4), to_frames(events, SENSOR, T=4))
    np.testing.assert_array_equal(polarity_index(theirs["p"]), events["p"])
    audio = np.zeros(3, dtype=[("t", "<i8"), ("x", "<i8"), ("p", p_dtype)])
    audio["t"], audio["x"], audio["p"] = [0, 1, 2], [0, 1, 1], [-1, 1, -1]
    assert to_audio_frames(audio, (2, 1, 2), T=1, split_by="count").tolist() == [[[1, 1], [0, 1]]]


def test_bool_polarity_view_costs_no_copy(events):
    theirs = as_dtype(events, np.dtype(tonic.datasets.DVSGesture.dtype))
    idx = polarity_index(theirs["p"])
    assert idx.dtype == np.uint8 and np.shares_memory(idx, theirs)


@pytest.mark.parametrize("values, bad_index", [([-1, 0, 1], 1), ([1, -1, 2], 2), ([-2, -1, 1], 0)])
def test_mixed_signed_polarity_is_refused_with_its_index(values, bad_index):
    ev = np.zeros(3, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])
    ev["p"] = values
    for call in (lambda: to_frames(ev, (2, 2, 2), T=1), lambda: validate_events(ev, (2, 2, 2))):
        with pytest.raises(InvalidEventsError, match=rf"p\[{bad_index}\]={values[bad_index]}.*-1/\+1"):
            call()


@pytest.mark.parametrize("xy", ["<i2", "<u4", "<i8", ">i4", "<u8"])
def test_coordinates_that_do_not_fit_are_named(events, xy):
    theirs = as_dtype(events[:5], np.dtype([("t", "<i8"), ("x", xy), ("y", xy), ("p", "?")]))
    theirs["x"][3] = 32 if np.dtype(xy).kind == "u" else -1
    with pytest.raises(InvalidEventsError, match=r"x\[3\]=(32|-1) outside the sensor"):
        to_frames(theirs, SENSOR, T=2)
    with pytest.raises(InvalidEventsError, match=r"x\[3\]=(32|-1) outside the sensor"):
        validate_events(theirs, SENSOR)


def test_float_fields_point_to_from_tonic(events):
    theirs = as_dtype(events[:4], np.dtype([("t", "<f8"), ("x", "<f4"), ("y", "<f4"), ("p", "<f4")]))
    with pytest.raises(InvalidEventsError, match="from_tonic"):
        to_frames(theirs, SENSOR, T=2)


def test_sort_true_frames_unsorted_input_and_without_it_the_error_says_how(events):
    rng = np.random.default_rng(4)
    shuffled = events[rng.permutation(events.shape[0])]
    with pytest.raises(InvalidEventsError, match="not sorted"):
        to_frames(shuffled, SENSOR, T=4)
    for split_by in ("count", "time"):
        np.testing.assert_array_equal(to_frames(shuffled, SENSOR, T=4, split_by=split_by, sort=True),
                                      to_frames(events, SENSOR, T=4, split_by=split_by))
    np.testing.assert_array_equal(to_frames_many([shuffled], SENSOR, T=4, sort=True)[0], to_frames(events, SENSOR, T=4))
    np.testing.assert_array_equal(ToFrames(SENSOR, T=4, sort=True)(shuffled), to_frames(events, SENSOR, T=4))
    audio = random_audio_events(rng, 300, 16, 100_000)
    back = audio[::-1].copy()
    np.testing.assert_array_equal(to_audio_frames(back, (16, 1, 1), dt_us=10_000, sort=True),
                                  to_audio_frames(audio, (16, 1, 1), dt_us=10_000))
    with pytest.raises(ParameterError, match="sort"):
        to_frames(events, SENSOR, T=4, sort="yes")


# ----------------------------------------------------------------- tonic transforms

#: 20 of tonic's event transforms and the sensor their output lives on
TRANSFORMS = {
    "CenterCrop": (lambda: tt.CenterCrop(SENSOR, (16, 12)), (16, 12, 2)),
    "CropTime": (lambda: tt.CropTime(min=50_000, max=200_000), SENSOR),
    "Decimation": (lambda: tt.Decimation(n=3), SENSOR),
    "Denoise": (lambda: tt.Denoise(filter_time=20_000), SENSOR),
    "Downsample": (lambda: tt.Downsample(spatial_factor=0.5), (16, 12, 2)),
    "DropEvent": (lambda: tt.DropEvent(p=0.3), SENSOR),
    "DropEventByArea": (lambda: tt.DropEventByArea(SENSOR, area_ratio=0.3), SENSOR),
    "DropEventByTime": (lambda: tt.DropEventByTime(duration_ratio=0.3), SENSOR),
    "DropPixel": (lambda: tt.DropPixel(coordinates=[(1, 1), (5, 7)]), SENSOR),
    "MergePolarities": (lambda: tt.MergePolarities(), SENSOR),
    "RandomCrop": (lambda: tt.RandomCrop(SENSOR, (20, 10)), (20, 10, 2)),
    "RandomDropPixel": (lambda: tt.RandomDropPixel(p=0.2, sensor_size=SENSOR), SENSOR),
    "RandomFlipLR": (lambda: tt.RandomFlipLR(SENSOR, p=1.0), SENSOR),
    "RandomFlipPolarity": (lambda: tt.RandomFlipPolarity(p=1.0), SENSOR),
    "RandomFlipUD": (lambda: tt.RandomFlipUD(SENSOR, p=1.0), SENSOR),
    "RefractoryPeriod": (lambda: tt.RefractoryPeriod(delta=5_000), SENSOR),
    "SpatialJitter": (lambda: tt.SpatialJitter(SENSOR, var_x=2.0, var_y=2.0, clip_outliers=True), SENSOR),
    "TimeJitter": (lambda: tt.TimeJitter(std=30_000, clip_negative=True), SENSOR),
    "TimeSkew": (lambda: tt.TimeSkew(coefficient=1.3, offset=100), SENSOR),
    "UniformNoise": (lambda: tt.UniformNoise(SENSOR, n=100), SENSOR),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@pytest.mark.parametrize("dataset", ["DVSGesture", "NMNIST"])
def test_tonic_transform_output_goes_into_to_frames(events, name, dataset):
    """A tonic sample (tonic's dtype), a tonic transform, then eventkit's frames: no conversion
    by hand; ``sort=True`` takes unsorted output (TimeJitter, UniformNoise)."""
    make, sensor = TRANSFORMS[name]
    np.random.seed(11)  # tonic draws from NumPy's global generator
    theirs = as_dtype(events, np.dtype(getattr(tonic.datasets, dataset).dtype))
    out = make()(theirs.copy())
    assert out.shape[0] > 0
    frames = to_frames(out, sensor, T=4, split_by="time", sort=True)
    assert frames.sum() == out.shape[0]  # every event counted once, none dropped
    np.testing.assert_array_equal(frames.sum(axis=0), histogram(out, sensor))
    # the independent route: tonic -> from_tonic (its own polarity mapping and stable sort) -> frames
    np.testing.assert_array_equal(frames, to_frames(from_tonic(out, sensor), sensor, T=4, split_by="time"))


def test_voxel_grid_takes_the_documented_signed_conversion(events):
    """ToVoxelGrid assumes -1/+1 polarity and rewrites it in place: hand it ``to_tonic(ev, polarity="signed")``."""
    before = events.copy()
    grid = tt.ToVoxelGrid(SENSOR, n_time_bins=3)(to_tonic(events, polarity="signed"))
    assert np.array_equal(events, before)  # the conversion is a copy: eventkit's events are untouched
    signed = as_dtype(events, np.dtype([("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", "<i8")]), signed=True)
    np.testing.assert_array_equal(grid, tt.ToVoxelGrid(SENSOR, n_time_bins=3)(signed))
    assert grid.sum() != 0 and np.isfinite(grid).all()


def test_event_count_frames_match_tonic_to_frame(events):
    theirs = as_dtype(events, np.dtype(tonic.datasets.DVSGesture.dtype))
    ref = tt.ToFrame(SENSOR, event_count=100, overlap=20)(theirs.copy())
    np.testing.assert_array_equal(to_frames_by_event_count(theirs, SENSOR, event_count=100, overlap=20), ref)


# ----------------------------------------------------------------- argument order

def test_old_argument_order_still_works_with_a_deprecation_warning(events):
    new = to_frames(events, SENSOR, T=6, split_by="time", dtype=np.uint8, merge_polarity=True)
    with pytest.warns(DeprecationWarning, match=r"to_frames\(events, sensor_size, T=6"):
        old = to_frames(events, 6, SENSOR, "time", np.uint8, True)
    np.testing.assert_array_equal(old, new)
    with pytest.warns(DeprecationWarning):
        np.testing.assert_array_equal(to_frames(events, 6, SENSOR, split_by="time", dtype=np.uint8,
                                                merge_polarity=True), new)
    with pytest.warns(DeprecationWarning, match="to_frames_by_duration"):
        np.testing.assert_array_equal(to_frames_by_duration(events, 30_000, SENSOR),
                                      to_frames_by_duration(events, SENSOR, duration_us=30_000))
    with pytest.warns(DeprecationWarning, match="to_frames_by_event_count"):
        np.testing.assert_array_equal(to_frames_by_event_count(events, 50, SENSOR, overlap=10),
                                      to_frames_by_event_count(events, SENSOR, event_count=50, overlap=10))
    with pytest.warns(DeprecationWarning, match="to_frames_many"):
        np.testing.assert_array_equal(to_frames_many([events], 3, SENSOR, "time"),
                                      to_frames_many([events], SENSOR, T=3, split_by="time"))
    with pytest.warns(DeprecationWarning, match="ToFrames"):
        np.testing.assert_array_equal(ToFrames(3, SENSOR)(events), ToFrames(SENSOR, T=3)(events))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new order and the keyword form never warn
        to_frames(events, T=3, sensor_size=SENSOR)
        to_frames(events, SENSOR, T=3)


@pytest.mark.parametrize("call, match", [
    (lambda ev: to_frames(ev, SENSOR, 3), "by keyword"),
    (lambda ev: to_frames(ev, SENSOR), r"T= is required"),
    (lambda ev: to_frames(ev, T=3), r"sensor_size \(W, H, P\) is required"),
    (lambda ev: to_frames(ev, 3, SENSOR, T=3), "T given twice"),
    (lambda ev: to_frames(ev, 3, SENSOR, "time", split_by="time"), "split_by given twice"),
    (lambda ev: to_frames(ev, 3), "the second argument is sensor_size"),
    (lambda ev: to_frames_by_duration(ev, SENSOR), "duration_us= is required"),
])
def test_argument_order_mistakes_are_named(events, call, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ParameterError, match=match):
            call(events)


def test_contract_events_stay_zero_copy(events):
    assert VISION_DTYPE == events.dtype
    assert validate_events(events, SENSOR) is events
