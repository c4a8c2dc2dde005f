"""Turn a neuron definition into the source of a Numba or Triton kernel module, write it, import it.

The generated module holds, in order: the backend's version of the math names
(:mod:`eventkit_train.kernels.ops`), the surrogate derivatives
(:mod:`eventkit_train.kernels.surrogates`), the definition's own functions, then the two
driver kernels (forward over T, backward in reverse) written by the backend module. The
text is stored under the kernel cache directory in a file named after its hash, so that
Numba's ``cache=True`` and Triton's own cache work across processes:
``$EVENTKIT_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/eventkit/kernels``, else
``~/.cache/eventkit/kernels`` (a temporary directory if that is not writable).

For Numba every float literal ``1.0`` becomes ``F(1.0)``, ``F`` being the kernel's float type:
float32 tensors are then computed in float32 (as torch and Triton do), not promoted to float64.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import os
import sys
import tempfile
import textwrap
from collections.abc import Iterable
from pathlib import Path
from types import FunctionType, ModuleType, SimpleNamespace

__all__ = ["function_source", "module_functions", "write_and_import", "cache_dir", "numbered", "kernel_names"]


class _WrapFloats(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, float):
            return ast.copy_location(ast.Call(ast.Name("F", ast.Load()), [node], []), node)
        return node


def _strip_docstring(fn: ast.FunctionDef) -> None:
    body = fn.body
    first = body[0].value if body and isinstance(body[0], ast.Expr) else None
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        fn.body = body[1:] or [ast.Pass()]


def function_source(fn: FunctionType, decorator: str, wrap_floats: bool) -> str:
    """``fn``'s source without docstring, under ``decorator``, float literals wrapped in ``F()`` if asked."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef) or node.decorator_list:
        raise TypeError(f"{fn.__module__}.{fn.__name__}: kernel functions must be plain undecorated functions")
    _strip_docstring(node)
    if wrap_floats:
        tree = _WrapFloats().visit(tree)
        ast.fix_missing_locations(tree)
    return f"{decorator}\n{ast.unparse(tree)}\n"


def numbered(prefix: str, n: int) -> list[str]:
    """``["prefix0", ..., "prefix{n-1}"]``: the generated kernels' variable names."""
    return [f"{prefix}{i}" for i in range(n)]


def kernel_names(d) -> SimpleNamespace:
    """The variable names of a generated kernel pair for definition ``d`` (counts and name lists):
    ``st_in``/``st_out``/``st`` state arrays and values, ``sv``/``svv`` SAVED arrays and values,
    ``fl`` flags, ``g_out``/``g_in``/``g`` state gradients, ``r_in``/``r`` restored values,
    ``acc``/``lv`` learnable-gradient accumulators and step values, ``pv`` parameters."""
    S, Q, R, P, G, L = (len(d.state), len(d.saved), len(d.restored), len(d.params), len(d.flags),
                        len(d.learnable))
    return SimpleNamespace(
        S=S, Q=Q, R=R, P=P, G=G, L=L, st_in=numbered("st_in", S), st_out=numbered("st_out", S),
        st=numbered("st", S), stv=numbered("stv", S), sv=numbered("sv", Q), svv=numbered("svv", Q),
        fl=numbered("f", G), g_out=numbered("g_out", S), g_in=numbered("g_in", S), g=numbered("g", S),
        gv=numbered("gv", S), r_in=numbered("r_in", R), r=numbered("r", R), acc=numbered("acc", L),
        lv=numbered("l", L), pv=numbered("p", P))


def module_functions(module: ModuleType) -> list[FunctionType]:
    """The plain functions defined in ``module`` itself, in source order."""
    fns = [f for f in vars(module).values() if isinstance(f, FunctionType) and f.__module__ == module.__name__]
    return sorted(fns, key=lambda f: f.__code__.co_firstlineno)


def cache_dir() -> Path:
    env = os.environ.get("EVENTKIT_KERNEL_CACHE")
    if env:
        root = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = Path(base) / "eventkit" / "kernels"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        return root
    except OSError:
        fallback = Path(tempfile.gettempdir()) / f"eventkit-kernels-{os.getuid() if hasattr(os, 'getuid') else 0}"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


_IMPORTED: dict[str, ModuleType] = {}


def write_and_import(stem: str, parts: Iterable[str]) -> ModuleType:
    """Join ``parts`` into a module, store it as ``<stem>_<hash>.py`` in :func:`cache_dir` and import it.

    The file is only written when absent (atomically), so its timestamp — and the Numba
    cache keyed on it — stays valid across processes.
    """
    source = "\n\n".join(p.strip("\n") for p in parts) + "\n"
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    name = f"{stem}_{digest}"
    if name in _IMPORTED:
        return _IMPORTED[name]
    path = cache_dir() / f"{name}.py"
    if not path.exists() or path.read_text() != source:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        os.replace(tmp, path)
    modname = f"_eventkit_kernels_{name}"
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[modname] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    _IMPORTED[name] = module
    return module
