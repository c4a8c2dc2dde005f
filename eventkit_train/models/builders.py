"""Build ``nn.Module`` networks from the papers' notation strings.

``build(spec, input_shape, neuron=...)`` -> :class:`SpikingNet` taking ``[T, B, *input_shape]``
float input and returning ``[T, B, n_classes]`` (spikes, or the readout membrane when the
network ends in a non-spiking readout). Also the PLIF generic network of Fang et al. 2021
(:func:`plif_net`) and the FSNN/RSNN of Bouanane et al. 2023 (:func:`fsnn`).
"""
from __future__ import annotations

import inspect
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from eventkit.errors import ParameterError

from .layers import (
    AvgPool2d,
    LeakyReadout,
    SpikeMaxPool2d,
    SpikingDropout,
    SumPool2d,
    TimeFolded,
    VotingLayer,
)
from .slayer import SLAYER_NEURON_DEFAULTS, apply_slayer_conventions, resolve_conventions, weight_scales
from .spec import NEURON_TOKENS, LayerSpec, has_neuron_tokens, parse_spec

#: make_neuron names -> class names in eventkit_train.neurons (for keyword filtering)
_NEURON_CLASS = {"if": "IF", "lif": "LIF", "plif": "PLIF", "cubalif": "CUBALIF", "rcubalif": "CUBALIF",
                 "sit": "SIT", "sit-bursting": "SIT", "srm": "SRM"}
_NEURON_NAMES = frozenset(_NEURON_CLASS)


def _canonical_neuron(name: str) -> str:
    """A neuron written as a notation token (``SITB``, ``CUBA-LIF``) or a ``make_neuron`` name
    (``sit-bursting``, ``cubalif``), case-insensitive, as the ``make_neuron`` name."""
    raw = str(name).strip()
    key = raw.upper().replace("-", "").replace("_", "")
    if key == "SITBURSTING":
        return "sit-bursting"
    return NEURON_TOKENS.get(key, raw.lower())


class SpikingNet(nn.Module):
    """A time-first network: ``x [T, B, *input_shape] -> [T, B, n_classes]``.

    Attributes: ``spec`` (the string it was built from), ``input_shape``, ``n_classes``,
    ``output`` (``"spikes"`` or ``"membrane"``), ``layers`` (an ``nn.Sequential`` with
    named children ``<index>_<kind>``).
    """

    def __init__(self, layers: Sequence[tuple[str, nn.Module]], *, spec: str, input_shape: tuple[int, ...],
                 n_classes: int, output: str, neuron_layers: Sequence[str]):
        super().__init__()
        self.layers = nn.Sequential(OrderedDict(layers))
        self.spec = spec
        self.input_shape = tuple(input_shape)
        self.n_classes = int(n_classes)
        self.output = output
        self._neuron_layers = tuple(neuron_layers)

    def spiking_layers(self) -> list[tuple[str, nn.Module]]:
        """``(name, module)`` of every spiking-neuron layer, input to output order."""
        return [(name, getattr(self.layers, name)) for name in self._neuron_layers]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 + len(self.input_shape) or tuple(x.shape[2:]) != self.input_shape:
            raise ParameterError(
                f"network {self.spec!r} expects input [T, B, {', '.join(map(str, self.input_shape))}], "
                f"got {list(x.shape)}; frames must be time-first (use eventkit.loader.to_device)")
        return self.layers(x)


def _common_kwargs(kwargs: Mapping) -> dict:
    """The neuron options meant for every neuron (not a per-type dict, not ``return_membrane``)."""
    return {k: v for k, v in kwargs.items()
            if k.replace("_", "-") not in _NEURON_NAMES and k != "return_membrane"}


def _accepted_kwargs(name: str) -> set[str] | None:
    """Keyword names the class of neuron ``name`` accepts (None: any, it takes ``**kwargs``)."""
    from eventkit_train import neurons

    cls = getattr(neurons, _NEURON_CLASS.get(name, ""), None)
    if cls is None:
        return None
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    # make_neuron maps v_threshold to theta (SRM) / u_th (SIT)
    return (set(params) - {"self"}) | ({"v_threshold"} if name in ("srm", "sit", "sit-bursting") else set())


def _neuron_kwargs_for(name: str, kwargs: Mapping) -> dict:
    """Keyword arguments for neuron ``name``: the common ones its class accepts, then the
    per-type dict (``lif={...}``, ``sit_bursting={...}``) on top."""
    common = _common_kwargs(kwargs)
    accepted = _accepted_kwargs(name)
    if accepted is not None:
        common = {k: v for k, v in common.items() if k in accepted}
    for key, value in kwargs.items():
        if key.replace("_", "-") == name:
            if not isinstance(value, Mapping):
                raise ParameterError(f"neuron option {key!r} must be a table/dict of keyword arguments, got {value!r}")
            common.update(value)
    return common


