"""``eventkit cache ls`` / ``rm`` / ``gc`` (and their ``--json``) over a cache root holding every kind of store."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import zarr
from click.testing import CliRunner

from eventkit import testing
from eventkit.build import build_cache
from eventkit.cli.main import cli


def run(*args) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def cache(tmp_path):
    """A cache root with two complete stores, an incomplete one, and two orphaned folders."""
    root = testing.make_nmnist_root(tmp_path / "raw", per_class_train=1, per_class_test=1)
    cache = tmp_path / "cache"
    kw = dict(root=root, cache=cache, splits=["test"], shard_size=4, progress=False)
    stores = {T: build_cache("nmnist", T=T, **kw).stores["test"] for T in (3, 4, 5)}
    group = zarr.open_group(stores[5], mode="r+")  # T=5: a build that stopped before its end
    group.attrs.put({"eventkit": {**group.attrs["eventkit"], "complete": False}})
    Path(stores[5], "completion", "1.json").unlink()
    half = cache / "nmnist" / "test" / "frames-000000000000.zarr"  # a creation that never finished
    (half / "frames").mkdir(parents=True)
    (half / "frames" / "zarr.json").write_text("{}")
    old = cache / "shd" / "test" / "frames-111111111111.zarr"  # a store of the previous format
    zarr.open_group(str(old), mode="w", attributes={"eventkit": {"format_version": 1, "dataset": "shd"}})
    return cache, stores, half, old


def _states(cache) -> dict[str, str]:
    res = run("cache", "ls", "--cache", cache, "--json")
    assert res.exit_code == 0, res.output
    return {e["url"]: e["state"] for e in json.loads(res.stdout)["stores"]}


def test_ls_lists_every_store_with_its_state(cache):
    root, stores, half, old = cache
    res = run("cache", "ls", "--cache", root, "--json")
    data = json.loads(res.stdout)
    by_url = {e["url"]: e for e in data["stores"]}
    assert data["root"] == str(root) and set(by_url) == {*stores.values(), str(half), str(old)}
    assert by_url[stores[3]]["state"] == "complete" and by_url[stores[3]]["params"]["T"] == 3
    assert by_url[stores[3]]["dataset"] == "nmnist" and by_url[stores[3]]["n_samples"] == 10
    assert by_url[stores[5]]["state"] == "incomplete" and by_url[stores[5]]["markers"] == 2
    assert by_url[str(half)]["state"] == "orphaned" and "no store metadata" in by_url[str(half)]["reason"]
    assert by_url[str(old)]["state"] == "orphaned" and "format version 1" in by_url[str(old)]["reason"]
    assert all(e["bytes"] > 0 for e in data["stores"])
    text = run("cache", "ls", "--cache", root).output
    assert "incomplete (2/3 shards)" in text and "nmnist/test frames T=3" in text and "5 stores" in text


def test_rm_by_path_and_by_parameters(cache):
    root, stores, half, old = cache
    res = run("cache", "rm", stores[3], "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [r["url"] for r in out["removed"]] == [stores[3]] and out["bytes"] > 0 and not Path(stores[3]).exists()
    dry = run("cache", "rm", "--cache", root, "--dataset", "nmnist", "--param", "T=4", "--dry-run", "--json")
    assert [r["url"] for r in json.loads(dry.stdout)["removed"]] == [stores[4]] and Path(stores[4]).exists()
    gone = run("cache", "rm", "--cache", root, "--dataset", "nmnist", "--param", "T=4")
    assert gone.exit_code == 0 and "removed 1 stores" in gone.output and not Path(stores[4]).exists()
    assert set(_states(root)) == {stores[5], str(half), str(old)}


def test_rm_refuses_what_is_not_a_store(cache, tmp_path):
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "thesis.tex").write_text("...")
    res = run("cache", "rm", folder)
    assert res.exit_code == 2 and "not an eventkit cache store" in res.output and (folder / "thesis.tex").exists()
    assert run("cache", "rm").exit_code == 2  # neither paths nor --dataset


def test_gc_removes_incomplete_and_orphaned_stores_only(cache):
    from eventkit.cache.objects import _HOST

    root, stores, half, old = cache
    dead_tmp = Path(stores[3], "label", "c", "0." + _HOST + "-999999999.tmp")  # a writer long gone
    dead_tmp.write_bytes(b"x")
    recent = json.loads(run("cache", "gc", "--cache", root, "--json").stdout)  # default --min-age 3600
    assert recent["removed"] == []  # a build may be running
    assert recent["temp_files_removed"] == [f"{stores[3]}/label/c/0.{_HOST}-999999999.tmp"] and not dead_tmp.exists()
    dry = json.loads(run("cache", "gc", "--cache", root, "--min-age", "0", "--dry-run", "--json").stdout)
    assert sorted(r["url"] for r in dry["removed"]) == sorted([stores[5], str(half), str(old)])
    assert Path(stores[5]).exists()
    res = run("cache", "gc", "--cache", root, "--min-age", "0", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert {r["state"] for r in out["removed"]} == {"incomplete", "orphaned"}
    assert _states(root) == {stores[3]: "complete", stores[4]: "complete"}
