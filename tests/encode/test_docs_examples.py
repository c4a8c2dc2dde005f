"""The Python examples of docs/audio-and-encoders.md run without error."""
from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

DOC = REPO / "docs" / "audio-and-encoders.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S) if DOC.exists() else []


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_example_runs(index, capsys):
    exec(compile(BLOCKS[index], f"{DOC.name}[block {index}]", "exec"), {"__name__": "__doc_example__"})


def test_doc_has_examples():
    assert len(BLOCKS) >= 5
