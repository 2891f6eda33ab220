"""Optimizers (``deepgrad.optim`` mirrors ``torch.optim``)."""

from deepgrad.optim.optimizer import Optimizer
from deepgrad.optim.sgd import SGD

__all__ = ["SGD", "Optimizer"]
