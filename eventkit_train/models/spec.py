"""Parser of the papers' network notation strings (grammar in ``docs/training.md``).

Two notations share one grammar, layers separated by ``-`` (whitespace ignored):

* Table 1 of Jin et al. 2022 / PLIF (Fang et al. 2021)::

      c128k3s1-BN-LIF-MPk2s2-{c128k3s1-BN-LIF-MPk2s2}*2-DP-FC512-LIF-DP-FC100-LIF-APk10s10

  ``c<out>k<k>s<s>`` conv (padding ``k // 2``; optional ``p<pad>``), ``BN`` batch norm,
  ``MPk<k>s<s>`` spike max-pooling, ``APk<k>s<s>`` average pooling (on a feature vector:
  the voting layer), ``DP`` / ``DP<p>`` spiking dropout (p = 0.5 by default),
  ``FC<m>`` dense, ``{…}*n`` repeat, neuron tokens (``LIF``, ``PLIF``, ``IF``, ``SIT``,
  ``SITB`` = ``SIT-Bursting``, ``CUBALIF``, ``RCUBALIF``, ``SRM``) and ``LI`` (non-spiking
  leaky-integrator readout).

* SLAYER (Shrestha et al. 2022, Sect. IV)::

      34x34x2-16c5-2a-32c3-2a-64c3-512-10

  input dims first (``W x H x C``, or one number for a feature vector), ``<K>c<N>``
  conv, ``<N>a`` sum (aggregate) pooling, a plain number a dense layer.

The parser only produces a flat list of :class:`LayerSpec`; :mod:`.builders` turns it
into modules.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from eventkit.errors import ParameterError

#: neuron tokens of the notation -> ``make_neuron`` names
NEURON_TOKENS: dict[str, str] = {
    "IF": "if",
    "LIF": "lif",
    "PLIF": "plif",
    "SIT": "sit",
    "SITB": "sit-bursting",
    "CUBALIF": "cubalif",
    "RCUBALIF": "rcubalif",
    "SRM": "srm",
}


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a parsed notation string.

    ``kind`` is one of ``input``, ``conv``, ``bn``, ``maxpool``, ``avgpool``, ``sumpool``,
    ``dropout``, ``dense``, ``neuron``, ``readout``; ``args`` holds its integer/float
    parameters; ``token`` is the text it was parsed from (for error messages).
    """

    kind: str
    token: str
    args: dict = field(default_factory=dict)


_INT = r"(\d+)"
_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("conv", re.compile(rf"c{_INT}k{_INT}(?:s{_INT})?(?:p{_INT})?", re.I)),
    ("slayer_conv", re.compile(rf"{_INT}c{_INT}", re.I)),
    ("slayer_pool", re.compile(rf"{_INT}a", re.I)),
    ("fc", re.compile(rf"fc{_INT}", re.I)),
    ("dense", re.compile(_INT)),
    ("bn", re.compile(r"bn", re.I)),
    ("maxpool", re.compile(rf"mpk{_INT}(?:s{_INT})?", re.I)),
    ("avgpool", re.compile(rf"apk{_INT}(?:s{_INT})?", re.I)),
    ("dropout", re.compile(r"dp(\d*\.?\d+)?", re.I)),
    ("readout", re.compile(r"li", re.I)),
]
_INPUT = re.compile(r"\d+(?:x\d+)*", re.I)


def normalize(spec: str) -> str:
    """Remove whitespace and rewrite multi-word neuron names to single tokens.

    ``SIT-Bursting`` / ``SIT Bursting`` -> ``SITB``, ``CUBA-LIF`` -> ``CUBALIF``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ParameterError(f"network spec must be a non-empty string, got {spec!r}")
    s = re.sub(r"\s+", "", spec)
    s = re.sub(r"SIT-?Bursting", "SITB", s, flags=re.I)
    s = re.sub(r"(R?)CUBA-LIF", r"\1CUBALIF", s, flags=re.I)
    return s


def _split_top(body: str, spec: str) -> list[str]:
    """Split ``body`` on ``-`` at brace depth 0."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise ParameterError(f"network spec {spec!r}: unbalanced '}}'")
        if ch == "-" and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise ParameterError(f"network spec {spec!r}: unbalanced '{{'")
    parts.append("".join(cur))
    return parts


