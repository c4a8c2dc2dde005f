"""Shared fixtures: the real recordings in ../shared/data (skipped with a reason where absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EVENTKIT_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_file(relpath: str) -> Path:
    """Path of a real recording under ../shared/data, or skip the test with a clear reason."""
    path = SHARED_DATA / relpath
    if not path.exists():
        pytest.skip(f"real sample {relpath} not found under {SHARED_DATA} (set EVENTKIT_SHARED_DATA)")
    return path


@pytest.fixture
def shared_data() -> Path:
    """The folder of real recordings (../shared/data), or skip."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real samples folder {SHARED_DATA} not found (set EVENTKIT_SHARED_DATA)")
    return SHARED_DATA
