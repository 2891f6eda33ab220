"""CIFAR ResNets (ResNet-20/32/56) of He et al. 2016, section 4.2.

The network: a 3x3 conv with 16 filters, then three stages of n BasicBlocks each with 16, 32 and
64 filters on 32x32, 16x16 and 8x8 maps (the first block of stages 2 and 3 has stride 2), global
average pooling and a fully connected layer: 6n + 2 weighted layers (n = 3, 5, 9 for depth 20,
32, 56). A BasicBlock is conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut, then ReLU.

Shortcut (where the shape changes): option **A** by default, as in the paper's CIFAR
experiments: the identity, subsampled by the stride and zero-padded with the missing channels
(parameter-free; ResNet-20 has 0.27M parameters: 269,722 for 10 classes). Option **B**
(``shortcut="B"``) projects with a 1x1 conv + BN, torchvision's ``downsample`` (272,474).

Initialisation: convs by He et al. 2015 (``kaiming_normal_``, fan_out, ReLU gain, as
torchvision), BatchNorm gamma = 1, beta = 0, the final Linear by PyTorch's default.

References:
    He, Zhang, Ren, Sun, "Deep residual learning for image recognition", CVPR 2016 (sec. 4.2).
    He et al. 2015, "Delving deep into rectifiers" (the initialisation).
"""

from __future__ import annotations

from collections.abc import Sequence

from deepgrad import nn, ops
from deepgrad.models.lenet import choice, image_shape, positive_int
from deepgrad.nn import init
from deepgrad.nn.modules.fused import batch_norm_then_relu, relu_of_sum

_SHORTCUTS = {"A": "A", "B": "B"}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class PadShortcut(nn.Module):
    """Option-A shortcut: x[:, :, ::stride, ::stride] with zero channels appended around it.

    Args:
        in_channels, out_channels: the block's channels (out_channels >= in_channels).
        stride: the block's stride.

    The ``out - in`` missing channels are split as (lo, hi) = ((out - in) // 2, rest) and
    padded before and after, as in the common PyTorch CIFAR implementation
    (``F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))``).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"PadShortcut: out_channels ({out_channels}) must be >= "
                             f"in_channels ({in_channels})")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x):
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        lo = (self.out_channels - self.in_channels) // 2
        hi = self.out_channels - self.in_channels - lo
        return ops.pad(x, (0, 0, 0, 0, lo, hi)) if lo or hi else x

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), both convs 3x3.

    Args:
        in_channels, out_channels: channels in and out.
        stride: stride of conv1 (2 halves the map).
        shortcut: ``"A"`` (zero-padding identity) or ``"B"`` (1x1 conv + BN projection), used
            only when the shape changes; otherwise ``downsample`` is None and the shortcut is
            the identity.

    Keys: ``conv1.weight``, ``bn1.*``, ``conv2.weight``, ``bn2.*``, and for option B
    ``downsample.0.weight``, ``downsample.1.*`` (torchvision's names).
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 shortcut: str = "A"):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride == 1 and in_channels == out_channels:
            self.downsample = None
        elif shortcut == "A":
            self.downsample = PadShortcut(in_channels, out_channels, stride)
        else:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = batch_norm_then_relu(self.bn1, self.relu, self.conv1(x))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return relu_of_sum(self.relu, out, identity)


def _stage(cin: int, cout: int, blocks: int, stride: int, shortcut: str) -> nn.Sequential:
    """``blocks`` BasicBlocks; the first changes the channels and applies the stride."""
    return nn.Sequential(BasicBlock(cin, cout, stride, shortcut),
                         *(BasicBlock(cout, cout, 1, shortcut) for _ in range(blocks - 1)))


class CifarResNet(nn.Module):
    """ResNet for CIFAR-10 (He et al. 2016, sec. 4.2) with depth 6n + 2.

    Args:
        depth: 20, 32, 44, 56, 110, ... (6n + 2, n >= 1).
        num_classes: number of outputs (logits).
        in_channels: channels of the input image (3 for CIFAR).
        shortcut: ``"A"`` (default, parameter-free) or ``"B"`` (projection).
        widths: filters of the three stages (16, 32, 64 in the paper).

    Shape:
        input (N, C, H, W) -> logits (N, num_classes); any H, W >= 1 (designed for 32x32: the
        stages see 32, 16 and 8 pixels; the global average pooling makes the head size-free).

    Layers: ``conv1``, ``bn1``, ``relu``, ``layer1`` .. ``layer3`` (Sequentials of
    :class:`BasicBlock`), ``avgpool``, ``flatten``, ``fc``.

    Reference: He et al. 2016, "Deep residual learning for image recognition", sec. 4.2.
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, in_channels: int = 3,
                 shortcut: str = "A", widths: Sequence[int] = (16, 32, 64)):
        super().__init__()
        name = "CifarResNet"
        positive_int(name, "depth", depth)
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"{name}: depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110), "
                             f"got {depth}")
        positive_int(name, "num_classes", num_classes)
        positive_int(name, "in_channels", in_channels)
        shortcut = choice(name, "shortcut", shortcut, _SHORTCUTS)
        widths = tuple(widths)
        if len(widths) != 3:
            raise ValueError(f"{name}: widths must be three ints, got {widths!r}")
        for w in widths:
            positive_int(name, "each of widths", w)
        n = (depth - 2) // 6
        self.depth, self.shortcut, self.num_classes = depth, shortcut, num_classes
        self.conv1 = _conv3x3(in_channels, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.layer1 = _stage(widths[0], widths[0], n, 1, shortcut)
        self.layer2 = _stage(widths[0], widths[1], n, 2, shortcut)
        self.layer3 = _stage(widths[1], widths[2], n, 2, shortcut)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(widths[2], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = batch_norm_then_relu(self.bn1, self.relu, self.conv1(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.avgpool(x)))


def _builder(depth: int):
    def build(input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10,
              shortcut: str = "A") -> CifarResNet:
        c, _, _ = image_shape(input_shape, f"resnet{depth}")
        return CifarResNet(depth, num_classes, c, shortcut)

    build.__name__ = build.__qualname__ = f"resnet{depth}"
    build.__doc__ = (f"Registry builder of the CIFAR ResNet-{depth} (:class:`CifarResNet`, "
                     f"n = {(depth - 2) // 6} blocks per stage) for images ``input_shape``.")
    return build


resnet20 = _builder(20)
resnet32 = _builder(32)
resnet56 = _builder(56)
