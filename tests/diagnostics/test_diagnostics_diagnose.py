"""``build_diagnose_model``, ``run_diagnose`` (what the CLI calls) and the histogram PNGs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from deepgrad import nn
from deepgrad.diagnostics import (
    ACTIVATIONS,
    INITS,
    build_diagnose_model,
    inspect,
    run_diagnose,
)
from tests.mnist_data import MNIST_DIR

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _mnist_root() -> Path | None:
    return None if MNIST_DIR is None else MNIST_DIR.parent


# ----------------------------------------------------------------------------- building
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_structure(activation):
    model = build_diagnose_model("mlp", 32, activation, "he", depth=3)
    types = [type(m).__name__ for m in model.children()]
    act = type(model[2]).__name__
    assert types == ["Flatten", "Linear", act, "Linear", act, "Linear", act, "Linear"]
    assert model[1].weight.shape == (32, 784) and model[7].weight.shape == (10, 32)
    assert all(np.all(m.bias.data == 0) for m in model.modules() if isinstance(m, nn.Linear))


def test_int_model_is_the_depth():
    model = build_diagnose_model(5, 16, "tanh", "xavier")
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 6


@pytest.mark.parametrize("init", INITS)
def test_init_statistics(init):
    w = build_diagnose_model(1, 512, "relu", init, in_features=1024, init_std=0.5)[1].weight.data
    if init == "zeros":
        assert np.all(w == 0)
        return
    expected = {"uniform": 1 / np.sqrt(3 * 1024), "normal": 0.5,
                "xavier": np.sqrt(2 / (1024 + 512)), "he": np.sqrt(2 / 1024)}[init]
    assert w.std() == pytest.approx(expected, rel=0.02)
    if init == "uniform":
        assert np.abs(w).max() <= 1 / 32


def test_leaky_relu_he_gain():
    w = build_diagnose_model(1, 512, "leaky_relu", "he", in_features=1024)[1].weight.data
    assert w.std() == pytest.approx(np.sqrt(2 / (1 + 0.01**2) / 1024), rel=0.02)


def test_zoo_model_and_errors():
    model = build_diagnose_model("logreg", init="zeros")
    assert np.all(model[1].weight.data == 0)
    with pytest.raises(ValueError, match="activation applies only"):
        build_diagnose_model("logreg", activation="tanh")
    with pytest.raises(ValueError, match="unknown init"):
        build_diagnose_model(3, 8, "relu", "orthogonal")
    with pytest.raises(ValueError, match="unknown activation"):
        build_diagnose_model(3, 8, "gelu", "he")
    with pytest.raises(ValueError, match="depth"):
        build_diagnose_model("mlp", 8, "relu", "he", depth=0)
    with pytest.raises(ValueError, match="unknown model"):
        build_diagnose_model("resnet999")


# ----------------------------------------------------------------------------- running
def test_run_diagnose_synthetic():
    report = run_diagnose("mlp", depth=10, width=64, activation="sigmoid", init="normal",
                          batch=64, synthetic=True)
    assert sum("saturated" in f for f in report.flags) >= 8
    assert report.meta == {"model": "mlp", "depth": 10, "width": 64, "activation": "sigmoid",
                           "init": "normal", "init_std": 1.0, "data": "synthetic N(0, 1)",
                           "seed": 0}
    assert report.input_shape == (64, 1, 28, 28)
    json.dumps(report.to_dict(), allow_nan=False)
    again = run_diagnose("mlp", depth=10, width=64, activation="sigmoid", init="normal",
                         batch=64, synthetic=True)
    assert again.layers == report.layers  # the seed makes it repeatable


def test_run_diagnose_needs_data():
    with pytest.raises(ValueError, match="data_dir"):
        run_diagnose(batch=4)
    with pytest.raises(ValueError, match="batch"):
        run_diagnose(batch=0, synthetic=True)


@pytest.mark.skipif(_mnist_root() is None, reason="the shared MNIST files are not here")
def test_run_diagnose_mnist():
    report = run_diagnose("mlp", depth=4, width=64, activation="relu", init="he", batch=128,
                          data_dir=_mnist_root())
    assert report.flags == []
    assert report.input_std == pytest.approx(1.0, rel=1e-3)
    assert report.meta["data"].startswith("mnist train")


# ----------------------------------------------------------------------------- histograms
def test_histograms_written(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    model = build_diagnose_model(3, 32, "tanh", "xavier", in_features=20)
    report = inspect(model, rng.standard_normal((32, 20)), rng.integers(0, 10, 32))
    paths = report.save_histograms(tmp_path / "hist")
    assert [p.name for p in paths] == ["activations.png", "gradients.png"]
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC
    one = report.save_histograms(tmp_path / "tanh.png", types={"Tanh"})
    assert [p.name for p in one] == ["tanh.png", "tanh-gradients.png"]
    no_grads = inspect(model, rng.standard_normal((8, 20)))
    assert [p.name for p in no_grads.save_histograms(tmp_path / "x")] == ["activations.png"]
    with pytest.raises(ValueError, match="no layer"):
        report.save_histograms(tmp_path / "y", types={"Conv2d"})


def test_histograms_without_matplotlib(tmp_path, monkeypatch):
    report = inspect(nn.Sequential(nn.Tanh()), np.ones((2, 3)))
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        report.save_histograms(tmp_path)
