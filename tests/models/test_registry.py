"""Tests of the model registry and the fully connected models (mlp, logreg)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import nn
from deepgrad.models import MLP, MODELS, LogisticRegression, get_model, list_models

# torch reference of each registered model (parity rows below); COVERED is derived from it.
TORCH_REFERENCE = {
    "mlp": lambda: torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(36, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8),
        torch.nn.ReLU(), torch.nn.Linear(8, 4)),
    "logreg": lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 4)),
}
OPTIONS = {"mlp": {"hidden": (16, 8)}, "logreg": {}}
COVERED = set(TORCH_REFERENCE)


def test_list_models_is_sorted_and_has_the_builtins():
    names = list_models()
    assert names == sorted(names)
    assert {"mlp", "logreg"} <= set(names)
    assert type(MODELS) is dict  # a plain dict: adding a model is one line


def test_unknown_model_names_the_available_ones():
    with pytest.raises(ValueError, match=r"unknown model 'nope'.*logreg, mlp"):
        get_model("nope")


@pytest.mark.parametrize("name", list_models())
def test_every_builder_takes_input_shape_and_num_classes(name):
    model = get_model(name, input_shape=(1, 28, 28), num_classes=7)
    assert isinstance(model, nn.Module)
    out = model(dg.randn(3, 1, 28, 28))
    assert out.shape == (3, 7)


def test_mlp_default_architecture():
    model = get_model("mlp")
    assert isinstance(model, MLP)
    assert list(model.state_dict()) == ["1.weight", "1.bias", "3.weight", "3.bias",
                                        "5.weight", "5.bias"]
    assert model.num_parameters() == 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10
    assert model(dg.randn(2, 1, 28, 28)).shape == (2, 10)


def test_mlp_configurable_for_vector_data():
    model = get_model("mlp", input_shape=(20,), num_classes=3, hidden=(8,))
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {"1.weight": (8, 20), "1.bias": (8,), "3.weight": (3, 8), "3.bias": (3,)}
    assert model(dg.randn(5, 20)).shape == (5, 3)
    assert get_model("mlp", input_shape=(3, 4, 5), hidden=()).num_parameters() == 60 * 10 + 10


def test_mlp_dropout_layers_only_when_asked():
    assert not any(isinstance(m, nn.Dropout) for m in get_model("mlp").modules())
    model = get_model("mlp", dropout=0.5)
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 2
    assert list(model.state_dict()) == ["1.weight", "1.bias", "4.weight", "4.bias",
                                        "7.weight", "7.bias"]


def test_logreg_is_flatten_linear():
    model = get_model("logreg", input_shape=(1, 28, 28), num_classes=10)
    assert isinstance(model, LogisticRegression)
    assert model.num_parameters() == 7850
    assert list(model.state_dict()) == ["1.weight", "1.bias"]


@pytest.mark.parametrize("kwargs", [
    dict(input_shape=()), dict(input_shape=(0, 28)), dict(input_shape=(1.5,)),
    dict(num_classes=0), dict(hidden=(512, 0)), dict(dropout=1.0),
])
def test_mlp_invalid_options_are_refused(kwargs):
    with pytest.raises(ValueError):
        get_model("mlp", **kwargs)


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError):
        get_model("logreg", hidden=(3,))


def test_initialisation_follows_manual_seed():
    dg.manual_seed(5)
    a = get_model("mlp").state_dict()
    dg.manual_seed(5)
    b = get_model("mlp").state_dict()
    assert all(np.array_equal(a[k].data, b[k].data) for k in a)


@pytest.mark.parametrize("name", sorted(TORCH_REFERENCE))
def test_forward_and_keys_match_torch(name):
    model = get_model(name, input_shape=(1, 6, 6), num_classes=4, **OPTIONS[name])
    ref = TORCH_REFERENCE[name]()
    assert list(ref.state_dict()) == list(model.state_dict())
    ref.load_state_dict({k: torch.from_numpy(v.data.copy()) for k, v in
                         model.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 1, 6, 6)).astype(np.float32)
    expected = ref(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model(dg.tensor(x)).data, expected, rtol=1e-5, atol=1e-6)
