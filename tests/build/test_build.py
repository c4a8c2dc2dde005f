"""eventkit.build: parameters and store keys, every fake dataset, encoders, resume, verify, failures."""
from __future__ import annotations

import math
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from eventkit import testing
from eventkit.build import (
    BuildError,
    BuildResult,
    build_cache,
    default_shard_size,
    encode_cache,
    encode_store_url,
    frames_store_url,
    store_order,
    verify_store,
)
from eventkit.cache import CacheStore
from eventkit.datasets import get_dataset
from eventkit.errors import CacheError, DatasetNotFound, ParameterError
from tests.build.helpers import (
    flip_bytes,
    frames_shard_file,
    ref_audio_time_frames,
    ref_count_frames,
    store_files,
)


@pytest.fixture(scope="module")
def nmnist_fake(tmp_path_factory):
    return testing.make_nmnist_root(tmp_path_factory.mktemp("raw") / "nmnist", per_class_train=2, per_class_test=1)


def _unmark(url: str) -> None:
    """The store's group attribute ``complete`` set back to false (a build killed before its end)."""
    import zarr

    from eventkit.cache import ATTRS_KEY

    group = zarr.open_group(url, mode="r+")
    group.attrs.put({ATTRS_KEY: {**group.attrs[ATTRS_KEY], "complete": False}})


def _read_all(url: str) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    store = CacheStore.open(url)
    frames, labels = store.read_range(0, store.n_samples)
    return frames, labels, store.sample_ids(), store.n_events()


# ------------------------------------------------------------------ parameters and store keys

def test_default_shard_size_targets_16_mib():
    # N-MNIST T=10 uint16: 46,240 B/sample -> 362 samples (16.0 MiB)
    assert default_shard_size((10, 2, 34, 34), "uint16", 60000) == 362
    assert default_shard_size((10, 2, 34, 34), "uint16", 100) == 100  # capped at the split
    assert default_shard_size((20, 2, 128, 128), "uint16", 1000) == 12   # DVS Gesture: 1.25 MiB/sample
    assert default_shard_size((400, 2, 512, 512), "uint16", 10) == 1     # 400 MiB/sample: one per shard
    per = 34 * 34 * 2 * 10 * 2
    n = default_shard_size((10, 2, 34, 34), "uint16", 10**6)
    assert 8 * 2**20 <= n * per <= 64 * 2**20


def test_param_change_gives_another_store(nmnist_fake, tmp_path):
    a = build_cache("nmnist", T=4, root=nmnist_fake, cache=tmp_path, splits=["test"], progress=False)
    b = build_cache("nmnist", T=5, root=nmnist_fake, cache=tmp_path, splits=["test"], progress=False)
    c = build_cache("nmnist", T=4, dtype="uint8", root=nmnist_fake, cache=tmp_path, splits=["test"], progress=False)
    d = build_cache("nmnist", T=4, merge_polarity=True, root=nmnist_fake, cache=tmp_path, splits=["test"],
                    progress=False)
    urls = {r.stores["test"] for r in (a, b, c, d)}
    assert len(urls) == 4
    assert a.stores["test"] == frames_store_url("nmnist", "test", T=4, cache=tmp_path)
    assert c.stores["test"] == frames_store_url("nmnist", "test", T=4, dtype="uint8", cache=tmp_path)
    assert CacheStore.open(c.stores["test"]).dtype == np.uint8
    assert CacheStore.open(d.stores["test"]).frame_shape == (4, 1, 34, 34)
    meta = CacheStore.open(a.stores["test"]).meta
    spec = get_dataset("nmnist")
    assert meta["params"]["manifest_sha256"] == spec.manifest_sha256 == meta["manifest_sha256"]
    assert "eventkit_version" in meta and "eventkit_version" not in meta["params"]
    assert meta["params"] == {"dataset": "nmnist", "split": "test", "representation": "frames", "kind": "vision",
                              "T": 4, "split_by": "count", "dtype": "uint16", "merge_polarity": False,
                              "sensor_size": [34, 34, 2], "sample_order": "shuffled-files-v1",
                              "manifest_sha256": spec.manifest_sha256}


