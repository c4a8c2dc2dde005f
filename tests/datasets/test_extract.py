"""safe_extract: good archives unpack; crafted malicious ones are refused before any write."""
from __future__ import annotations

import gzip
import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from eventkit.datasets.extract import safe_extract
from eventkit.errors import ArchiveError


def _zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _tar(path: Path, members: list[tuple[str, str, bytes | str]], mode: str = "w:gz") -> Path:
    """members: (name, kind, data) with kind 'file' | 'sym' | 'hard' | 'dir' | 'fifo'."""
    with tarfile.open(path, mode) as tf:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "dir": tarfile.DIRTYPE,
                         "fifo": tarfile.FIFOTYPE}[kind]
            if kind in ("sym", "hard"):
                info.linkname = data
            tf.addfile(info)
    return path


def test_good_zip_and_tar(tmp_path):
    z = _zip(tmp_path / "a.zip", {"Train/0/00001.bin": b"abc", "Train/1/00002.bin": b"de"})
    out = safe_extract(z, tmp_path / "z")
    assert sorted(p.name for p in out) == ["00001.bin", "00002.bin"]
    assert (tmp_path / "z/Train/0/00001.bin").read_bytes() == b"abc"
    t = _tar(tmp_path / "a.tar.gz", [("DvsGesture", "dir", b""), ("DvsGesture/x.aedat", "file", b"xyz"),
                                     ("DvsGesture/link.aedat", "sym", "x.aedat")])
    safe_extract(t, tmp_path / "t")
    assert (tmp_path / "t/DvsGesture/x.aedat").read_bytes() == b"xyz"
    assert (tmp_path / "t/DvsGesture/link.aedat").read_bytes() == b"xyz"


def test_single_gz(tmp_path):
    g = tmp_path / "train-labels-idx1-ubyte.gz"
    g.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x00"))
    (out,) = safe_extract(g, tmp_path / "o")
    assert out.name == "train-labels-idx1-ubyte" and out.read_bytes()[:4] == b"\x00\x00\x08\x01"


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/tmp/evil_abs.txt", "..\\evil.txt"])
def test_zip_escape_refused(tmp_path, name):
    z = _zip(tmp_path / "bad.zip", {"ok.txt": b"fine", name: b"pwned"})
    with pytest.raises(ArchiveError, match="refusing member"):
        safe_extract(z, tmp_path / "dest")
    assert not (tmp_path / "dest" / "ok.txt").exists(), "nothing is written when one member is bad"
    assert not (tmp_path / "evil.txt").exists()


def test_zip_symlink_refused(tmp_path):
    z = _zip(tmp_path / "bad.zip", {"ok.txt": b"fine"}, symlinks={"link": "/etc/passwd"})
    with pytest.raises(ArchiveError, match="link"):
        safe_extract(z, tmp_path / "dest")


@pytest.mark.parametrize("members, match", [
    ([("../evil.txt", "file", b"x")], "'..'"),
    ([("/tmp/evil_abs_tar.txt", "file", b"x")], "absolute"),
    ([("link", "sym", "/etc")], "absolute"),
    ([("link", "sym", "../../outside")], "outside"),
    ([("d/link", "sym", "../../outside")], "outside"),
    ([("hard", "hard", "../outside")], "'..'|outside"),
    ([("l1", "sym", "."), ("l2", "sym", "l1/..")], "another link"),
    ([("sub", "sym", "."), ("sub/file", "file", b"x")], "inside the symbolic link"),
    ([("fifo", "fifo", b"")], "not a regular file"),
])
def test_tar_escape_refused(tmp_path, members, match):
    t = _tar(tmp_path / "bad.tar.gz", [("ok.txt", "file", b"fine")] + members)
    with pytest.raises(ArchiveError, match=match):
        safe_extract(t, tmp_path / "dest")
    assert not (tmp_path / "dest" / "ok.txt").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_existing_symlink_in_dest_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "Train").symlink_to(outside)
    z = _zip(tmp_path / "a.zip", {"Train/x.bin": b"x"})
    with pytest.raises(ArchiveError, match="outside the target folder"):
        safe_extract(z, dest)
    assert not (outside / "x.bin").exists()


