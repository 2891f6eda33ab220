"""A small convolutional classifier: two 3x3 conv/ReLU/max-pool stages and a dropout MLP head.

The usual first CNN of tutorials (e.g. the Keras and PyTorch MNIST examples): fast on a CPU,
~99% on MNIST after a couple of epochs.

References:
    LeCun et al. 1998, "Gradient-based learning applied to document recognition" (the
    conv/pool/fully-connected design).
    Srivastava et al. 2014, "Dropout: a simple way to prevent neural networks from
    overfitting", JMLR.
"""

from __future__ import annotations

from collections.abc import Sequence

from deepgrad import nn
from deepgrad.models.lenet import image_shape, out_size, positive_int


class SmallCNN(nn.Module):
    """conv(c1, 3x3, pad 1) -> ReLU -> maxpool 2 -> conv(c2, 3x3, pad 1) -> ReLU -> maxpool 2
    -> flatten -> Linear(hidden) -> ReLU -> Dropout -> Linear(num_classes).

    Args:
        in_channels: channels of the input image.
        num_classes: number of outputs (logits).
        image_size: (H, W) of the input, used to size the first linear layer.
        channels: (c1, c2), the widths of the two conv layers.
        hidden: width of the hidden linear layer.
        dropout: dropout probability before the last layer (the Dropout layer is always
            present, so the ``state_dict`` keys do not depend on it).

    Shape:
        input (N, C, H, W) -> logits (N, num_classes).

    Layers: ``features`` = 0 Conv2d, 1 ReLU, 2 MaxPool2d, 3 Conv2d, 4 ReLU, 5 MaxPool2d;
    ``flatten``; ``classifier`` = 0 Linear, 1 ReLU, 2 Dropout, 3 Linear. For 1x28x28 input and
    the defaults it has 421,642 parameters (64 x 7 x 7 = 3136 features).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 image_size: tuple[int, int] = (28, 28), channels: Sequence[int] = (32, 64),
                 hidden: int = 128, dropout: float = 0.5):
        super().__init__()
        name = "SmallCNN"
        positive_int(name, "in_channels", in_channels)
        positive_int(name, "num_classes", num_classes)
        positive_int(name, "hidden", hidden)
        channels = tuple(channels)
        if len(channels) != 2:
            raise ValueError(f"{name}: channels must be two ints (c1, c2), got {channels!r}")
        c1, c2 = (positive_int(name, "each of channels", c) for c in channels)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout!r}")
        h, w = image_size
        for layer in ("pool1", "pool2"):  # the padded 3x3 convs keep the size
            h = out_size(h, 2, 2, model=name, layer=layer)
            w = out_size(w, 2, 2, model=name, layer=layer)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(c2 * h * w, hidden), nn.ReLU(), nn.Dropout(float(dropout)),
            nn.Linear(hidden, num_classes))
        self.num_classes = num_classes

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


def cnn(input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
        channels: Sequence[int] = (32, 64), hidden: int = 128, dropout: float = 0.5) -> SmallCNN:
    """Registry builder of :class:`SmallCNN` for images of shape ``input_shape`` (C, H, W)."""
    c, h, w = image_shape(input_shape, "cnn")
    return SmallCNN(c, num_classes, (h, w), channels, hidden, dropout)