def test_shard_size_is_capped_at_the_split_size(nmnist_fake, tmp_path):
    """--shard-size larger than the split: one shard of all samples (not an index of 10**7 slots), also on rerun."""
    from eventkit.cache import CacheStore

    kw = dict(T=4, root=nmnist_fake, cache=tmp_path / "c", splits=["test"], shard_size=10**7, progress=False)
    r = build_cache("nmnist", **kw)
    store = CacheStore.open(r.stores["test"])
    assert store.shard_size == r.samples == 10 and store.n_shards == 1
    assert build_cache("nmnist", **kw).stores == r.stores  # the same request reuses it


def test_store_with_other_attrs_is_refused(nmnist_fake, tmp_path):
    root = tmp_path / "raw"
    shutil.copytree(nmnist_fake, root)
    r = build_cache("nmnist", T=4, root=root, cache=tmp_path / "c", splits=["test"], shard_size=3, progress=False)
    assert r.samples == 10
    # same parameters, other shard size: refused, never silently mixed
    with pytest.raises(CacheError, match="shard_size"):
        build_cache("nmnist", T=4, root=root, cache=tmp_path / "c", splits=["test"], shard_size=4, progress=False)
    # same parameters, other raw data (one sample fewer): the store's attrs differ -> CacheError
    next((root / "Test" / "0").iterdir()).unlink()
    with pytest.raises(CacheError, match="n_samples"):
        build_cache("nmnist", T=4, root=root, cache=tmp_path / "c", splits=["test"], progress=False)


def test_bad_parameters(nmnist_fake, tmp_path):
    for kwargs, match in (({"T": 0}, "T must be"), ({"T": 3, "split_by": "number"}, "split_by"),
                          ({"T": 3, "dtype": "float32"}, "dtype"), ({"T": 3, "n_channels": 4}, "audio"),
                          ({"T": 3, "splits": ["valid"]}, "no split"), ({"T": 3, "workers": 0}, "workers"),
                          ({"T": 3, "scheduler": "localhost"}, "scheduler")):
        with pytest.raises(ParameterError, match=match):
            build_cache("nmnist", root=nmnist_fake, cache=tmp_path, progress=False, **kwargs)
    with pytest.raises(ParameterError, match="eventkit encode"):
        build_cache("mnist", T=3, root=tmp_path, cache=tmp_path, progress=False)
    with pytest.raises(ParameterError, match="eventkit frames"):
        encode_cache("nmnist", T=3, encoder="rate", root=nmnist_fake, cache=tmp_path, progress=False)
    with pytest.raises(DatasetNotFound):
        build_cache("nmnist", T=3, root=tmp_path / "absent", cache=tmp_path, progress=False)


# ------------------------------------------------------------------ every fake dataset

@pytest.mark.parametrize("name,maker,kwargs", [
    ("nmnist", testing.make_nmnist_root, {}),
    ("cifar10dvs", testing.make_cifar10dvs_root, {"per_class_train": 1, "per_class_test": 1}),
    ("dvsgesture", testing.make_dvsgesture_root, {"events_per_gesture": 20}),
])
def test_vision_datasets_build_and_read_back(name, maker, kwargs, tmp_path):
    root = maker(tmp_path / name, **kwargs)
    spec = get_dataset(name)
    T = 3
    result = build_cache(name, T=T, root=root, cache=tmp_path / "cache", shard_size=4, progress=False)
    assert isinstance(result, BuildResult) and set(result.stores) == set(spec.splits)
    total_samples = total_events = 0
    for split, url in result.stores.items():
        frames, labels, ids, n_events = _read_all(url)
        samples = store_order(spec.samples(root, split))
        assert ids == [s.sample_id for s in samples]
        assert labels.tolist() == [s.label for s in samples]
        W, H, P = spec.sensor_size
        assert frames.shape == (len(samples), T, P, H, W)
        for i, s in enumerate(samples):
            events = spec.load_events(s)
            assert n_events[i] == len(events)
            np.testing.assert_array_equal(frames[i], ref_count_frames(events, T, spec.sensor_size))
        total_samples += len(samples)
        total_events += int(n_events.sum())
    assert (result.samples, result.events) == (total_samples, total_events)
    assert result.built_samples == total_samples and all(v > 0 for v in result.store_bytes.values())