def test_not_an_archive(tmp_path):
    p = tmp_path / "x.zip"
    p.write_bytes(b"hello world")
    with pytest.raises(ArchiveError, match="not a zip, tar or gzip"):
        safe_extract(p, tmp_path / "d")
    with pytest.raises(ArchiveError, match="not found"):
        safe_extract(tmp_path / "missing.zip", tmp_path / "d")


@pytest.mark.parametrize("mode", ["w:gz", "w:xz", "w:bz2"])
def test_truncated_compressed_tar_is_an_event_file_error(tmp_path, mode):
    """A download cut short: the compressed stream ends early. Error naming the archive, no file written."""
    import os

    good = _tar(tmp_path / "a.tar", [("data/a.bin", "file", os.urandom(200_000))], mode=mode)
    raw = good.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(raw[: len(raw) // 2])
    dest = tmp_path / "out"
    with pytest.raises(ArchiveError, match="cut.tar") as info:
        safe_extract(cut, dest)
    assert info.value.path == str(cut)
    assert not (dest / "data" / "a.bin").exists()


def test_corrupt_zip_member_leaves_no_partial_file(tmp_path):
    import os

    arc = _zip(tmp_path / "a.zip", {"a.bin": os.urandom(100_000), "b.bin": b"x" * 1000})
    raw = bytearray(arc.read_bytes())
    raw[1000] ^= 0xFF  # inside a.bin's stored data: a CRC error while it is copied
    arc.write_bytes(bytes(raw))
    dest = tmp_path / "out"
    with pytest.raises(ArchiveError, match="a.bin"):
        safe_extract(arc, dest)
    assert not (dest / "a.bin").exists()


def test_tar_hard_link_to_a_missing_member_is_an_event_file_error(tmp_path):
    """A (corrupt) tar whose hard link names a member that is not there, or comes later:
    ArchiveError naming the archive, not a bare FileNotFoundError."""
    t = _tar(tmp_path / "bad.tar.gz", [("ok.txt", "file", b"fine"), ("hard", "hard", "later.txt"),
                                       ("later.txt", "file", b"late")])
    with pytest.raises(ArchiveError, match=r"bad\.tar\.gz.*hard link 'hard' -> 'later.txt'"):
        safe_extract(t, tmp_path / "dest")
    assert not (tmp_path / "dest" / "ok.txt").exists()  # refused before anything is written
    good = _tar(tmp_path / "good.tar.gz", [("a/ok.txt", "file", b"fine"), ("a/hard", "hard", "a/ok.txt")])
    safe_extract(good, tmp_path / "dest2")
    assert (tmp_path / "dest2" / "a" / "hard").read_bytes() == b"fine"


def test_unpack_datasets_read_as_downloaded(tmp_path):
    """MNIST's .gz files are read as they are: `unpack` checks those present and unpacks nothing."""
    from click.testing import CliRunner

    from eventkit import testing
    from eventkit.cli.main import cli
    from eventkit.datasets.extract import unpack_dataset

    root = testing.make_mnist_root(tmp_path / "mnist", n_train=4, n_test=2)
    assert unpack_dataset("mnist", root, checksums=False) == []
    r = CliRunner().invoke(cli, ["data", "unpack", "mnist", "--root", str(root), "--skip-checksums"])
    assert r.exit_code == 0 and "mnist: nothing to unpack" in r.output, r.output
    r = CliRunner().invoke(cli, ["data", "unpack", "mnist", "--root", str(root)])  # fake files: digests differ
    assert r.exit_code == 2 and "checksum" in r.output.lower(), r.output
    empty = tmp_path / "none"
    empty.mkdir()
    r = CliRunner().invoke(cli, ["data", "unpack", "mnist", "--root", str(empty)])
    assert r.exit_code == 2 and "none of its files found" in r.output, r.output


# --- links across archives, conflicting members, write failures ---------------------------------


def test_two_archives_cannot_build_an_escaping_link(tmp_path):
    """Each link is checked in the real folder it lands in: a link from a first archive that
    points back up must not let a second archive's '../..' climb out of the root."""
    dest = tmp_path / "root"
    safe_extract(_tar(tmp_path / "a.tar", [("deep", "dir", b""), ("deep/link", "sym", "..")], mode="w"), dest)
    assert (dest / "deep" / "link").resolve() == dest.resolve()  # a harmless link to the root
    b = _tar(tmp_path / "b.tar", [("deep/link/up", "sym", "../..")], mode="w")  # textually inside the root
    with pytest.raises(ArchiveError, match=r"refusing link 'deep/link/up' -> '../..': in the real folder .* "
                                             r"outside the target folder"):
        safe_extract(b, dest)
    assert not (dest / "up").is_symlink()


def test_dotdot_after_a_name_is_refused_in_link_targets(tmp_path):
    """'m/..' means the root today, but a later archive may make 'm' a link: refused."""
    t = _tar(tmp_path / "a.tar", [("l", "sym", "m/..")], mode="w")
    with pytest.raises(ArchiveError, match=r"'\.\.' after a name"):
        safe_extract(t, tmp_path / "root")
    ok = _tar(tmp_path / "ok.tar", [("d", "dir", b""), ("d/x", "file", b"1"), ("d/l", "sym", "../d/x")], mode="w")
    safe_extract(ok, tmp_path / "root2")
    assert (tmp_path / "root2" / "d" / "l").read_bytes() == b"1"


@pytest.mark.parametrize("members, match", [
    ([("a", "file", b"1"), ("a/b", "file", b"2")], r"'a' makes 'a' a file, 'a/b' needs it to be a folder"),
    ([("a/b", "file", b"2"), ("a", "file", b"1")], r"'a/b' makes 'a' a folder, 'a' needs it to be a file"),
    ([("x", "dir", b""), ("x", "sym", "y")], "conflicting members"),
    ([("x", "sym", "y"), ("x", "file", b"1")], "conflicting members"),
])
def test_conflicting_tar_members(tmp_path, members, match):
    t = _tar(tmp_path / "c.tar", [("ok.txt", "file", b"fine")] + members, mode="w")
    with pytest.raises(ArchiveError, match=r"c\.tar: conflicting members: " + match if "'" in match else match):
        safe_extract(t, tmp_path / "dest")
    assert not (tmp_path / "dest" / "ok.txt").exists()  # refused before anything is written


def test_conflicting_zip_members_and_content_already_on_disk(tmp_path):
    z = _zip(tmp_path / "c.zip", {"a": b"1", "a/b": b"2"})
    with pytest.raises(ArchiveError, match="conflicting members"):
        safe_extract(z, tmp_path / "dest")
    dest = tmp_path / "dest2"
    dest.mkdir()
    (dest / "Train").write_bytes(b"a file where the archive has a folder")
    z2 = _zip(tmp_path / "d.zip", {"Train/0/1.bin": b"x"})
    with pytest.raises(ArchiveError, match=r"d\.zip: cannot write member 'Train/0/1.bin' to .*Not a directory"):
        safe_extract(z2, dest)


def test_full_disk_is_one_error_naming_archive_and_member(tmp_path, monkeypatch):
    import errno
    import os

    from eventkit.datasets import extract

    class FullDisk(io.BufferedWriter):
        def write(self, b):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real_open = open
    monkeypatch.setattr(extract, "open", lambda p, mode="r", *a, **k: FullDisk(real_open(p, "wb", buffering=0))
                        if "w" in mode else real_open(p, mode, *a, **k), raising=False)
    z = _zip(tmp_path / "a.zip", {"Train/0/1.bin": os.urandom(5000)})
    with pytest.raises(ArchiveError, match=r"a\.zip: cannot write member 'Train/0/1.bin' to .*1\.bin: "
                                             r"No space left on device; free some space and run again"):
        safe_extract(z, tmp_path / "d")
    assert not (tmp_path / "d" / "Train" / "0" / "1.bin").exists()  # no partial file
    g = tmp_path / "x.gz"
    g.write_bytes(gzip.compress(b"abc" * 1000))
    with pytest.raises(ArchiveError, match="No space left on device"):
        safe_extract(g, tmp_path / "g")
    assert not (tmp_path / "g" / "x").exists()


def test_full_disk_in_data_unpack_is_one_line(tmp_path, monkeypatch):
    """`eventkit data unpack` on a disk that fills up: exit 2 and a one-line message, no traceback."""
    import errno
    import os

    from click.testing import CliRunner

    from eventkit.cli.main import cli
    from eventkit.datasets import extract

    root = tmp_path / "nmnist"
    root.mkdir()
    _zip(root / "Train.zip", {"Train/0/00001.bin": os.urandom(5000)})

    def full(src, target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(extract, "_write_member", full)
    r = CliRunner().invoke(cli, ["data", "unpack", "nmnist", "--root", str(root), "--skip-checksums"])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Train.zip" in lines[0] and "No space left on device" in lines[0], r.output
    assert "Traceback" not in r.output


def test_file_size_limit_reached_mid_member_is_an_event_file_error(tmp_path):
    """A real write failure from the kernel (RLIMIT_FSIZE -> EFBIG), in a child process."""
    import os
    import subprocess
    import sys

    z = _zip(tmp_path / "big.zip", {"a.bin": os.urandom(300_000)})
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))\n"
        "from eventkit.datasets.extract import safe_extract\n"
        "from eventkit.errors import EventFileError\n"
        "try:\n    safe_extract(sys.argv[1], sys.argv[2])\n"
        "except EventFileError as e:\n    print('EFE', e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(z), str(tmp_path / "out")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "EFE" in r.stdout and "File too large; free some space" in r.stdout, r.stdout
    assert not (tmp_path / "out" / "a.bin").exists()


def test_a_fifo_is_not_an_archive(tmp_path):
    import os

    os.mkfifo(tmp_path / "Train.zip")
    with pytest.raises(ArchiveError, match="not a regular file"):
        safe_extract(tmp_path / "Train.zip", tmp_path / "d")


@pytest.mark.parametrize("field, value, match", [
    ("method", 99, "NotImplementedError: That compression method is not supported"),
    ("flags", 1, "RuntimeError: File .*a.bin.* is encrypted"),
])
def test_unsupported_zip_features_are_event_file_errors(tmp_path, field, value, match):
    """Found by the fuzzer: zipfile raises NotImplementedError / RuntimeError for these."""
    import struct

    raw = bytearray(_zip(tmp_path / "a.zip", {"a.bin": b"x" * 100}).read_bytes())
    local, central = raw.find(b"PK\x03\x04"), raw.find(b"PK\x01\x02")
    at = {"method": (8, 10), "flags": (6, 8)}[field]
    struct.pack_into("<H", raw, local + at[0], value)
    struct.pack_into("<H", raw, central + at[1], value)
    (tmp_path / "b.zip").write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match=r"b\.zip: corrupt or unsupported zip archive \(" + match):
        safe_extract(tmp_path / "b.zip", tmp_path / "d")


def test_zip_symlink_member_is_refused_without_reading_it(tmp_path):
    """A symbolic-link member whose 'target' inflates to 64 MiB (a 64 KB zip) is refused without
    decompressing it: a small hostile zip must not make the process allocate without bound."""
    import tracemalloc

    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, b"a" * (64 << 20))
    assert z.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveError, match="symbolic link member 'link'"):
            safe_extract(z, tmp_path / "dest")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"refusing the link allocated {peak / 2**20:.0f} MiB"
