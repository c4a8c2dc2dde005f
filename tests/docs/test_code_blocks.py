"""The code blocks of the README and the docs run, in order, against tiny fixture data.

Convention (see DEVELOPERS.md, "Docs code blocks"):

* fenced blocks tagged ``python`` run in one namespace per file (exec, in order);
  ``bash`` / ``sh`` blocks run with ``bash -e -o pipefail``; every other tag (``text``,
  ``console``, ``toml``, none) is not run;
* a runnable block that cannot run here (it downloads a dataset, needs a GPU or a
  cluster, or runs the set-up / the test suite itself) has the line
  ``<!-- docs-test: skip (why) -->`` right above its fence: the test is reported as
  skipped with that reason, never dropped silently;
* a block that shows part of a source file (``...`` standing for what is left out) has
  ``<!-- docs-test: excerpt (path/in/the/repository.py) -->`` instead: its code, without
  comments and with whitespace collapsed, must appear piece by piece (split at the ``...``
  lines), in order, in that file; the file itself is run by its own tests;
* a block that reads the sample recordings (``../shared/data``) is skipped, with that
  reason, where they are absent.

Every file runs in its own sandbox folder (the current directory of its blocks) that
holds what a reader has after ``make demo``: ``.data/nmnist`` (a small synthetic
N-MNIST), ``.venv`` (a link to the running environment), ``configs/`` (a copy of the
repository's recipes and sweeps with ``epochs = 1`` and ``T`` at most 4, so that training
commands run in seconds),
``scripts/`` (a copy, ``prepare_demo_data.py`` writing 10 train / 2 test synthetic
samples per digit: ``$EVENTKIT_SHARED_DATA`` leaves out the real 1000-sample subset) and
``../shared`` (a link to the sample recordings, where present);
``HOME`` is the sandbox and ``$EVENTKIT_DATA`` = ``~/data`` holds small fixture roots of
every dataset (``eventkit.testing``); ``$EVENTKIT_CACHE`` = ``~/.cache/eventkit`` (the
default). Selecting one block (``-k 'README.md:57'``) first runs the earlier blocks of
its file; a block after one that failed fails at once, naming it.
"""
from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# the files whose blocks run: the README and every page of docs/
DOC_FILES = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
RUN_LANGS = {"python": "python", "bash": "bash", "sh": "bash"}
_FENCE = re.compile(r"^```(\S*)[^\n]*$")
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->$")
_SKIP = re.compile(r"^skip\s*\((.+)\)$")
_EXCERPT = re.compile(r"^excerpt\s*\((.+)\)$")
SHARED = REPO.parent / "shared"  # the sample recordings, ../shared/data from the repository


@dataclass(frozen=True)
class Block:
    file: str
    line: int          # line of the opening fence (1-based)
    lang: str          # "python" or "bash"
    code: str
    skip: str | None   # the reason of a docs-test: skip marker
    excerpt: str | None = None  # the file a docs-test: excerpt marker names

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
        skip = excerpt = None
        if marker:
            s, e = _SKIP.match(marker.group(1)), _EXCERPT.match(marker.group(1))
            if not (s or e):
                raise ValueError(f"{file}:{start}: unknown docs-test marker {prev!r} "
                                 f"(want 'skip (why)' or 'excerpt (path)')")
            skip, excerpt = (s.group(1) if s else None), (e.group(1) if e else None)
        if tag in RUN_LANGS:
            blocks.append(Block(file, start + 1, RUN_LANGS[tag], "\n".join(lines[start + 1:j]), skip, excerpt))
        elif marker:
            raise ValueError(f"{file}:{start}: a docs-test marker above a block that does not run ({tag or 'no tag'})")
        i = j + 1
    return blocks


ALL_BLOCKS = [b for f in DOC_FILES for b in read_blocks(f)]


def _normalized(code: str) -> str:
    """``code`` without comments (a ``#`` at a line start or after a space) and with all
    whitespace runs as one space: an excerpt may wrap lines and comment differently."""
    return " ".join(" ".join(re.sub(r"(^|\s)#.*$", "", line) for line in code.splitlines()).split())