def test_shd_time_bins_share_one_time_base(tmp_path):
    root = testing.make_shd_root(tmp_path / "shd", n_train=5, n_test=3)
    spec = get_dataset("shd")
    T = 100
    result = build_cache("shd", T=T, split_by="time", root=root, cache=tmp_path / "c", progress=False)
    C, _, P = spec.sensor_size
    for split, url in result.stores.items():
        store = CacheStore.open(url)
        assert store.frame_shape == (T, P, C)
        assert store.meta["params"]["dt_us"] == math.ceil(spec.duration_us / T) == 14_000
        frames, labels, ids, n_events = _read_all(url)
        for i, s in enumerate(store_order(spec.samples(root, split))):
            events = spec.load_events(s)
            np.testing.assert_array_equal(frames[i], ref_audio_time_frames(events, T, spec.duration_us, C, P))
            assert labels[i] == s.label and ids[i] == s.sample_id
        assert verify_store(url, root=root, n_shards=None).ok


def test_shd_channel_pooling_and_count_split(tmp_path):
    root = testing.make_shd_root(tmp_path / "shd", n_train=2, n_test=2)
    spec = get_dataset("shd")
    r = build_cache("shd", T=5, split_by="count", n_channels=140, root=root, cache=tmp_path / "c",
                    splits=["test"], progress=False)
    frames, _, _, n_events = _read_all(r.stores["test"])
    assert frames.shape[1:] == (5, 1, 140)
    # pooling sums 5 adjacent channels: totals per sample are the event counts
    assert frames.reshape(len(frames), -1).sum(axis=1).tolist() == n_events.tolist()
    events = spec.load_events(spec.samples(root, "test")[0])
    ref = ref_count_frames(np.rec.fromarrays([events["t"], events["x"], np.zeros(len(events), np.uint16),
                                              events["p"]], names="t,x,y,p"), 5, (700, 1, 1))
    np.testing.assert_array_equal(frames[0], ref[:, :, 0, :].reshape(5, 1, 140, 5).sum(axis=-1))
    with pytest.raises(ParameterError, match="divide"):
        build_cache("shd", T=5, n_channels=3, root=root, cache=tmp_path / "c", progress=False)


def test_ntidigits18_builds_and_reads_back(tmp_path):
    root = testing.make_ntidigits18_root(tmp_path / "nt")
    spec = get_dataset("ntidigits18")
    r = build_cache("ntidigits18", T=4, root=root, cache=tmp_path / "c", progress=False)
    for split, url in r.stores.items():
        frames, labels, ids, n_events = _read_all(url)
        samples = store_order(spec.samples(root, split))
        assert ids == [s.sample_id for s in samples] and labels.tolist() == [s.label for s in samples]
        C, _, P = spec.sensor_size
        assert frames.shape == (len(samples), 4, P, C)
        assert frames.reshape(len(frames), -1).sum(axis=1).tolist() == n_events.tolist()


# ------------------------------------------------------------------ static datasets (encode)

