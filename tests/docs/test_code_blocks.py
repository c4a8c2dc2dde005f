"""The code blocks of the README and the docs run, in order, against tiny fixture data.

Convention (see DEVELOPERS.md, "Docs code blocks"):

* fenced blocks tagged ``python`` run in one namespace per file (exec, in order);
  ``bash`` / ``sh`` blocks run with ``bash -e -o pipefail``; every other tag (``text``,
  ``console``, ``toml``, none) is not run;
* a runnable block that cannot run here (it downloads a dataset, needs a GPU or a
  cluster, or runs the set-up / the test suite itself) has the line
  ``<!-- docs-test: skip (why) -->`` right above its fence: the test is reported as
  skipped with that reason, never dropped silently.

Every file runs in its own sandbox folder (the current directory of its blocks) that
holds what a reader has after ``make demo``: ``.data/nmnist`` (a small synthetic
N-MNIST), ``.venv`` (a link to the running environment) and ``configs/`` (a copy of the
repository's recipes with ``epochs = 1``, so that training commands run in seconds);
``HOME`` is the
sandbox and ``$EVENTKIT_DATA`` = ``~/data`` holds small fixture roots of every dataset
(``eventkit.testing``); ``$EVENTKIT_CACHE`` = ``~/cache``. Selecting one block
(``-k 'README.md:57'``) first runs the earlier blocks of its file.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# the files whose blocks run; add a doc here once its blocks run against the sandbox
DOC_FILES = ["README.md", "docs/index.md", "docs/datasets.md"]
RUN_LANGS = {"python": "python", "bash": "bash", "sh": "bash"}
_FENCE = re.compile(r"^```(\S*)[^\n]*$")
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->$")
_SKIP = re.compile(r"^skip\s*\((.+)\)$")


@dataclass(frozen=True)
class Block:
    file: str
    line: int          # line of the opening fence (1-based)
    lang: str          # "python" or "bash"
    code: str
    skip: str | None   # the reason of a docs-test: skip marker

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def read_blocks(file: str) -> list[Block]:
    """The runnable blocks of ``file`` (relative to the repository), in order."""
    lines = (REPO / file).read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, tag = i, m.group(1).lower()
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        prev = next((lines[k].strip() for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        marker = _MARKER.match(prev)
        skip = None
        if marker:
            s = _SKIP.match(marker.group(1))
            if not s:
                raise ValueError(f"{file}:{start}: unknown docs-test marker {prev!r} (want 'skip (why)')")
            skip = s.group(1)
        if tag in RUN_LANGS:
            blocks.append(Block(file, start + 1, RUN_LANGS[tag], "\n".join(lines[start + 1:j]), skip))
        elif marker:
            raise ValueError(f"{file}:{start}: a docs-test marker above a block that does not run ({tag or 'no tag'})")
        i = j + 1
    return blocks


ALL_BLOCKS = [b for f in DOC_FILES for b in read_blocks(f)]


class Sandbox:
    """One file's folder, environment and Python namespace; remembers which blocks ran."""

    def __init__(self, path: Path):
        from eventkit import testing as T
        from eventkit.datasets.synthetic import make_synthetic_nmnist_root

        self.path = path
        data = path / "data"
        make_synthetic_nmnist_root(path / ".data" / "nmnist", per_class_train=4, per_class_test=2)
        make_synthetic_nmnist_root(data / "nmnist", per_class_train=4, per_class_test=2, seed=1)
        for name, make in (("cifar10dvs", T.make_cifar10dvs_root), ("dvsgesture", T.make_dvsgesture_root),
                           ("shd", T.make_shd_root), ("ssc", T.make_ssc_root),
                           ("ntidigits18", T.make_ntidigits18_root), ("mnist", T.make_mnist_root),
                           ("fashionmnist", T.make_fashionmnist_root), ("cifar10", T.make_cifar10_root)):
            make(data / name)
        (path / "configs").mkdir()
        for recipe in (REPO / "configs").glob("*.toml"):  # one epoch: the commands run, quickly
            text = re.sub(r"(?m)^epochs\s*=\s*\d+", "epochs = 1", recipe.read_text(encoding="utf-8"))
            (path / "configs" / recipe.name).write_text(text, encoding="utf-8")
        (path / ".venv").symlink_to(Path(sys.prefix))
        self.env = {**os.environ, "HOME": str(path), "EVENTKIT_DATA": str(data), "EVENTKIT_CACHE": str(path / "cache"),
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                    "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
        self.namespace: dict = {"__name__": "__docs__"}
        self.done: set[int] = set()

    def run(self, block: Block, monkeypatch) -> None:
        if block.lang == "bash":
            r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.code], cwd=self.path, env=self.env,
                               capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, (f"{block.id}: bash block failed (exit {r.returncode})\n{block.code}\n"
                                       f"--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}")
        else:
            with monkeypatch.context() as m:
                m.chdir(self.path)
                for key in ("HOME", "EVENTKIT_DATA", "EVENTKIT_CACHE", "MPLBACKEND"):
                    m.setenv(key, self.env[key])
                exec(compile(block.code, block.id, "exec"), self.namespace)  # noqa: S102 - the docs' own code
        self.done.add(block.line)


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory):
    return {f: Sandbox(tmp_path_factory.mktemp(Path(f).stem)) for f in DOC_FILES}


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: b.id)
def test_doc_block_runs(block: Block, sandboxes, monkeypatch):
    if block.skip:
        pytest.skip(f"docs-test: skip ({block.skip})")
    box = sandboxes[block.file]
    for earlier in ALL_BLOCKS:  # what a reader ran before this block
        same_file_before = earlier.file == block.file and earlier.line < block.line
        if same_file_before and not earlier.skip and earlier.line not in box.done:
            box.run(earlier, monkeypatch)
    box.run(block, monkeypatch)


def test_every_doc_file_has_runnable_blocks():
    """The parser finds the blocks (a broken fence pattern would make the test above vacuous)."""
    for f in DOC_FILES:
        assert [b for b in read_blocks(f) if not b.skip], f"{f}: no runnable block found"


def test_marker_rules(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    (tmp_path / "a.md").write_text("<!-- docs-test: skip (needs a GPU) -->\n```python\nx = 1\n```\n\n```text\nno\n```\n"
                                   "```bash\necho hi\n```\n")
    assert [(b.line, b.lang, b.skip) for b in read_blocks("a.md")] == [(2, "python", "needs a GPU"), (9, "bash", None)]
    (tmp_path / "b.md").write_text("<!-- docs-test: skp -->\n```bash\necho\n```\n")
    with pytest.raises(ValueError, match="unknown docs-test marker"):
        read_blocks("b.md")
    (tmp_path / "c.md").write_text("<!-- docs-test: skip (x) -->\n```text\necho\n```\n")
    with pytest.raises(ValueError, match="does not run"):
        read_blocks("c.md")
