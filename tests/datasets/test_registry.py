"""The datasets package: no import cycle (DatasetSpec is pure data), and a layout family is one module."""
from __future__ import annotations

import numpy as np
import pytest

from eventkit.errors import EventFileError


def _datasets_import_graph() -> dict[str, set[str]]:
    """Module -> the eventkit.datasets modules it imports (function-local imports included,
    ``if TYPE_CHECKING:`` blocks excluded), read from the source with ast."""
    import ast
    from pathlib import Path

    import eventkit.datasets as pkg

    base = Path(pkg.__file__).parent
    modules = {}
    for f in base.rglob("*.py"):
        rel = f.relative_to(base).with_suffix("").parts
        name = ".".join(("eventkit", "datasets") + (rel[:-1] if rel[-1] == "__init__" else rel))
        modules[name] = f

    def targets(node, current: str) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{current}: relative import (the package uses absolute imports)"
            return [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names]
        return []

    graph: dict[str, set[str]] = {}
    for name, f in modules.items():
        tree = ast.parse(f.read_text())
        skip = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip |= {id(n) for n in ast.walk(node)}
        graph[name] = {t for node in ast.walk(tree) if id(node) not in skip
                       for t in targets(node, name) if t in modules and t != name}
    return graph


def test_datasets_modules_import_without_cycles():
    """spec (pure data) <- family <- families/* <- registry <- manifest <- access <- verify/fetch:
    no module of the package imports one that imports it back, even inside a function."""
    graph = _datasets_import_graph()
    assert graph["eventkit.datasets.spec"] == set(), "DatasetSpec is pure data: spec.py imports nothing of the package"
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(path + [nxt])}")
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])


def test_a_family_is_one_module(tmp_path, monkeypatch):
    """A module dropped into eventkit.datasets.families (here a toy one-file-per-sample layout)
    is a family: a manifest naming it parses and its data are listed and read."""
    import sys

    import eventkit.datasets.families as families
    from eventkit.datasets import iter_events, list_samples, registry
    from eventkit.datasets.manifest import parse_manifest

    pkg_dir = tmp_path / "extra_families"
    pkg_dir.mkdir()
    (pkg_dir / "toyfiles.py").write_text(
        "import numpy as np\n"
        "from eventkit.datasets.family import Family, Sample, checked_events, relative_id\n"
        "from eventkit.events import make_events\n"
        "def discover(spec, root, split):\n"
        "    files = sorted((root / split).glob('*.npy'))\n"
        "    if not files:\n"
        "        raise spec.not_found(root, 'no files')\n"
        "    return [Sample(relative_id(root, f), f, int(f.stem[-1]) % len(spec.classes)) for f in files]\n"
        "def iter_events(spec, samples):\n"
        "    for s in samples:\n"
        "        a = np.load(s.path)\n"
        "        yield checked_events(spec, make_events(a[0], a[1], a[2], a[3]), s)\n"
        "FAMILY = Family('toyfiles', discover, iter_events=iter_events)\n")
    monkeypatch.setattr(families, "__path__", [*families.__path__, str(pkg_dir)])
    monkeypatch.delitem(sys.modules, "eventkit.datasets.families.toyfiles", raising=False)
    registry._registry.cache_clear()
    try:
        manifest = (b'name = "toy"\nkind = "vision"\nsensor_size = [4, 4, 2]\nclasses = ["a", "b"]\n'
                    b'splits = ["train"]\n[layout]\nfamily = "toyfiles"\n')
        spec = parse_manifest(manifest)
        (tmp_path / "root" / "train").mkdir(parents=True)
        np.save(tmp_path / "root/train/s1.npy", np.array([[0, 5], [1, 3], [2, 0], [1, 0]]))
        (s,) = list_samples(spec, tmp_path / "root", "train")
        assert (s.sample_id, s.label) == ("train/s1.npy", 1)
        (ev,) = iter_events(spec, [s])
        assert ev["x"].tolist() == [1, 3] and ev["t"].tolist() == [0, 5]
        with pytest.raises(EventFileError, match="must be one of"):
            parse_manifest(manifest.replace(b"toyfiles", b"nofamily"))
    finally:
        registry._registry.cache_clear()