def test_encode_mnist_every_encoder(tmp_path):
    import torch

    from eventkit.encode import encode, sample_generator

    root = testing.make_mnist_root(tmp_path / "mnist", n_train=12, n_test=5)
    spec = get_dataset("mnist")
    T = 6
    urls = set()
    for encoder in ("rate", "poisson", "direct", "latency"):
        r = encode_cache("mnist", T=T, encoder=encoder, seed=3, root=root, cache=tmp_path / "c", shard_size=4,
                         progress=False)
        assert r.split_by is None and r.representation == encoder
        for split in spec.splits:
            images, labels = spec.load_images(root, split)
            url = r.stores[split]
            urls.add(url)
            assert url == encode_store_url("mnist", split, T=T, encoder=encoder, seed=3, cache=tmp_path / "c")
            frames, got_labels, ids, n_events = _read_all(url)
            assert frames.dtype == np.uint8 and frames.shape == (len(images), T, 1, 28, 28)
            assert got_labels.tolist() == labels.tolist()
            assert ids == [s.sample_id for s in spec.samples(root, split)]
            assert n_events.tolist() == [int(np.count_nonzero(f)) for f in frames]
            params = CacheStore.open(url).meta["params"]
            assert verify_store(url, root=root, all_shards=True).ok
            if encoder == "direct":
                assert params["value_scale"] == pytest.approx(1 / 255)
                np.testing.assert_array_equal(frames, np.repeat(images[:, None], T, axis=1))
            elif encoder == "latency":
                # eq. 11-12: t_i = floor((255 - I) * (T-1) / 255), exactly one spike per pixel
                t_i = ((255 - images.astype(np.int64)) * (T - 1)) // 255
                ref = (np.arange(T)[None, :, None, None, None] == t_i[:, None]).astype(np.uint8)
                np.testing.assert_array_equal(frames, ref)
            else:
                assert set(np.unique(frames)) <= {0, 1}
                for i in (0, len(images) - 1):  # per-sample generator: independent of the shard layout
                    ref = encode(torch.from_numpy(images[i]), T, encoder, dtype=torch.uint8,
                                 generator=sample_generator(3, i, "cpu")).numpy()
                    np.testing.assert_array_equal(frames[i], ref)
    assert len(urls) == 8
    other = encode_cache("mnist", T=T, encoder="rate", seed=4, root=root, cache=tmp_path / "c", splits=["test"],
                         progress=False)
    assert other.stores["test"] not in urls


def test_encode_cifar10_direct(tmp_path):
    root = testing.make_cifar10_root(tmp_path / "cifar10", per_batch=2, n_test=3)
    r = encode_cache("cifar10", T=2, encoder="direct", root=root, cache=tmp_path / "c", progress=False)
    images, _ = get_dataset("cifar10").load_images(root, "test")
    frames, _, _, _ = _read_all(r.stores["test"])
    assert frames.shape == (3, 2, 3, 32, 32)
    np.testing.assert_array_equal(frames[:, 1], images)


# ------------------------------------------------------------------ resume, verify, failures

def test_resume_rewrites_missing_and_half_written_shards(nmnist_fake, tmp_path):
    kw = dict(T=4, root=nmnist_fake, splits=["train"], shard_size=3, progress=False)
    ref = build_cache("nmnist", cache=tmp_path / "a", **kw)
    url = build_cache("nmnist", cache=tmp_path / "b", **kw).stores["train"]
    expected = store_files(ref.stores["train"])
    # simulate a crash: markers 1 and 4 gone, shard 4's data half-written, never marked complete
    for k in (1, 4):
        (Path(url) / "completion" / f"{k}.json").unlink()
    flip_bytes(frames_shard_file(url, 4))
    _unmark(url)
    with pytest.raises(CacheError, match="incomplete"):
        CacheStore.open(url)
    again = build_cache("nmnist", cache=tmp_path / "b", **kw)
    assert again.built_samples == 6  # two shards of 3 recomputed, the rest kept
    got = store_files(url)
    assert got.keys() == expected.keys() and got == expected


def test_verify_store_reports_corruption_and_missing_markers(nmnist_fake, tmp_path):
    r = build_cache("nmnist", T=4, root=nmnist_fake, cache=tmp_path, splits=["train"], shard_size=5, progress=False)
    url = r.stores["train"]
    report = verify_store(url, root=nmnist_fake, all_shards=True)
    assert report.ok and report.checked_shards == [0, 1, 2, 3] and report.n_shards == 4
    sampled = verify_store(url, root=nmnist_fake, n_shards=2, seed=1)
    assert sampled.ok and len(sampled.checked_shards) == 2
    assert sampled.checked_shards == verify_store(url, root=nmnist_fake, n_shards=2, seed=1).checked_shards
    flip_bytes(frames_shard_file(url, 2))
    bad = verify_store(url, root=nmnist_fake, all_shards=True)
    assert not bad.ok
    assert [k for k, _ in bad.corrupt_shards] == [2]
    assert all(k == 2 for k, _, _ in bad.mismatches)
    Path(url, "completion", "0.json").unlink()
    worse = verify_store(url, root=nmnist_fake, n_shards=None)
    assert worse.incomplete_shards == [0] and not worse.ok
    assert 0 not in worse.checked_shards


