"""LeNet-5, the convolutional network of LeCun et al. 1998, adapted to 28x28 MNIST.

The original takes 32x32 images; here conv1 pads by 2 so a 28x28 digit keeps its size, and the
rest is the classic stack: conv 6@5x5 -> pool -> conv 16@5x5 -> pool -> 120 -> 84 -> classes.
The flatten size is computed with the output-size formula, so 32x32 or 3-channel input works.

Modern defaults (ReLU, max pooling) train to >= 99% in a few epochs; ``activation="tanh"`` and
``pool="avg"`` are closer to the 1998 network (which used scaled tanh and trainable subsampling).

Reference: LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 1998.
"""

from __future__ import annotations

from collections.abc import Sequence

from deepgrad import nn

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
_POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


def image_shape(input_shape: Sequence[int], model: str) -> tuple[int, int, int]:
    """Check that ``input_shape`` is one image (C, H, W) of positive ints and return it."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if (shape is None or len(shape) != 3
            or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in shape)):
        raise ValueError(f"{model}: input_shape must be (C, H, W), three positive ints (one "
                         f"image, without the batch dimension), got {input_shape!r}")
    return shape


def out_size(size: int, kernel: int, stride: int = 1, padding: int = 0, *, model: str,
             layer: str) -> int:
    """floor((size + 2 padding - kernel) / stride) + 1, refused when the result is < 1."""
    out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise ValueError(f"{model}: the input is too small: {layer} (kernel {kernel}, stride "
                         f"{stride}, padding {padding}) gets a spatial size of {size} and would "
                         f"output {out}")
    return out


def choice(model: str, name: str, value, options: dict):
    """Look ``value`` up in ``options`` or raise a ValueError naming the valid choices."""
    if value not in options:
        raise ValueError(f"{model}: {name} must be one of {sorted(options)}, got {value!r}")
    return options[value]


def positive_int(model: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{model}: {name} must be a positive int, got {value!r}")
    return value


class LeNet5(nn.Module):
    """LeNet-5: two conv/pool stages and three fully connected layers.

    Args:
        in_channels: channels of the input image (1 for MNIST).
        num_classes: number of outputs (logits).
        image_size: (H, W) of the input, used to size the first fully connected layer.
        activation: ``"relu"`` (default) or ``"tanh"``.
        pool: ``"max"`` (default) or ``"avg"`` 2x2 pooling with stride 2.
        batchnorm: insert BatchNorm2d after each conv and BatchNorm1d after the two hidden
            linear layers, before the activation (Ioffe & Szegedy 2015). The conv / linear
            layer before a BatchNorm then has no bias (BatchNorm's shift makes it redundant).

    Shape:
        input (N, C, H, W) -> logits (N, num_classes).

    Layers (``state_dict`` keys follow them)::

        features:   0 Conv2d(C, 6, 5, padding=2), 1 act, 2 pool, 3 Conv2d(6, 16, 5), 4 act,
                    5 pool                       (with batchnorm: conv, bn, act, pool, ...)
        flatten
        classifier: 0 Linear(16*h*w, 120), 1 act, 2 Linear(120, 84), 3 act, 4 Linear(84, K)
                    (with batchnorm: linear, bn, act, linear, bn, act, linear)

    For 1x28x28 input and 10 classes it has 61,706 parameters (h = w = 5).

    Reference: LeCun et al. 1998, "Gradient-based learning applied to document recognition".
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 image_size: tuple[int, int] = (28, 28), activation: str = "relu",
                 pool: str = "max", batchnorm: bool = False):
        super().__init__()
        name = "LeNet5"
        positive_int(name, "in_channels", in_channels)
        positive_int(name, "num_classes", num_classes)
        act = choice(name, "activation", activation, _ACTIVATIONS)
        pool_cls = choice(name, "pool", pool, _POOLS)
        if not isinstance(batchnorm, bool):
            raise ValueError(f"{name}: batchnorm must be a bool, got {batchnorm!r}")
        h, w = image_size
        for layer, k, p in (("conv1", 5, 2), ("pool1", 2, 0), ("conv2", 5, 0), ("pool2", 2, 0)):
            s = 2 if layer.startswith("pool") else 1
            h = out_size(h, k, s, p, model=name, layer=layer)
            w = out_size(w, k, s, p, model=name, layer=layer)
        bias = not batchnorm
        features: list[nn.Module] = []
        for cin, cout, pad in ((in_channels, 6, 2), (6, 16, 0)):
            features.append(nn.Conv2d(cin, cout, 5, padding=pad, bias=bias))
            if batchnorm:
                features.append(nn.BatchNorm2d(cout))
            features += [act(), pool_cls(2, 2)]
        classifier: list[nn.Module] = []
        for fin, fout in ((16 * h * w, 120), (120, 84)):
            classifier.append(nn.Linear(fin, fout, bias=bias))
            if batchnorm:
                classifier.append(nn.BatchNorm1d(fout))
            classifier.append(act())
        classifier.append(nn.Linear(84, num_classes))
        self.features = nn.Sequential(*features)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(*classifier)
        self.num_classes = num_classes

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


def lenet5(input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
           activation: str = "relu", pool: str = "max", batchnorm: bool = False) -> LeNet5:
    """Registry builder of :class:`LeNet5` for images of shape ``input_shape`` (C, H, W)."""
    c, h, w = image_shape(input_shape, "lenet5")
    return LeNet5(c, num_classes, (h, w), activation, pool, batchnorm)


def lenet5_bn(input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
              activation: str = "relu", pool: str = "max") -> LeNet5:
    """Registry builder of :class:`LeNet5` with BatchNorm (``batchnorm=True``)."""
    c, h, w = image_shape(input_shape, "lenet5_bn")
    return LeNet5(c, num_classes, (h, w), activation, pool, batchnorm=True)
