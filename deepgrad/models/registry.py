"""The model registry: a plain dict from name to builder, read by ``get_model`` and the CLI.

Every builder takes the keywords ``input_shape`` (one sample's shape, without the batch
dimension, e.g. ``(1, 28, 28)``) and ``num_classes``, plus its own options, and returns a fresh
``nn.Module``. That one convention lets the CLI build any registered model for any data set.
To add a model, write its builder and add one line to :data:`MODELS`.

PARITY: ``torchvision.models.get_model(name, **config)`` and ``list_models()``.
"""

from __future__ import annotations

from collections.abc import Callable

from deepgrad.models.cnn import cnn
from deepgrad.models.lenet import lenet5, lenet5_bn
from deepgrad.models.mlp import logreg, mlp
from deepgrad.models.resnet import resnet20, resnet32, resnet56
from deepgrad.nn import Module

#: name -> builder(input_shape=..., num_classes=..., **options) -> Module
MODELS: dict[str, Callable[..., Module]] = {
    "logreg": logreg,
    "mlp": mlp,
    "lenet5": lenet5,
    "lenet5_bn": lenet5_bn,
    "cnn": cnn,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet56": resnet56,
}


def list_models() -> list[str]:
    """Return the registered model names, sorted."""
    return sorted(MODELS)


def get_model(name: str, **kwargs) -> Module:
    """Build the registered model ``name``.

    Args:
        name: a name from :func:`list_models` (case-insensitive).
        **kwargs: passed to the builder: ``input_shape``, ``num_classes`` and model options
            (``hidden=(512, 256)`` for ``mlp``, ...).

    Returns:
        A freshly initialised model (drawn from the global generator, see ``manual_seed``).

    Raises:
        ValueError: for an unknown name (the known names are listed) or an invalid option.
        TypeError: for an option the builder does not take.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return MODELS[key](**kwargs)