def _expand(body: str, spec: str) -> list[str]:
    """Expand ``{…}*n`` repeats recursively into a flat token list."""
    out: list[str] = []
    for part in _split_top(body, spec):
        if not part:
            raise ParameterError(f"network spec {spec!r}: empty layer between two '-'")
        if part.startswith("{"):
            m = re.fullmatch(r"\{(.*)\}\*(\d+)", part, flags=re.S)
            if m is None:
                raise ParameterError(
                    f"network spec {spec!r}: repeat group {part!r} must look like '{{a-b-c}}*n'")
            n = int(m.group(2))
            if n < 1:
                raise ParameterError(f"network spec {spec!r}: repeat count in {part!r} must be >= 1")
            inner = _expand(m.group(1), spec)
            out.extend(inner * n)
        else:
            out.append(part)
    return out


def _parse_token(tok: str, spec: str) -> LayerSpec:
    upper = tok.upper()
    if upper in NEURON_TOKENS:
        return LayerSpec("neuron", tok, {"name": NEURON_TOKENS[upper]})
    for kind, pat in _PATTERNS:
        m = pat.fullmatch(tok)
        if m is None:
            continue
        g = m.groups()
        if kind == "conv":
            k = int(g[1])
            return LayerSpec("conv", tok, {"out": int(g[0]), "k": k, "s": int(g[2] or 1),
                                           "p": int(g[3]) if g[3] is not None else k // 2})
        if kind == "slayer_conv":
            k = int(g[1])
            return LayerSpec("conv", tok, {"out": int(g[0]), "k": k, "s": 1, "p": k // 2})
        if kind == "slayer_pool":
            return LayerSpec("sumpool", tok, {"k": int(g[0]), "s": int(g[0])})
        if kind in ("fc", "dense"):
            return LayerSpec("dense", tok, {"out": int(g[0])})
        if kind == "bn":
            return LayerSpec("bn", tok)
        if kind in ("maxpool", "avgpool"):
            k = int(g[0])
            return LayerSpec(kind, tok, {"k": k, "s": int(g[1]) if g[1] is not None else k})
        if kind == "dropout":
            p = float(g[0]) if g[0] else 0.5
            if not 0.0 <= p < 1.0:
                raise ParameterError(f"network spec {spec!r}: dropout {tok!r} needs 0 <= p < 1")
            return LayerSpec("dropout", tok, {"p": p})
        if kind == "readout":
            return LayerSpec("readout", tok)
    raise ParameterError(
        f"network spec {spec!r}: unknown layer {tok!r}; expected one of c<out>k<k>s<s>, <K>c<N>, "
        f"<N>a, FC<m>, <m>, BN, MPk<k>s<s>, APk<k>s<s>, DP[p], LI or a neuron "
        f"({', '.join(NEURON_TOKENS)}); see docs/training.md")


def parse_spec(spec: str) -> list[LayerSpec]:
    """Parse a notation string into a flat list of layers (repeats expanded).

    A first token of the form ``34x34x2`` or ``700`` is the input dimensions
    (``kind="input"``, ``args={"dims": (34, 34, 2)}``); every later plain number is a
    dense layer. Raises :class:`ParameterError` naming the bad token.
    """
    s = normalize(spec)
    tokens = _expand(s, spec)
    layers: list[LayerSpec] = []
    for i, tok in enumerate(tokens):
        if i == 0 and _INPUT.fullmatch(tok):
            layers.append(LayerSpec("input", tok, {"dims": tuple(int(d) for d in tok.lower().split("x"))}))
            continue
        layers.append(_parse_token(tok, spec))
    if not any(layer.kind != "input" for layer in layers):
        raise ParameterError(f"network spec {spec!r} has no layers after the input dimensions")
    return layers


def has_neuron_tokens(layers: list[LayerSpec]) -> bool:
    """True if the string names its neurons itself (Table 1 style)."""
    return any(layer.kind == "neuron" for layer in layers)
