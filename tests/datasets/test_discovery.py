"""Discovery, split and label rules and dataset conventions on fake roots from eventkit.testing."""
from __future__ import annotations

import collections
import shutil

import numpy as np
import pytest

from eventkit import testing as T
from eventkit.datasets import DatasetSpec, Sample, get_dataset, iter_events, list_samples, resolve_root
from eventkit.datasets.families.cifar10dvs import cifar10dvs_flip
from eventkit.errors import DatasetNotFound, EventFileError, InvalidEventsError
from eventkit.events import VISION_DTYPE, make_audio_events, make_events
from tests.conftest import shared_file

MAKERS = {
    "nmnist": (T.make_nmnist_root, {"train": 20, "test": 10}),
    "cifar10dvs": (T.make_cifar10dvs_root, {"train": 20, "test": 10}),
    "dvsgesture": (T.make_dvsgesture_root, {"train": 24, "test": 12}),
    "shd": (T.make_shd_root, {"train": 6, "test": 4}),
    "ssc": (T.make_ssc_root, {"train": 6, "valid": 3, "test": 4}),
    "ntidigits18": (T.make_ntidigits18_root, {"train": 11, "test": 11}),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_fake_root_counts_ids_events(tmp_path, name):
    make, counts = MAKERS[name]
    spec = get_dataset(name)
    root = make(tmp_path / "a" / name)
    root2 = make(tmp_path / "b" / name)  # same seed, other place
    for split in spec.splits:
        samples = spec.samples(root, split)
        assert len(samples) == counts[split]
        # deterministic, relative ids: the same on a second root and a second call
        assert [s.sample_id for s in samples] == [s.sample_id for s in spec.samples(root2, split)]
        assert samples == spec.samples(root, split)
        # the free functions are the API; the methods of what get_dataset returns are aliases
        plain = DatasetSpec(**{f: getattr(spec, f) for f in DatasetSpec.__dataclass_fields__})
        assert list_samples(plain, root, split) == samples
        pairs = zip(iter_events(plain, samples[:2]), spec.iter_events(samples[:2]), strict=True)
        assert all(np.array_equal(a, b) for a, b in pairs)
        assert len({s.sample_id for s in samples}) == len(samples)
        for s in samples:
            assert not s.sample_id.startswith("/") and "\\" not in s.sample_id
            assert s.path.is_absolute() and s.path.is_file()
            assert 0 <= s.label < len(spec.classes)
        events = list(spec.iter_events(samples))
        assert len(events) == len(samples)
        W, H, P = spec.sensor_size
        for ev in events:
            assert ev.shape[0] > 0
            assert np.all(np.diff(ev["t"]) >= 0)
            assert ev["x"].max() < W and ev["p"].max() < P
            if "y" in ev.dtype.names:
                assert ev["y"].max() < H
        one = spec.load_events(samples[-1])
        assert np.array_equal(one, events[-1])


def test_nmnist_rule(tmp_path):
    root = T.make_nmnist_root(tmp_path / "n", per_class_train=3, per_class_test=2)
    spec = get_dataset("nmnist")
    train = spec.samples(root, "train")
    assert collections.Counter(s.label for s in train) == {d: 3 for d in range(10)}
    assert train[0].sample_id == "Train/0/00001.bin" and train[3].sample_id == "Train/1/00004.bin"
    assert all(s.sample_id.split("/")[1] == str(s.label) for s in train)
    # numeric order within a class, not lexicographic
    (root / "Train/0/00001.bin").rename(root / "Train/0/10.bin")
    shutil.copy(root / "Train/0/00002.bin", root / "Train/0/9.bin")
    ids = [s.sample_id for s in spec.samples(root, "train") if s.label == 0]
    assert ids == ["Train/0/00002.bin", "Train/0/00003.bin", "Train/0/9.bin", "Train/0/10.bin"]


def test_nmnist_events_are_the_written_ones(tmp_path):
    from eventkit.io.nmnist import write_nmnist

    ev = make_events([5, 10, 10, 300], [0, 33, 1, 2], [33, 0, 4, 5], [1, 0, 1, 0])
    (tmp_path / "Train/7").mkdir(parents=True)
    write_nmnist(tmp_path / "Train/7/00042.bin", ev)
    (tmp_path / "Test").mkdir()
    spec = get_dataset("nmnist")
    (s,) = spec.samples(tmp_path, "train")
    assert s == Sample("Train/7/00042.bin", tmp_path / "Train/7/00042.bin", 7, -1)
    got = spec.load_events(s)
    assert got.dtype == VISION_DTYPE
    for f in "txyp":
        assert got[f].tolist() == ev[f].tolist()
    with pytest.raises(DatasetNotFound, match="no <digit>/\\*.bin files"):
        spec.samples(tmp_path, "test")


def test_cifar10dvs_flip_hand_made_event(tmp_path):
    from eventkit.io.aedat2 import write_aedat2

    raw = make_events([100, 50, 70], [3, 0, 127], [10, 127, 0], [1, 0, 1])  # raw DVS128 addresses
    d = tmp_path / "cat"
    d.mkdir()
    write_aedat2(d / "cifar10_cat_99.aedat", raw)   # index 99 -> test
    write_aedat2(d / "cifar10_cat_100.aedat", raw)  # index 100 -> train
    spec = get_dataset("cifar10dvs")
    (s,) = spec.samples(tmp_path, "test")
    assert s.sample_id == "cat/cifar10_cat_99.aedat" and s.label == 3
    assert spec.samples(tmp_path, "train")[0].sample_id == "cat/cifar10_cat_100.aedat"
    ev = spec.load_events(s)
    # x' = 127 - y, y' = 127 - x, p' = 1 - p, sorted by t: worked out by hand
    assert ev["t"].tolist() == [50, 70, 100]
    assert ev["x"].tolist() == [0, 127, 117]
    assert ev["y"].tolist() == [127, 0, 124]
    assert ev["p"].tolist() == [1, 0, 0]


def test_cifar10dvs_flip_is_an_involution():
    rng = np.random.default_rng(0)
    ev = T.random_vision_events(rng, 500, 128, 128)
    twice = cifar10dvs_flip(cifar10dvs_flip(ev))
    for f in "txyp":
        assert np.array_equal(twice[f], ev[f])
    with pytest.raises(InvalidEventsError, match="raw DVS128"):
        cifar10dvs_flip(make_events([0], [128], [0], [0]))


def test_cifar10dvs_split_rule(tmp_path):
    root = T.make_cifar10dvs_root(tmp_path / "c", per_class_train=3, per_class_test=2)
    spec = get_dataset("cifar10dvs")
    test = spec.samples(root, "test")
    train = spec.samples(root, "train")
    assert collections.Counter(s.label for s in test) == {k: 2 for k in range(10)}
    assert all(int(s.sample_id.rsplit("_", 1)[1].split(".")[0]) < 100 for s in test)
    assert all(int(s.sample_id.rsplit("_", 1)[1].split(".")[0]) >= 100 for s in train)
    assert [s.sample_id for s in train[:3]] == [f"airplane/cifar10_airplane_{i}.aedat" for i in (100, 101, 102)]
    assert all(s.sample_id.split("/")[0] == spec.classes[s.label] for s in train + test)


def test_cifar10dvs_sensor_check_names_sample(tmp_path):
    # a real AEDAT 4 recording of a 320x240 DVXplorer does not fit CIFAR10-DVS's 128x128 sensor
    src = shared_file("aedat/tonic_sample.aedat4")
    (tmp_path / "dog").mkdir()
    shutil.copy(src, tmp_path / "dog" / "cifar10_dog_7.aedat4")
    spec = get_dataset("cifar10dvs")
    (s,) = spec.samples(tmp_path, "test")
    with pytest.raises(InvalidEventsError, match="cifar10dvs sample dog/cifar10_dog_7.aedat4"):
        spec.load_events(s)


def test_dvsgesture_real_labels_csv(tmp_path):
    """The real user01_natural_labels.csv (absolute times, class 8 twice) on a fake recording."""
    from eventkit.io.aedat31 import write_aedat31

    csv = shared_file("dvsgesture/user01_natural_labels.csv")
    rows = [tuple(int(v) for v in ln.split(",")) for ln in csv.read_text().splitlines()[1:] if ln.strip()]
    folder = tmp_path / "DvsGesture"
    folder.mkdir()
    shutil.copy(csv, folder / "user01_natural_labels.csv")
    (folder / "trials_to_train.txt").write_text("user01_natural.aedat\r\n\r\n")
    (folder / "trials_to_test.txt").write_text("")
    rng = np.random.default_rng(3)
    t_lo, t_hi = rows[0][1] - 1_000_000, rows[-1][2] + 1_000_000
    ev = T.random_vision_events(rng, 20_000, 128, 128, t_lo, t_hi)
    # events exactly on window edges: start is inside, end is outside
    edges = make_events([rows[7][1], rows[7][2]], [1, 2], [1, 2], [1, 1])
    ev = np.concatenate([ev, edges])
    ev = ev[np.argsort(ev["t"], kind="stable")]
    write_aedat31(folder / "user01_natural.aedat", ev)
    spec = get_dataset("dvsgesture")
    samples = spec.samples(tmp_path, "train")
    assert len(samples) == 12
    assert [s.label for s in samples] == [c - 1 for c, _, _ in rows]
    assert [s.label for s in samples].count(7) == 2  # class 8 twice -> two samples
    assert [s.sample_id for s in samples] == [f"DvsGesture/user01_natural.aedat#{k}" for k in range(12)]
    got = list(spec.iter_events(samples))
    for (_, start, end), g in zip(rows, got, strict=True):
        ref = ev[(ev["t"] >= start) & (ev["t"] < end)]  # direct reference cut
        assert np.array_equal(g["t"], ref["t"]) and np.array_equal(g["x"], ref["x"])
    assert rows[7][1] in got[7]["t"] and rows[7][2] not in got[7]["t"]
    with pytest.raises(DatasetNotFound, match="trials_to_test.txt"):
        spec.samples(tmp_path, "test")


def test_dvsgesture_split_lists(tmp_path):
    root = T.make_dvsgesture_root(tmp_path / "g", train_trials=("user01_natural", "user02_led"),
                                  test_trials=("user24_lab",))
    spec = get_dataset("dvsgesture")
    assert {s.sample_id.split("#")[0] for s in spec.samples(root, "test")} == {"DvsGesture/user24_lab.aedat"}
    # a listed recording that is absent is skipped (partial root)
    (root / "DvsGesture/user02_led.aedat").unlink()
    assert len(spec.samples(root, "train")) == 12
    # root may be the DvsGesture folder itself
    assert spec.samples(root / "DvsGesture", "test")[0].sample_id == "user24_lab.aedat#0"
    # a list that is not UTF-8 text (e.g. saved as UTF-16): EventFileError naming it
    (root / "DvsGesture" / "trials_to_test.txt").write_bytes(b"user24_lab.aedat\n\xff\xfe\n")
    with pytest.raises(EventFileError, match=r"trials_to_test.txt: split list is not UTF-8"):
        spec.samples(root, "test")


def test_shd_rows_against_written(tmp_path):
    from eventkit.io.shd import write_shd

    rng = np.random.default_rng(5)
    samples = [T.random_audio_events(rng, n, 700, 1_400_000) for n in (10, 0, 25)]
    write_shd(tmp_path / "shd_train.h5", samples, [19, 0, 7])
    write_shd(tmp_path / "shd_test.h5", samples[:1], [3])
    spec = get_dataset("shd")
    got = spec.samples(tmp_path, "train")
    assert [(s.sample_id, s.label, s.index) for s in got] == [("shd_train.h5#0", 19, 0), ("shd_train.h5#1", 0, 1),
                                                               ("shd_train.h5#2", 7, 2)]
    evs = list(spec.iter_events(got))
    for ref, ev in zip(samples, evs, strict=True):
        assert np.array_equal(ev["t"], ref["t"]) and np.array_equal(ev["x"], ref["x"])
        assert not ev["p"].any()
    with pytest.raises(DatasetNotFound, match="data folder .*nothing does not exist"):
        get_dataset("shd").samples(tmp_path / "nothing", "train")
    (tmp_path / "shd_test.h5").unlink()
    with pytest.raises(DatasetNotFound, match="shd_test.h5 is missing"):
        get_dataset("shd").samples(tmp_path, "test")
    write_shd(tmp_path / "shd_test.h5", [], [])  # a split file with no sample: not found, not []
    with pytest.raises(DatasetNotFound, match="shd_test.h5 holds no samples"):
        get_dataset("shd").samples(tmp_path, "test")


def test_shd_label_out_of_range(tmp_path):
    from eventkit.io.shd import write_shd

    write_shd(tmp_path / "shd_train.h5", [make_audio_events([1], [2], 0)], [20])
    with pytest.raises(ValueError, match="labels\\[0\\] = 20 outside 0..19"):
        get_dataset("shd").samples(tmp_path, "train")


def test_ntidigits_keys_and_labels(tmp_path):
    from eventkit.io.ntidigits import write_ntidigits_h5

    ev = [make_audio_events([0, 256, 512 + k], [k, 63, 0], 0) for k in range(5)]
    train = [("man-ae-1z3", ev[0]), ("man-ae-z", ev[1]), ("woman-bc-o", ev[2]), ("man-ae-7", ev[3])]
    test = [("boy-xx-4", ev[4])]
    write_ntidigits_h5(tmp_path / "n-tidigits.hdf5", train=train, test=test)
    spec = get_dataset("ntidigits18")
    got = spec.samples(tmp_path, "train")
    # the sequence 1z3 is skipped; o=0, 1..9, z=10
    assert [(s.sample_id, s.label, s.index) for s in got] == [
        ("n-tidigits.hdf5#train/1", 10, 1), ("n-tidigits.hdf5#train/2", 0, 2), ("n-tidigits.hdf5#train/3", 7, 3)]
    evs = list(spec.iter_events(got))
    assert [e["t"].tolist() for e in evs] == [[0, 256, 513], [0, 256, 514], [0, 256, 515]]
    assert evs[0]["x"].tolist() == [1, 63, 0]
    (t,) = spec.samples(tmp_path, "test")
    assert t.label == 4 and spec.load_events(t)["x"].tolist() == [4, 63, 0]


def test_missing_root_message(tmp_path, monkeypatch):
    spec = get_dataset("nmnist")
    target = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFound) as e:
        resolve_root("nmnist", target)
    msg = str(e.value)
    for a in spec.archives:
        assert a.url in msg and a.checksum in msg and a.file in msg
    assert str(target) in msg and "Train/<digit>/<id>.bin" in msg
    # $EVENTKIT_DATA/<name>
    monkeypatch.setenv("EVENTKIT_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFound, match=str(tmp_path / "shd")):
        resolve_root("shd")
    (tmp_path / "shd").mkdir()
    assert resolve_root("shd") == tmp_path / "shd"
    monkeypatch.delenv("EVENTKIT_DATA")
    with pytest.raises(DatasetNotFound, match="EVENTKIT_DATA"):
        resolve_root("shd")
    # an existing but empty root: samples() says what is missing and what to download
    with pytest.raises(DatasetNotFound, match="shd_train.h5.zip.*f3252aeb598ac776c1b526422d90eecb"):
        get_dataset("shd").samples(tmp_path / "shd", "train")


def test_arrange_nmnist_small_real(tmp_path):
    from eventkit.io.nmnist import read_bs2

    labels_file = shared_file("nmnist/NMNISTsmall/train1K.txt")
    src = labels_file.parent
    root = T.arrange_nmnist_small(src, labels_file, tmp_path / "nmnist")
    rows = dict(T.read_nmnist_small_labels(labels_file))
    assert len(rows) == 1000 and rows[1] == 5 and rows[2] == 0
    spec = get_dataset("nmnist")
    train, test = spec.samples(root, "train"), spec.samples(root, "test")
    assert len(train) == 900 and len(test) == 100
    for s in train + test:
        sid = int(s.path.stem)
        assert s.label == rows[sid]
        assert (sid <= 900) == (s in train)
    assert (root / "Train/5/00001.bin").is_symlink()
    ev = spec.load_events(test[0])
    ref = read_bs2(src / f"{int(test[0].path.stem)}.bs2")
    assert np.array_equal(ev["t"], ref["t"]) and ev["x"].max() <= 33
    # copies when asked; re-running replaces the earlier layout
    root2 = T.arrange_nmnist_small(src, labels_file, tmp_path / "nmnist", link=False)
    assert not (root2 / "Train/5/00001.bin").is_symlink()
    assert len(spec.samples(root2, "train")) == 900
    # another n_train moves samples across: none is left in both splits
    root3 = T.arrange_nmnist_small(src, labels_file, tmp_path / "nmnist", n_train=950)
    train3, test3 = spec.samples(root3, "train"), spec.samples(root3, "test")
    assert len(train3) == 950 and len(test3) == 50
    assert not {s.path.name for s in train3} & {s.path.name for s in test3}


@pytest.mark.parametrize("name", ["cifar10dvs", "nmnist", "dvsgesture", "shd"])
def test_each_sample_is_validated_once(tmp_path, monkeypatch, name):
    """The dataset layer owns the sensor check (it knows the sample id): one validation pass
    per sample, not one per convention step (the CIFAR10-DVS flip used to be checked twice)."""
    import eventkit.datasets.families.cifar10dvs as cifar10dvs
    import eventkit.datasets.family as family

    make = {"cifar10dvs": T.make_cifar10dvs_root, "nmnist": T.make_nmnist_root,
            "dvsgesture": T.make_dvsgesture_root, "shd": T.make_shd_root}[name]
    root = make(tmp_path / name)
    spec = get_dataset(name)
    samples = spec.samples(root, "test")
    calls = []
    real = family.validate_events

    def counting(events, *args, **kwargs):
        calls.append(kwargs.get("name"))
        return real(events, *args, **kwargs)

    monkeypatch.setattr(family, "validate_events", counting)
    monkeypatch.setattr(cifar10dvs, "validate_events", counting)  # the flip checks the raw addresses
    events = list(spec.iter_events(samples))
    assert len(events) == len(samples) == len(calls)
    assert all(s.sample_id in c for s, c in zip(samples, calls, strict=True))


@pytest.mark.parametrize("name", ["cifar10dvs", "nmnist"])
def test_sample_order_does_not_depend_on_directory_listing_order(tmp_path, monkeypatch, name):
    """Two files with the same trailing index (``cifar10_cat_5.aedat`` and ``cat_5.aedat``)
    used to keep whatever order ``iterdir`` gave: the split would differ between machines."""
    from pathlib import Path

    if name == "cifar10dvs":
        root = T.make_cifar10dvs_root(tmp_path / name, per_class_train=2, per_class_test=2)
        for f in sorted((root / "cat").iterdir()):
            shutil.copy(f, f.with_name(f.name.replace("cifar10_cat_", "cat_")))
    else:
        root = T.make_nmnist_root(tmp_path / name)
    spec = get_dataset(name)
    forward = {split: spec.samples(root, split) for split in spec.splits}
    real = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: iter(sorted(real(self), reverse=True)))
    backward = {split: spec.samples(root, split) for split in spec.splits}
    assert backward == forward
    if name == "cifar10dvs":
        cat = [s.sample_id for s in forward["test"] if s.sample_id.startswith("cat/")]
        assert cat == ["cat/cat_0.aedat", "cat/cifar10_cat_0.aedat", "cat/cat_1.aedat", "cat/cifar10_cat_1.aedat"]


