"""Tests of ``summarize`` (deepgrad.diagnostics.summary): shapes, parameters, FLOPs by hand,
the table, and that the model is left unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import nn
from deepgrad.diagnostics.summary import ModelSummary, summarize
from deepgrad.models import get_model


def _row(summary, name):
    return next(layer for layer in summary.layers if layer.name == name)


@pytest.mark.parametrize("bias,expected", [(True, 2 * 20 * 7 + 7), (False, 2 * 20 * 7)])
def test_linear_flops_by_hand(bias, expected):
    s = summarize(nn.Linear(20, 7, bias=bias), (20,), batch_size=3)
    (layer,) = s.layers
    assert (layer.name, layer.type, layer.flops) == ("", "Linear", expected)
    assert layer.output_shape == [3, 7] and layer.input_shape == [3, 20]
    assert layer.params == 20 * 7 + 7 * bias == s.total_params
    # Extra leading dimensions multiply the count (one matrix-vector product per row).
    assert summarize(nn.Linear(20, 7, bias=bias), (5, 20)).total_flops == 5 * expected


def test_conv2d_flops_by_hand():
    # 2 * C_out * OH * OW * (C_in / groups) * kh * kw (+ C_out * OH * OW for the bias)
    s = summarize(nn.Conv2d(3, 8, 3, padding=1), (3, 10, 10))
    assert s.total_flops == 2 * 8 * 10 * 10 * 3 * 3 * 3 + 8 * 10 * 10 == 44_000
    grouped = summarize(nn.Conv2d(4, 8, 3, stride=1, groups=2, bias=False), (4, 6, 6))
    assert grouped.total_flops == 2 * 8 * 4 * 4 * 2 * 3 * 3
    strided = summarize(nn.Conv2d(1, 2, (3, 5), stride=2, padding=(1, 2)), (1, 9, 9))
    assert strided.layers[0].output_shape == [1, 2, 5, 5]
    assert strided.total_flops == 2 * 2 * 25 * 1 * 15 + 2 * 25


def test_elementwise_pooling_and_norm_conventions():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.AvgPool2d(2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Dropout(0.5), nn.Linear(4, 3), nn.Tanh())
    s = summarize(model, (1, 10, 10), batch_size=2)
    flops = {layer.name: layer.flops for layer in s.layers}
    assert flops["1"] == 2 * 4 * 8 * 8  # BN: 2 per element
    assert flops["2"] == 4 * 8 * 8  # ReLU: 1 per element
    assert flops["3"] == 4 * 4 * 4 * 4  # MaxPool 2x2: 4 per output element
    assert flops["4"] == 4 * 4 * 3 * 3  # AvgPool 2x2 stride 1: 4 per output element
    assert flops["5"] == 4 * 3 * 3  # adaptive: 1 per input element
    assert flops["6"] == flops["7"] == 0
    assert flops["9"] == 3
    assert s.total_flops == sum(flops.values())
    assert s.uncounted == []


def test_lenet5_summary_matches_the_model():
    model = get_model("lenet5")
    s = summarize(model, (1, 28, 28))
    assert isinstance(s, ModelSummary)
    assert s.total_params == s.trainable_params == model.num_parameters() == 61_706
    assert sum(layer.params for layer in s.layers) == 61_706
    assert [layer.output_shape for layer in s.layers if layer.type == "Conv2d"] == [
        [1, 6, 28, 28], [1, 16, 10, 10]]
    assert s.output_shape == [1, 10]
    assert _row(s, "features.0").flops == 2 * 6 * 28 * 28 * 25 + 6 * 28 * 28
    assert _row(s, "classifier.0").flops == 2 * 400 * 120 + 120
    assert s.param_bytes == 61_706 * 8  # float64 parameters (the tests' default dtype)
    assert s.param_memory_mb == pytest.approx(61_706 * 8 / 1e6)
    # per-sample FLOPs do not depend on the batch size
    assert summarize(model, (1, 28, 28), batch_size=4).total_flops == s.total_flops


def test_param_counts_agree_with_torch_for_resnet20():
    s = summarize(get_model("resnet20"), (3, 32, 32))
    assert s.total_params == 269_722
    # conv + fc multiply-adds of ResNet-20 on 32x32: about 41M (He et al. 2016: 0.27M params)
    macs = sum(layer.flops for layer in s.layers if layer.type in ("Conv2d", "Linear")) / 2
    assert 40e6 < macs < 42e6
    names = [layer.name for layer in s.layers]
    assert names.count("layer1.0.relu") == 2  # a module called twice appears twice
    assert _row(s, "layer2.0.downsample").flops == 0


def test_shared_module_parameters_counted_once():
    lin = nn.Linear(4, 4)
    s = summarize(nn.Sequential(lin, nn.ReLU(), lin), (4,))
    assert [layer.params for layer in s.layers] == [20, 0, 0]
    assert s.total_params == 20
    assert s.total_flops == 2 * (2 * 16 + 4) + 4


def test_frozen_parameters_are_non_trainable():
    model = get_model("lenet5")
    model.features.requires_grad_(False)
    s = summarize(model, (1, 28, 28))
    assert s.non_trainable_params == 156 + 2416
    assert s.trainable_params == 61_706 - 2572
    assert _row(s, "features.0").trainable_params == 0


def test_table_and_dict():
    s = summarize(get_model("lenet5_bn"), (1, 28, 28), batch_size=2)
    text = s.table()
    assert str(s) == text
    for piece in ("Layer (type)", "Output Shape", "Param #", "FLOPs",
                  "features.0 (Conv2d)", "[2, 6, 28, 28]", "Total params: 61,932",
                  "Trainable params: 61,932", "Non-trainable params: 0",
                  f"Total FLOPs per sample: {s.total_flops:,}", "Param memory: 0.50 MB"):
        assert piece in text, piece
    widths = {len(line) for line in text.splitlines()[1:len(s.layers) + 4]}
    assert len(widths) == 1  # fixed width
    d = json.loads(json.dumps(s.to_dict()))
    assert d["total_params"] == 61_932 and d["total_flops"] == s.total_flops
    assert d["layers"][0] == {"name": "features.0", "type": "Conv2d",
                              "input_shape": [2, 1, 28, 28], "output_shape": [2, 6, 28, 28],
                              "params": 150, "trainable_params": 150,
                              "flops": 2 * 6 * 28 * 28 * 25}


def test_model_is_left_unchanged():
    model = get_model("lenet5_bn")
    model.train()
    model.classifier.eval()
    model.classifier[0].train()
    before = {k: v.data.copy() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    handle = model.features[0].register_forward_hook(lambda m, i, o: None)
    rng_state = dg.get_rng_state()
    dg.set_grad_enabled(True)
    summarize(model, (1, 28, 28), batch_size=3)
    assert [m.training for m in model.modules()] == modes
    assert all(np.array_equal(before[k], v.data) for k, v in model.state_dict().items())
    assert len(model.features[0]._forward_hooks) == 1  # only the user's hook remains
    assert not any(m._forward_pre_hooks for m in model.modules())
    assert sum(len(m._forward_hooks) for m in model.modules()) == 1
    assert dg.is_grad_enabled()
    after = dg.randn(5).data  # the global generator was not advanced
    dg.set_rng_state(rng_state)
    assert np.array_equal(after, dg.randn(5).data)
    handle.remove()


def test_uncounted_types_are_listed():
    s = summarize(nn.LSTM(4, 3), (2, 4))
    (layer,) = s.layers
    assert layer.flops is None and s.uncounted == ["LSTM"]
    assert layer.output_shape[0] == [1, 2, 3]  # (output, (h, c)) keeps its structure
    assert "--" in s.table() and "FLOPs not counted for: LSTM" in s.table()


def test_a_wrong_input_shape_names_the_layer_and_removes_the_hooks():
    model = get_model("lenet5")  # built for 28x28: its first Linear expects 400 features
    with pytest.raises(ValueError, match=r"classifier\.0.*Linear.*\[1, 576\]"):
        summarize(model, (1, 32, 32))
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert model.training


@pytest.mark.parametrize("args,kwargs,error", [
    ((nn.Linear(2, 2), ()), {}, ValueError),
    ((nn.Linear(2, 2), (0,)), {}, ValueError),
    ((nn.Linear(2, 2), (2.0,)), {}, ValueError),
    ((nn.Linear(2, 2), (2,)), {"batch_size": 0}, ValueError),
    ((torch.nn.Linear(2, 2), (2,)), {}, TypeError),
])
def test_invalid_arguments(args, kwargs, error):
    with pytest.raises(error):
        summarize(*args, **kwargs)


@pytest.mark.default_dtype("float32")
def test_float32_model_gets_a_float32_input():
    s = summarize(get_model("cnn"), (1, 28, 28))
    assert s.param_bytes == 421_642 * 4