def check_excerpt(block: Block) -> None:
    """Each piece of ``block`` between ``...`` lines appears, in order, in the file it names."""
    source = REPO / block.excerpt
    assert source.is_file(), f"{block.id}: the excerpt's file {block.excerpt} does not exist"
    text = _normalized(source.read_text(encoding="utf-8"))
    pos = 0
    for piece in re.split(r"(?m)^\s*\.\.\.\s*$", block.code):
        words = _normalized(piece)
        if not words:
            continue
        found = text.find(words, pos)
        assert found >= 0, f"{block.id}: not in {block.excerpt} (after what matched before):\n{piece.strip()}"
        pos = found + len(words)


def needs_missing_recordings(block: Block) -> bool:
    return "../shared/" in block.code and not (SHARED / "data").is_dir()


class Sandbox:
    """One file's folder, environment and Python namespace; remembers which blocks ran."""

    def __init__(self, path: Path):
        from eventkit import testing as T
        from eventkit.datasets.synthetic import make_synthetic_nmnist_root

        self.path = path
        data = path / "data"
        make_synthetic_nmnist_root(path / ".data" / "nmnist", per_class_train=4, per_class_test=2)
        # 10 per digit: enough to hold out a validation split (val_fraction 0.1 needs >= 10 per class)
        make_synthetic_nmnist_root(data / "nmnist", per_class_train=10, per_class_test=2, seed=1)
        # DVS Gesture: one training recording (12 samples), the recipes' networks are large at 128x128
        gesture = functools.partial(T.make_dvsgesture_root, train_trials=("user01_natural",))
        for name, make in (("cifar10dvs", T.make_cifar10dvs_root), ("dvsgesture", gesture),
                           ("shd", T.make_shd_root), ("ssc", T.make_ssc_root),
                           ("ntidigits18", T.make_ntidigits18_root), ("mnist", T.make_mnist_root),
                           ("fashionmnist", T.make_fashionmnist_root), ("cifar10", T.make_cifar10_root)):
            make(data / name)
        for recipe in (REPO / "configs").rglob("*.toml"):  # one epoch, at most 4 steps: the commands run quickly
            text = re.sub(r"(?m)^epochs\s*=\s*\d+", "epochs = 1", recipe.read_text(encoding="utf-8"))
            text = re.sub(r"(?m)^T\s*=\s*(\d+)", lambda m: f"T = {min(int(m.group(1)), 4)}", text)
            copy = path / recipe.relative_to(REPO)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(text, encoding="utf-8")
        (path / "scripts").mkdir()
        for script in (REPO / "scripts").glob("*.py"):  # the demo set: 10 train / 2 test samples per digit
            text = re.sub(r"(?m)^PER_CLASS = \(\d+, \d+\)", "PER_CLASS = (10, 2)", script.read_text(encoding="utf-8"))
            (path / "scripts" / script.name).write_text(text, encoding="utf-8")
        (path / ".venv").symlink_to(Path(sys.prefix))
        shared = path.parent / "shared"
        if SHARED.is_dir() and not shared.exists():
            shared.symlink_to(SHARED)
        # $EVENTKIT_SHARED_DATA: the sample recordings but the 1000 NMNISTsmall samples, so that
        # prepare_demo_data.py writes its small synthetic set
        recordings = path / "shared-data"
        recordings.mkdir()
        for item in sorted((SHARED / "data").glob("*")) if (SHARED / "data").is_dir() else []:
            if item.name == "nmnist":
                (recordings / "nmnist").mkdir()
                for f in item.iterdir():
                    if not f.name.startswith("NMNISTsmall"):
                        (recordings / "nmnist" / f.name).symlink_to(f)
            else:
                (recordings / item.name).symlink_to(item)
        self.env = {**os.environ, "HOME": str(path), "EVENTKIT_DATA": str(data),
                    "EVENTKIT_CACHE": str(path / ".cache" / "eventkit"),
                    "EVENTKIT_SHARED_DATA": str(recordings),
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                    "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
        self.namespace: dict = {"__name__": "__docs__"}
        self.done: set[int] = set()
        self.failed: str | None = None  # the first block that failed

    def run(self, block: Block, monkeypatch) -> None:
        if self.failed is not None:
            pytest.fail(f"{block.id}: not run: the earlier block {self.failed} failed")
        self.failed = block.id
        self._run(block, monkeypatch)
        self.failed = None
        self.done.add(block.line)

    def _run(self, block: Block, monkeypatch) -> None:
        if block.excerpt:
            check_excerpt(block)
        elif block.lang == "bash":
            r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.code], cwd=self.path, env=self.env,
                               capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, (f"{block.id}: bash block failed (exit {r.returncode})\n{block.code}\n"
                                       f"--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}")
        else:
            with monkeypatch.context() as m:
                m.chdir(self.path)
                for key in ("HOME", "EVENTKIT_DATA", "EVENTKIT_CACHE", "EVENTKIT_SHARED_DATA", "MPLBACKEND"):
                    m.setenv(key, self.env[key])
                exec(compile(block.code, block.id, "exec"), self.namespace)  # noqa: S102 - the docs' own code