def make_layer_neuron(name: str, n_features: int | None, kwargs: Mapping) -> nn.Module:
    """One neuron module through ``eventkit_train.neurons.make_neuron``."""
    from eventkit_train.neurons import make_neuron

    name = name.lower()
    kw = _neuron_kwargs_for(name, kwargs)
    try:
        return make_neuron(name, n_features=n_features, **kw)
    except TypeError as exc:
        raise ParameterError(f"neuron {name!r} does not accept the options {sorted(kw)}: {exc}") from exc


def _check_input(layer: LayerSpec, shape: tuple[int, ...], spec: str) -> None:
    dims = layer.args["dims"]
    if len(dims) == len(shape) == 3:
        C, H, W = shape
        if dims[-1] == C and sorted(dims[:2]) == sorted((H, W)):
            return
    elif math.prod(dims) == math.prod(shape):
        return
    raise ParameterError(
        f"network spec {spec!r} declares input {layer.token} but the data have shape {list(shape)} "
        f"(channels first); fix the spec's first token or the cache parameters")


def _conv_out(n: int, k: int, s: int, p: int, tok: str, spec: str) -> int:
    out = (n + 2 * p - k) // s + 1
    if out < 1:
        raise ParameterError(f"network spec {spec!r}: layer {tok!r} gets a {n}-pixel map, too small for kernel {k}")
    return out


def _check_unused_kwargs(spec: str, kinds: set[str], kwargs: Mapping) -> None:
    """A common neuron option that none of the network's neurons accepts is a typo (``tua=2``)
    or a wrong neuron; refuse it instead of dropping it silently."""
    common = _common_kwargs(kwargs)
    if not common:
        return
    accepted: set[str] = set()
    for kind in kinds:
        acc = _accepted_kwargs(kind)
        if acc is None:
            return
        accepted |= acc
    unused = sorted(set(common) - accepted)
    if unused:
        raise ParameterError(
            f"network spec {spec!r}: neuron option(s) {unused} are accepted by none of its neurons "
            f"({', '.join(sorted(kinds)) or 'none'}); check the spelling (accepted: {sorted(accepted)})")


