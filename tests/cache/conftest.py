"""Fixtures of the cache tests: an S3-compatible server (moto) started once per session on 127.0.0.1."""
from __future__ import annotations

import pytest

from tests.cache.s3server import S3Server


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A running moto S3 server (skipped with the reason when moto or s3fs is not installed)."""
    server = S3Server(tmp_path_factory.mktemp("moto") / "requests.log")
    yield server
    server.close()
