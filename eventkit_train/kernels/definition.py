"""A neuron *definition*: one module with a neuron's equations and their derivatives.

The module declares its variables and three plain-arithmetic functions; a driver turns it
into the torch, Numba and Triton backends (``docs/adding-a-neuron.md``)::

    STATE     = ("v",)              # carried from step to step, each [B, ...]
    SAVED     = ("h",)              # kept per step for backward; SAVED[0] is the membrane trace
    RESTORED  = ("v",)              # STATE entries `restore` rebuilds from the previous step's SAVED
    PARAMS    = ("k", "v_threshold", "v_reset")   # values: a scalar or one per channel
    LEARNABLE = ("k",)              # PARAMS whose gradient step_vjp returns (same order)
    FLAGS     = ("leaky", "soft", "detach_reset") # booleans fixed per call (Triton constexpr)

    def step(x, *STATE, *PARAMS, *FLAGS) -> (spike, *SAVED, *new STATE)
    def restore(*SAVED, *PARAMS, *FLAGS) -> RESTORED values (one value when there is one)
    def step_vjp(g_spike, g_membrane, *g_STATE, *SAVED, *RESTORED (of step t-1), *PARAMS, *FLAGS,
                 param_grads, surrogate_kind, surrogate_a, surrogate_b)
        -> (g_x, *g_STATE (of step t-1), *g_LEARNABLE)

``step_vjp`` recomputes the spike from the saved membrane with the same comparison as
``step`` and gets σ' from :func:`eventkit_train.kernels.surrogates.surrogate_grad`. ``step``
marks the spike that enters a reset with ``detach(s)`` under ``detach_reset`` (identity in the
kernels), so that autograd through ``step`` (:mod:`eventkit_train.kernels.autograd_reference`)
has the same graph as the hand-written ``step_vjp``.
``param_grads`` is False when no LEARNABLE gradient is wanted (return zeros_like values).

Rules that keep one text valid for all three backends: only ``+ - * /``, float literals
(``1.0``, not ``1``), the names of :mod:`eventkit_train.kernels.ops` and of
:mod:`eventkit_train.kernels.surrogates`, other plain functions of the same module,
``if``/``else`` on FLAGS and ``param_grads`` only (never on values), one ``return`` at the
end of each function.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

__all__ = ["NeuronDefinition", "register_definition", "get_definition", "DEFINITIONS"]

_TAIL = ("param_grads", "surrogate_kind", "surrogate_a", "surrogate_b")


@dataclass(frozen=True)
class NeuronDefinition:
    """A checked neuron definition module (see the module docstring)."""

    name: str
    module: ModuleType
    state: tuple[str, ...]
    saved: tuple[str, ...]
    restored: tuple[str, ...]
    params: tuple[str, ...]
    learnable: tuple[str, ...]
    flags: tuple[str, ...]
    step: Callable
    restore: Callable | None
    step_vjp: Callable


def _arity_error(mod: str, fn: str, want: list[str], got: list[str]) -> TypeError:
    return TypeError(f"neuron definition {mod}: {fn} must take {len(want)} arguments ({', '.join(want)}), "
                     f"got {len(got)} ({', '.join(got)})")


def _load(module: ModuleType) -> NeuronDefinition:
    mod = module.__name__
    try:
        name, state, saved = module.NAME, tuple(module.STATE), tuple(module.SAVED)
        restored, params = tuple(module.RESTORED), tuple(module.PARAMS)
        learnable, flags = tuple(module.LEARNABLE), tuple(module.FLAGS)
        step, step_vjp = module.step, module.step_vjp
    except AttributeError as exc:
        raise TypeError(f"neuron definition {mod} lacks {exc.name}; see eventkit_train.kernels.definition") from None
    restore = getattr(module, "restore", None)
    if not saved:
        raise TypeError(f"neuron definition {mod}: SAVED needs at least the membrane")
    if not set(restored) <= set(state) or not set(learnable) <= set(params):
        raise TypeError(f"neuron definition {mod}: RESTORED must be STATE names and LEARNABLE must be PARAMS names")
    if restored and restore is None:
        raise TypeError(f"neuron definition {mod}: RESTORED is not empty but there is no restore()")
    checks = [("step", step, ["x", *state, *params, *flags])]
    if restore is not None:
        checks.append(("restore", restore, [*saved, *params, *flags]))
    checks.append(("step_vjp", step_vjp, ["g_spike", "g_membrane", *(f"g_{s}" for s in state), *saved,
                                          *(f"{r}_prev" for r in restored), *params, *flags, *_TAIL]))
    for fname, fn, want in checks:
        got = list(inspect.signature(fn).parameters)
        if len(got) != len(want):
            raise _arity_error(mod, fname, want, got)
    return NeuronDefinition(name, module, state, saved, restored, params, learnable, flags, step, restore, step_vjp)


DEFINITIONS: dict[str, NeuronDefinition] = {}
_BUILTIN = {"lif": "eventkit_train.neurons.defs.lif", "cubalif": "eventkit_train.neurons.defs.cubalif",
            "sit": "eventkit_train.neurons.defs.sit", "srm": "eventkit_train.neurons.defs.srm",
            "alif": "eventkit_train.neurons.alif"}  # imported by name on first use (no import of neurons here)


def register_definition(module: ModuleType) -> NeuronDefinition:
    """Check a definition module and make it available by its ``NAME`` (returns the definition)."""
    defn = _load(module)
    old = DEFINITIONS.get(defn.name)
    if old is not None and old.module is not module:
        raise TypeError(f"neuron definition name {defn.name!r} is already used by {old.module.__name__}")
    DEFINITIONS[defn.name] = defn
    return defn


def get_definition(name: str) -> NeuronDefinition:
    """The registered definition ``name`` (the built-in ones are imported on first use)."""
    if name not in DEFINITIONS:
        if name not in _BUILTIN:
            raise KeyError(f"no neuron definition {name!r}; registered: {sorted(set(DEFINITIONS) | set(_BUILTIN))}")
        register_definition(importlib.import_module(_BUILTIN[name]))
    return DEFINITIONS[name]
