"""``Dropout2d`` and ``F.dropout2d``: whole channels dropped, inverted scaling, eval identity.

Randomness cannot be compared with PyTorch value by value, so the statistics are checked: the
fraction of dropped channels against p within 4 binomial standard deviations, each channel
all-zero or all-scaled by 1/(1-p), and the gradient equal to the same mask.

``COVERED`` (module and ``F`` names with a test here) is read by tests/test_coverage.py.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad.nn.functional.dropout2d import dropout2d
from deepgrad.nn.modules.dropout2d import Dropout2d

#: Names with a test here (read by tests/test_coverage.py).
COVERED = {"Dropout2d", "dropout2d"}


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("shape", [(100, 60, 3, 4), (200, 30, 5)], ids=["NCHW", "NCL"])
def test_drops_whole_channels_at_rate_p(p, shape):
    dg.manual_seed(123)
    x = np.random.default_rng(0).uniform(1.0, 2.0, shape)  # no zeros in the input
    m = Dropout2d(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = m(dg.tensor(x)).data
    ratio = (y / x).reshape(shape[0], shape[1], -1)
    dropped = np.all(ratio == 0, axis=2)
    kept = np.all(np.isclose(ratio, 1 / (1 - p), rtol=1e-12), axis=2)
    assert np.all(dropped | kept), "a channel was partly dropped"
    n = shape[0] * shape[1]
    assert abs(dropped.mean() - p) <= 4 * math.sqrt(p * (1 - p) / n)
    # The expectation is preserved (inverted dropout): y.mean() averages n channel means
    # m_c * mask_c / (1 - p), each of variance m_c^2 p / (1 - p).
    m = x.reshape(shape[0], shape[1], -1).mean(axis=2)
    assert abs(y.mean() - x.mean()) <= 4 * math.sqrt(p / (1 - p) * np.mean(m * m) / n)


def test_gradient_is_the_mask(oracle):
    dg.manual_seed(0)
    x = dg.tensor(np.random.default_rng(1).standard_normal((8, 5, 2, 2)), requires_grad=True)
    y = dropout2d(x, 0.4)
    v = np.random.default_rng(2).standard_normal(y.shape)
    (g,) = dg.autograd.grad(y, x, dg.tensor(v))
    mask = y.data / x.data
    oracle.close(g, v * mask, 1e-12, "gradient")


def test_eval_and_p0_are_identity_p1_is_zero():
    x = dg.tensor(np.random.default_rng(0).standard_normal((4, 3, 2, 2)))
    m = Dropout2d(0.7).eval()
    assert m(x) is x
    assert dropout2d(x, 0.0) is x
    assert dropout2d(x, 0.5, training=False) is x
    np.testing.assert_array_equal(dropout2d(x, 1.0).data, np.zeros(x.shape))


def test_seeded_runs_repeat():
    x = dg.tensor(np.ones((6, 7, 2, 2)))
    dg.manual_seed(5)
    a = dropout2d(x, 0.5).data
    dg.manual_seed(5)
    b = dropout2d(x, 0.5).data
    np.testing.assert_array_equal(a, b)


@pytest.mark.default_dtype("float32")
def test_float32_stays_float32():
    x = dg.tensor(np.ones((4, 3, 2, 2), np.float32))
    assert dropout2d(x, 0.3).dtype == np.float32


def test_warnings_match_torch_for_3d_and_other_ranks():
    with pytest.warns(UserWarning, match="3-D input"):
        dropout2d(dg.tensor(np.ones((2, 3, 4))), 0.5)
    with pytest.warns(UserWarning, match="5-D input"):
        dropout2d(dg.tensor(np.ones((2, 3, 2, 2, 2))), 0.5)
    with pytest.warns(UserWarning):
        torch.nn.functional.dropout2d(torch.ones(2, 3, 4), 0.5)


def test_errors_and_repr():
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        Dropout2d(1.5)
    with pytest.raises(ValueError, match="between 0 and 1, but got -0.1"):
        dropout2d(dg.tensor(np.ones((2, 3, 2, 2))), -0.1)
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        dropout2d(dg.tensor(np.ones(5)), 0.5)
    assert repr(Dropout2d(0.3)) == repr(torch.nn.Dropout2d(0.3))
