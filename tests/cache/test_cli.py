"""``eventkit cache info`` / ``eventkit cache verify`` through the root command group."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventkit.cli.main import cli
from tests.cache.helpers import META, toy_data, write_store


@pytest.fixture
def runner():
    return CliRunner()


def test_info_json_complete(tmp_path, runner):
    url = str(tmp_path / "toy.zarr")
    write_store(url, 20, 3)
    res = runner.invoke(cli, ["cache", "info", url, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["dataset"] == "toy" and data["split"] == "train" and data["params"] == META["params"]
    assert data["n_samples"] == 20 and data["n_shards"] == 7 and data["shard_size"] == 3
    assert data["complete"] is True and data["missing_shards"] == [] and data["dtype"] == "uint16"
    assert data["disk_bytes"] > 0 and data["format_version"] == 2 and data["stray_files"] == []
    n_events = toy_data(20)[2]
    assert [s["n_events"] for s in data["shards"]] == [int(n_events[a:a + 3].sum()) for a in range(0, 20, 3)]
    assert data["shards"][6] == {"shard": 6, "start": 18, "stop": 20, "status": "complete", "complete": True,
                                 "n_events": int(n_events[18:].sum()), "absent_files": []}


def test_info_text_incomplete(tmp_path, runner):
    url = str(tmp_path / "toy.zarr")
    write_store(url, 20, 3, order=[0, 3], complete=False)
    res = runner.invoke(cli, ["cache", "info", url])
    assert res.exit_code == 0, res.output
    assert "INCOMPLETE (5 shards missing)" in res.output and "missing:    1, 2, 4, 5, 6" in res.output
    assert "toy / train" in res.output and '"T": 3' in res.output


def test_info_not_a_store_exits_2(tmp_path, runner):
    res = runner.invoke(cli, ["cache", "info", str(tmp_path / "nothing.zarr")])
    assert res.exit_code == 2 and "no eventkit cache store" in res.output


def _fake_report(url, *, mismatches=(), corrupt=(), incomplete=()):
    from eventkit.build import VerifyReport

    return VerifyReport(url=url, n_shards=7, checked_shards=[1, 4], mismatches=list(mismatches),
                        corrupt_shards=list(corrupt), incomplete_shards=list(incomplete))


def test_verify_exit_codes(tmp_path, runner, monkeypatch):
    build = pytest.importorskip("eventkit.build", reason="eventkit.build (verify_store) not available")
    calls = []

    def fake(url, *, root=None, n_shards=3, seed=0, all_shards=False, **_):
        calls.append((url, root, n_shards, seed, all_shards))
        return reports.pop(0)

    monkeypatch.setattr(build, "verify_store", fake)
    reports = [_fake_report("s.zarr"), _fake_report("s.zarr", mismatches=[(4, 13, "Train/3/00013.bin")]),
               _fake_report("s.zarr", corrupt=[(2, "sha256 mismatch")])]
    ok = runner.invoke(cli, ["cache", "verify", "s.zarr", "--json", "--shards", "2", "--seed", "5"])
    assert ok.exit_code == 0 and json.loads(ok.output)["ok"] is True
    bad = runner.invoke(cli, ["cache", "verify", "s.zarr", "--root", str(tmp_path), "--all"])
    assert bad.exit_code == 1 and "MISMATCH   shard 4 sample 13 (Train/3/00013.bin)" in bad.output
    corrupt = runner.invoke(cli, ["cache", "verify", "s.zarr", "--json"])
    assert corrupt.exit_code == 1 and json.loads(corrupt.output)["corrupt_shards"] == [[2, "sha256 mismatch"]]
    assert calls[0] == ("s.zarr", None, 2, 5, False) and calls[1][2:] == (3, 0, True)
    assert runner.invoke(cli, ["cache", "verify", "s.zarr", "--shards", "0"]).exit_code == 2


def test_verify_not_a_store_exits_2(tmp_path, runner):
    pytest.importorskip("eventkit.build", reason="eventkit.build (verify_store) not available")
    res = runner.invoke(cli, ["cache", "verify", str(tmp_path / "nothing.zarr")])
    assert res.exit_code == 2 and "no eventkit cache store" in res.output


def test_verify_end_to_end_on_real_nmnist_samples(tmp_path, runner):
    """Build a 12-sample N-MNIST cache from real recordings, verify it, corrupt a shard."""
    import shutil

    from tests.conftest import shared_file

    src = shared_file("nmnist/NMNISTsmall/train1K.txt").parent
    build = pytest.importorskip("eventkit.build", reason="eventkit.build not available")
    labels = dict(line.split() for line in src.joinpath("train1K.txt").read_text().splitlines()[1:] if line.strip())
    for i in range(1, 13):
        folder = tmp_path / "raw" / "Train" / labels[str(i)]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / f"{i}.bs2", folder / f"{i:05d}.bin")  # same 40-bit layout as the release's .bin
    result = build.build_cache("nmnist", T=4, root=tmp_path / "raw", cache=str(tmp_path / "cache"), workers=1,
                               splits=["train"], shard_size=4, progress=False)
    url = result.stores["train"]
    info = json.loads(runner.invoke(cli, ["cache", "info", url, "--json"]).output)
    assert info["n_samples"] == 12 and info["n_shards"] == 3 and info["complete"] is True
    ok = runner.invoke(cli, ["cache", "verify", url, "--root", str(tmp_path / "raw"), "--all", "--json"])
    assert ok.exit_code == 0, ok.output
    chunks = Path(url) / "frames" / "c"
    (chunks / "1" / "0" / "0" / "0" / "0").write_bytes((chunks / "0" / "0" / "0" / "0" / "0").read_bytes())
    bad = runner.invoke(cli, ["cache", "verify", url, "--root", str(tmp_path / "raw"), "--all"])
    assert bad.exit_code == 1 and "MISMATCH   shard 1 sample 4 (Train/" in bad.output
    # every shard written but the store never marked complete (a build killed at the very end)
    import zarr

    from eventkit.cache import ATTRS_KEY

    url = build.build_cache("nmnist", T=4, root=tmp_path / "raw", cache=str(tmp_path / "cache2"), workers=1,
                            splits=["train"], shard_size=4, progress=False).stores["train"]
    assert runner.invoke(cli, ["cache", "verify", url, "--root", str(tmp_path / "raw"), "--all"]).exit_code == 0
    group = zarr.open_group(url, mode="r+")
    group.attrs.put({ATTRS_KEY: {**group.attrs[ATTRS_KEY], "complete": False}})
    unmarked = runner.invoke(cli, ["cache", "verify", url, "--root", str(tmp_path / "raw"), "--all"])
    assert unmarked.exit_code == 1 and "never marked complete" in unmarked.output
    data = json.loads(runner.invoke(cli, ["cache", "verify", url, "--root", str(tmp_path / "raw"), "--json"]).output)
    assert data["marked_complete"] is False and data["ok"] is False and not data["incomplete_shards"]


def test_info_reads_each_written_marker_once(tmp_path, runner, monkeypatch):
    from eventkit.cache.objects import StoreIO

    url = str(tmp_path / "toy.zarr")
    write_store(url, 20, 3, order=[0, 2, 6], complete=False)
    reads = []
    original = StoreIO.get_many
    monkeypatch.setattr(StoreIO, "get_many", lambda self, keys: reads.extend(keys) or original(self, keys))
    res = runner.invoke(cli, ["cache", "info", url, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [s["complete"] for s in data["shards"]] == [k in (0, 2, 6) for k in range(7)]
    assert data["shards"][1]["n_events"] is None and data["shards"][2]["n_events"] == int(toy_data(20)[2][6:9].sum())
    markers = sorted(k for k in reads if k.startswith("completion/") and k[11:-5].isdigit())
    assert markers == [f"completion/{k}.json" for k in (0, 2, 6)]


def test_info_tells_missing_from_lost_and_lists_stray_files(tmp_path, runner):
    """A shard without marker is "missing"; a marked shard whose data file is gone is "lost" (never "complete")."""
    url = tmp_path / "toy.zarr"
    write_store(str(url), 20, 3, order=[0, 1, 2, 3, 4, 5], complete=False)
    (url / "frames" / "c" / "2" / "0" / "0" / "0" / "0").unlink()  # a lost shard file
    (url / "label" / "c" / "4").unlink()
    (url / "frames" / "c" / "1" / "0" / "0" / "0" / "0.host-1.tmp").write_bytes(b"x")  # left by a killed writer
    data = json.loads(runner.invoke(cli, ["cache", "info", str(url), "--json"]).output)
    status = [s["status"] for s in data["shards"]]
    assert status == ["complete", "complete", "lost", "complete", "lost", "complete", "missing"]
    assert data["missing_shards"] == [6] and data["lost_shards"] == [2, 4] and data["complete"] is False
    assert data["shards"][4]["absent_files"] == ["label/c/4"]
    assert data["stray_files"] == ["frames/c/1/0/0/0/0.host-1.tmp"]
    text = runner.invoke(cli, ["cache", "info", str(url)]).output
    assert "INCOMPLETE (1 shards missing, 2 shards lost)" in text and "missing:    6" in text
    assert "lost:       2, 4" in text and "  shard     2  [6, 9)  lost (absent: frames/c/2/0/0/0/0)" in text
    assert "stray file: frames/c/1/0/0/0/0.host-1.tmp" in text
    assert " ok" not in text
