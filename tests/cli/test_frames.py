"""``eventkit frames`` / ``eventkit encode`` end to end, on the 1000 real N-MNIST recordings.

The real samples come from ``../shared/data/nmnist/NMNISTsmall`` laid out in the N-MNIST
release layout by ``eventkit.testing.arrange_nmnist_small`` (900 train / 100 test).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from eventkit import testing
from eventkit.cache import CacheStore
from eventkit.cli.main import cli
from eventkit.cli.options import parse_cluster_options, parse_key_value
from eventkit.io import read_events
from tests.build.helpers import flip_bytes, frames_shard_file, ref_count_frames, store_files
from tests.conftest import shared_file

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def nmnist_small(tmp_path_factory) -> Path:
    src = shared_file("nmnist/NMNISTsmall/train1K.txt").parent
    return testing.arrange_nmnist_small(src, src / "train1K.txt", tmp_path_factory.mktemp("raw") / "nmnist")


@pytest.fixture(scope="module")
def train1k_labels() -> dict[int, int]:
    return dict(testing.read_nmnist_small_labels(shared_file("nmnist/NMNISTsmall/train1K.txt")))


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


# ------------------------------------------------------------------ the real N-MNIST subset

def test_frames_builds_nmnist_small_exactly(nmnist_small, train1k_labels, tmp_path):
    result = run("frames", "--T", "10", "nmnist", "--root", nmnist_small, "--cache", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert set(payload) == {"dataset", "T", "split_by", "stores", "samples", "events", "seconds"}
    assert (payload["dataset"], payload["T"], payload["split_by"]) == ("nmnist", 10, "count")
    assert set(payload["stores"]) == {"train", "test"} and payload["samples"] == 1000
    total_events = 0
    for split, n_expected in (("train", 900), ("test", 100)):
        store = CacheStore.open(payload["stores"][split])
        assert store.n_samples == n_expected and store.frame_shape == (10, 2, 34, 34)
        frames, labels = store.read_range(0, store.n_samples)
        ids, n_events = store.sample_ids(), store.n_events()
        for i, sample_id in enumerate(ids):
            folder, digit, name = sample_id.split("/")  # relative path in the release layout
            assert folder == ("Train" if split == "train" else "Test") and name.endswith(".bin")
            source_id = int(Path(name).stem)
            assert labels[i] == int(digit) == train1k_labels[source_id]
            events = read_events(nmnist_small / sample_id)
            assert n_events[i] == len(events)
            np.testing.assert_array_equal(frames[i], ref_count_frames(events, 10, (34, 34, 2)))
        assert sorted(int(Path(s).stem) for s in ids) == (list(range(1, 901)) if split == "train"
                                                          else list(range(901, 1001)))
        total_events += int(n_events.sum())
    assert payload["events"] == total_events


def test_frames_text_output_and_rerun_is_a_no_op(nmnist_small, tmp_path):
    args = ("frames", "--T", "3", "nmnist", "--root", nmnist_small, "--cache", tmp_path, "--split", "test")
    first = run(*args)
    assert first.exit_code == 0, first.output
    url = next((tmp_path / "nmnist" / "test").glob("frames-*.zarr"))
    assert f"test: {url}" in first.stdout and "100 samples" in first.stdout
    before = store_files(url)
    second = run(*args)
    assert second.exit_code == 0 and "nothing to build" in second.stdout
    assert store_files(url) == before


def _build_args(root: Path, cache: Path) -> list[str]:
    return ["frames", "--T", "10", "nmnist", "--root", str(root), "--cache", str(cache), "--split", "test",
            "--shard-size", "2", "--workers", "1", "--json"]


def _build_cmd(root: Path, cache: Path) -> list[str]:
    return [sys.executable, "-c", "from eventkit.cli.main import cli; cli()", *_build_args(root, cache)]


def test_sigkill_then_resume_is_byte_identical(nmnist_small, tmp_path):
    reference = run(*_build_args(nmnist_small, tmp_path / "ref"))  # uninterrupted, in-process
    assert reference.exit_code == 0, reference.output
    ref_url = json.loads(reference.stdout)["stores"]["test"]
    n_shards = CacheStore.open(ref_url).n_shards  # 50 shards of 2 samples

    cache = tmp_path / "killed"
    url = Path(ref_url.replace(str(tmp_path / "ref"), str(cache)))
    proc = subprocess.Popen(_build_cmd(nmnist_small, cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        markers = url / "completion"
        done = len(list(markers.glob("*.json"))) if markers.is_dir() else 0
        if done >= 3:
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    out, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"not killed mid-way (rc={proc.returncode}, {done} markers): {err!r}"
    left = len(list((url / "completion").glob("*.json")))
    assert 0 < left < n_shards, f"{left} of {n_shards} markers after the kill"
    with pytest.raises(Exception, match="incomplete"):
        CacheStore.open(str(url))

    resumed = subprocess.run(_build_cmd(nmnist_small, cache), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["stores"]["test"] == str(url)
    got, expected = store_files(url), store_files(ref_url)
    assert sorted(set(got) ^ set(expected)) == []  # no stray temporary or partial files
    assert [k for k in expected if got[k] != expected[k]] == []


def test_workers_2_is_byte_identical_to_workers_1(nmnist_small, tmp_path):
    outs = {}
    for workers in ("1", "2"):
        r = run("frames", "--T", "5", "nmnist", "--root", nmnist_small, "--cache", tmp_path / workers,
                "--split", "test", "--shard-size", "10", "--workers", workers, "--json")
        assert r.exit_code == 0, r.output
        outs[workers] = store_files(json.loads(r.stdout)["stores"]["test"])
    assert len(outs["1"]) > 10 and outs["1"] == outs["2"]


def test_cache_verify_catches_a_corrupted_shard(nmnist_small, tmp_path):
    r = run("frames", "--T", "4", "nmnist", "--root", nmnist_small, "--cache", tmp_path, "--split", "test",
            "--shard-size", "10", "--json")
    url = json.loads(r.stdout)["stores"]["test"]
    ok = run("cache", "verify", "--all", "--root", nmnist_small, url)
    assert ok.exit_code == 0, ok.output
    flip_bytes(frames_shard_file(url, 6))
    bad = run("cache", "verify", "--all", "--root", nmnist_small, "--json", url)
    assert bad.exit_code == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False and [c[0] for c in report["corrupt_shards"]] == [6]


# ------------------------------------------------------------------ errors and options

def test_static_and_event_datasets_point_to_the_right_command(tmp_path):
    r = CliRunner().invoke(cli, ["frames", "--T", "4", "mnist", "--root", str(tmp_path)])
    assert r.exit_code == 2 and "eventkit encode" in r.stderr and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["encode", "--T", "4", "--encoder", "rate", "nmnist", "--root", str(tmp_path)])
    assert r.exit_code == 2 and "eventkit frames" in r.stderr


def test_a_corrupt_raw_file_is_one_line_naming_the_sample(tmp_path):
    root = testing.make_nmnist_root(tmp_path / "nmnist", per_class_train=1, per_class_test=1)
    bad = root / "Test" / "3" / "00004.bin"
    bad.write_bytes(b"\x00" * 7)
    r = CliRunner().invoke(cli, ["frames", "--T", "4", "nmnist", "--root", str(root), "--cache",
                                 str(tmp_path / "c"), "--json"])
    assert r.exit_code == 2
    assert r.stdout == "" and "Traceback" not in r.output
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Test/3/00004.bin" in lines[0] and str(bad) in lines[0]


def test_missing_raw_data_says_what_to_download(tmp_path):
    r = CliRunner().invoke(cli, ["frames", "--T", "4", "nmnist", "--root", str(tmp_path / "none")])
    assert r.exit_code == 2 and "download" in r.stderr.lower() and "Traceback" not in r.output


@pytest.mark.parametrize("args,message", [
    (["--T", "0", "nmnist"], "must be an integer >= 1"),
    (["--T", "4", "--workers", "0", "nmnist"], "must be an integer >= 1"),
    (["--T", "4", "nmnist", "--scheduler", "localhost:8786"], "tcp://"),
    (["--T", "4", "nmnist", "--cluster-option", "queue=cpu"], "needs --cluster"),
    (["--T", "4", "nmnist", "--cluster", "slurm", "--cluster-option", "nonsense"], "KEY=VALUE"),
    (["--T", "4", "imagenet"], "unknown dataset"),
    (["--T", "4", "--channels", "3", "shd"], "divide"),
])
def test_bad_options_exit_2(args, message, tmp_path):
    r = CliRunner().invoke(cli, ["frames", *args, "--root", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_cluster_option_parsing():
    assert parse_key_value("cores=8") == ("cores", 8)
    assert parse_key_value("memory=16GB") == ("memory", "16GB")
    assert parse_key_value('job_extra_directives=["--gres=gpu:1"]') == ("job_extra_directives", ["--gres=gpu:1"])
    assert parse_key_value("walltime=02:00:00") == ("walltime", "02:00:00")
    assert parse_cluster_options(None, None, ("queue=cpu", "cores=2")) == {"queue": "cpu", "cores": 2}
    for bad in ("=3", "cores", "bad key=1"):
        with pytest.raises(click.BadParameter):
            parse_key_value(bad)
    with pytest.raises(click.BadParameter, match="twice"):
        parse_cluster_options(None, None, ("cores=1", "cores=2"))


def test_encode_json(tmp_path):
    root = testing.make_mnist_root(tmp_path / "mnist", n_train=6, n_test=4)
    r = run("encode", "--T", "3", "--encoder", "latency", "mnist", "--root", root, "--cache", tmp_path / "c", "--json")
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert payload["dataset"] == "mnist" and payload["encoder"] == "latency" and payload["split_by"] is None
    assert payload["samples"] == 10 and set(payload["stores"]) == {"train", "test"}
    assert CacheStore.open(payload["stores"]["test"]).frame_shape == (3, 1, 28, 28)


def test_cluster_options_reach_the_factory_and_the_build_runs_on_it(tmp_path, monkeypatch):
    """--cluster/--jobs/--cluster-option: the factory gets the parsed options, the build runs on the
    cluster's scheduler (an in-process LocalCluster stands in for SLURM here) and it is closed after."""
    from distributed import LocalCluster

    import eventkit.cluster

    seen = {}

    def fake_make_cluster(kind, *, jobs=0, cache=None, **kwargs):
        seen.update(kind=kind, jobs=jobs, cache=cache, kwargs=kwargs)
        seen["cluster"] = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
        return seen["cluster"]

    monkeypatch.setattr(eventkit.cluster, "make_cluster", fake_make_cluster)
    root = testing.make_nmnist_root(tmp_path / "nmnist", per_class_train=1, per_class_test=1)
    r = run("frames", "--T", "3", "nmnist", "--root", root, "--cache", tmp_path / "c", "--json", "--cluster", "slurm",
            "--jobs", "3", "--cluster-option", "queue=cpu", "--cluster-option", "cores=4",
            "--cluster-option", "memory=8GB")
    assert r.exit_code == 0, r.output
    assert seen["kind"] == "slurm" and seen["jobs"] == 3
    assert seen["kwargs"] == {"queue": "cpu", "cores": 4, "memory": "8GB"}
    assert seen["cache"] == str(tmp_path / "c")  # the job logs go under the build's cache
    assert json.loads(r.stdout)["samples"] == 20
    assert seen["cluster"].status.name == "closed"


