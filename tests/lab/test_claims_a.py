"""Claims optimizers, batchnorm, init and activations at the smoke budget on real MNIST: each
runs in seconds and returns a well-formed outcome whose verdict comes from its runs."""

from __future__ import annotations

import math

import pytest

from deepgrad.lab.claims import optimizers_2d as d2
from deepgrad.lab.claims.batchnorm import relu_mlp, sigmoid_mlp
from deepgrad.lab.claims.init import SCHEMES, deep_mlp
from tests.lab.claim_smoke import check_claim_at_smoke

pytestmark = pytest.mark.default_dtype("float32")

#: The claims these tests cover (the coverage test's convention).
COVERED = {"optimizers", "batchnorm", "init", "activations"}


@pytest.mark.parametrize("name", sorted(COVERED))
def test_claim_at_smoke(name, mnist_dir, tmp_path):
    _, _, lines = check_claim_at_smoke(name, mnist_dir, tmp_path)
    assert lines, "no progress lines"


def test_batchnorm_models():
    assert sum(isinstance(m, type(sigmoid_mlp(True)[2])) for m in sigmoid_mlp(True)) == 3
    plain = sigmoid_mlp(False)
    assert len([m for m in plain if type(m).__name__ == "Sigmoid"]) == 3
    before, after = relu_mlp("before"), relu_mlp("after")
    names_b = [type(m).__name__ for m in before][1:4]
    names_a = [type(m).__name__ for m in after][1:4]
    assert names_b == ["Linear", "BatchNorm1d", "ReLU"]
    assert names_a == ["Linear", "ReLU", "BatchNorm1d"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_init_schemes_have_the_right_scale(scheme):
    import deepgrad as dg

    dg.manual_seed(0)
    m = deep_mlp(2, 400, "relu", scheme)
    w = m[3].weight.data  # the 400 x 400 layer
    expected = {"zeros": 0.0, "N(0,1)": 1.0, "N(0,1/n)": 1 / 20, "xavier": math.sqrt(2 / 800),
                "he": math.sqrt(2 / 400)}[scheme]
    assert float(w.std()) == pytest.approx(expected, rel=0.02, abs=1e-12)
    assert float(abs(m[3].bias.data).max()) == 0.0


def test_second_order_reaches_rosenbrock_minimum_in_few_steps():
    sf = d2.SURFACES[0]
    r = d2.run_second_order(sf, "Newton", 200)
    assert r["steps_to_tol"] < 40 and r["path"][0] == list(sf.x0)
    first = d2.run_first_order(sf, "SGD", d2.lr_grid(1e-3, 3), 100)
    assert first["steps_to_tol"] == math.inf and len(first["path"]) == 101