def test_dvsgesture_stale_sample_list_names_the_sample(tmp_path):
    from eventkit.io.aedat31 import read_gesture_labels, write_gesture_labels

    root = T.make_dvsgesture_root(tmp_path / "g")
    spec = get_dataset("dvsgesture")
    test = spec.samples(root, "test")
    # a subset of one recording's rows, as one shard would ask for, equals the full cut
    sub = [test[5], test[6]]
    full = list(spec.iter_events(test))
    for s, ev in zip(sub, spec.iter_events(sub), strict=True):
        np.testing.assert_array_equal(ev, full[s.index])
    csv = root / "DvsGesture" / "user24_lab_labels.csv"
    rows = read_gesture_labels(csv)
    classes = rows["label"] + 1
    classes[3] = 11 if classes[3] != 11 else 1
    write_gesture_labels(csv, classes, rows["start_us"], rows["end_us"])
    with pytest.raises(EventFileError, match=r"sample DvsGesture/user24_lab.aedat#3: row 3 has class"):
        list(spec.iter_events(test))
    write_gesture_labels(csv, classes[:2], rows["start_us"][:2], rows["end_us"][:2])
    with pytest.raises(EventFileError, match=r"sample DvsGesture/user24_lab.aedat#2: row 2 not in the CSV"):
        list(spec.iter_events(test))
