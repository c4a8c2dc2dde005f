"""`eventkit data list|info|verify|unpack` through click's CliRunner, and verify_dataset / checksums."""
from __future__ import annotations

import hashlib
import json
import zipfile

import pytest
from click.testing import CliRunner

from eventkit.cli.main import cli
from eventkit.datasets import get_dataset, verify_dataset
from eventkit.datasets.checksums import file_digest, verify_file
from eventkit.errors import DatasetNotFound
from eventkit.testing import make_mnist_root, make_nmnist_root, make_shd_root


@pytest.fixture
def runner():
    return CliRunner()


def test_file_digest_known_values(tmp_path):
    p = tmp_path / "abc"
    p.write_bytes(b"abc")
    assert file_digest(p, "md5") == "900150983cd24fb0d6963f7d28e17f72"
    assert file_digest(p, "sha256") == hashlib.sha256(b"abc").hexdigest()
    assert verify_file(p, "900150983CD24FB0D6963F7D28E17F72 ", "md5") == "900150983cd24fb0d6963f7d28e17f72"
    with pytest.raises(DatasetNotFound, match="expected md5 0+, got 900150983cd24fb0d6963f7d28e17f72"):
        verify_file(p, "0" * 32, "md5")


def test_verify_partial_root(tmp_path):
    root = make_nmnist_root(tmp_path / "nmnist", per_class_train=2, per_class_test=1)
    r = verify_dataset("nmnist", root)
    assert r.status == "partial"
    assert r.splits["train"]["found"] == 20 and r.splits["train"]["expected"] == 60000
    assert r.splits["test"]["per_class"]["3"] == 1
    assert any("20 of 60000" in w for w in r.warnings)
    assert [a["status"] for a in r.archives] == ["absent", "absent"]


def test_verify_checksum_mismatch_names_file(tmp_path):
    root = make_nmnist_root(tmp_path / "nmnist", per_class_train=1, per_class_test=1)
    bogus = root / "Train.zip"
    bogus.write_bytes(b"not the archive")
    actual = hashlib.md5(b"not the archive").hexdigest()
    with pytest.raises(DatasetNotFound) as e:
        verify_dataset("nmnist", root)
    msg = str(e.value)
    assert str(bogus) in msg and "20959b8e626244a1b502305a9e6e2031" in msg and actual in msg
    assert verify_dataset("nmnist", root, checksums=False).archives[0]["status"] == "skipped"


def test_verify_empty_root_is_an_error(tmp_path):
    (tmp_path / "shd").mkdir()
    with pytest.raises(DatasetNotFound, match="(?s)no sample of any split.*shd_train.h5.zip"):
        verify_dataset("shd", tmp_path / "shd")


def test_cli_list_and_info(runner):
    res = runner.invoke(cli, ["data", "list"])
    assert res.exit_code == 0 and "nmnist" in res.output and "ntidigits18" in res.output
    names = [d["name"] for d in json.loads(runner.invoke(cli, ["data", "list", "--json"]).stdout)["datasets"]]
    assert names == sorted(names) and "cifar10dvs" in names
    res = runner.invoke(cli, ["data", "info", "dvsgesture"])
    assert res.exit_code == 0
    for text in ("DvsGesture.tar.gz", "8a5c71fb11e24e5ca5b11866ca6c00a1", "trials_to_train.txt", "train 1176"):
        assert text in res.output
    d = json.loads(runner.invoke(cli, ["data", "info", "shd", "--json"]).stdout)
    assert d["duration_us"] == 1_400_000 and d["counts"] == {"train": 8156, "test": 2264}
    assert d["archives"][0]["checksum"] == "f3252aeb598ac776c1b526422d90eecb"
    assert d["manifest_sha256"] == get_dataset("shd").manifest_sha256


def test_cli_unknown_dataset(runner):
    res = runner.invoke(cli, ["data", "info", "nmist"])
    assert res.exit_code == 2 and "unknown dataset" in res.output


def test_cli_verify_partial_exit0(runner, tmp_path):
    root = make_shd_root(tmp_path / "shd", n_train=3, n_test=2)
    res = runner.invoke(cli, ["data", "verify", "shd", "--root", str(root)])
    assert res.exit_code == 0, res.output
    assert "train: 3 / 8156 samples (partial)" in res.stdout
    assert "warning: shd train: 3 of 8156" in res.stderr
    res = runner.invoke(cli, ["data", "verify", "shd", "--root", str(root), "--json"])
    assert res.exit_code == 0
    d = json.loads(res.stdout)
    assert d["status"] == "partial" and d["splits"]["test"]["found"] == 2


def test_cli_verify_env_root_json(runner, tmp_path, monkeypatch):
    make_mnist_root(tmp_path / "mnist", n_train=5, n_test=3)
    monkeypatch.setenv("EVENTKIT_DATA", str(tmp_path))
    # the fixture's .gz files carry the release's names but not its bytes
    res = runner.invoke(cli, ["data", "verify", "mnist", "--json"])
    assert res.exit_code == 2 and "checksum mismatch" in res.stderr and "f68b3c2dcbeaaa9fbdd348bbdeb94873" in res.stderr
    res = runner.invoke(cli, ["data", "verify", "mnist", "--json", "--skip-checksums"])
    assert res.exit_code == 0
    assert json.loads(res.stdout)["splits"]["train"]["found"] == 5


def test_cli_verify_missing_root_exit2(runner, tmp_path):
    res = runner.invoke(cli, ["data", "verify", "cifar10dvs", "--root", str(tmp_path / "none")])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: dataset 'cifar10dvs'")
    assert "https://ndownloader.figshare.com/files/7712788" in res.stderr
    assert "0afd5c4bf9ae06af762a77b180354fdd" in res.stderr and str(tmp_path / "none") in res.stderr
    assert "Traceback" not in res.output


def test_cli_verify_checksum_mismatch_exit2(runner, tmp_path):
    root = make_nmnist_root(tmp_path / "nmnist", per_class_train=1, per_class_test=1)
    (root / "Test.zip").write_bytes(b"junk")
    res = runner.invoke(cli, ["data", "verify", "nmnist", "--root", str(root)])
    assert res.exit_code == 2
    assert "Test.zip" in res.stderr and "69ca8762b2fe404d9b9bad1103e97832" in res.stderr
    assert hashlib.md5(b"junk").hexdigest() in res.stderr


def test_cli_unpack(runner, tmp_path):
    root = tmp_path / "nmnist"
    root.mkdir()
    src = make_nmnist_root(tmp_path / "src", per_class_train=1, per_class_test=1)
    with zipfile.ZipFile(root / "Train.zip", "w") as zf:
        for f in sorted((src / "Train").rglob("*.bin")):
            zf.write(f, f.relative_to(src).as_posix())
    res = runner.invoke(cli, ["data", "unpack", "nmnist", "--root", str(root)])
    assert res.exit_code == 2 and "checksum mismatch" in res.stderr  # not the published archive
    res = runner.invoke(cli, ["data", "unpack", "nmnist", "--root", str(root), "--skip-checksums"])
    assert res.exit_code == 0, res.output
    assert len(get_dataset("nmnist").samples(root, "train")) == 10
