"""The registry of dataset layout families: every module of :mod:`eventkit.datasets.families`.

A module ``families/<name>.py`` that defines ``FAMILY`` (a :class:`Family` named
``<name>``) is the family ``<name>``; nothing else needs editing to add one.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil

from eventkit.datasets import families
from eventkit.datasets.family import Family
from eventkit.errors import ParameterError

__all__ = ["get_family", "family_names"]


@functools.cache
def _registry() -> dict[str, Family]:
    found: dict[str, Family] = {}
    for info in pkgutil.iter_modules(families.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{families.__name__}.{info.name}")
        family = getattr(module, "FAMILY", None)
        if not isinstance(family, Family) or family.name != info.name:
            raise TypeError(f"{module.__name__} must define FAMILY = Family({info.name!r}, ...)")
        found[info.name] = family
    return found


def family_names() -> tuple[str, ...]:
    """Names of the known layout families, sorted."""
    return tuple(sorted(_registry()))


def get_family(name: str) -> Family:
    """The :class:`Family` called ``name``; ParameterError naming the known ones otherwise."""
    try:
        return _registry()[name]
    except KeyError:
        raise ParameterError(f"unknown layout family {name!r}; known: {', '.join(family_names())}") from None
