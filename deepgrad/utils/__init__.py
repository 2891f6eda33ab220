"""PyTorch-compatible import paths: ``deepgrad.utils.data`` is ``deepgrad.data``."""

from deepgrad.utils import data

__all__ = ["data"]