def test_a_failing_sample_is_named(nmnist_fake, tmp_path):
    root = tmp_path / "raw"
    shutil.copytree(nmnist_fake, root)
    spec = get_dataset("nmnist")
    bad = store_order(spec.samples(root, "test"))[4]  # the 5th sample written: shard 1 of size 3
    bad.path.write_bytes(b"\x01\x02\x03")  # not a multiple of the 5-byte event
    with pytest.raises(BuildError) as info:
        build_cache("nmnist", T=4, root=root, cache=tmp_path / "c", splits=["test"], shard_size=3, progress=False)
    assert bad.sample_id in str(info.value) and str(bad.path) in str(info.value)
    assert info.value.sample_id == bad.sample_id
    # the build stops at the failing shard; shards written before it are kept for the resume
    store = CacheStore.open(frames_store_url("nmnist", "test", T=4, cache=tmp_path / "c"), require_complete=False)
    assert store.is_shard_complete(0) and not store.is_shard_complete(1)
    assert not store.meta["complete"]


def test_failed_tasks_are_retried(nmnist_fake, tmp_path, monkeypatch):
    import eventkit.build as build
    import eventkit.build.tasks as tasks

    calls = {"n": 0}
    real = tasks.compute_frames_shard

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= build.RETRIES:  # fails RETRIES times, then works
            raise OSError("transient network file system error")
        return real(*args, **kwargs)

    monkeypatch.setattr(tasks, "compute_frames_shard", flaky)
    r = build_cache("nmnist", T=4, root=nmnist_fake, cache=tmp_path, splits=["test"], progress=False,
                    task_timeout=None)  # in-process: the patch reaches the task
    assert r.samples == 10 and calls["n"] == build.RETRIES + 1


# ------------------------------------------------------------------ clusters

def test_jobqueue_clusters_render_job_scripts():
    pytest.importorskip("dask_jobqueue")
    from eventkit.cluster import make_cluster

    with make_cluster("slurm", queue="cpu", cores=4, memory="8GB", walltime="00:20:00",
                      job_extra_directives=["--exclusive"]) as cluster:
        script = cluster.job_script()
        assert "#SBATCH -p cpu" in script and "#SBATCH --cpus-per-task=4" in script
        assert "#SBATCH -t 00:20:00" in script and "#SBATCH --exclusive" in script
        assert "export NUMBA_NUM_THREADS=1" in script and "--nthreads 1" in script and "--nworkers 4" in script
        assert cluster.scheduler_address.startswith("tcp://")
        assert len(cluster.workers) == 0  # jobs=0: nothing submitted
    with make_cluster("pbs", queue="workq", cores=2, memory="4GB") as cluster:
        script = cluster.job_script()
        assert "#PBS -q workq" in script and "ncpus=2" in script and "export NUMBA_NUM_THREADS=1" in script
    with make_cluster("slurm", processes=3) as cluster:  # processes alone: as many cores, 1 thread each
        script = cluster.job_script()
        assert "#SBATCH --cpus-per-task=3" in script and "--nworkers 3" in script and "--nthreads 1" in script


@pytest.mark.parametrize("options, message", [
    ({"cores": 0}, "cores must be an integer >= 1, got 0"),
    ({"cores": -2}, "cores must be an integer >= 1, got -2"),
    ({"cores": "four"}, "cores must be an integer >= 1, got 'four'"),
    ({"processes": 0}, "processes must be an integer >= 1, got 0"),
    ({"cores": 2, "processes": 4}, "processes=4 exceeds cores=2"),
])
def test_cluster_cores_and_processes_are_checked(options, message):
    pytest.importorskip("dask_jobqueue")
    from eventkit.cluster import make_cluster

    with pytest.raises(ParameterError, match=re.escape(message)):
        make_cluster("slurm", **options)


def test_cluster_factory_errors(monkeypatch):
    from eventkit.cluster import make_cluster

    with pytest.raises(ParameterError, match="slurm"):
        make_cluster("lsf")
    with pytest.raises(ParameterError, match="no_such_argument"):
        make_cluster("slurm", no_such_argument=1)
    if shutil.which("sbatch") is None:  # no SLURM here: submitting would hang, so it is refused up front
        with pytest.raises(ParameterError, match="sbatch"):
            make_cluster("slurm", jobs=2)
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(ParameterError, match=r"pip install 'eventkit-snn\[hpc\]'"):
        make_cluster("slurm")


