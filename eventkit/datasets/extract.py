"""Safe unpacking of downloaded archives (.zip, .tar, .tar.gz/.tgz, .gz).

Every member is checked *before* anything is written: absolute paths, ``..``
components, drive letters, links whose target leaves the destination, device files
and fifos are refused with an :class:`EventFileError` naming the archive and the
member. A truncated or corrupt archive is an :class:`EventFileError` too, and the member
being written when it fails is removed (no partial file is left behind). A single ``.gz``
file (not a tar) is decompressed to ``dest/<name without .gz>``.
"""
from __future__ import annotations

import gzip
import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from os import PathLike
from pathlib import Path, PurePosixPath

from eventkit.errors import EventFileError

__all__ = ["safe_extract", "archive_kind", "unpack_dataset"]

# what a truncated or corrupt compressed stream raises while it is read (tarfile/zipfile
# do not wrap these into their own errors)
_STREAM_ERRORS = (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)


def archive_kind(path: str | PathLike) -> str:
    """``"zip"``, ``"tar"`` or ``"gz"`` from the file's content (magic bytes), else from its suffix."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except OSError:
        pass
    with open(path, "rb") as fh:
        if fh.read(2) == b"\x1f\x8b":
            return "gz"
    raise EventFileError(path, "not a zip, tar or gzip archive (unknown magic bytes)")


def _member_target(archive: Path, dest: Path, name: str) -> Path:
    """The resolved path a member would be written to; refuses names that escape ``dest``."""
    if not name or "\x00" in name:
        raise EventFileError(archive, f"refusing member with an empty or NUL name {name!r}")
    norm = name.replace("\\", "/")
    pure = PurePosixPath(norm)
    if pure.is_absolute() or norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise EventFileError(archive, f"refusing member {name!r}: absolute path (would be written outside {dest})")
    if ".." in pure.parts:
        raise EventFileError(archive, f"refusing member {name!r}: '..' component escapes the target folder {dest}")
    target = (dest / pure).resolve()
    if not _inside(target, dest):
        raise EventFileError(archive, f"refusing member {name!r}: resolves to {target}, outside the target folder {dest}")
    return target


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _rel_parts(name: str) -> tuple[str, ...]:
    return tuple(p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", "."))


def _check_link(archive: Path, dest: Path, name: str, link_target: str, hard: bool, links: set[tuple[str, ...]]) -> None:
    """Refuse a (sym or hard) link whose target lies outside ``dest`` or goes through another link.

    The target is normalised lexically relative to the link's folder (the archive root
    for hard links); it must stay inside ``dest`` and must not pass through a symbolic
    link of the same archive (a chain of links could otherwise climb out).
    """
    lt = link_target.replace("\\", "/")
    if not lt or PurePosixPath(lt).is_absolute() or (len(lt) > 1 and lt[1] == ":"):
        raise EventFileError(archive, f"refusing link {name!r} -> {link_target!r}: absolute or empty link target")
    base = () if hard else _rel_parts(name)[:-1]
    parts: list[str] = list(base)
    for p in PurePosixPath(lt).parts:
        if p in ("", "."):
            continue
        if p == "..":
            if not parts:
                raise EventFileError(
                    archive, f"refusing link {name!r} -> {link_target!r}: points outside the target folder {dest}"
                )
            parts.pop()
        else:
            parts.append(p)
        if tuple(parts) in links:
            raise EventFileError(archive, f"refusing link {name!r} -> {link_target!r}: goes through another link")


def _check_not_through_link(archive: Path, name: str, links: set[tuple[str, ...]]) -> None:
    parts = _rel_parts(name)
    for k in range(1, len(parts)):
        if parts[:k] in links:
            raise EventFileError(
                archive, f"refusing member {name!r}: it lies inside the symbolic link {'/'.join(parts[:k])!r}"
            )


def _write_member(src, target: Path) -> None:
    """Copy a member's stream to ``target``; a stream that fails mid-way (bad CRC, truncated
    compressed data) leaves no partial file behind."""
    try:
        with open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _extract_zip(archive: Path, dest: Path) -> list[Path]:
    written: list[Path] = []
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        plan = []
        for info in infos:
            target = _member_target(archive, dest, info.filename)
            mode = (info.external_attr >> 16) & 0o170000
            if mode == stat.S_IFLNK:
                link_target = zf.read(info).decode("utf-8", "replace")
                _check_link(archive, dest, info.filename, link_target, hard=False, links=set())
                raise EventFileError(archive, f"refusing symbolic link member {info.filename!r} in a zip archive")
            plan.append((info, target))
        for info, target in plan:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src:
                _write_member(src, target)
            written.append(target)
    return written


def _extract_tar(archive: Path, dest: Path) -> list[Path]:
    written: list[Path] = []
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        links = {_rel_parts(m.name) for m in members if m.issym()}
        files: set[tuple[str, ...]] = set()  # regular files met so far: what a hard link may copy
        for m in members:
            _member_target(archive, dest, m.name)
            _check_not_through_link(archive, m.name, links)
            if m.issym() or m.islnk():
                _check_link(archive, dest, m.name, m.linkname, hard=m.islnk(), links=links)
                if m.islnk() and _rel_parts(m.linkname) not in files:
                    raise EventFileError(
                        archive, f"hard link {m.name!r} -> {m.linkname!r}: its target is not a file earlier in the archive"
                    )
            elif m.isfile():
                files.add(_rel_parts(m.name))
            elif not m.isdir():
                raise EventFileError(archive, f"refusing member {m.name!r}: not a regular file or folder (device/fifo)")
        for m in members:
            target = _member_target(archive, dest, m.name)
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if m.issym():
                if target.exists() or target.is_symlink():
                    target.unlink()
                os.symlink(m.linkname, target)
            elif m.islnk():
                source = _member_target(archive, dest, m.linkname)
                shutil.copyfile(source, target)
            else:
                src = tf.extractfile(m)
                if src is None:
                    raise EventFileError(archive, f"member {m.name!r} has no data")
                with src:
                    _write_member(src, target)
            written.append(target)
    return written


def _extract_gz(archive: Path, dest: Path) -> list[Path]:
    name = archive.name[:-3] if archive.name.endswith(".gz") else archive.name + ".out"
    target = _member_target(archive, dest, name)
    try:
        with gzip.open(archive, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (OSError, *_STREAM_ERRORS) as exc:
        target.unlink(missing_ok=True)
        raise EventFileError(archive, f"corrupt gzip stream: {exc}") from exc
    return [target]


def safe_extract(archive: str | PathLike, dest: str | PathLike) -> list[Path]:
    """Unpack ``archive`` (.zip, .tar[.gz|.bz2|.xz], .tgz or a single .gz) into ``dest``.

    Every member is validated first; nothing is written when one would escape ``dest``
    (absolute path, ``..``, a link pointing outside, a device file). Returns the paths
    of the files written. Raises :class:`EventFileError` naming the archive and member.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise EventFileError(archive, "archive not found")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    kind = archive_kind(archive)
    try:
        if kind == "zip":
            return _extract_zip(archive, dest)
        if kind == "tar":
            return _extract_tar(archive, dest)
        return _extract_gz(archive, dest)
    except (zipfile.BadZipFile, tarfile.TarError, *_STREAM_ERRORS) as exc:
        raise EventFileError(archive, f"corrupt or truncated {kind} archive: {exc}") from exc


