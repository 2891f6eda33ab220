"""Fully connected classifiers: the multilayer perceptron and multinomial logistic regression.

Both flatten their input first, so they take vectors (N, D) and images (N, C, H, W) alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from deepgrad import nn


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class MLP(nn.Sequential):
    """Multilayer perceptron: Flatten, then (Linear, ReLU[, Dropout]) per hidden layer, Linear.

    Args:
        in_features: size of a flattened input sample (784 for 28x28 images).
        hidden: sizes of the hidden layers, in order; empty for a linear model.
        num_classes: number of outputs (logits).
        dropout: dropout probability after each hidden ReLU (0 adds no Dropout layers, so the
            ``state_dict`` keys do not depend on it being off).

    Shape:
        input (N, *) with ``prod(*) == in_features`` -> logits (N, num_classes).

    The layers are the children of this ``Sequential``: with the default configuration
    ``0`` Flatten, ``1`` Linear(784, 512), ``2`` ReLU, ``3`` Linear(512, 256), ``4`` ReLU,
    ``5`` Linear(256, 10); ``state_dict`` keys are ``1.weight``, ``1.bias``, ``3.weight``, ...

    Reference: Rumelhart, Hinton, Williams, "Learning representations by back-propagating
    errors", Nature 1986.
    """

    def __init__(self, in_features: int = 784, hidden: Sequence[int] = (512, 256),
                 num_classes: int = 10, dropout: float = 0.0):
        _positive_int("MLP: in_features", in_features)
        _positive_int("MLP: num_classes", num_classes)
        if isinstance(hidden, int):
            hidden = (hidden,)
        hidden = tuple(hidden)
        for h in hidden:
            _positive_int("MLP: each hidden size", h)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MLP: dropout must be in [0, 1), got {dropout!r}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)
        self.in_features, self.hidden, self.num_classes = in_features, hidden, num_classes


class LogisticRegression(nn.Sequential):
    """Multinomial logistic regression: Flatten, Linear (softmax lives in the loss).

    Args:
        in_features: size of a flattened input sample.
        num_classes: number of outputs (logits).

    Shape:
        input (N, *) with ``prod(*) == in_features`` -> logits (N, num_classes).
        ``state_dict`` keys: ``1.weight`` (num_classes, in_features), ``1.bias``.
    """

    def __init__(self, in_features: int = 784, num_classes: int = 10):
        _positive_int("LogisticRegression: in_features", in_features)
        _positive_int("LogisticRegression: num_classes", num_classes)
        super().__init__(nn.Flatten(), nn.Linear(in_features, num_classes))
        self.in_features, self.num_classes = in_features, num_classes


def _flat_size(input_shape: Sequence[int]) -> int:
    shape = tuple(input_shape)
    if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0
                        for d in shape):
        raise ValueError(f"input_shape must be a non-empty tuple of positive ints (one sample, "
                         f"without the batch dimension), got {input_shape!r}")
    return math.prod(shape)


def mlp(input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
        hidden: Sequence[int] = (512, 256), dropout: float = 0.0) -> MLP:
    """Registry builder of :class:`MLP` for samples of shape ``input_shape``."""
    return MLP(_flat_size(input_shape), hidden, num_classes, dropout)


def logreg(input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10) -> LogisticRegression:
    """Registry builder of :class:`LogisticRegression` for samples of shape ``input_shape``."""
    return LogisticRegression(_flat_size(input_shape), num_classes)
