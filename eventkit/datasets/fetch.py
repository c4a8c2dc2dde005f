"""``eventkit data fetch NAME``: download a dataset's files, check them, unpack them safely.

Built on `pooch <https://www.fatiando.org/pooch/>`_: :func:`pooch.retrieve` downloads
into a temporary file beside the target, checks the manifest's md5/sha1/sha256 and only
then moves it into place; a file already there with the right digest is not fetched
again. Added here, because pooch lacks them:

* **mirrors**: each archive's ``url``, then its ``mirrors`` (then ``--mirror BASE`` URLs
  first, when given). An HTTP 4xx or a wrong checksum moves on to the next URL.
* **resume**: bytes received are kept in ``<file>.part``; a dropped connection (or an
  interrupted run) continues from there with an HTTP ``Range`` request, so a multi-GB
  archive is not started over (a server that ignores ``Range`` sends it all again).
  A part whose finished file fails the checksum is deleted, never reused.
* **progress** as plain lines (at most one per ``interval_s``) when the stream is not a
  terminal, a tqdm bar when it is.

Archives land in ``ROOT/download/`` and are unpacked into ``ROOT`` with
:func:`eventkit.datasets.extract.safe_extract`; files read as downloaded (MNIST's
``.gz``, ``n-tidigits.hdf5``) land in ``ROOT`` itself. Files behind a browser page or a form
(``manual = true`` in the manifest, e.g. DVS128 Gesture) are not downloaded: the error
says where to get them and where to put them; a run after that checks and unpacks them.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from eventkit.datasets.access import get_dataset
from eventkit.datasets.spec import ENV_DATA, Archive, DatasetSpec
from eventkit.errors import DatasetNotFound, ParameterError

__all__ = ["fetch_dataset", "download_archive", "FetchResult", "IncompleteDownload"]

DOWNLOAD_DIR = "download"
_CHUNK = 1 << 16  # bytes read per step: a dropped connection loses at most this much of what arrived


class IncompleteDownload(OSError):
    """The connection ended before the announced number of bytes arrived (resumable)."""


@dataclass
class FetchResult:
    """What :func:`fetch_dataset` did: files present in ``download/`` and archives unpacked."""

    dataset: str
    root: str
    files: list[str] = field(default_factory=list)
    unpacked: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "root": self.root, "files": list(self.files), "unpacked": list(self.unpacked)}


class _Progress:
    """Download progress: a tqdm bar on a terminal, else a plain line at most every ``interval_s``."""

    def __init__(self, stream: TextIO | None, interval_s: float = 10.0):
        self.stream = stream
        self.interval_s = interval_s
        self._bar: Any = None

    def start(self, name: str, total: int | None, done: int) -> None:
        self.name, self.total, self.done, self.t0 = name, total, done, time.monotonic()
        self._last = self.t0
        if self.stream is None:
            return
        if self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, desc=name, file=self.stream)
        elif done:
            self._line(f"{name}: resuming at {self._mb(done)}")

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.stream is not None and time.monotonic() - self._last >= self.interval_s:
            self._last = time.monotonic()
            pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
            self._line(f"{self.name}: {self._mb(self.done)} of {self._mb(self.total)}{pct}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    @staticmethod
    def _mb(n: int | None) -> str:
        return "? MB" if n is None else f"{n / 1e6:.1f} MB"

    def _line(self, text: str) -> None:
        if self.stream is not None:
            print(text, file=self.stream, flush=True)


class _ResumingDownloader:
    """A pooch downloader (``(url, output_file, pooch)``) that continues ``part`` with HTTP Range."""

    def __init__(self, part: Path, progress: _Progress, timeout_s: float):
        self.part = part
        self.progress = progress
        self.timeout_s = timeout_s

    def __call__(self, url: str, output_file: str, pooch: Any, check_only: bool = False) -> None:
        import requests

        have = self.part.stat().st_size if self.part.is_file() else 0
        # identity: byte ranges of the file itself, not of a compressed transfer
        headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={have}-"} if have else {})}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout_s) as r:
            if r.status_code == 416 and have and _range_total(r.headers.get("Content-Range", "")) == have:
                total: int | None = have  # the part already holds every byte
            else:
                if r.status_code == 206 and _range_start(r.headers.get("Content-Range", "")) == have:
                    mode = "ab"
                else:
                    r.raise_for_status()
                    have, mode = 0, "wb"  # 200: the server ignored the Range and sends it all
                length = r.headers.get("Content-Length")
                total = have + int(length) if length is not None else None
                self.progress.start(self.part.name[: -len(".part")], total, have)
                try:
                    with open(self.part, mode) as fh:
                        for chunk in r.iter_content(_CHUNK):
                            fh.write(chunk)
                            self.progress.update(len(chunk))
                finally:
                    self.progress.close()
        size = self.part.stat().st_size
        if total is not None and size != total:
            raise IncompleteDownload(f"{url}: connection ended after {size} of {total} bytes")
        os.replace(self.part, output_file)  # pooch checks the digest, then moves it into place


def _range_start(content_range: str) -> int | None:
    """``bytes 100-199/200`` -> 100."""
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _range_total(content_range: str) -> int | None:
    """``bytes */200`` or ``bytes 0-199/200`` -> 200."""
    try:
        return int(content_range.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return None


def download_archive(archive: Archive, dest: str | os.PathLike, *, urls: list[str] | None = None,
                     retries: int = 3, timeout_s: float = 60.0, stream: TextIO | None = None,
                     interval_s: float = 10.0) -> Path:
    """Download ``archive`` into ``dest/<archive.file>`` (checked against its digest); return the path.

    ``urls`` defaults to ``archive.urls`` (the URL then the mirrors). Each URL gets
    ``1 + retries`` tries; a dropped connection resumes from ``<file>.part``. Raises
    :class:`DatasetNotFound` naming every URL tried and what went wrong with it.
    """
    import pooch
    import requests

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    part = dest / f"{archive.file}.part"
    known_hash = f"{archive.algorithm}:{archive.checksum}" if archive.checksum else None
    progress = _Progress(stream, interval_s)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # our own lines say what happens
    problems: list[str] = []
    try:
        for url in urls if urls is not None else list(archive.urls):
            for attempt in range(1 + retries):
                try:
                    path = pooch.retrieve(url, known_hash, fname=archive.file, path=dest,
                                          downloader=_ResumingDownloader(part, progress, timeout_s))
                    return Path(path)
                except requests.HTTPError as exc:
                    code = exc.response.status_code if exc.response is not None else "?"
                    problems.append(f"{url}: HTTP {code}")
                    if not (isinstance(code, int) and code >= 500 and attempt < retries):
                        break  # 4xx: this URL will not serve it; next mirror
                except ValueError as exc:  # pooch: the digest differs (the bytes are deleted)
                    part.unlink(missing_ok=True)
                    problems.append(f"{url}: checksum mismatch ({exc})")
                    break
                except (requests.RequestException, IncompleteDownload) as exc:
                    got = part.stat().st_size if part.is_file() else 0
                    problems.append(f"{url}: {type(exc).__name__} after {got} bytes (try {attempt + 1})")
                    if attempt < retries:
                        if stream is not None:
                            print(f"{archive.file}: connection lost at {got / 1e6:.1f} MB, resuming", file=stream)
                        time.sleep(min(2 ** attempt, 30) / 2)
    finally:
        logger.setLevel(level)
    raise DatasetNotFound(
        f"could not download {archive.file}: " + "; ".join(problems)
        + (f" (the bytes received so far are kept in {part}: run again to resume)" if part.is_file() else ""))


def _target_root(spec: DatasetSpec, root: str | os.PathLike | None) -> Path:
    if root is not None:
        return Path(root).expanduser().absolute()
    env = os.environ.get(ENV_DATA)
    if not env:
        raise ParameterError(
            f"fetch {spec.name}: pass --root DIR or set {ENV_DATA} (the data go to ${ENV_DATA}/{spec.name})")
    return (Path(env).expanduser() / spec.name).absolute()


def _manual_message(spec: DatasetSpec, missing: list[Archive], download: Path, root: Path) -> str:
    lines = [f"dataset {spec.name!r}: {len(missing)} file(s) cannot be downloaded automatically "
             f"(behind a browser page or a form):"]
    lines += [f"  - {a.file}: get it from {a.url}" + (f" ({a.note})" if a.note else "")
              + (f", {a.algorithm} {a.checksum}" if a.checksum else "") for a in missing]
    lines.append(f"put it in {download}/ and run `eventkit data fetch {spec.name} --root {root}` again "
                 f"(it checks and unpacks what is there)")
    return "\n".join(lines)


def fetch_dataset(dataset: str | DatasetSpec, root: str | os.PathLike | None = None, *,
                  mirrors: list[str] | None = None, retries: int = 3, unpack: bool = True,
                  timeout_s: float = 60.0, stream: TextIO | None = None, interval_s: float = 10.0) -> FetchResult:
    """Download, check and unpack the files of ``dataset`` into ``root`` (else ``$EVENTKIT_DATA/<name>``).

    ``mirrors``: base URLs tried first for every file (``<base>/<file>``), e.g. an
    institute's copy. ``stream``: where progress lines go (None: silent). Files already in
    ``root/download/`` with the right digest are not downloaded again. Raises
    :class:`DatasetNotFound` when a file cannot be had (every URL tried is named) or sits
    behind a form (the message says where to get it and where to put it).
    """
    from eventkit.datasets.extract import safe_extract
    from eventkit.datasets.verify import find_archive

    spec = get_dataset(dataset) if isinstance(dataset, str) else dataset
    target = _target_root(spec, root)
    download = target / DOWNLOAD_DIR
    needed = spec.needed_archives()
    missing = [a for a in needed if a.manual and find_archive(target, a.file) is None]
    if missing:
        raise DatasetNotFound(_manual_message(spec, missing, download, target))
    say = (lambda text: print(text, file=stream, flush=True)) if stream is not None else (lambda text: None)
    result = FetchResult(spec.name, str(target))
    paths: list[tuple[Archive, Path]] = []
    for a in needed:
        found = find_archive(target, a.file) if a.manual else None
        if found is None:
            extra = [f"{m.rstrip('/')}/{a.file}" for m in (mirrors or [])]
            say(f"{spec.name}: {a.file} from {(extra or list(a.urls))[0]}")
            found = download_archive(a, download if a.unpack else target, urls=extra + list(a.urls),
                                     retries=retries, timeout_s=timeout_s, stream=stream, interval_s=interval_s)
        elif a.checksum:
            from eventkit.datasets.checksums import verify_file

            verify_file(found, a.checksum, a.algorithm)
        result.files.append(str(found))
        paths.append((a, found))
    for a, path in paths if unpack else []:
        if a.unpack:
            say(f"{spec.name}: unpacking {path.name} into {target}")
            safe_extract(path, target)
            result.unpacked.append(str(path))
    say(f"{spec.name}: done; check it with `eventkit data verify {spec.name} --root {target}`")
    return result
