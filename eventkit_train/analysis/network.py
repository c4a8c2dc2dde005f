"""What a (trained) network feeds a neuron layer and what the layer fires (SIT paper, Figs. 7 and 13).

* :func:`input_distribution` records ``I = W·X``, the input current of one spiking layer
  (after its convolution / batch norm), over a loader, and reports quantiles and a histogram;
  its ``b_range()`` turns the central 90 % into the ``b`` range of Eq. 17.
* :func:`feature_maps` gives the spiking feature map ``F = 1/(T·C) Σ_c Σ_t S_t`` of a
  convolutional spiking layer per sample (``[B, H, W]``).
* :func:`load_run_model` rebuilds a network from a training run directory (``config.json`` +
  ``best.pt`` / ``checkpoint.pt``, read with ``weights_only=True``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from eventkit.errors import ParameterError
from eventkit.progress import ProgressMode

__all__ = ["InputDistribution", "input_distribution", "feature_maps", "resolve_layer", "load_run_model", "run_loader",
           "QUANTILES"]

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def resolve_layer(model: nn.Module, layer: int | str) -> tuple[str, nn.Module]:
    """``(name, module)`` of a spiking layer: an index into the network's spiking layers
    (0-based, negative from the end), a child name (``"7_sit"``) or a neuron kind (``"sit"``)
    when exactly one layer has it."""
    from eventkit_train.neurons.module import NeuronModule

    spiking_layers = getattr(model, "spiking_layers", None)
    if spiking_layers is not None:
        layers = list(spiking_layers())
    else:
        layers = [(n, m) for n, m in model.named_modules() if isinstance(m, NeuronModule)]
    if not layers:
        raise ParameterError(f"{type(model).__name__} has no spiking layer")
    names = [n for n, _ in layers]
    if isinstance(layer, (int, np.integer)) or (isinstance(layer, str) and layer.lstrip("-").isdigit()):
        i = int(layer)
        if not -len(layers) <= i < len(layers):
            raise ParameterError(f"layer index {i} out of range: the network has {len(layers)} spiking layers {names}")
        return layers[i]
    key = str(layer).strip().lower()
    exact = [(n, m) for n, m in layers if n.lower() == key or n.lower().endswith("." + key)]
    if exact:
        return exact[0]
    by_kind = [(n, m) for n, m in layers if n.lower().split(".")[-1].split("_", 1)[-1] == key.replace("_", "-")]
    if len(by_kind) == 1:
        return by_kind[0]
    if len(by_kind) > 1:
        raise ParameterError(f"layer {layer!r} matches {[n for n, _ in by_kind]}; give one of these names or an index")
    raise ParameterError(f"no spiking layer {layer!r}; the network's spiking layers are {names} (or give an index)")


@dataclass
class InputDistribution:
    """Input currents of a layer: a random sample ``values`` (float64, at most ``max_values``),
    ``count`` (all values seen), quantiles, mean, std and a 100-bin histogram."""

    layer: str
    values: np.ndarray
    count: int
    quantiles: dict[str, float]
    mean: float
    std: float
    histogram: dict[str, list[float]] = field(default_factory=dict)

    def b_range(self, **kw: Any):
        """:func:`~eventkit_train.analysis.brange.b_range` over the central ``coverage`` (90 %) of the inputs."""
        from .brange import b_range

        return b_range(self.values, **kw)

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "count": self.count, "sampled": int(self.values.size), "mean": self.mean,
                "std": self.std, "quantiles": self.quantiles, "histogram": self.histogram}


def input_distribution(model: nn.Module, loader, layer: int | str, *, max_batches: int | None = None,
                       max_values: int = 1_000_000, device: str | torch.device = "cpu", scale: float = 1.0,
                       seed: int = 0) -> InputDistribution:
    """Record the input ``I`` of ``layer`` (see :func:`resolve_layer`) while ``model`` runs on
    ``loader`` (batches as the trainer reads them; ``scale`` multiplies the frames, as the
    recipe's ``input_scale``). At most ``max_batches`` batches; a uniform random sample of at most
    ``max_values`` values is kept (``seed``)."""
    from eventkit.loader import to_device

    name, module = resolve_layer(model, layer)
    rng = np.random.default_rng(seed)
    chunks: list[np.ndarray] = []
    seen = 0

    def hook(_mod: nn.Module, args: tuple[Any, ...]) -> None:
        nonlocal seen
        x = args[0].detach().double().flatten().cpu().numpy()
        seen += x.size
        chunks.append(x)
        kept = sum(c.size for c in chunks)
        if kept > 2 * max_values:  # thin out as we go: keep memory bounded
            allv = np.concatenate(chunks)
            chunks[:] = [rng.choice(allv, size=max_values, replace=False)]

    model = model.to(device).eval()
    handle = module.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            for i, batch in enumerate(loader):
                if max_batches is not None and i >= max_batches:
                    break
                x, _ = to_device(batch, torch.device(device))
                model(x.float() * scale if scale != 1.0 else x.float())
    finally:
        handle.remove()
    if not chunks:
        raise ParameterError(f"input_distribution: the loader yielded no batch (layer {name})")
    values = np.concatenate(chunks)
    if values.size > max_values:
        values = rng.choice(values, size=max_values, replace=False)
    qs = np.quantile(values, QUANTILES)
    counts, edges = np.histogram(values, bins=100)
    return InputDistribution(name, values, int(seen), {f"{q:g}": float(v) for q, v in zip(QUANTILES, qs, strict=True)},
                             float(values.mean()), float(values.std()),
                             {"counts": counts.astype(float).tolist(), "edges": edges.tolist()})


def feature_maps(model: nn.Module, sample: Tensor, layer: int | str) -> tuple[str, np.ndarray]:
    """``(layer name, F [B, H, W])``: the firing rate of ``layer``'s spikes averaged over time and
    channels, ``F = 1/(T·C) Σ_c Σ_t S_t``, for ``sample [T, B, C, H, W]`` (or ``[T, C, H, W]``)."""
    name, module = resolve_layer(model, layer)
    input_shape = getattr(model, "input_shape", None)
    want = 2 + len(input_shape) if input_shape is not None else 5
    x = sample.unsqueeze(1) if sample.dim() == want - 1 else sample
    out: list[Tensor] = []

    def hook(_mod: nn.Module, _args: Any, output: Any) -> None:
        out.append((output[0] if isinstance(output, tuple) else output).detach())

    handle = module.register_forward_hook(hook)
    try:
        model.eval()
        with torch.no_grad():
            model(x.float())
    finally:
        handle.remove()
    spikes = out[0]
    if spikes.dim() != 5:
        raise ParameterError(f"feature_maps: layer {name} outputs {list(spikes.shape)}; a convolutional spiking "
                             "layer [T, B, C, H, W] is needed")
    return name, spikes.double().mean(dim=(0, 2)).cpu().numpy()


def load_run_model(run: str | Path, *, checkpoint: str = "best.pt", device: str = "cpu") -> tuple[nn.Module, Any]:
    """``(model, TrainConfig)`` of a training run directory (or a checkpoint file inside one)."""
    from eventkit_train.trainer import TrainConfig, build_model, load_checkpoint

    path = Path(run)
    run_dir = path.parent if path.is_file() else path
    ck_path = path if path.is_file() else run_dir / checkpoint
    if not ck_path.is_file() and not path.is_file():
        ck_path = run_dir / "checkpoint.pt"
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise ParameterError(f"{run_dir} is not a training run directory (no config.json)")
    saved = json.loads(cfg_path.read_text())
    if "input_shape" not in saved:
        raise ParameterError(f"{cfg_path} has no input_shape; rerun training with this eventkit version")
    ck = load_checkpoint(ck_path, map_location=device)
    config = TrainConfig.from_dict(ck["config"], source=str(ck_path))
    model = build_model(config, tuple(saved["input_shape"]))
    model.load_state_dict(ck["model"])
    return model.to(device).eval(), config


def run_loader(config: Any, split: str | None = None, *, batch_size: int = 32, root: str | None = None,
               cache: str | None = None, progress: ProgressMode = False) -> tuple[Any, float]:
    """``(loader, input scale)`` over one split (default: the test split) of a run's dataset, in a
    fixed order; the cache is built when missing. The scale is the recipe's ``input_scale`` or the
    store's ``value_scale`` (1 for event frames), as in training."""
    from eventkit.loader import FrameDataset, make_loader
    from eventkit_train.trainer import prepare_data

    config = config.replace(root=root, cache=cache)
    stores = prepare_data(config, progress=progress)
    split = split or config.test_split
    if split not in stores:
        raise ParameterError(f"split {split!r} not in this run's stores {sorted(stores)}")
    url = stores[split]
    if config.input_scale is not None:
        scale = float(config.input_scale)
    else:
        meta = FrameDataset(url).meta
        params = meta.get("params", {}) if isinstance(meta.get("params"), dict) else {}
        scale = float(meta.get("value_scale", params.get("value_scale", 1.0)))
    return make_loader(url, batch_size, shuffle=False, seed=config.seed, pin_memory=False), scale