def test_workers_2_output_is_clean_off_a_terminal(tmp_path):
    """A real `eventkit frames --workers 2` with stderr to a file (a batch job's log): stdout is the
    text summary, stderr exactly one progress line — no scheduler/nanny INFO lines from the local
    cluster's start and stop (the CLI's logging.basicConfig used to let them through), no tqdm redraws."""
    root = testing.make_nmnist_root(tmp_path / "nmnist", per_class_train=1, per_class_test=1)
    cmd = [sys.executable, "-c", "from eventkit.cli.main import cli; cli()", "frames", "--T", "3", "nmnist",
           "--root", str(root), "--cache", str(tmp_path / "c"), "--split", "test", "--shard-size", "4",
           "--workers", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and r.stderr.startswith("nmnist T=3: 10/10 samples,"), r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stdout.splitlines()[0].startswith("test: ") and "built 10 samples" in r.stdout


def test_bad_cache_url_is_one_line_exit_2_and_jobs_needs_cluster(tmp_path):
    """An fsspec URL nothing can open: one error line, exit 2; --jobs without --cluster: a usage error."""
    root = testing.make_nmnist_root(tmp_path / "nmnist", per_class_train=1, per_class_test=1)
    base = ["frames", "--T", "3", "nmnist", "--root", str(root), "--json"]
    r = CliRunner().invoke(cli, [*base, "--cache", "foo://bar"])
    assert r.exit_code == 2 and r.stdout == "" and "Traceback" not in r.output, r.output
    assert "foo://bar" in r.stderr and "Protocol not known" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = CliRunner().invoke(cli, [*base, "--cache", str(tmp_path / "c"), "--jobs", "3"])
    assert r.exit_code == 2 and "Invalid value for --jobs: --jobs needs --cluster slurm|pbs" in r.stderr
    assert not (tmp_path / "c").exists()  # nothing built


def test_an_unwritable_cache_is_one_line_exit_2(tmp_path):
    root = testing.make_nmnist_root(tmp_path / "nmnist", per_class_train=1, per_class_test=1)
    (tmp_path / "afile").write_text("")
    r = CliRunner().invoke(cli, ["frames", "--T", "3", "nmnist", "--root", str(root), "--cache",
                                 str(tmp_path / "afile"), "--json"])
    assert r.exit_code == 2 and r.stdout == "" and "Traceback" not in r.output
    assert r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 1 and "afile" in r.stderr


def test_docs_cli_help_texts_are_the_real_ones():
    """docs/cli.md reproduces every command's `--help` verbatim (as an 80-column terminal shows it)."""
    import re

    from scripts.update_cli_docs import all_commands

    doc = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    sections = re.findall(r"### `eventkit ((?:[a-z-]+ )*)--help`\n\n```text\n(.*?)```", doc, flags=re.S)
    documented = [s[0] for s in sections]
    assert sorted(documented) == sorted(["", *all_commands()]), "run: python scripts/update_cli_docs.py"
    for words, text in sections:
        r = CliRunner().invoke(cli, [*words.split(), "--help"], prog_name="eventkit", terminal_width=78)
        assert r.exit_code == 0, r.output
        assert r.output == text, (f"docs/cli.md: `eventkit {words}--help` differs from the command's; "
                                  "run: python scripts/update_cli_docs.py")


def test_quiet_flag_hides_progress(tmp_path):
    """`eventkit -q frames ...` prints the summary but no progress line on stderr."""
    from click.testing import CliRunner

    from eventkit.cli.main import cli
    from eventkit.testing import make_nmnist_root

    root = make_nmnist_root(tmp_path / "raw", per_class_train=1, per_class_test=1, seed=0)
    runner = CliRunner()
    loud = runner.invoke(cli, ["frames", "--T", "3", "--root", str(root), "--cache", str(tmp_path / "a"), "nmnist"])
    quiet = runner.invoke(cli, ["-q", "frames", "--T", "3", "--root", str(root), "--cache", str(tmp_path / "b"),
                                "nmnist"])
    assert loud.exit_code == 0 and quiet.exit_code == 0, (loud.output, quiet.output)
    assert "samples/s" in loud.stderr
    assert "samples/s" not in quiet.stderr and "nmnist: " in quiet.stdout


def test_task_timeout_default_is_the_builders():
    from eventkit.build import DEFAULT_TASK_TIMEOUT
    from eventkit.cli.options import TASK_TIMEOUT_S

    assert TASK_TIMEOUT_S == DEFAULT_TASK_TIMEOUT


def test_storage_option_parsing():
    from eventkit.cli.options import parse_storage_options

    got = parse_storage_options(None, None, ("endpoint_url=http://127.0.0.1:9000", "anon=false",
                                             'client_kwargs={"region_name": "eu-west-1"}'))
    assert got == {"endpoint_url": "http://127.0.0.1:9000", "anon": False,
                   "client_kwargs": {"region_name": "eu-west-1"}}
    with pytest.raises(click.BadParameter, match="twice"):
        parse_storage_options(None, None, ("key=a", "key=b"))
    r = CliRunner().invoke(cli, ["frames", "--T", "3", "nmnist", "--storage-option", "nonsense"])
    assert r.exit_code == 2 and "KEY=VALUE" in r.output
    r = CliRunner().invoke(cli, ["frames", "--T", "3", "nmnist", "--root", "/nowhere", "--task-timeout", "-1"])
    assert r.exit_code == 2 and "--task-timeout" in r.output
