"""Stateful layers (each paired with a function in ``nn.functional``)."""

from deepgrad.nn.modules.activation import (
    ELU,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from deepgrad.nn.modules.batchnorm import BatchNorm1d, BatchNorm2d
from deepgrad.nn.modules.container import ModuleDict, ModuleList, Sequential
from deepgrad.nn.modules.conv import Conv2d
from deepgrad.nn.modules.dropout import Dropout
from deepgrad.nn.modules.dropout2d import Dropout2d
from deepgrad.nn.modules.linear import Flatten, Identity, Linear, Unflatten
from deepgrad.nn.modules.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from deepgrad.nn.modules.module import Module, Parameter, RemovableHandle
from deepgrad.nn.modules.normalization import LayerNorm
from deepgrad.nn.modules.pooling import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    MaxPool2d,
)
from deepgrad.nn.modules.rnn import LSTM, LSTMCell

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "Dropout", "ELU", "Flatten",
    "HuberLoss", "Identity", "L1Loss", "LeakyReLU", "Linear", "LogSoftmax", "MSELoss",
    "Module", "ModuleDict", "ModuleList", "NLLLoss", "Parameter", "ReLU", "RemovableHandle",
    "Sequential", "Sigmoid", "SmoothL1Loss", "Softmax", "Softplus", "Tanh", "Unflatten",
    "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool2d", "Conv2d", "MaxPool2d",
    "BatchNorm1d", "BatchNorm2d",
    "Dropout2d", "LayerNorm", "LSTM", "LSTMCell",
]