def build(spec: str, input_shape: Sequence[int], neuron: str = "lif", *, readout: str | None = None,
          n_classes: int | None = None, neuron_map: Mapping[str, str] | None = None,
          readout_kwargs: Mapping | None = None, bias: bool = False, width: float = 1.0,
          conventions: str | None = None, weight_scale: Mapping[str, float] | None = None,
          **neuron_kwargs) -> SpikingNet:
    """Build a network from a notation string (grammar: ``docs/training.md``).

    Parameters
    ----------
    spec : str
        e.g. ``"c128k3s1-BN-LIF-MPk2s2-…-FC100-LIF-APk10s10"`` (Jin et al. 2022, Table 1) or
        ``"34x34x2-16c5-2a-32c3-2a-64c3-512-10"`` (SLAYER, Shrestha et al. 2022) or ``"700-200-20"``.
    input_shape : sequence of int
        one sample per time step, channels first: ``(2, 34, 34)``, ``(2, 128, 128)``, ``(700,)``.
    neuron : str
        ``make_neuron`` name used when the string names no neurons (SLAYER notation): a
        neuron then follows every conv (after its ``BN``), every sum-pool and every dense layer.
    readout : {"spikes", "membrane", None}
        ``"membrane"`` replaces the last spiking layer with a non-spiking leaky integrator
        (:class:`LeakyReadout`; for ``max_over_time_ce``). ``None``: ``"membrane"`` if the
        string has an ``LI`` token, else ``"spikes"``.
    n_classes : int, optional
        checked against the network's output size.
    neuron_map : mapping, optional
        replace neuron tokens, e.g. ``{"sit": "sit-bursting"}`` or ``{"lif": "plif"}``.
    readout_kwargs : mapping, optional
        keyword arguments of :class:`LeakyReadout` (``alpha``, ``beta``, ``tau_mem``, ``dt`` …).
    bias : bool
        bias of conv layers not followed by ``BN`` and of dense layers (the papers: none).
    width : float
        scales conv channels and hidden dense sizes (not the output layer); 1 = as printed.
    conventions : {"slayer", "plain", None}
        ``"slayer"``: SLAYER's layer conventions (:mod:`.slayer`: conv weights ×100, dense
        ×10, sum-pool weight 1.1·ϑ, no gradient through the refractory response); needs SRM
        neurons only. ``"plain"``: PyTorch's initialisation, sum-pool weight 1. ``None``:
        ``"slayer"`` for a string in SLAYER's notation (no neuron tokens) whose neurons are
        all SRM, else ``"plain"``.
    weight_scale : mapping, optional
        with SLAYER's conventions, the factors on PyTorch's initial weights, ``{"conv": 100,
        "dense": 10}`` by default (SLAYER's ``weightScale``); give one or both keys to change
        them (recipes give it in ``[train.neuron_kwargs]``, whose keys reach this function).
    **neuron_kwargs
        passed to every neuron whose class accepts them (``tau``, ``surrogate``,
        ``v_threshold`` …); a dict under a neuron name (``sit={"tau": 2.0}``) only to that type.
    """
    input_shape = tuple(int(d) for d in input_shape)
    if not input_shape or any(d < 1 for d in input_shape):
        raise ParameterError(f"input_shape must be positive dims (channels first), got {input_shape}")
    if width <= 0:
        raise ParameterError(f"width must be > 0, got {width}")
    layers = parse_spec(spec)
    mapping = {_canonical_neuron(k): _canonical_neuron(v) for k, v in (neuron_map or {}).items()}
    for key in mapping:
        if key not in _NEURON_NAMES:
            raise ParameterError(f"neuron_map: {key!r} is not a neuron; keys are neurons of the network "
                                 f"({sorted(_NEURON_NAMES)} or their tokens {sorted(NEURON_TOKENS)})")
    neuron = _canonical_neuron(neuron)
    auto = not has_neuron_tokens(layers)
    has_li = any(layer.kind == "readout" for layer in layers)
    if readout is None:
        readout = "membrane" if has_li else "spikes"
    if readout not in ("spikes", "membrane"):
        raise ParameterError(f"readout must be 'spikes' or 'membrane', got {readout!r}")
    if has_li and readout == "spikes":
        raise ParameterError(
            f"network spec {spec!r} ends in a non-spiking 'LI' readout; readout='spikes' contradicts it")
    if neuron.lower() not in _NEURON_NAMES:
        raise ParameterError(f"unknown neuron {neuron!r}; one of {sorted(_NEURON_NAMES)}")

    # Insert neurons (SLAYER notation: every conv/sum-pool/dense layer is a spiking layer).
    if auto:
        seq: list[LayerSpec] = []
        for i, layer in enumerate(layers):
            seq.append(layer)
            nxt = layers[i + 1].kind if i + 1 < len(layers) else None
            if nxt == "readout":  # an explicit LI integrates the dense currents, not spikes
                continue
            if layer.kind in ("dense", "sumpool") or (layer.kind == "conv" and nxt != "bn") or \
                    (layer.kind == "bn" and i > 0 and layers[i - 1].kind == "conv"):
                seq.append(LayerSpec("neuron", "(auto)", {"name": neuron.lower()}))
        layers = seq
    kinds_planned = {mapping.get(layer.args["name"], layer.args["name"]) for layer in layers if layer.kind == "neuron"}
    conventions = resolve_conventions(conventions, spec, auto, kinds_planned)
    scales = weight_scales(weight_scale, conventions)
    if conventions == "slayer":
        neuron_kwargs = {**SLAYER_NEURON_DEFAULTS, **neuron_kwargs}
    dense_idx = [i for i, layer in enumerate(layers) if layer.kind == "dense"]
    if not dense_idx:
        raise ParameterError(f"network spec {spec!r} has no dense (FC) layer, so it has no class outputs")
    last_dense = dense_idx[-1]
    if readout == "membrane" and not has_li:
        after = [i for i in range(last_dense + 1, len(layers)) if layers[i].kind == "neuron"]
        if after:
            layers[after[-1]] = LayerSpec("readout", "(readout)")
        else:
            layers.insert(last_dense + 1, LayerSpec("readout", "(readout)"))

    shape = input_shape
    modules: list[tuple[str, nn.Module]] = []
    neuron_names: list[str] = []
    neuron_kinds: set[str] = set()
    mapped_from: set[str] = set()  # neurons of the spec before neuron_map

    def add(kind: str, module: nn.Module) -> str:
        name = f"{len(modules)}_{kind}"
        modules.append((name, module))
        return name

    for i, layer in enumerate(layers):
        kind, a, tok = layer.kind, layer.args, layer.token
        if kind == "input":
            if i != 0:
                raise ParameterError(f"network spec {spec!r}: input dims {tok!r} must come first")
            _check_input(layer, shape, spec)
        elif kind == "conv":
            if len(shape) != 3:
                raise ParameterError(f"network spec {spec!r}: conv {tok!r} needs a [C, H, W] input, got {list(shape)}")
            out = max(1, round(a["out"] * width))
            followed_by_bn = i + 1 < len(layers) and layers[i + 1].kind == "bn"
            conv = nn.Conv2d(shape[0], out, a["k"], a["s"], a["p"], bias=bias and not followed_by_bn)
            add("conv", TimeFolded(conv))
            shape = (out, _conv_out(shape[1], a["k"], a["s"], a["p"], tok, spec),
                     _conv_out(shape[2], a["k"], a["s"], a["p"], tok, spec))
        elif kind == "bn":
            if len(shape) not in (1, 3):
                raise ParameterError(f"network spec {spec!r}: BN after a {list(shape)} map is not supported")
            add("bn", TimeFolded(nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0])))
        elif kind in ("maxpool", "avgpool", "sumpool"):
            if len(shape) == 3:
                if kind == "sumpool":
                    module: nn.Module = SumPool2d(a["k"])
                else:
                    module = (SpikeMaxPool2d if kind == "maxpool" else AvgPool2d)(a["k"], a["s"])
                add(kind, module)
                shape = (shape[0], _conv_out(shape[1], a["k"], a["s"], 0, tok, spec),
                         _conv_out(shape[2], a["k"], a["s"], 0, tok, spec))
            elif len(shape) == 1 and kind == "avgpool":
                if shape[0] < a["k"]:
                    raise ParameterError(
                        f"network spec {spec!r}: voting {tok!r} needs >= {a['k']} neurons, got {shape[0]}")
                add("voting", VotingLayer(a["k"], a["s"]))
                shape = ((shape[0] - a["k"]) // a["s"] + 1,)
            else:
                raise ParameterError(f"network spec {spec!r}: pooling {tok!r} needs a [C, H, W] map, got {list(shape)}")
        elif kind == "dropout":
            add("dropout", SpikingDropout(a["p"]))
        elif kind == "dense":
            if len(shape) != 1:
                add("flatten", TimeFolded(nn.Flatten()))
                shape = (math.prod(shape),)
            out = a["out"] if i == last_dense else max(1, round(a["out"] * width))
            add("fc", TimeFolded(nn.Linear(shape[0], out, bias=bias)))
            shape = (out,)
        elif kind == "neuron":
            mapped_from.add(a["name"])
            name = mapping.get(a["name"], a["name"])
            if name not in _NEURON_NAMES:
                raise ParameterError(f"neuron_map sends {a['name']!r} to unknown neuron {name!r}")
            n_features = shape[0] if len(shape) == 1 else None
            neuron_names.append(add(name.replace("-", "_"), make_layer_neuron(name, n_features, neuron_kwargs)))
            neuron_kinds.add(name)
        elif kind == "readout":
            if i < last_dense:
                raise ParameterError(f"network spec {spec!r}: the 'LI' readout must follow the last dense layer")
            add("readout", LeakyReadout(**dict(readout_kwargs or {})))
        else:  # pragma: no cover - parse_spec produces only the kinds above
            raise ParameterError(f"network spec {spec!r}: unexpected layer {tok!r}")
    if len(shape) != 1:
        raise ParameterError(f"network spec {spec!r} ends with a {list(shape)} map; end it with a dense layer")
    _check_unused_kwargs(spec, neuron_kinds, neuron_kwargs)
    unused = sorted(set(mapping) - mapped_from)
    if unused:
        raise ParameterError(f"neuron_map: {unused} match no neuron of {spec!r} (its neurons: {sorted(mapped_from)})")
    if n_classes is not None and shape[0] != n_classes:
        raise ParameterError(f"network spec {spec!r} has {shape[0]} outputs but the dataset has {n_classes} classes")
    if conventions == "slayer":
        apply_slayer_conventions([m for _, m in modules], conv_scale=scales[0], dense_scale=scales[1])
    return SpikingNet(modules, spec=spec, input_shape=input_shape, n_classes=shape[0],
                      output="membrane" if readout == "membrane" else "spikes", neuron_layers=neuron_names)



def plif_spec(N_conv: int, N_down: int, N_fc: int, channels: int, n_classes: int, input_shape: Sequence[int],
              *, voting: int = 10, neuron: str = "PLIF", dropout: float = 0.5,
              fc_features: Sequence[int] | None = None) -> str:
    """Notation string of the PLIF generic network (Fang et al. 2021, Fig. 4, Sect. 4.1, Tab. 1)::

        {{c<ch>k3s1-BN-PLIF}*N_conv-MPk2s2}*N_down-{DP-FC<h>-PLIF}*(N_fc-1)-DP-FC<M·C>-PLIF-APk<M>s<M>

    Hidden FC sizes default to a quarter of their input features (Sect. 4.1); the last FC
    has ``voting · n_classes`` neurons (M = ``voting``; ``voting=1`` drops the voting layer).
    """
    for name, v in (("N_conv", N_conv), ("N_down", N_down), ("N_fc", N_fc), ("channels", channels),
                    ("n_classes", n_classes), ("voting", voting)):
        if int(v) < 1:
            raise ParameterError(f"plif_net: {name} must be >= 1, got {v}")
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3:
        raise ParameterError(f"plif_net needs a [C, H, W] input_shape, got {list(shape)}")
    _, H, W = shape
    for _ in range(N_down):
        H, W = H // 2, W // 2
    if H < 1 or W < 1:
        raise ParameterError(f"plif_net: {N_down} 2x2 poolings do not fit input {list(shape)}")
    feats = channels * H * W
    hidden: list[int] = []
    for j in range(N_fc - 1):
        if fc_features is not None:
            if len(fc_features) != N_fc - 1:
                raise ParameterError(f"plif_net: fc_features needs {N_fc - 1} sizes, got {list(fc_features)}")
            h = int(fc_features[j])
        else:
            h = max(1, feats // 4)
        hidden.append(h)
        feats = h
    dp = "DP" if dropout == 0.5 else f"DP{dropout:g}"
    n = neuron.upper()
    block = f"{{c{channels}k3s1-BN-{n}}}*{N_conv}-MPk2s2" if N_conv > 1 else f"c{channels}k3s1-BN-{n}-MPk2s2"
    parts = [f"{{{block}}}*{N_down}" if N_down > 1 else block]
    parts += [f"{dp}-FC{h}-{n}" for h in hidden]
    parts.append(f"{dp}-FC{voting * n_classes}-{n}")
    if voting > 1:
        parts.append(f"APk{voting}s{voting}")
    return "-".join(parts)


def plif_net(N_conv: int, N_down: int, N_fc: int, channels: int, n_classes: int, input_shape: Sequence[int],
             *, voting: int = 10, neuron: str = "plif", dropout: float = 0.5,
             fc_features: Sequence[int] | None = None, **neuron_kwargs) -> SpikingNet:
    """The PLIF generic network of Fang et al. 2021 (see :func:`plif_spec`), e.g. N-MNIST
    ``plif_net(1, 2, 2, 128, 10, (2, 34, 34))``; ``neuron_kwargs`` go to the neurons
    (``tau_init=2.0``, ``surrogate=...``)."""
    if neuron.upper() not in NEURON_TOKENS:
        raise ParameterError(f"plif_net: unknown neuron {neuron!r}; one of {sorted(NEURON_TOKENS)}")
    spec = plif_spec(N_conv, N_down, N_fc, channels, n_classes, input_shape, voting=voting, neuron=neuron,
                     dropout=dropout, fc_features=fc_features)
    return build(spec, input_shape, neuron.lower(), n_classes=n_classes, **neuron_kwargs)


def fsnn(n_in: int = 700, n_hidden: int = 200, n_out: int = 20, *, neuron: str = "cubalif",
         recurrent: bool = False, input_shape: Sequence[int] | None = None,
         readout_kwargs: Mapping | None = None, **neuron_kwargs) -> SpikingNet:
    """The FSNN / RSNN ``<n_in>-<n_hidden>-<n_out>`` of Bouanane et al. 2023 (Table I: ``700-200-20``
    SHD, ``2312-200-10`` N-MNIST): one hidden spiking layer (CUBA-LIF / LIF / IF, with
    explicit recurrence when ``recurrent``) and a non-spiking leaky-integrator readout whose
    membrane ``[T, B, n_out]`` feeds ``max_over_time_ce``."""
    name = neuron.lower()
    if recurrent:
        if name not in ("cubalif", "rcubalif"):
            raise ParameterError(
                f"fsnn: recurrent=True needs neuron='cubalif' (set alpha/beta for LIF or IF), got {neuron!r}")
        name = "rcubalif"
    shape = tuple(input_shape) if input_shape is not None else (n_in,)
    return build(f"{n_in}-{n_hidden}-{n_out}", shape, name, readout="membrane",
                 readout_kwargs=readout_kwargs, **neuron_kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["SpikingNet", "build", "plif_spec", "plif_net", "fsnn", "count_parameters", "make_layer_neuron"]
