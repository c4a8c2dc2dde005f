"""Every manifest parses into a DatasetSpec with consistent fields."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from eventkit.datasets import get_dataset, list_datasets
from eventkit.datasets.manifest import parse_manifest
from eventkit.errors import EventFileError, ManifestError, ParameterError

MANIFESTS = Path(__file__).resolve().parents[2] / "data_manifests"
NAMES = ["nmnist", "cifar10dvs", "dvsgesture", "shd", "ssc", "ntidigits18", "mnist", "fashionmnist", "cifar10"]
HEX = {"md5": 32, "sha1": 40, "sha256": 64}


def test_all_datasets_listed():
    assert list_datasets() == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_manifest_fields(name):
    spec = get_dataset(name)
    assert spec.name == name
    assert spec.kind in ("vision", "audio", "static")
    assert len(spec.sensor_size) == 3 and all(v > 0 for v in spec.sensor_size)
    assert len(set(spec.classes)) == len(spec.classes) >= 10
    assert set(spec.counts) == set(spec.splits)
    assert all(v > 0 for v in spec.counts.values())
    # manifest checksum = sha256 of the file bytes, computed independently
    assert spec.manifest_sha256 == hashlib.sha256((MANIFESTS / f"{name}.toml").read_bytes()).hexdigest()
    assert spec.archives, "every dataset says what to download"
    for a in spec.archives:
        assert a.url.startswith("http")
        assert a.checksum == "" or re.fullmatch(f"[0-9a-f]{{{HEX[a.algorithm]}}}", a.checksum)
    assert spec.layout.description and spec.label_rule and spec.split_rule
    if spec.kind == "audio":
        assert spec.sensor_size[1] == 1 and spec.duration_us > 0
    else:
        assert spec.duration_us is None
    assert get_dataset(name) is spec  # cached, frozen
    with pytest.raises(AttributeError):  # dataclasses.FrozenInstanceError
        spec.name = "other"


def test_known_facts():
    assert get_dataset("nmnist").sensor_size == (34, 34, 2)
    assert get_dataset("cifar10dvs").counts == {"train": 9000, "test": 1000}
    assert get_dataset("shd").duration_us == 1_400_000
    assert get_dataset("ssc").splits == ("train", "valid", "test")
    assert get_dataset("ntidigits18").classes == ("o", "1", "2", "3", "4", "5", "6", "7", "8", "9", "z")
    assert get_dataset("dvsgesture").classes[7] == "arm_roll"
    assert get_dataset("cifar10").sensor_size == (32, 32, 3)
    # the published digests as recorded (tonic / SpikingJelly / torchvision / CIFAR page)
    nmnist_digests = {a.file: a.checksum for a in get_dataset("nmnist").archives}
    assert nmnist_digests["Train.zip"] == "20959b8e626244a1b502305a9e6e2031"
    assert get_dataset("cifar10").archives[0].checksum == "c32a1d4ab5d03f1284b67883e8d87530"


def test_unknown_dataset():
    with pytest.raises(ParameterError, match="known datasets: .*nmnist"):
        get_dataset("nmist")


def test_bad_manifests_rejected():
    good = (MANIFESTS / "nmnist.toml").read_bytes()
    parse_manifest(good)
    with pytest.raises(EventFileError, match="not a valid TOML"):
        parse_manifest(b"name = ")
    with pytest.raises(EventFileError, match="kind"):
        parse_manifest(good.replace(b'kind = "vision"', b'kind = "smell"'))
    with pytest.raises(EventFileError, match="sensor_size"):
        parse_manifest(good.replace(b"sensor_size = [34, 34, 2]", b"sensor_size = [34, 34]"))
    with pytest.raises(EventFileError, match="unknown split"):
        parse_manifest(good.replace(b"test = 10000", b"valid = 10000"))
    with pytest.raises(EventFileError, match="missing the key 'classes'"):
        parse_manifest(good.replace(b"classes = [", b"klasses = ["))
    # a manifest's errors have their own type, still caught as EventFileError (its former name)
    with pytest.raises(ManifestError, match="needs the \\[layout\\] key\\(s\\) split_dirs"):
        parse_manifest(good.replace(b"split_dirs = ", b"split_folders = "))
    with pytest.raises(ManifestError, match="mirrors must be a list"):
        parse_manifest(good.replace(b'unpack = true\nsplits = ["train"]', b'unpack = true\nmirrors = "x"'))


def test_error_names_and_aliases():
    import pickle

    import eventkit
    from eventkit.errors import ArchiveError, ImageFileError, RawFileError

    assert eventkit.EventFileError is RawFileError  # the former name, kept
    for cls in (ManifestError, ArchiveError, ImageFileError):
        err = cls("/data/x", "broken", 12)
        assert isinstance(err, EventFileError) and isinstance(err, ValueError)
        back = pickle.loads(pickle.dumps(err))  # crosses process boundaries (Dask, DataLoader workers)
        assert type(back) is cls and (back.path, back.problem, back.offset) == ("/data/x", "broken", 12)
        assert str(back) == "/data/x: broken at byte 12"


@pytest.mark.parametrize("name", ["nmnist", "ssc"])
def test_spec_pickles_for_workers(name):
    import pickle

    spec = get_dataset(name)
    back = pickle.loads(pickle.dumps(spec))
    assert back == spec and back.counts == spec.counts and back.layout.params == spec.layout.params
    with pytest.raises(TypeError, match="read-only"):
        spec.counts["train"] = 1
