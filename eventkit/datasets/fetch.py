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
* **progress** through :class:`eventkit.progress.Progress`: a tqdm bar on a terminal, plain
  lines (at most one per ``interval_s``) when the stream is not a terminal or with
  ``progress="lines"`` (what ``--json`` asks for).

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
from eventkit.progress import Progress, ProgressMode, resolve_mode

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


class _ResumingDownloader:
    """A pooch downloader (``(url, output_file, pooch)``) that continues ``part`` with HTTP Range."""

    def __init__(self, part: Path, timeout_s: float, report: _Report):
        self.part = part
        self.timeout_s = timeout_s
        self.report = report

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
                name = self.part.name[: -len(".part")]
                if have:
                    self.report.say(f"{name}: resuming at {have / 1e6:.1f} MB")
                with self.report.bar(name, total, have) as bar, open(self.part, mode) as fh:
                    for chunk in r.iter_content(_CHUNK):
                        fh.write(chunk)
                        bar.update(len(chunk))
        size = self.part.stat().st_size
        if total is not None and size != total:
            raise IncompleteDownload(f"{url}: connection ended after {size} of {total} bytes")
        os.replace(self.part, output_file)  # pooch checks the digest, then moves it into place


@dataclass(frozen=True)
class _Report:
    """Where a download reports: ``stream`` (None: silent), the progress mode, the line interval (s)."""

    stream: TextIO | None
    progress: ProgressMode = True
    interval_s: float = 10.0

    def say(self, text: str) -> None:
        if self.stream is not None and resolve_mode(self.progress, self.stream) != "off":
            print(text, file=self.stream, flush=True)

    def bar(self, name: str, total: int | None, done: int) -> Progress:
        return Progress(total, name, progress=self.progress if self.stream is not None else False, unit="B",
                        unit_scale=True, initial=done, every_s=self.interval_s, stream=self.stream)


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
                     interval_s: float = 10.0, progress: ProgressMode = True) -> Path:
    """Download ``archive`` into ``dest/<archive.file>`` (checked against its digest); return the path.

    ``urls`` defaults to ``archive.urls`` (the URL then the mirrors). Each URL gets
    ``1 + retries`` tries; a dropped connection resumes from ``<file>.part``. Raises
    :class:`DatasetNotFound` naming every URL tried and what went wrong with it. Progress goes
    to ``stream`` (None: nothing) as ``progress`` says (:mod:`eventkit.progress`: ``True`` a bar
    on a terminal and lines elsewhere, ``"lines"``, ``False``), a line at most every ``interval_s``.
    """
    import pooch
    import requests

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    part = dest / f"{archive.file}.part"
    known_hash = f"{archive.algorithm}:{archive.checksum}" if archive.checksum else None
    report = _Report(stream, progress, interval_s)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # our own lines say what happens
    problems: list[str] = []
    try:
        for url in urls if urls is not None else list(archive.urls):
            for attempt in range(1 + retries):
                try:
                    path = pooch.retrieve(url, known_hash, fname=archive.file, path=dest,
                                          downloader=_ResumingDownloader(part, timeout_s, report))
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
                        report.say(f"{archive.file}: connection lost at {got / 1e6:.1f} MB, resuming")
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
                  timeout_s: float = 60.0, stream: TextIO | None = None, interval_s: float = 10.0,
                  progress: ProgressMode = True) -> FetchResult:
    """Download, check and unpack the files of ``dataset`` into ``root`` (else ``$EVENTKIT_DATA/<name>``).

    ``mirrors``: base URLs tried first for every file (``<base>/<file>``), e.g. an
    institute's copy. ``stream``: where progress goes (None: silent), shown as ``progress``
    says (``True``: a bar on a terminal, plain lines elsewhere; ``"lines"``; ``False``). Files already in
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
    say = _Report(stream, progress, interval_s).say
    result = FetchResult(spec.name, str(target))
    paths: list[tuple[Archive, Path]] = []
    for a in needed:
        found = find_archive(target, a.file) if a.manual else None
        if found is None:
            extra = [f"{m.rstrip('/')}/{a.file}" for m in (mirrors or [])]
            say(f"{spec.name}: {a.file} from {(extra or list(a.urls))[0]}")
            found = download_archive(a, download if a.unpack else target, urls=extra + list(a.urls),
                                     retries=retries, timeout_s=timeout_s, stream=stream, interval_s=interval_s,
                                     progress=progress)
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
