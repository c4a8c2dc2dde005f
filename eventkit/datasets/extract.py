"""Safe unpacking of downloaded archives (.zip, .tar, .tar.gz/.tgz, .gz).

Every member is checked *before* anything is written: absolute paths, ``..``
components, drive letters, links whose target leaves the destination, device files
and fifos are refused with an :class:`ArchiveError` naming the archive and the
member. A truncated or corrupt archive is an :class:`ArchiveError` too, and the member
being written when it fails is removed (no partial file is left behind). A single ``.gz``
file (not a tar) is decompressed to ``dest/<name without .gz>``.
"""
from __future__ import annotations

import errno
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

from eventkit.errors import ArchiveError

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
    except (OSError, *_STREAM_ERRORS):  # a compressed stream cut short: a tar by its name, else gzip below
        if ".tar" in path.suffixes or path.suffix == ".tgz":
            return "tar"
    with open(path, "rb") as fh:
        if fh.read(2) == b"\x1f\x8b":
            return "gz"
    raise ArchiveError(path, "not a zip, tar or gzip archive (unknown magic bytes)")


def _member_target(archive: Path, dest: Path, name: str) -> Path:
    """The resolved path a member would be written to; refuses names that escape ``dest``."""
    if not name or "\x00" in name:
        raise ArchiveError(archive, f"refusing member with an empty or NUL name {name!r}")
    norm = name.replace("\\", "/")
    pure = PurePosixPath(norm)
    if pure.is_absolute() or norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise ArchiveError(archive, f"refusing member {name!r}: absolute path (would be written outside {dest})")
    if ".." in pure.parts:
        raise ArchiveError(archive, f"refusing member {name!r}: '..' component escapes the target folder {dest}")
    target = (dest / pure).resolve()
    if not _inside(target, dest):
        raise ArchiveError(archive,
                             f"refusing member {name!r}: resolves to {target}, outside the target folder {dest}")
    return target


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _rel_parts(name: str) -> tuple[str, ...]:
    return tuple(p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", "."))


def _check_link(archive: Path, dest: Path, name: str, link_target: str, hard: bool,
                links: set[tuple[str, ...]]) -> None:
    """Refuse a (sym or hard) link whose target lies outside ``dest`` or goes through another link.

    The target is normalised lexically relative to the link's folder (the archive root
    for hard links); it must stay inside ``dest`` and must not pass through a symbolic
    link of the same archive (a chain of links could otherwise climb out).
    """
    lt = link_target.replace("\\", "/")
    if not lt or PurePosixPath(lt).is_absolute() or (len(lt) > 1 and lt[1] == ":"):
        raise ArchiveError(archive, f"refusing link {name!r} -> {link_target!r}: absolute or empty link target")
    base = () if hard else _rel_parts(name)[:-1]
    parts: list[str] = list(base)
    seen_name = False
    for p in PurePosixPath(lt).parts:
        if p in ("", "."):
            continue
        if p == ".." and seen_name and not hard:
            # 'a/../b': what 'a' will be (a later link from another archive) could move the
            # '..' anywhere; only leading '..' keep a link's meaning fixed once it is checked
            raise ArchiveError(archive, f"refusing link {name!r} -> {link_target!r}: '..' after a name "
                                          f"(only leading '..' components are allowed in link targets)")
        seen_name = seen_name or p != ".."
        if p == "..":
            if not parts:
                raise ArchiveError(
                    archive, f"refusing link {name!r} -> {link_target!r}: points outside the target folder {dest}"
                )
            parts.pop()
        else:
            parts.append(p)
        if tuple(parts) in links:
            raise ArchiveError(archive, f"refusing link {name!r} -> {link_target!r}: goes through another link")


def _check_link_on_disk(archive: Path, dest: Path, name: str, link_target: str) -> Path:
    """Where the symbolic link ``name`` will be created, after checking its target against the
    *real* folder it lands in (``dest`` as it is on disk, links from earlier archives included):
    the target's leading ``..`` must not climb out of ``dest`` from there."""
    parts = _rel_parts(name)
    folder = (dest.joinpath(*parts[:-1])).resolve()
    if not _inside(folder, dest):
        raise ArchiveError(archive, f"refusing link {name!r}: its folder resolves to {folder}, outside {dest}")
    real = (folder / link_target.replace("\\", "/")).resolve()
    if not _inside(real, dest):
        raise ArchiveError(
            archive, f"refusing link {name!r} -> {link_target!r}: in the real folder {folder} it points to {real}, "
                     f"outside the target folder {dest} (links already on disk are followed)")
    return folder / parts[-1]


def _check_not_through_link(archive: Path, name: str, links: set[tuple[str, ...]]) -> None:
    parts = _rel_parts(name)
    for k in range(1, len(parts)):
        if parts[:k] in links:
            raise ArchiveError(
                archive, f"refusing member {name!r}: it lies inside the symbolic link {'/'.join(parts[:k])!r}"
            )


def _check_conflicts(archive: Path, members: list[tuple[str, str]]) -> None:
    """Refuse members that cannot all exist: a name that is a file (or link) in one member and a
    folder in another (declared, or implied by a deeper member), or a file and a link."""
    kinds: dict[tuple[str, ...], tuple[str, str]] = {}
    for name, kind in members:
        parts = _rel_parts(name)
        for k in range(1, len(parts)):
            _claim(archive, kinds, parts[:k], "folder", name)
        if parts:
            _claim(archive, kinds, parts, kind, name)


def _claim(archive: Path, kinds: dict, parts: tuple[str, ...], kind: str, name: str) -> None:
    have = kinds.setdefault(parts, (kind, name))
    if have[0] != kind and not (have[0] in ("file", "hard link") and kind in ("file", "hard link")):
        raise ArchiveError(archive, f"conflicting members: {have[1]!r} makes {'/'.join(parts)!r} a {have[0]}, "
                                      f"{name!r} needs it to be a {kind}")


def _write_error(archive: Path, name: str, target: Path, exc: OSError) -> ArchiveError:
    """An OS error while writing a member (full disk, a file or folder already in the way, ...)."""
    why = exc.strerror or str(exc)
    hint = "; free some space and run again" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else ""
    return ArchiveError(archive, f"cannot write member {name!r} to {target}: {why}{hint}")


class _ReadError(Exception):
    """A failure reading the archive while a member is copied (told apart from write failures)."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def _write_member(src, target: Path) -> None:
    """Copy a member's stream to ``target``; a stream that fails mid-way (bad CRC, truncated
    compressed data) or a write that fails (full disk) leaves no partial file behind. Read
    failures come out as :class:`_ReadError` (their cause attached), write failures as ``OSError``."""
    try:
        with open(target, "wb") as dst:
            while True:
                try:
                    chunk = src.read(1 << 20)
                except Exception as exc:  # re-raised below with its cause
                    raise _ReadError(exc) from exc
                if not chunk:
                    break
                dst.write(chunk)
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
            if mode == stat.S_IFLNK:  # refused unread: its 'target' may inflate to any size
                raise ArchiveError(archive, f"refusing symbolic link member {info.filename!r} in a zip archive "
                                              f"(zip archives of datasets hold files and folders only)")
            plan.append((info, target))
        _check_conflicts(archive, [(i.filename, "folder" if i.is_dir() else "file") for i, _ in plan])
        for info, target in plan:
            try:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src:
                    _write_member(src, target)
            except _ReadError as exc:
                raise exc.error from None
            except OSError as exc:
                raise _write_error(archive, info.filename, target, exc) from None
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
                    raise ArchiveError(
                        archive,
                        f"hard link {m.name!r} -> {m.linkname!r}: its target is not a file earlier in the archive"
                    )
            elif m.isfile():
                files.add(_rel_parts(m.name))
            elif not m.isdir():
                raise ArchiveError(archive, f"refusing member {m.name!r}: not a regular file or folder (device/fifo)")
            if m.issym():
                _check_link_on_disk(archive, dest, m.name, m.linkname)
        _check_conflicts(archive, [(m.name, "folder" if m.isdir() else "link" if m.issym() else
                                    "hard link" if m.islnk() else "file") for m in members])
        for m in members:
            target = _member_target(archive, dest, m.name)
            try:
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if m.issym():
                    target = _check_link_on_disk(archive, dest, m.name, m.linkname)  # again: as the disk is now
                    if target.is_symlink() or target.is_file():
                        target.unlink()
                    os.symlink(m.linkname, target)
                elif m.islnk():
                    source = _member_target(archive, dest, m.linkname)
                    shutil.copyfile(source, target)
                else:
                    src = tf.extractfile(m)
                    if src is None:
                        raise ArchiveError(archive, f"member {m.name!r} has no data")
                    with src:
                        _write_member(src, target)
            except _ReadError as exc:
                raise exc.error from None
            except OSError as exc:
                raise _write_error(archive, m.name, target, exc) from None
            written.append(target)
    return written


def _extract_gz(archive: Path, dest: Path) -> list[Path]:
    name = archive.name[:-3] if archive.name.endswith(".gz") else archive.name + ".out"
    target = _member_target(archive, dest, name)
    try:
        with gzip.open(archive, "rb") as src:
            try:
                dst = open(target, "wb")
            except OSError as exc:
                raise _write_error(archive, name, target, exc) from None
            with dst:
                while chunk := src.read(1 << 20):
                    try:
                        dst.write(chunk)
                    except OSError as exc:
                        raise _write_error(archive, name, target, exc) from None
    except ArchiveError:
        target.unlink(missing_ok=True)
        raise
    except (OSError, *_STREAM_ERRORS) as exc:
        target.unlink(missing_ok=True)
        raise ArchiveError(archive, f"corrupt gzip stream: {exc}") from exc
    return [target]


def safe_extract(archive: str | PathLike, dest: str | PathLike) -> list[Path]:
    """Unpack ``archive`` (.zip, .tar[.gz|.bz2|.xz], .tgz or a single .gz) into ``dest``.

    Every member is validated first; nothing is written when one would escape ``dest``
    (absolute path, ``..``, a link pointing outside, a device file). Returns the paths
    of the files written. Raises :class:`ArchiveError` naming the archive and member.
    """
    archive = Path(archive)
    if not archive.exists():
        raise ArchiveError(archive, "archive not found")
    if not archive.is_file():
        raise ArchiveError(archive, "not a regular file (a folder, FIFO or device): not an archive")
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
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, *_STREAM_ERRORS) as exc:
        raise ArchiveError(archive, f"corrupt or truncated {kind} archive: {exc}") from exc
    except OSError as exc:  # reading the archive itself failed (write failures are EventFileErrors already)
        raise ArchiveError(archive, f"cannot read the {kind} archive: {exc.strerror or exc}") from exc
    except (NotImplementedError, RuntimeError, ValueError) as exc:  # zipfile: unknown version or method,
        # an encrypted member; tarfile/zipfile: undecodable header fields
        raise ArchiveError(archive, f"corrupt or unsupported {kind} archive ({type(exc).__name__}: {exc})") from exc


def unpack_dataset(name: str, root: str | PathLike | None = None, *, checksums: bool = True) -> list[Path]:
    """Check and unpack the archives of dataset ``name`` found in its root.

    Looks for each (non-alternative) archive with ``unpack = true`` at ``root/<file>``,
    ``root/download/<file>`` or beside the root; verifies its published checksum
    (``checksums=True``; a mismatch raises :class:`DatasetNotFound` naming the file and both
    digests) and unpacks it into the root with :func:`safe_extract`. Returns the archives
    unpacked; :class:`DatasetNotFound` with the download instructions when none is there.
    Datasets whose files are used as downloaded (no archive with ``unpack = true``: MNIST,
    Fashion-MNIST, N-TIDIGITS18) have the files present checked and nothing unpacked (``[]``).
    """
    from eventkit.datasets.access import get_dataset, resolve_root
    from eventkit.datasets.checksums import verify_file
    from eventkit.datasets.verify import find_archive

    spec = get_dataset(name)
    path = resolve_root(name, root)
    if not any(a.unpack and not a.alternative for a in spec.archives):
        # files used as downloaded (MNIST's .gz, n-tidigits.hdf5): check those present, unpack nothing
        found_or_none = [(a, find_archive(path, a.file)) for a in spec.archives if not a.alternative]
        present = [(a, f) for a, f in found_or_none if f is not None]
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
        archive = find_archive(path, a.file)
        if archive is None:
            continue
        if checksums and a.checksum:
            verify_file(archive, a.checksum, a.algorithm)
        safe_extract(archive, path)
        done.append(archive)
    if not done:
        raise spec.not_found(path, f"no archive to unpack found in {path}")
    return done
