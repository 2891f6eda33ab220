"""The model zoo (``deepgrad.models`` mirrors ``torchvision.models``) and its registry."""

from deepgrad.models.mlp import MLP, LogisticRegression, logreg, mlp
from deepgrad.models.registry import MODELS, get_model, list_models

__all__ = ["MLP", "MODELS", "LogisticRegression", "get_model", "list_models", "logreg", "mlp"]
