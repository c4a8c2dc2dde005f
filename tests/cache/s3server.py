"""An S3-compatible server on 127.0.0.1 for the object-store tests: ``moto[server]`` in a child process.

The server logs one line per HTTP request (``"GET /bucket/key HTTP/1.1" 200``); tests count the
requests an operation makes by reading the lines it added, whatever process made them.
"""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

_REQUEST = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+"')
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def request_kind(path: str) -> str:
    """What a request path touches: a ``frames``/``label``/``n_events``/``sample_id`` chunk, a ``marker``,
    ``metadata`` (a zarr.json), a ``list``ing, or ``other``."""
    if "?" in path:
        return "list"
    for name in ("frames/c/", "label/c/", "n_events/c/", "sample_id/c/"):
        if name in path:
            return name[:-3]
    if "/completion/" in path and not path.endswith("zarr.json"):
        return "marker"
    return "metadata" if path.endswith("zarr.json") else "other"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """A running moto server: ``endpoint``, ``storage_options`` for s3fs, ``bucket()``, request counting."""

    def __init__(self, log: Path):
        pytest.importorskip("moto.server", reason="moto[server] is not installed (pip install 'eventkit-snn[dev]')")
        pytest.importorskip("s3fs", reason="s3fs is not installed (pip install 'eventkit-snn[s3]')")
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log_fh = open(log, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self._log_fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"moto server exited: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        else:
            self.close()
            raise RuntimeError("moto server did not start within 60 s")
        self.storage_options = {"endpoint_url": self.endpoint, "key": "testing", "secret": "testing",
                                "client_kwargs": {"region_name": "us-east-1"}}

    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(**self.storage_options, skip_instance_cache=True)

    def bucket(self) -> str:
        """A new empty bucket's name."""
        name = f"ek-{uuid.uuid4().hex[:16]}"
        self.fs().call_s3("create_bucket", Bucket=name)
        return name

    def mark(self) -> int:
        """A position in the request log (see :meth:`requests`)."""
        time.sleep(0.3)  # let the server flush the lines of requests already answered
        return self.log.stat().st_size

    def requests(self, since: int, bucket: str | None = None) -> list[tuple[str, str]]:
        """``(method, path)`` of the requests logged after ``since`` (only those to ``bucket`` if given)."""
        time.sleep(0.3)
        with open(self.log, "rb") as fh:
            fh.seek(since)
            text = _COLOUR.sub("", fh.read().decode("utf-8", "replace"))
        out = [(m["method"], m["path"]) for m in _REQUEST.finditer(text)]
        return [r for r in out if bucket is None or r[1].startswith(f"/{bucket}")]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log_fh.close()