def test_scheduler_address_path_and_remote_failures(nmnist_fake, tmp_path):
    """``scheduler=`` submits to a running scheduler (an in-process one here): same bytes as the
    synchronous build; a failing sample comes back as a BuildError naming it."""
    from distributed import LocalCluster

    kw = dict(T=4, splits=["train"], shard_size=4, progress=False)
    sync = build_cache("nmnist", root=nmnist_fake, cache=tmp_path / "sync", **kw)
    root = tmp_path / "raw"
    shutil.copytree(nmnist_fake, root)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        remote = build_cache("nmnist", root=root, cache=tmp_path / "remote", scheduler=cluster.scheduler_address,
                             **kw)
        assert store_files(remote.stores["train"]) == store_files(sync.stores["train"])
        bad = get_dataset("nmnist").samples(root, "train")[9]
        bad.path.write_bytes(b"\x00" * 9)
        with pytest.raises(BuildError, match=bad.sample_id.replace(".", r"\.")):
            build_cache("nmnist", root=root, cache=tmp_path / "remote2", scheduler=cluster.scheduler_address, **kw)


def test_progress_bar_on_stderr(nmnist_fake, tmp_path, capsys):
    build_cache("nmnist", T=3, root=nmnist_fake, cache=tmp_path, splits=["test"], shard_size=5, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "10/10" in captured.err and "events/s" in captured.err and "samples/s" in captured.err


def test_complete_store_of_another_eventkit_version_is_reused(nmnist_fake, tmp_path):
    import json

    r = build_cache("nmnist", T=3, root=nmnist_fake, cache=tmp_path, splits=["test"], shard_size=5, progress=False)
    url = r.stores["test"]
    zjson = Path(url) / "zarr.json"
    doc = json.loads(zjson.read_text())
    doc["attributes"]["eventkit"]["eventkit_version"] = "0.0.1"  # written by an older release
    zjson.write_text(json.dumps(doc))
    before = store_files(url)
    again = build_cache("nmnist", T=3, root=nmnist_fake, cache=tmp_path, splits=["test"], progress=False)
    assert again.stores["test"] == url and again.built_samples == 0 and again.samples == 10
    assert store_files(url) == before
    # a *partial* store of another version is not resumed (its shards might differ)
    Path(url, "completion", "1.json").unlink()
    _unmark(url)
    with pytest.raises(CacheError, match="eventkit_version"):
        build_cache("nmnist", T=3, root=nmnist_fake, cache=tmp_path, splits=["test"], progress=False)


# ------------------------------------------------------------------ review fixes

def test_progress_off_a_terminal_is_plain_lines(nmnist_fake, tmp_path, capsys):
    """stderr that is not a terminal (a log, a pipe) gets newline-terminated lines, never tqdm's
    carriage-return redraws (which printed the bar twice on one line)."""
    kw = dict(T=3, root=nmnist_fake, cache=tmp_path, splits=["test"], shard_size=5, progress=True)
    build_cache("nmnist", **kw)
    err = capsys.readouterr().err
    assert "\r" not in err and err.endswith("\n") and len(err.splitlines()) == 1, repr(err)
    assert err.startswith("nmnist T=3: 10/10 samples,") and "events/s" in err and "samples/s" in err
    build_cache("nmnist", **kw)  # nothing left to build: one line saying so, no rates
    err = capsys.readouterr().err
    assert err.startswith("nmnist T=3: 10/10 samples (10 done before), ") and err.endswith(" s, done\n"), repr(err)
    assert "/s" not in err


def test_progress_on_a_terminal_is_a_tqdm_bar():
    import io

    from eventkit.progress import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    bar = Progress(4, "x", progress=True, unit="samples", stream=stream)
    bar.update(4, events=100)
    bar.close()
    bar.close()  # idempotent
    assert "4/4" in stream.getvalue() and "samples/s" in stream.getvalue()
    quiet = Tty()
    Progress(4, "x", progress=False, stream=quiet).close()
    assert quiet.getvalue() == ""


def test_a_failed_build_prints_no_final_progress_line(nmnist_fake, tmp_path, capsys):
    root = tmp_path / "raw"
    shutil.copytree(nmnist_fake, root)
    get_dataset("nmnist").samples(root, "test")[0].path.write_bytes(b"\x01\x02")
    with pytest.raises(BuildError):
        build_cache("nmnist", T=3, root=root, cache=tmp_path / "c", splits=["test"], progress=True)
    assert capsys.readouterr().err == ""


def test_seed_is_hashed_only_for_stochastic_encoders():
    """latency/direct bytes do not depend on the seed: one store whatever --seed; rate/poisson: one per seed."""
    for encoder in ("latency", "direct"):
        assert (encode_store_url("mnist", "test", T=4, encoder=encoder, seed=0, cache="/c")
                == encode_store_url("mnist", "test", T=4, encoder=encoder, seed=7, cache="/c"))
    for encoder in ("rate", "poisson"):
        assert (encode_store_url("mnist", "test", T=4, encoder=encoder, seed=0, cache="/c")
                != encode_store_url("mnist", "test", T=4, encoder=encoder, seed=7, cache="/c"))


def test_an_unwritable_cache_is_a_cache_error_naming_the_store(nmnist_fake, tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(CacheError, match="cannot create the cache store") as info:
        build_cache("nmnist", T=3, root=nmnist_fake, cache=tmp_path / "afile" / "c", splits=["test"],
                    progress=False)
    assert str(tmp_path / "afile" / "c" / "nmnist" / "test") in str(info.value)


def test_verify_compares_the_frame_dtype(nmnist_fake, tmp_path):
    """A store whose frames are uint8 while its params say uint16 holds other bytes: a mismatch,
    even though every count is equal."""
    import json

    r = build_cache("nmnist", T=3, dtype="uint8", root=nmnist_fake, cache=tmp_path, splits=["test"],
                    progress=False)
    url = r.stores["test"]
    assert verify_store(url, root=nmnist_fake, all_shards=True).ok
    zjson = Path(url) / "zarr.json"
    doc = json.loads(zjson.read_text())
    doc["attributes"]["eventkit"]["params"]["dtype"] = "uint16"
    zjson.write_text(json.dumps(doc))
    report = verify_store(url, root=nmnist_fake, all_shards=True)
    assert not report.ok and len(report.mismatches) == 10


def test_quiet_logs_silences_dask_and_restores_the_levels():
    import logging

    from eventkit.cluster import quiet_logs

    pytest.importorskip("distributed")
    sched, client = logging.getLogger("distributed.scheduler"), logging.getLogger("distributed.client")
    before = (logging.getLogger("distributed").level, client.level)
    with quiet_logs():
        assert not sched.isEnabledFor(logging.ERROR) and not client.isEnabledFor(logging.ERROR)
    assert (logging.getLogger("distributed").level, client.level) == before
    eventkit_logger = logging.getLogger("eventkit")
    old = eventkit_logger.level
    eventkit_logger.setLevel(logging.DEBUG)  # eventkit -vv: the Dask logs are wanted
    try:
        with quiet_logs():
            assert logging.getLogger("distributed").level == before[0]
    finally:
        eventkit_logger.setLevel(old)


def test_verify_refuses_a_negative_draw(nmnist_fake, tmp_path):
    r = build_cache("nmnist", T=3, root=nmnist_fake, cache=tmp_path, splits=["test"], shard_size=5, progress=False)
    with pytest.raises(ParameterError, match="seed"):
        verify_store(r.stores["test"], root=nmnist_fake, n_shards=1, seed=-1)  # numpy's ValueError before
    with pytest.raises(ParameterError, match="n_shards"):
        verify_store(r.stores["test"], root=nmnist_fake, n_shards=-2)


def test_a_foreign_task_failure_is_one_line_naming_the_shard():
    import eventkit.build.runner as build
    from eventkit.build.tasks import ShardTask, StoreRef

    task = ShardTask(StoreRef("/c/s.zarr", {}), 3, 6, 2,
                     "nmnist/test shard 3 (samples 'Test/0/1.bin' .. 'Test/0/2.bin')", None)
    err = build._fail(task, RuntimeError("Attempted to run task on 3 workers,\nbut all those workers died.\n"))
    assert isinstance(err, BuildError) and "\n" not in str(err)
    assert str(err).startswith("nmnist/test shard 3 (samples 'Test/0/1.bin' .. 'Test/0/2.bin') failed after 3")
    assert "workers, but all those workers died." in str(err)


def test_merge_polarity_of_a_single_polarity_sensor_is_not_hashed():
    """SHD/SSC/N-TIDIGITS have P=1: --merge-polarity gives the same bytes, hence the same store."""
    for name in ("shd", "ntidigits18"):
        assert (frames_store_url(name, "test", T=4, merge_polarity=True, cache="/c")
                == frames_store_url(name, "test", T=4, cache="/c"))
    assert (frames_store_url("nmnist", "test", T=4, merge_polarity=True, cache="/c")
            != frames_store_url("nmnist", "test", T=4, cache="/c"))


def test_store_order_mixes_classes_and_keeps_files_together(tmp_path):
    """Stores are written in a fixed shuffled order: class-sorted listings give mixed shards,
    samples of one multi-sample file stay consecutive, a single-file split is permuted."""
    from eventkit.datasets import Sample

    listing = [Sample(f"{c}/{i}.bin", tmp_path / f"{c}/{i}.bin", c) for c in range(10) for i in range(20)]
    order = store_order(listing)
    assert sorted(s.sample_id for s in order) == sorted(s.sample_id for s in listing)  # a permutation
    assert order == store_order(listing)  # deterministic
    first_shard = order[:20]
    assert len({s.label for s in first_shard}) >= 5  # the listing's first 20 are all class 0
    recordings = [Sample(f"r{f}.aedat#{k}", tmp_path / f"r{f}.aedat", k % 11, k) for f in range(6) for k in range(12)]
    order = store_order(recordings)
    for f in range(6):
        pos = [i for i, s in enumerate(order) if s.path.name == f"r{f}.aedat"]
        assert pos == list(range(pos[0], pos[0] + 12))  # one file's samples stay together...
        assert [order[i].index for i in pos] == list(range(12))  # ...in file order
    one_file = [Sample(f"shd_train.h5#{k}", tmp_path / "shd_train.h5", k % 20, k) for k in range(100)]
    order = store_order(one_file)
    assert [s.index for s in order] != list(range(100)) and sorted(s.index for s in order) == list(range(100))


# ------------------------------------------------------------------ staleness by the raw files' identity

def test_a_raw_file_moved_to_another_class_makes_the_store_stale(nmnist_fake, tmp_path):
    """Same number of files, one relabelled: the store is stale (it used to be reused with the old label)."""
    root = tmp_path / "raw"
    shutil.copytree(nmnist_fake, root)
    kw = dict(T=3, root=root, cache=tmp_path / "c", splits=["test"], shard_size=4, progress=False)
    url = build_cache("nmnist", **kw).stores["test"]
    assert build_cache("nmnist", **kw).built_samples == 0 and verify_store(url, root=root, n_shards=0).stale is None
    moved = next((root / "Test" / "3").iterdir())
    (root / "Test" / "5").mkdir(exist_ok=True)
    moved.rename(root / "Test" / "5" / "moved.bin")
    with pytest.raises(CacheError, match=r"is stale: the raw files of nmnist/test changed since it was built.*"
                                         r"eventkit cache rm"):
        build_cache("nmnist", **kw)
    report = verify_store(url, root=root, n_shards=0)
    assert not report.ok and "changed since the store was built" in report.stale


def test_an_edited_raw_file_makes_the_store_stale(nmnist_fake, tmp_path):
    import os

    root = tmp_path / "raw"
    shutil.copytree(nmnist_fake, root)
    kw = dict(T=3, root=root, cache=tmp_path / "c", splits=["test"], progress=False)
    build_cache("nmnist", **kw)
    victim = next((root / "Test" / "1").iterdir())
    st = victim.stat()
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same size, rewritten a second later
    with pytest.raises(CacheError, match="is stale"):
        build_cache("nmnist", **kw)
