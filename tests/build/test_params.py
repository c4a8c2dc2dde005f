"""Typed build parameters: frame shape, hash and path without a kernel; the same dicts and paths as before."""
from __future__ import annotations

import numpy as np
import pytest

import eventkit.audio
import eventkit.frames
from eventkit import testing
from eventkit.build import EncodeParams, FrameParams, build_cache, frames_store_url
from eventkit.build.compute import framer
from eventkit.build.params import params_from_dict
from eventkit.datasets import get_dataset
from eventkit.errors import ParameterError
from eventkit.events import AUDIO_DTYPE, VISION_DTYPE

CASES = [
    ("nmnist", {}), ("nmnist", {"merge_polarity": True}), ("nmnist", {"split_by": "time", "dtype": "uint8"}),
    ("cifar10dvs", {}), ("dvsgesture", {"merge_polarity": True}),
    ("shd", {"split_by": "time"}), ("shd", {"n_channels": 140}), ("ssc", {"split_by": "time", "n_channels": 70}),
    ("ntidigits18", {}), ("ntidigits18", {"merge_polarity": True}),
]


def _events(spec) -> np.ndarray:
    """Three valid events of the dataset's sensor."""
    if spec.kind == "audio":
        ev = np.zeros(3, dtype=AUDIO_DTYPE)
        ev["x"] = [0, spec.sensor_size[0] - 1, 1]
    else:
        ev = np.zeros(3, dtype=VISION_DTYPE)
        ev["x"], ev["y"] = [0, spec.sensor_size[0] - 1, 1], [0, spec.sensor_size[1] - 1, 1]
    ev["t"] = [0, 1000, 2000]
    ev["p"] = [0, spec.sensor_size[2] - 1, 0]
    return ev


@pytest.mark.parametrize("name, options", CASES)
def test_frame_shape_is_the_kernels_without_running_one(name, options, monkeypatch):
    spec = get_dataset(name)
    params = FrameParams.for_split(spec, spec.splits[0], T=5, **options)
    kernel_shape = framer(params)(_events(spec)).shape
    assert params.frame_shape == kernel_shape

    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel ran to learn the frame shape")

    monkeypatch.setattr(eventkit.frames, "to_frames", no_kernel)
    monkeypatch.setattr(eventkit.audio, "to_audio_frames", no_kernel)
    again = FrameParams.for_split(spec, spec.splits[0], T=5, **options)
    assert again.frame_shape == kernel_shape and len(again.hash) == 64
    assert again.store_url("/c").endswith(f"/{name}/{spec.splits[0]}/frames-{again.hash[:12]}.zarr")
    assert frames_store_url(name, spec.splits[0], T=5, cache="/c", **options) == again.store_url("/c")
    assert params_from_dict(again.to_dict()) == again


def test_a_build_runs_the_kernel_once_per_sample_only(tmp_path, monkeypatch):
    """The framing kernel ran on an empty array once per split and once per shard to learn the shape."""
    root = testing.make_nmnist_root(tmp_path / "nmnist", per_class_train=1, per_class_test=1)
    calls = []
    real = eventkit.frames.to_frames
    monkeypatch.setattr(eventkit.frames, "to_frames", lambda ev, *a, **k: calls.append(len(ev)) or real(ev, *a, **k))
    r = build_cache("nmnist", T=3, root=root, cache=tmp_path / "c", shard_size=3, progress=False, task_timeout=None)
    assert len(calls) == r.samples == 20 and 0 not in calls


def test_encode_params_and_validation():
    spec = get_dataset("mnist")
    p = EncodeParams.for_split(spec, "train", T=4, encoder="latency", seed=9)
    assert p.frame_shape == (4, 1, 28, 28) and p.seed is None and p.representation == "latency"
    assert params_from_dict(p.to_dict()) == p
    assert EncodeParams.for_split(spec, "train", T=4, encoder="rate", seed=9).seed == 9
    for kwargs, match in (({"T": 0, "encoder": "rate"}, "T must be"), ({"T": 2, "encoder": "x"}, "encoder"),
                          ({"T": 2, "encoder": "rate", "seed": -1}, "seed")):
        with pytest.raises(ParameterError, match=match):
            EncodeParams.for_split(spec, "train", **kwargs)
    with pytest.raises(ParameterError, match="eventkit encode"):
        FrameParams.for_split(spec, "train", T=3)
    with pytest.raises(ParameterError, match="incomplete"):
        params_from_dict({"kind": "vision"})
