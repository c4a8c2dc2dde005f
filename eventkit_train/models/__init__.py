"""Networks from the papers' notation strings (grammar in ``docs/training.md``)."""
from eventkit_train.models.builders import SpikingNet, build, count_parameters, fsnn, plif_net, plif_spec
from eventkit_train.models.layers import (
    AvgPool2d,
    LeakyReadout,
    SpikeMaxPool2d,
    SpikingDropout,
    SumPool2d,
    TimeFolded,
    VotingLayer,
)
from eventkit_train.models.slayer import (
    CONV_WEIGHT_SCALE,
    DENSE_WEIGHT_SCALE,
    POOL_WEIGHT_PER_THETA,
    apply_slayer_conventions,
)
from eventkit_train.models.spec import NEURON_TOKENS, LayerSpec, parse_spec

#: Table 1 of Jin et al. 2022, exactly as printed (dataset -> (spec, input shape, classes)).
TABLE1_SPECS: dict[str, tuple[str, tuple[int, ...], int]] = {
    "mnist": ("c128k3s1-BN-LIF-MPk2s2-c128k3s1-BN -SIT-MPk2s2-DP-FC2048-LIF-DP-FC100-LIF-APk10s10",
              (1, 28, 28), 10),
    "fashionmnist": ("c128k3s1-BN-LIF-MPk2s2-c128k3s1-BN -SIT-MPk2s2-DP-FC2048-LIF-DP-FC10-LIF",
                     (1, 28, 28), 10),
    "cifar10": ("c256k3s1-BN-LIF-c256k3s1-BN-SIT-c256k3s1-BN -LIF- MPk2s2-{c256k3s1-BN-LIF}*3- "
                "MPk2s2-DP-FC2048-LIF- DP-FC100-LIF-APk10s10", (3, 32, 32), 10),
    "nmnist": ("c128k3s1-BN-LIF-MPk2s2-c128k3s1-BN -SIT-MPk2s2-DP-FC2048-LIF-DP-FC100-LIF-APk10s10",
               (2, 34, 34), 10),
    "cifar10dvs": ("c128k3s1-BN-LIF-MPk2s2-c128k3s1-BN -SIT-MPk2s2-{c128k3s1-BN-LIF-MPk2s2}*2-DP-FC512-LIF-"
                   "DP-FC100-LIF-APk10s10", (2, 128, 128), 10),
    "dvsgesture": ("{c128k3s1-BN-LIF-MPk2s2}*2-c128k3s1-BN -SIT-MPk2s2-{c128k3s1-BN-LIF-MPk2s2}*2-DP-FC512-LIF-"
                   "DP-FC110-LIF-APk10s10", (2, 128, 128), 11),
}

__all__ = [
    "SpikingNet", "build", "plif_net", "plif_spec", "fsnn", "count_parameters", "parse_spec", "LayerSpec",
    "NEURON_TOKENS", "TABLE1_SPECS", "TimeFolded", "SpikeMaxPool2d", "AvgPool2d", "SumPool2d",
    "SpikingDropout", "VotingLayer", "LeakyReadout", "apply_slayer_conventions", "CONV_WEIGHT_SCALE",
    "DENSE_WEIGHT_SCALE", "POOL_WEIGHT_PER_THETA",
]
