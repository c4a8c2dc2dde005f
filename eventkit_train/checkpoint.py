"""Run folders whose files always agree: one commit per epoch.

Layout of a run folder::

    RUN/state-000007-1a2b3c4d/   checkpoint.pt best.pt config.json metrics.json metrics.csv summary.json manifest.json
    RUN/current -> state-000007-1a2b3c4d
    RUN/checkpoint.pt -> current/checkpoint.pt     (and best.pt, config.json, metrics.*, summary.json)

An epoch is committed by :func:`commit_epoch`: every file of the new state is written into a
fresh ``state-*`` folder (``best.pt`` a hard link to the new checkpoint when the epoch
improved, else to the previous state's ``best.pt``), ``manifest.json`` records the epoch,
the best epoch and the SHA-256 of each file, the files and the folder are fsynced, and
then one ``rename`` swaps the ``current`` link. Readers go through ``current``, so a kill at
any point leaves either the previous epoch's files or the new epoch's, never a mixture.
Older ``state-*`` folders and temporary files are removed after the swap, and again at the
next commit or resume if a kill came first.

Checkpoints are read with ``torch.load(weights_only=True)``; a damaged or foreign file is a
one-line :class:`~eventkit.errors.CacheError` naming it (SHA-256 mismatch, truncation, not a
checkpoint, missing keys).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from eventkit.errors import CacheError, ParameterError

__all__ = ["commit_epoch", "committed_state", "read_manifest", "load_checkpoint", "load_state", "clean_stale",
           "LINKED_FILES", "CHECKPOINT_KEYS"]

#: the files of a state, linked from the run folder's top level
LINKED_FILES = ("checkpoint.pt", "best.pt", "config.json", "metrics.json", "metrics.csv", "summary.json")
CHECKPOINT_KEYS = ("model", "optimizer", "config", "epoch")
CURRENT = "current"

#: test hook: called with a label after every step of a commit (a kill-at-every-point test sets it)
_after_step: Callable[[str], None] | None = None


def _step(label: str) -> None:
    if _after_step is not None:
        _after_step(label)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_bytes(path: Path, payload: bytes) -> str:
    """Write (in two halves, so a kill can land in between), fsync; returns the SHA-256."""
    half = len(payload) // 2
    with open(path, "wb") as fh:
        fh.write(payload[:half])
        fh.flush()
        _step(f"half of {path.name}")
        fh.write(payload[half:])
        fh.flush()
        os.fsync(fh.fileno())
    _step(f"wrote {path.name}")
    return hashlib.sha256(payload).hexdigest()


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a filesystem without hard links
        shutil.copyfile(src, dst)
        with open(dst, "rb+") as fh:
            os.fsync(fh.fileno())


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def committed_state(run_dir: str | os.PathLike) -> Path | None:
    """The folder of the last committed epoch (``current``'s target), the run folder itself
    for a run written before state folders existed, or ``None`` (no epoch committed yet)."""
    run = Path(run_dir)
    link = run / CURRENT
    if link.is_symlink() or link.exists():
        target = run / os.readlink(link) if link.is_symlink() else link
        if not (target / "manifest.json").is_file():
            raise CacheError(f"run folder {run}: {CURRENT} points to {target.name}, which has no manifest.json; "
                             f"the folder was edited by hand")
        return target
    if (run / "checkpoint.pt").is_file() and not (run / "checkpoint.pt").is_symlink():
        return run  # the flat layout of earlier versions
    return None


def read_manifest(state: Path) -> dict[str, Any]:
    """``manifest.json`` of a state folder (``{}`` for the flat layout of earlier versions)."""
    path = state / "manifest.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheError(f"{path} cannot be read ({type(exc).__name__}); the run folder is damaged") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise CacheError(f"{path} is not a run manifest; the run folder is damaged")
    return data


def clean_stale(run_dir: str | os.PathLike) -> None:
    """Remove state folders that are not ``current`` and temporary files a kill left."""
    run = Path(run_dir)
    if not run.is_dir():
        return
    link = run / CURRENT
    keep = os.readlink(link) if link.is_symlink() else None
    for p in run.iterdir():
        if p.name.startswith("state-") and p.name != keep and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.endswith(".tmp") and (p.is_symlink() or p.is_file()):
            p.unlink(missing_ok=True)


def commit_epoch(run_dir: str | os.PathLike, state: Mapping[str, Any], *, improved: bool,
                 texts: Mapping[str, str], best_epoch: int) -> Path:
    """Write one epoch's checkpoint and text files as a new state and make it current.

    ``state``: the checkpoint dict (``model``, ``optimizer``, ``config``, ``epoch``, ...);
    ``improved``: this epoch becomes ``best.pt``; ``texts``: ``{file name: content}`` for
    ``config.json``, ``metrics.json``, ``metrics.csv``, ``summary.json``; ``best_epoch``: the
    epoch that ``best.pt`` holds after this commit. Returns the new state folder.
    """
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    clean_stale(run)
    previous = committed_state(run)
    epoch = int(state["epoch"])
    new = run / f"state-{epoch:06d}-{uuid.uuid4().hex[:8]}"
    new.mkdir()
    _step("made the state folder")
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    files = {"checkpoint.pt": _write_bytes(new / "checkpoint.pt", buf.getvalue())}
    if improved or previous is None or not (previous / "best.pt").is_file():
        if not improved:
            raise CacheError(f"run folder {run}: no best.pt to carry over into epoch {epoch + 1}")
        _link_or_copy(new / "checkpoint.pt", new / "best.pt")
        files["best.pt"] = files["checkpoint.pt"]
    else:
        _link_or_copy(previous / "best.pt", new / "best.pt")
        old = read_manifest(previous).get("files", {}).get("best.pt")
        files["best.pt"] = old if isinstance(old, str) else _sha256_file(new / "best.pt")
    _step("linked best.pt")
    for name, text in texts.items():
        files[name] = _write_bytes(new / name, text.encode())
    manifest = {"format": 1, "epoch": epoch, "best_epoch": int(best_epoch), "files": files}
    _write_bytes(new / "manifest.json", (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    _fsync_dir(new)
    _step("wrote the state folder")
    tmp = run / f"{CURRENT}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(new.name, tmp)
    os.replace(tmp, run / CURRENT)
    _fsync_dir(run)
    _step("switched current")
    for name in LINKED_FILES:
        top = run / name
        if top.is_symlink() and os.readlink(top) == f"{CURRENT}/{name}":
            continue
        tmp = run / f"{name}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(f"{CURRENT}/{name}", tmp)
        os.replace(tmp, top)
        _step(f"linked the top-level {name}")
    clean_stale(run)
    _step("removed the previous state")
    return new


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu", *,
                    sha256: str | None = None) -> dict[str, Any]:
    """Read a checkpoint dict with ``weights_only=True`` (no pickled code runs).

    ``sha256``: the expected digest (from the state's manifest; looked up there when the
    file sits in a state folder). A damaged, truncated or foreign file is a one-line
    :class:`CacheError` naming it."""
    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"checkpoint {p} not found")
    if sha256 is None:
        sha256 = read_manifest(p.resolve().parent).get("files", {}).get(p.name) if p.name in LINKED_FILES else None
    if sha256 is not None and _sha256_file(p) != sha256:
        raise CacheError(f"checkpoint {p} is damaged (its SHA-256 differs from the run manifest); restore it "
                         f"or start a new run")
    try:
        ck = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError / RuntimeError / EOFError ...
        raise CacheError(f"checkpoint {p} cannot be read ({_one_line(exc)}); delete it or start a new run") from None
    if not isinstance(ck, dict) or any(k not in ck for k in CHECKPOINT_KEYS):
        what = sorted(ck) if isinstance(ck, dict) else type(ck).__name__
        raise CacheError(f"checkpoint {p} is not an eventkit checkpoint (has {what}; needs {list(CHECKPOINT_KEYS)})")
    if not isinstance(ck["model"], dict) or not all(isinstance(v, torch.Tensor) for v in ck["model"].values()):
        raise CacheError(f"checkpoint {p}: 'model' is not a state dict of tensors")
    if not isinstance(ck["config"], dict) or isinstance(ck["epoch"], bool) or not isinstance(ck["epoch"], int):
        raise CacheError(f"checkpoint {p}: 'config' or 'epoch' has the wrong type")
    return ck


def load_state(run_dir: str | os.PathLike, which: str = "checkpoint",
               map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The committed ``checkpoint.pt`` (``which="checkpoint"``) or ``best.pt`` of a run, checked
    against its manifest; ``None`` when no epoch was committed."""
    if which not in ("checkpoint", "best"):
        raise ParameterError(f"which={which!r}: 'checkpoint' or 'best'")
    state = committed_state(run_dir)
    if state is None:
        return None
    name = f"{which}.pt"
    digest = read_manifest(state).get("files", {}).get(name)
    return load_checkpoint(state / name, map_location, sha256=digest)


def load_state_dict_into(module: torch.nn.Module, weights: Mapping[str, torch.Tensor], where: str) -> None:
    """``module.load_state_dict`` with a one-line error for a mismatching checkpoint."""
    try:
        module.load_state_dict(weights)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CacheError(f"{where} does not fit this network ({_one_line(exc)}); was it trained with other "
                         f"options?") from None
