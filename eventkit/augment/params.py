"""Reading one transform's parameters from a recipe table, with errors that name the key.

``Params(table, where)`` hands out checked values (``prob``, ``number``, ``span``,
``pair``...) and :meth:`Params.finish` refuses keys nobody asked for, so a typo in a
recipe is a :class:`~eventkit.errors.ParameterError` such as
``recipe.toml: augment.event[1].p: must be a probability in [0, 1], got 1.5``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from eventkit.errors import ParameterError

__all__ = ["Params", "parse_op", "choices_table"]

_MISSING = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Params:
    """Checked access to the keys of one transform's table (``op`` is read by the caller)."""

    def __init__(self, table: Mapping[str, Any], where: str):
        if not isinstance(table, Mapping):
            raise ParameterError(f"{where}: must be a table such as {{op = \"flip_lr\", p = 0.5}}, "
                                 f"got {type(table).__name__}")
        self.table = table
        self.where = where
        self.used = {"op"}

    def error(self, key: str, problem: str) -> ParameterError:
        return ParameterError(f"{self.where}.{key}: {problem}")

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self.used.add(key)
        if key in self.table:
            return self.table[key]
        if default is _MISSING:
            raise self.error(key, "is required")
        return default

    def number(self, key: str, default: Any = _MISSING, *, minimum: float | None = None,
               maximum: float | None = None, integer: bool = False, exclusive_min: bool = False) -> Any:
        """A number (an int when ``integer``) within ``[minimum, maximum]`` (``(minimum, ...`` when exclusive)."""
        value = self.raw(key, default)
        if value is None and default is None:
            return None
        return self._check_number(key, value, minimum, maximum, integer, exclusive_min)

    def _check_number(self, key: str, value: Any, minimum: float | None, maximum: float | None, integer: bool,
                      exclusive_min: bool) -> Any:
        kind = "an integer" if integer else "a number"
        if integer and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.error(key, f"must be {kind}, got {value!r}")
        if not _is_number(value) or not math.isfinite(value):
            raise self.error(key, f"must be {kind}, got {value!r}")
        low_bad = minimum is not None and (value <= minimum if exclusive_min else value < minimum)
        if low_bad or (maximum is not None and value > maximum):
            lo = "-inf" if minimum is None else minimum
            hi = "inf" if maximum is None else maximum
            bracket = "(" if exclusive_min else "["
            raise self.error(key, f"must be {kind} in {bracket}{lo}, {hi}], got {value!r}")
        return int(value) if integer else float(value)

    def prob(self, key: str, default: Any = _MISSING) -> float:
        value = self.raw(key, default)
        if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
            raise self.error(key, f"must be a probability in [0, 1], got {value!r}")
        return float(value)

    def span(self, key: str, default: Any = _MISSING, *, minimum: float | None = None, maximum: float | None = None,
             integer: bool = False, exclusive_min: bool = False) -> tuple[Any, Any] | Any:
        """A value or a ``[low, high]`` range (low <= high): returns the value or a tuple."""
        value = self.raw(key, default)
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise self.error(key, f"must be a value or a [low, high] range, got {list(value)!r}")
            lo, hi = (self._check_number(key, v, minimum, maximum, integer, exclusive_min) for v in value)
            if lo > hi:
                raise self.error(key, f"range [low, high] needs low <= high, got {list(value)!r}")
            return (lo, hi)
        return self._check_number(key, value, minimum, maximum, integer, exclusive_min)

    def pair(self, key: str, default: Any = _MISSING, *, minimum: float | None = None, integer: bool = True,
             names: tuple[str, str] = ("x", "y")) -> tuple[Any, Any]:
        """One value for both axes or ``[a, b]`` (e.g. ``max_px = 4`` or ``[4, 2]``)."""
        value = self.raw(key, default)
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise self.error(key, f"must be one value or [{names[0]}, {names[1]}], got {list(value)!r}")
            a, b = value
        else:
            a = b = value
        return (self._check_number(key, a, minimum, None, integer, False),
                self._check_number(key, b, minimum, None, integer, False))

    def weights(self, key: str, n: int) -> tuple[float, ...] | None:
        """``n`` finite non-negative numbers with a positive sum (choice weights), or None when absent."""
        value = self.raw(key, None)
        if value is None:
            return None
        if (not isinstance(value, (list, tuple)) or len(value) != n
                or not all(_is_number(v) and math.isfinite(v) and v >= 0 for v in value) or sum(value) <= 0):
            raise self.error(key, f"must be {n} finite non-negative numbers with a positive sum, got {value!r}")
        return tuple(float(v) for v in value)

    def choices(self, key: str, parse) -> tuple:
        """A non-empty array of op tables, each read by ``parse(table, where)``."""
        items = self.raw(key)
        if not isinstance(items, (list, tuple)) or not items:
            raise self.error(key, "must be a non-empty array of op tables")
        return tuple(parse(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(items))

    def ratio(self, key: str, default: float) -> float | tuple[float, float]:
        """A fraction in ``[0, 1)``, a value or a ``[low, high]`` range."""
        value = self.span(key, default, minimum=0.0, maximum=1.0)
        if (max(value) if isinstance(value, tuple) else value) >= 1.0:
            raise self.error(key, f"must be below 1, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def finish(self) -> None:
        """Refuse keys that no reader asked for (typos)."""
        unknown = [k for k in self.table if k not in self.used]
        if unknown:
            known = sorted(self.used - {"op"})
            raise ParameterError(f"{self.where}: unknown key(s) {unknown}"
                                 + (f"; this op takes {known}" if known else "; this op takes no parameters"))


def parse_op(item: Any, where: str, registry: Mapping[str, Any], kind: str) -> Any:
    """Build the op of one table: ``registry[table["op"]].from_params(...)``, unknown keys refused."""
    params = Params(item, where)
    name = params.raw("op")
    if not isinstance(name, str) or name not in registry:
        raise params.error("op", f"unknown {kind} op {name!r}; {kind} ops: {sorted(registry)}")
    op = registry[name].from_params(params)
    params.finish()
    return op


def choices_table(op: str, choices: Any, weights: Any) -> dict[str, Any]:
    """The recipe table of a ``one_of`` op (``weights`` left out when uniform)."""
    out: dict[str, Any] = {"op": op, "choices": [c.to_table() for c in choices]}
    if weights is not None:
        out["weights"] = list(weights)
    return out
