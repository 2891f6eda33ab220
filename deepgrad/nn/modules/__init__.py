"""Stateful layers (each paired with a function in ``nn.functional``)."""

from deepgrad.nn.modules.activation import (
    ELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Softplus, Tanh,
)
from deepgrad.nn.modules.container import ModuleDict, ModuleList, Sequential
from deepgrad.nn.modules.dropout import Dropout
from deepgrad.nn.modules.linear import Flatten, Identity, Linear, Unflatten
from deepgrad.nn.modules.loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss,
    SmoothL1Loss,
)
from deepgrad.nn.modules.module import Module, Parameter, RemovableHandle

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "Dropout", "ELU", "Flatten",
    "HuberLoss", "Identity", "L1Loss", "LeakyReLU", "Linear", "LogSoftmax", "MSELoss",
    "Module", "ModuleDict", "ModuleList", "NLLLoss", "Parameter", "ReLU", "RemovableHandle",
    "Sequential", "Sigmoid", "SmoothL1Loss", "Softmax", "Softplus", "Tanh", "Unflatten",
]
