"""``eventkit data fetch`` against a local HTTP server on 127.0.0.1 (never the internet).

The server (a threaded ``http.server``) serves release-style archives written by
``eventkit.testing.make_release_archives`` and honours ``Range`` requests; per path it can
answer 404 or drop the connection half-way through the body (once).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventkit import testing as T
from eventkit.datasets import get_dataset, list_samples
from eventkit.datasets.fetch import download_archive, fetch_dataset
from eventkit.errors import DatasetNotFound


class _Server:
    """Files by URL path; ``missing`` paths answer 404; ``drop_once`` paths send half the body, then close."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.missing: set[str] = set()
        self.drop_once: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.bytes_sent: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                data = server.files.get(self.path)
                if data is None or self.path in server.missing:
                    self.send_error(404)
                    return
                start = 0
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if self.path in server.drop_once:
                    server.drop_once.discard(self.path)
                    body = body[: len(body) // 2]  # then the connection closes: a short body
                self.wfile.write(body)
                server.bytes_sent[self.path] = server.bytes_sent.get(self.path, 0) + len(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _local_nmnist(tmp_path: Path, server: _Server, *, mirrors: int = 1):
    """nmnist's spec with its archives served by ``server`` (fixture bytes, their true md5):
    ``/m<k>/<file>`` for mirror k = 0..mirrors-1, the manifest's url first. Train.zip is
    ~400 KB (several read chunks), Test.zip ~200 KB."""
    archives = T.make_release_archives("nmnist", tmp_path / "release", per_class_train=2, per_class_test=1,
                                       events=(3000, 5000))
    spec = get_dataset("nmnist")
    local = []
    for a in spec.archives:
        data = archives[a.file].read_bytes()
        for k in range(mirrors):
            server.files[f"/m{k}/{a.file}"] = data
        urls = [f"{server.url}/m{k}/{a.file}" for k in range(mirrors)]
        local.append(dataclasses.replace(a, url=urls[0], mirrors=tuple(urls[1:]), checksum=_md5(data)))
    return dataclasses.replace(spec, archives=tuple(local)), archives


def test_fetch_downloads_checks_and_unpacks(tmp_path, server):
    spec, archives = _local_nmnist(tmp_path, server)
    root = tmp_path / "data" / "nmnist"
    result = fetch_dataset(spec, root, retries=0)
    assert sorted(Path(f).name for f in result.files) == ["Test.zip", "Train.zip"]
    for name, src in archives.items():
        assert (root / "download" / name).read_bytes() == src.read_bytes()
    assert len(list_samples(spec, root, "train")) == 20 and len(list_samples(spec, root, "test")) == 10
    assert not list((root / "download").glob("*.part"))
    # a second run finds the files with the right digest: no request at all
    n = len(server.requests)
    fetch_dataset(spec, root, retries=0)
    assert len(server.requests) == n


def test_404_from_the_first_mirror_falls_back_to_the_second(tmp_path, server):
    spec, archives = _local_nmnist(tmp_path, server, mirrors=2)
    server.missing = {"/m0/Train.zip"}
    root = tmp_path / "nmnist"
    fetch_dataset(spec, root, retries=2)
    assert (root / "download" / "Train.zip").read_bytes() == archives["Train.zip"].read_bytes()
    train_requests = [p for p, _ in server.requests if p.endswith("Train.zip")]
    assert train_requests == ["/m0/Train.zip", "/m1/Train.zip"]  # a 404 is not retried


def test_dropped_connection_resumes_with_a_range_request(tmp_path, server):
    spec, archives = _local_nmnist(tmp_path, server)
    data = archives["Train.zip"].read_bytes()
    server.drop_once = {"/m0/Train.zip"}
    root = tmp_path / "nmnist"
    fetch_dataset(spec, root, retries=2)
    assert (root / "download" / "Train.zip").read_bytes() == data
    (first, first_range), (second, second_range) = [(p, r) for p, r in server.requests if p.endswith("Train.zip")]
    assert first == second == "/m0/Train.zip" and first_range is None
    # the second request continues where the first one stopped (up to half the body: what arrived
    # in whole read chunks), not from 0; the server sent half, then the rest from there
    resumed_at = int(second_range.removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= len(data) // 2 and len(data) > 200_000
    assert server.bytes_sent["/m0/Train.zip"] == len(data) // 2 + len(data) - resumed_at


def _test_zip_with_a_part(tmp_path: Path, server: _Server):
    """nmnist's Test.zip archive, its bytes, and a download folder holding its first 1000 bytes as a part."""
    spec, archives = _local_nmnist(tmp_path, server)
    data = archives["Test.zip"].read_bytes()
    download = tmp_path / "nmnist" / "download"
    download.mkdir(parents=True)
    (download / "Test.zip.part").write_bytes(data[:1000])
    (a,) = [a for a in spec.archives if a.file == "Test.zip"]
    return a, data, download


def test_part_left_by_an_interrupted_run_is_continued(tmp_path, server):
    a, data, download = _test_zip_with_a_part(tmp_path, server)
    path = download_archive(a, download, retries=0)
    assert path.read_bytes() == data
    assert server.requests == [("/m0/Test.zip", "bytes=1000-")]
    assert server.bytes_sent["/m0/Test.zip"] == len(data) - 1000


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_lines_in_bytes_and_no_bar_with_lines_mode(tmp_path, server):
    """Progress goes through eventkit.progress: plain lines off a terminal (bytes with SI prefixes,
    the resumed part named, a final line); ``progress="lines"`` keeps a terminal free of bars."""
    a, data, download = _test_zip_with_a_part(tmp_path, server)
    log = io.StringIO()
    download_archive(a, download, retries=0, stream=log, interval_s=1e-9)
    lines = log.getvalue().splitlines()
    assert lines[0] == "Test.zip: resuming at 0.0 MB"
    assert lines[-1].startswith(f"Test.zip: {len(data) / 1e3:.1f} kB/{len(data) / 1e3:.1f} kB (1.0 kB done before), ")
    assert lines[-1].endswith(", done") and "\r" not in log.getvalue()
    tty = _Terminal()
    download_archive(a, tmp_path / "again", retries=0, stream=tty, interval_s=1e-9, progress="lines")
    assert "\r" not in tty.getvalue() and tty.getvalue().rstrip().endswith(", done")
    quiet = io.StringIO()
    download_archive(a, tmp_path / "quiet", retries=0, stream=quiet, progress=False)
    assert quiet.getvalue() == ""


def test_wrong_checksum_is_refused_and_nothing_is_kept(tmp_path, server):
    spec, _ = _local_nmnist(tmp_path, server, mirrors=2)
    bad = tuple(dataclasses.replace(a, checksum="0" * 32) for a in spec.archives)
    download = tmp_path / "nmnist" / "download"
    with pytest.raises(DatasetNotFound) as info:
        download_archive(bad[0], download, retries=3)
    msg = str(info.value)
    # both mirrors tried once each (a wrong digest is not retried on the same URL), both named
    assert msg.count("checksum mismatch") == 2 and "/m0/Train.zip" in msg and "/m1/Train.zip" in msg
    assert "0" * 32 in msg
    assert list(download.iterdir()) == []  # neither the file nor a .part is left behind


def test_a_truncated_part_with_a_wrong_digest_is_not_reused(tmp_path, server):
    """Garbage in a .part (another file, an older release) fails the checksum once, is deleted,
    and the next URL starts from byte 0."""
    spec, archives = _local_nmnist(tmp_path, server, mirrors=2)
    data = archives["Train.zip"].read_bytes()
    download = tmp_path / "dl"
    download.mkdir()
    (download / "Train.zip.part").write_bytes(b"\xff" * 500)
    (a,) = [a for a in spec.archives if a.file == "Train.zip"]
    assert download_archive(a, download, retries=0).read_bytes() == data
    assert server.requests == [("/m0/Train.zip", "bytes=500-"), ("/m1/Train.zip", None)]


def test_every_url_failing_names_each(tmp_path, server):
    spec, _ = _local_nmnist(tmp_path, server, mirrors=2)
    server.missing = {"/m0/Train.zip", "/m1/Train.zip"}
    with pytest.raises(DatasetNotFound,
                       match=r"could not download Train.zip: .*m0/Train.zip: HTTP 404; .*m1/Train.zip: HTTP 404"):
        fetch_dataset(spec, tmp_path / "nmnist", retries=1)


def test_form_gated_dataset_says_where_to_get_it(tmp_path, server):
    root = tmp_path / "dvsgesture"
    with pytest.raises(DatasetNotFound) as info:
        fetch_dataset("dvsgesture", root)
    msg = str(info.value)
    assert "DvsGesture.tar.gz" in msg and "ibm.ent.box.com" in msg and "browser" in msg
    assert f"put it in {root / 'download'}/" in msg
    assert server.requests == []  # nothing downloaded


def test_cli_fetch_plain_progress_and_json(tmp_path, server, monkeypatch):
    import eventkit.datasets.fetch as fetch_module
    from eventkit.cli.main import cli

    spec, _ = _local_nmnist(tmp_path, server)
    monkeypatch.setattr(fetch_module, "get_dataset", lambda name: spec)
    root = tmp_path / "nmnist"
    res = CliRunner().invoke(cli, ["data", "fetch", "nmnist", "--root", str(root), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["dataset"] == "nmnist" and len(out["unpacked"]) == 2
    # stderr (not a terminal here) has plain lines, no progress-bar control characters
    assert "nmnist: Train.zip from http://127.0.0.1" in res.stderr and "\r" not in res.stderr
    assert len(list_samples(spec, root, "test")) == 10


def test_cli_mirror_option_is_tried_first(tmp_path, server, monkeypatch):
    """``--mirror BASE`` is asked for ``BASE/<file>`` before the manifest's URLs."""
    import eventkit.datasets.fetch as fetch_module
    from eventkit.cli.main import cli

    spec, archives = _local_nmnist(tmp_path, server)
    for name, src in archives.items():
        server.files[f"/copy/{name}"] = src.read_bytes()
    monkeypatch.setattr(fetch_module, "get_dataset", lambda name: spec)
    res = CliRunner().invoke(cli, ["data", "fetch", "nmnist", "--root", str(tmp_path / "n"),
                                   "--mirror", f"{server.url}/copy/", "--retries", "0"])
    assert res.exit_code == 0, res.output
    assert [p for p, _ in server.requests] == ["/copy/Train.zip", "/copy/Test.zip"]