def unpack_dataset(name: str, root: "str | PathLike | None" = None, *, checksums: bool = True) -> list[Path]:
    """Check and unpack the archives of dataset ``name`` found in its root.

    Looks for each (non-alternative) archive with ``unpack = true`` at ``root/<file>``,
    ``root/download/<file>`` or beside the root; verifies its published checksum
    (``checksums=True``; a mismatch raises :class:`DatasetNotFound` naming the file and both
    digests) and unpacks it into the root with :func:`safe_extract`. Returns the archives
    unpacked; :class:`DatasetNotFound` with the download instructions when none is there.
    Datasets whose files are used as downloaded (no archive with ``unpack = true``: MNIST,
    Fashion-MNIST, N-TIDIGITS18) have the files present checked and nothing unpacked (``[]``).
    """
    from eventkit.datasets.checksums import verify_file
    from eventkit.datasets.access import get_dataset, resolve_root
    from eventkit.datasets.verify import find_archive

    spec = get_dataset(name)
    path = resolve_root(name, root)
    if not any(a.unpack and not a.alternative for a in spec.archives):
        # files used as downloaded (MNIST's .gz, n-tidigits.hdf5): check those present, unpack nothing
        present = [(a, find_archive(path, a.file)) for a in spec.archives if not a.alternative]
        present = [(a, f) for a, f in present if f is not None]
        if not present:
            raise spec.not_found(path, f"none of its files found in {path}")
        for a, found in present:
            if checksums and a.checksum:
                verify_file(found, a.checksum, a.algorithm)
        return []
    done: list[Path] = []
    for a in spec.archives:
        if not a.unpack or a.alternative:
            continue
        found = find_archive(path, a.file)
        if found is None:
            continue
        if checksums and a.checksum:
            verify_file(found, a.checksum, a.algorithm)
        safe_extract(found, path)
        done.append(found)
    if not done:
        raise spec.not_found(path, f"no archive to unpack found in {path}")
    return done
