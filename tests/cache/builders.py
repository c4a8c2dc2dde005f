"""Builds in child processes for the concurrency and kill tests, and store comparison on any location.

``builder_cmd(kwargs)`` runs ``build_cache("nmnist", **kwargs)`` in a new Python process. With
``go=<file>`` it waits for that file first (so several builders start together); with
``kill_at=N`` it SIGKILLs itself at the N-th file write of the store (``count_writes=<file>``
appends one line per write instead): the write is cut between its temporary file and the
rename (local folders) or just before the PUT (object stores).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_CHILD = r'''
import json, os, signal, sys, time
args = json.loads(sys.argv[1])
go, kill_at, count = args.pop("go", None), args.pop("kill_at", None), args.pop("count_writes", None)
import tempfile
import eventkit.cache.objects as objects
main_pid = os.getpid()
counter = count or tempfile.mktemp(prefix="ek-writes-")  # shared by this process and its sandbox child

def hook(what):
    fd = os.open(counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (what + "\n").encode())
    finally:
        os.close(fd)
    with open(counter) as fh:
        n = len(fh.read().splitlines())
    if kill_at is not None and n >= kill_at:
        os.kill(main_pid, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

real_replace, real_link, real_pipe = objects.os.replace, objects.os.link, objects.StoreIO.put

class _Os:
    def __getattr__(self, name):
        return getattr(os, name)
    def replace(self, src, dst):
        hook(f"replace {dst}")
        return real_replace(src, dst)
    def link(self, src, dst):
        hook(f"link {dst}")
        return real_link(src, dst)

objects.os = _Os()
real_put, real_put_new = objects.StoreIO.put, objects.StoreIO.put_new
def put(self, key, data, **kw):
    if not self.local:
        hook(f"put {key}")
    return real_put(self, key, data, **kw)
def put_new(self, key, data, **kw):
    if not self.local:
        hook(f"put_new {key}")
    return real_put_new(self, key, data, **kw)
objects.StoreIO.put, objects.StoreIO.put_new = put, put_new
while go and not os.path.exists(go):
    time.sleep(0.01)
from eventkit.build import build_cache
result = build_cache("nmnist", **args)
print(json.dumps(result.to_json()))
'''


def builder_cmd(kwargs: dict) -> list[str]:
    """The command running ``build_cache("nmnist", **kwargs)`` (JSON-able values) in a child process."""
    return [sys.executable, "-c", _CHILD, json.dumps({k: (str(v) if isinstance(v, Path) else v)
                                                      for k, v in kwargs.items()})]


def run_builder(kwargs: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(builder_cmd(kwargs), capture_output=True, text=True, timeout=timeout, cwd=REPO)


def tree(url: str, storage_options: dict | None = None) -> dict[str, bytes]:
    """Every file of a store (relative key -> bytes), local folder or URL."""
    from eventkit.cache.objects import StoreIO

    io = StoreIO(url, storage_options)
    files = io.list_files()
    return {key: io.get(key) for key in sorted(files)}