class _Sandboxes(dict):
    """A file's sandbox, made when one of its blocks first runs."""

    def __init__(self, tmp_path_factory):
        super().__init__()
        self.factory = tmp_path_factory

    def __missing__(self, file: str) -> Sandbox:
        box = self[file] = Sandbox(self.factory.mktemp(Path(file).stem))
        return box


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory):
    return _Sandboxes(tmp_path_factory)


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: b.id)
def test_doc_block_runs(block: Block, sandboxes, monkeypatch):
    if block.skip:
        pytest.skip(f"docs-test: skip ({block.skip})")
    if needs_missing_recordings(block):
        pytest.skip(f"reads the sample recordings, absent here ({SHARED / 'data'})")
    box = sandboxes[block.file]
    for earlier in ALL_BLOCKS:  # what a reader ran before this block
        same_file_before = earlier.file == block.file and earlier.line < block.line
        runs = not earlier.skip and not needs_missing_recordings(earlier)
        if same_file_before and runs and earlier.line not in box.done:
            box.run(earlier, monkeypatch)
    box.run(block, monkeypatch)


def test_every_doc_file_has_runnable_blocks():
    """The parser finds the blocks (a broken fence pattern would make the test above vacuous)."""
    for f in DOC_FILES:
        text = (REPO / f).read_text(encoding="utf-8")
        if re.search(r"(?m)^```(python|bash|sh)\b", text):
            assert [b for b in read_blocks(f) if not b.skip], f"{f}: no runnable block found"


def test_no_running_block_installs_packages():
    """A block that installs packages would change the environment the tests run in (or reach
    a registry): it must carry a skip marker."""
    installs = re.compile(r"(?m)^\s*(python3? -m )?(pip|uv pip|conda|apt-get|apt) install\b")
    assert [b.id for b in ALL_BLOCKS if installs.search(b.code) and not b.skip] == []


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


def test_excerpt_rules(tmp_path, monkeypatch):
    """An excerpt matches its file piece by piece (comments and line breaks aside), in order."""
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    (tmp_path / "m.py").write_text("A = 1  # one\n\n\ndef f(x,\n      y):\n    z = x + y\n    return z\n")
    fence = "<!-- docs-test: excerpt (m.py) -->\n```python\n{}\n```\n"
    (tmp_path / "ok.md").write_text(fence.format("A = 1    # the first\ndef f(x, y):\n    ...\n    return z"))
    (block,) = read_blocks("ok.md")
    assert block.excerpt == "m.py" and block.skip is None
    check_excerpt(block)
    for code in ("A = 2", "def f(x, y):\n    ...\nA = 1"):  # a changed value; the wrong order
        (tmp_path / "bad.md").write_text(fence.format(code))
        with pytest.raises(AssertionError, match="not in m.py"):
            check_excerpt(read_blocks("bad.md")[0])
