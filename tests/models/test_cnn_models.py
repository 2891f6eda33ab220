"""Tests of the convolutional models (lenet5, lenet5_bn, cnn, resnet20/32/56): shapes, keys,
parameter counts and float64 parity with an equivalent torch model loaded with the same weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import deepgrad as dg
from deepgrad.models import get_model, list_models
from deepgrad.models.lenet import LeNet5
from deepgrad.models.resnet import CifarResNet


# ---------------------------------------------------------------------- torch references
def torch_lenet(in_ch=1, num_classes=10, flat=5, activation="relu", pool="max",
                batchnorm=False):
    act = {"relu": tnn.ReLU, "tanh": tnn.Tanh}[activation]
    pl = {"max": tnn.MaxPool2d, "avg": tnn.AvgPool2d}[pool]
    bias = not batchnorm
    feats, cls = [], []
    for cin, cout, p in ((in_ch, 6, 2), (6, 16, 0)):
        feats += [tnn.Conv2d(cin, cout, 5, padding=p, bias=bias)]
        feats += [tnn.BatchNorm2d(cout)] if batchnorm else []
        feats += [act(), pl(2, 2)]
    for fin, fout in ((16 * flat * flat, 120), (120, 84)):
        cls += [tnn.Linear(fin, fout, bias=bias)]
        cls += [tnn.BatchNorm1d(fout)] if batchnorm else []
        cls += [act()]
    cls.append(tnn.Linear(84, num_classes))
    model = tnn.Module()
    model.features, model.flatten, model.classifier = (
        tnn.Sequential(*feats), tnn.Flatten(), tnn.Sequential(*cls))
    model.forward = lambda x: model.classifier(model.flatten(model.features(x)))
    return model


class TorchCNN(tnn.Module):
    def __init__(self, in_ch=1, num_classes=10, flat=7):
        super().__init__()
        self.features = tnn.Sequential(
            tnn.Conv2d(in_ch, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2))
        self.flatten = tnn.Flatten()
        self.classifier = tnn.Sequential(tnn.Linear(64 * flat * flat, 128), tnn.ReLU(),
                                         tnn.Dropout(0.5), tnn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


class TorchPad(tnn.Module):
    """Option A as in the common PyTorch CIFAR ResNet (Idelbayev): subsample, pad channels."""

    def __init__(self, planes):
        super().__init__()
        self.planes = planes

    def forward(self, x):
        return TF.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.planes // 4, self.planes // 4))


class TorchBlock(tnn.Module):
    def __init__(self, cin, cout, stride, shortcut):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.relu = tnn.ReLU()
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = TorchPad(cout) if shortcut == "A" else tnn.Sequential(
                tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TorchResNet(tnn.Module):
    def __init__(self, depth, num_classes=10, in_ch=3, shortcut="A"):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = tnn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(16)
        self.relu = tnn.ReLU()
        cin = 16
        for i, w in enumerate((16, 32, 64)):
            blocks = [TorchBlock(cin if j == 0 else w, w, 2 if i and not j else 1, shortcut)
                      for j in range(n)]
            setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
            cin = w
        self.avgpool = tnn.AdaptiveAvgPool2d(1)
        self.flatten = tnn.Flatten()
        self.fc = tnn.Linear(64, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.avgpool(x)))


# name -> (torch factory(input_shape, num_classes), options, input_shape)
ROWS = {
    "lenet5": (lambda s, k: torch_lenet(s[0], k), {}, (1, 28, 28)),
    "lenet5_tanh_avg": (lambda s, k: torch_lenet(s[0], k, activation="tanh", pool="avg"),
                        {"activation": "tanh", "pool": "avg"}, (1, 28, 28)),
    "lenet5_32x32x3": (lambda s, k: torch_lenet(3, k, flat=6), {}, (3, 32, 32)),
    "lenet5_bn": (lambda s, k: torch_lenet(s[0], k, batchnorm=True), {}, (1, 28, 28)),
    "lenet5_bn_tanh_avg": (lambda s, k: torch_lenet(s[0], k, batchnorm=True, activation="tanh",
                                                    pool="avg"),
                           {"activation": "tanh", "pool": "avg"}, (1, 28, 28)),
    "cnn": (lambda s, k: TorchCNN(s[0], k), {}, (1, 28, 28)),
    "resnet20": (lambda s, k: TorchResNet(20, k, s[0]), {}, (3, 32, 32)),
    "resnet20_B": (lambda s, k: TorchResNet(20, k, s[0], "B"), {"shortcut": "B"}, (3, 32, 32)),
    "resnet32": (lambda s, k: TorchResNet(32, k, s[0]), {}, (3, 16, 16)),
    "resnet56": (lambda s, k: TorchResNet(56, k, s[0]), {}, (3, 8, 8)),
}
COVERED = {name for name in ROWS if name in list_models()}
PARAMS_28 = {"lenet5": 61_706, "lenet5_bn": 61_932, "cnn": 421_642}
PARAMS_CIFAR = {"resnet20": 269_722, "resnet32": 464_154, "resnet56": 853_018}


def _model_name(row: str) -> str:
    return next(n for n in sorted(COVERED, key=len, reverse=True) if row.startswith(n))


def _randomise(model, rng):
    """Random weights and running statistics, so eval-mode BatchNorm is not the identity."""
    for key, t in model.state_dict().items():
        if t.data.dtype.kind != "f":
            continue
        values = rng.standard_normal(t.shape) * (0.3 if t.ndim > 1 else 0.5)
        if key.endswith("running_var"):
            values = rng.uniform(0.5, 2.0, t.shape)
        t.data[...] = values


def _pair(row, num_classes=5, shape=None):
    factory, options, row_shape = ROWS[row]
    shape = shape or row_shape
    model = get_model(_model_name(row), input_shape=shape, num_classes=num_classes, **options)
    _randomise(model, np.random.default_rng(1))
    ref = factory(shape, num_classes).double()
    assert list(ref.state_dict()) == list(model.state_dict())
    ref.load_state_dict({k: torch.from_numpy(v.data.copy()) for k, v in
                         model.state_dict().items()})
    return model, ref, shape


def test_covered_names_are_registered():
    assert {"lenet5", "lenet5_bn", "cnn", "resnet20", "resnet32", "resnet56"} <= COVERED


@pytest.mark.parametrize("row", sorted(ROWS))
def test_eval_forward_matches_torch(row, oracle):
    model, ref, shape = _pair(row)
    model.eval()
    ref.eval()
    x = np.random.default_rng(2).standard_normal((3,) + shape)
    out = model(dg.tensor(x))
    assert out.shape == (3, 5) and out.dtype == np.float64
    oracle.close(out, ref(torch.from_numpy(x)), 1e-10, f"{row} eval forward")


@pytest.mark.parametrize("row", ["lenet5", "lenet5_bn", "lenet5_bn_tanh_avg", "resnet20",
                                 "resnet20_B"])
def test_train_mode_forward_backward_and_running_stats_match_torch(row, oracle):
    # ResNets on 8x8 (stages of 8, 4, 2 pixels): torch's float64 conv backward is slow.
    model, ref, shape = _pair(row, shape=(3, 8, 8) if row.startswith("resnet") else None)
    model.train()
    ref.train()
    x = np.random.default_rng(3).standard_normal((4,) + shape)
    out, t_out = model(dg.tensor(x)), ref(torch.from_numpy(x))
    oracle.close(out, t_out, 1e-10, f"{row} train forward")
    g = np.random.default_rng(4).standard_normal(out.shape)
    out.backward(dg.tensor(g))
    t_out.backward(torch.from_numpy(g))
    t_params = dict(ref.named_parameters())
    for name, p in model.named_parameters():
        oracle.close(p.grad, t_params[name].grad, 1e-9, f"{row} grad of {name}")
    t_state = ref.state_dict()
    for key, value in model.state_dict().items():
        if "running" in key or "num_batches" in key:
            oracle.close(value, t_state[key], 1e-10, f"{row} {key}")


@pytest.mark.parametrize("name", sorted(PARAMS_28))
def test_parameter_counts_on_28x28(name):
    model = get_model(name, input_shape=(1, 28, 28), num_classes=10)
    factory = ROWS[name][0]
    expected = sum(p.numel() for p in factory((1, 28, 28), 10).parameters())
    assert model.num_parameters() == expected == PARAMS_28[name]


@pytest.mark.parametrize("name", sorted(PARAMS_CIFAR))
def test_resnet_parameter_counts(name):
    depth = int(name[len("resnet"):])
    model = get_model(name)  # defaults: (3, 32, 32), 10 classes
    assert isinstance(model, CifarResNet) and model.depth == depth
    expected = sum(p.numel() for p in TorchResNet(depth).parameters())
    assert model.num_parameters() == expected == PARAMS_CIFAR[name]
    convs = sum(isinstance(m, dg.nn.Conv2d) for m in model.modules())
    assert convs + 1 == depth  # 6n + 1 convs and the fc: depth weighted layers (option A)


def test_lenet5_is_the_classic_layout():
    model = get_model("lenet5")
    assert isinstance(model, LeNet5)
    assert list(model.state_dict()) == [
        "features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
        "classifier.0.weight", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias",
        "classifier.4.weight", "classifier.4.bias"]
    shapes = [tuple(v.shape) for v in model.state_dict().values()]
    assert shapes[0] == (6, 1, 5, 5) and shapes[2] == (16, 6, 5, 5) and shapes[4] == (120, 400)
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"ReLU", "MaxPool2d"} <= kinds and "BatchNorm2d" not in kinds
    tanh = get_model("lenet5", activation="tanh", pool="avg")
    assert {"Tanh", "AvgPool2d"} <= {type(m).__name__ for m in tanh.modules()}


@pytest.mark.parametrize("name,shape", [
    ("lenet5", (1, 32, 32)), ("lenet5", (3, 28, 28)), ("lenet5_bn", (3, 32, 32)),
    ("cnn", (3, 32, 32)), ("cnn", (1, 9, 13)), ("resnet20", (1, 28, 28)),
    ("resnet32", (3, 7, 7)),
])
def test_forward_shapes_for_other_inputs(name, shape):
    model = get_model(name, input_shape=shape, num_classes=3).eval()
    assert model(dg.randn(2, *shape)).shape == (2, 3)


def test_resnet_stage_shapes():
    model = get_model("resnet20")
    seen = {}
    for stage in ("layer1", "layer2", "layer3"):
        getattr(model, stage).register_forward_hook(
            lambda m, i, o, s=stage: seen.__setitem__(s, o.shape))
    model(dg.randn(2, 3, 32, 32))
    assert seen == {"layer1": (2, 16, 32, 32), "layer2": (2, 32, 16, 16),
                    "layer3": (2, 64, 8, 8)}


def test_float32_models_stay_float32():
    dg.set_default_dtype("float32")
    for name in ("lenet5", "cnn"):
        out = get_model(name)(dg.randn(2, 1, 28, 28))
        assert out.dtype == np.float32


@pytest.mark.parametrize("name,kwargs,match", [
    ("lenet5", dict(input_shape=(1, 8, 8)), "too small"),
    ("lenet5", dict(input_shape=(28, 28)), "input_shape must be"),
    ("lenet5", dict(activation="gelu"), "activation must be one of"),
    ("lenet5", dict(pool="min"), "pool must be one of"),
    ("lenet5", dict(num_classes=0), "num_classes"),
    ("lenet5_bn", dict(input_shape=(1, 0, 28)), "input_shape"),
    ("cnn", dict(input_shape=(1, 3, 3)), "too small"),
    ("cnn", dict(dropout=1.0), "dropout"),
    ("cnn", dict(channels=(8,)), "channels"),
    ("resnet20", dict(shortcut="C"), "shortcut must be one of"),
    ("resnet20", dict(input_shape=(3, 32)), "input_shape"),
])
def test_invalid_options_are_refused(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_model(name, **kwargs)


def test_resnet_depth_must_be_6n_plus_2():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        CifarResNet(depth=21)
    assert CifarResNet(depth=8).num_parameters() > 0


def test_option_a_shortcut_has_no_parameters():
    a = get_model("resnet20")
    b = get_model("resnet20", shortcut="B")
    assert not any("downsample" in k for k in a.state_dict())
    assert "layer2.0.downsample.0.weight" in b.state_dict()
    assert b.num_parameters() - a.num_parameters() == 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64
