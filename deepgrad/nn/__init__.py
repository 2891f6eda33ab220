"""Neural-network layers, losses, initialisers: ``deepgrad.nn`` mirrors ``torch.nn``."""

from deepgrad.nn import functional, init, utils
from deepgrad.nn.modules import *  # noqa: F403
from deepgrad.nn.modules import __all__ as _modules_all
from deepgrad.nn.modules.module import Parameter

__all__ = ["Parameter", "functional", "init", "utils", *_modules_all]
