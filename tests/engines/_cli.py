"""Helpers of the engine tests: run the ``eventkit`` command, read a store's files (local or S3)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

CLI = [sys.executable, "-c", "from eventkit.cli.main import cli; cli()"]


def env_with(**extra: str | None) -> dict[str, str]:
    """This process's environment with ``extra`` set (None removes a variable)."""
    env = dict(os.environ)
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def eventkit(*args, timeout: float, env: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess:
    """``eventkit ARGS`` in a subprocess; the timeout is the guard against a hang (raises TimeoutExpired)."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=cwd)


def start_eventkit(*args, env: dict[str, str] | None = None, cwd=None) -> subprocess.Popen:
    """``eventkit ARGS`` started in the background (stdout/stderr captured)."""
    return subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=cwd)


def stores_of(result: subprocess.CompletedProcess) -> dict[str, str]:
    """``{split: url}`` of a successful ``eventkit frames --json``: its stdout is exactly one JSON object."""
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    (line,) = result.stdout.strip().splitlines()
    return json.loads(line)["stores"]


def _fs(url: str):
    """A filesystem that never serves a cached listing (each call asks the server)."""
    import fsspec

    url = str(url)
    if "://" not in url:
        return fsspec.filesystem("file"), str(Path(url).absolute())
    protocol = url.split("://", 1)[0]
    options = {"skip_instance_cache": True, "use_listings_cache": False} if protocol == "s3" else {}
    fs = fsspec.filesystem(protocol, **options)
    return fs, fs._strip_protocol(url)


def store_tree(url: str) -> dict[str, bytes]:
    """Every file (object) of a store, keyed by its path relative to the store: local or S3 alike."""
    fs, root = _fs(url)
    paths = sorted(fs.find(root))
    contents = fs.cat(paths) if paths else {}
    return {p[len(root):].lstrip("/"): contents[p] for p in paths}


def count_markers(url: str) -> int:
    """Completion markers written so far under a cache root or store (0 when nothing is there yet)."""
    fs, root = _fs(url)
    try:
        return sum(1 for p in fs.find(root) if "/completion/" in p and p.endswith(".json"))
    except FileNotFoundError:
        return 0


def wait_for(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    """Poll ``condition`` until true; AssertionError naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """Assert ``result`` is a clean failure: exit 2, nothing on stdout, one ``error: ...`` line, no traceback."""
    assert result.returncode == 2, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == "", result.stdout
    return lines[0]
