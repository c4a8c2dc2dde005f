"""The Python examples of docs/frames.md, docs/nir.md and docs/views.md run, in order, in a
scratch folder (each page's blocks share one namespace, as a reader would run them)."""
from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

PAGES = ["frames.md", "nir.md", "views.md"]


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page, tmp_path, monkeypatch):
    if page != "frames.md":
        pytest.importorskip("nir")
        pytest.importorskip("matplotlib")
    text = (REPO / "docs" / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, f"docs/{page} has no Python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc_example__"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/{page}[block {i}]", "exec"), namespace)
