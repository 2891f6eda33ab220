"""Every benchmark workload by name (``python -m bench --list``)."""

from __future__ import annotations

from bench.workloads import MLP, Workload
from bench.workloads_cnn import (
    BatchNormFwdBwd,
    ConvFwdBwd,
    LeNet5Infer,
    LeNet5Train,
    LSTMTrain,
    ResNet20Infer,
    ResNet20Train,
)

WORKLOADS: dict[str, type[Workload]] = {
    "W1": MLP,
    "W2": LeNet5Train,
    "W3": ResNet20Train,
    "W4": LSTMTrain,
    "W5": BatchNormFwdBwd,
    "W6": ConvFwdBwd,
    "W7a": LeNet5Infer,
    "W7b": ResNet20Infer,
}
