"""Alias of :mod:`deepgrad.data`, so ``from torch.utils.data import DataLoader`` ports as
``from deepgrad.utils.data import DataLoader``."""

from deepgrad.data import *  # noqa: F403
from deepgrad.data import __all__  # noqa: F401
