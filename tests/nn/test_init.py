"""``deepgrad.nn.init``: each initialiser's statistics over a large tensor against the formula,
with ``torch.nn.init`` on the same shape as the second oracle (its samples must fit the same
formula), plus ``calculate_gain`` against torch and the errors.

Tolerances are 5 standard errors: the mean of n samples has std sigma/sqrt(n) and the sample std
has relative std about 1/sqrt(2n) (smaller for uniform), so a correct initialiser fails with
probability < 1e-6, and a wrong fan, gain or uniform/normal mix-up (>= 10% off) always fails.

``COVERED`` (public function names of ``deepgrad.nn.init`` with a test) is read by
tests/test_coverage.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.stats
import torch

import deepgrad as dg
from deepgrad.nn import Parameter, init

LINEAR = (256, 512)  # fan_in 512, fan_out 256
CONV = (128, 64, 3, 3)  # fan_in 576, fan_out 1152


def _fans(shape):
    rf = math.prod(shape[2:])
    return shape[1] * rf, shape[0] * rf


@dataclass
class Row:
    name: str
    covers: str
    shape: tuple
    dg_call: object  # f(tensor) with deepgrad.nn.init
    th_call: object  # f(tensor) with torch.nn.init
    mean: float
    std: float
    lo: float = -math.inf
    hi: float = math.inf
    uniform: bool = False


def _uniform_row(name, covers, shape, dg_call, th_call, bound, centre=0.0):
    return Row(name, covers, shape, dg_call, th_call, centre, bound / math.sqrt(3),
               centre - bound, centre + bound, uniform=True)


def _kaiming_rows():
    rows = []
    for shape in (LINEAR, CONV):
        for mode in ("fan_in", "fan_out"):
            fan = _fans(shape)[0 if mode == "fan_in" else 1]
            for nl, a in (("relu", 0), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)),
                          ("linear", 0), ("tanh", 0)):
                gain = torch.nn.init.calculate_gain(nl, a)
                tag = f"{len(shape)}d-{mode}-{nl}-{a:.2f}"
                rows.append(_uniform_row(
                    f"kaiming_uniform-{tag}", "kaiming_uniform_", shape,
                    lambda t, a=a, mode=mode, nl=nl: init.kaiming_uniform_(
                        t, a=a, mode=mode, nonlinearity=nl),
                    lambda t, a=a, mode=mode, nl=nl: torch.nn.init.kaiming_uniform_(
                        t, a=a, mode=mode, nonlinearity=nl),
                    gain * math.sqrt(3.0 / fan)))
                rows.append(Row(
                    f"kaiming_normal-{tag}", "kaiming_normal_", shape,
                    lambda t, a=a, mode=mode, nl=nl: init.kaiming_normal_(
                        t, a=a, mode=mode, nonlinearity=nl),
                    lambda t, a=a, mode=mode, nl=nl: torch.nn.init.kaiming_normal_(
                        t, a=a, mode=mode, nonlinearity=nl),
                    0.0, gain / math.sqrt(fan)))
    return rows


def _xavier_rows():
    rows = []
    for shape in (LINEAR, CONV):
        fan_in, fan_out = _fans(shape)
        for gain in (1.0, 5.0 / 3):
            tag = f"{len(shape)}d-gain{gain:.2f}"
            rows.append(_uniform_row(
                f"xavier_uniform-{tag}", "xavier_uniform_", shape,
                lambda t, g=gain: init.xavier_uniform_(t, gain=g),
                lambda t, g=gain: torch.nn.init.xavier_uniform_(t, gain=g),
                gain * math.sqrt(6.0 / (fan_in + fan_out))))
            rows.append(Row(
                f"xavier_normal-{tag}", "xavier_normal_", shape,
                lambda t, g=gain: init.xavier_normal_(t, gain=g),
                lambda t, g=gain: torch.nn.init.xavier_normal_(t, gain=g),
                0.0, gain * math.sqrt(2.0 / (fan_in + fan_out))))
    return rows


def _trunc_row(mean, std, a, b):
    dist = scipy.stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    return Row(f"trunc_normal-{mean}-{std}-{a}-{b}", "trunc_normal_", LINEAR,
               lambda t: init.trunc_normal_(t, mean, std, a, b),
               lambda t: torch.nn.init.trunc_normal_(t, mean, std, a, b),
               float(dist.mean()), float(dist.std()), a, b)


ROWS = [
    _uniform_row("uniform-default", "uniform_", LINEAR, init.uniform_, torch.nn.init.uniform_,
                 0.5, centre=0.5),
    _uniform_row("uniform-ab", "uniform_", CONV, lambda t: init.uniform_(t, -0.5, 1.5),
                 lambda t: torch.nn.init.uniform_(t, -0.5, 1.5), 1.0, centre=0.5),
    Row("normal-default", "normal_", LINEAR, init.normal_, torch.nn.init.normal_, 0.0, 1.0),
    Row("normal-mean-std", "normal_", CONV, lambda t: init.normal_(t, 0.3, 2.0),
        lambda t: torch.nn.init.normal_(t, 0.3, 2.0), 0.3, 2.0),
    *_xavier_rows(),
    *_kaiming_rows(),
    _trunc_row(0.0, 1.0, -2.0, 2.0),
    _trunc_row(1.0, 0.5, 0.0, 1.5),
    _trunc_row(0.0, 0.02, -0.04, 0.04),
]


def _check_stats(w: np.ndarray, row: Row, who: str) -> None:
    n = w.size
    assert np.all(w >= row.lo) and np.all(w <= row.hi), f"{who}: values outside the bounds"
    assert abs(w.mean() - row.mean) < 5 * row.std / math.sqrt(n), (
        f"{who}: mean {w.mean():.5f}, expected {row.mean:.5f}")
    rel = w.std() / row.std - 1
    assert abs(rel) < 5 / math.sqrt(2 * n), (
        f"{who}: std {w.std():.5f}, expected {row.std:.5f} ({rel:+.2%})")
    if row.uniform:
        width = row.hi - row.lo
        assert w.min() < row.lo + 0.01 * width and w.max() > row.hi - 0.01 * width, (
            f"{who}: does not fill [{row.lo}, {row.hi}]")
        # A uniform, not a normal with the same std: its excess kurtosis is -1.2.
        assert abs(scipy.stats.kurtosis(w.reshape(-1)) + 1.2) < 0.1, f"{who}: not uniform"


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_initialiser_statistics(row):
    t = Parameter(np.zeros(row.shape))
    assert row.dg_call(t) is t  # in place, returns its argument
    assert t.grad_fn is None and t.requires_grad  # no graph recorded
    _check_stats(t.data, row, "deepgrad")
    tt = torch.empty(row.shape, dtype=torch.float64)
    row.th_call(tt)
    _check_stats(tt.numpy(), row, "torch")  # the formula is torch's


def test_initialisers_follow_the_seed():
    a, b = dg.empty(50, 40), dg.empty(50, 40)
    dg.manual_seed(5)
    init.kaiming_normal_(a)
    dg.manual_seed(5)
    init.kaiming_normal_(b)
    np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.default_dtype("float32")
def test_initialisers_keep_the_dtype():
    t = dg.empty(10, 20)
    init.xavier_uniform_(t)
    assert t.dtype == np.float32


@pytest.mark.parametrize("name,call,expected", [
    ("zeros_", init.zeros_, np.zeros((3, 4))),
    ("ones_", init.ones_, np.ones((3, 4))),
    ("constant_", lambda t: init.constant_(t, 0.25), np.full((3, 4), 0.25)),
    ("eye_", init.eye_, np.eye(3, 4)),
])
def test_deterministic_initialisers(name, call, expected):
    t = Parameter(np.random.default_rng(0).standard_normal((3, 4)))
    assert call(t) is t
    np.testing.assert_array_equal(t.data, expected)
    tt = torch.empty(3, 4, dtype=torch.float64)
    getattr(torch.nn.init, name)(tt, *([0.25] if name == "constant_" else []))
    np.testing.assert_array_equal(t.data, tt.numpy())


GAINS = [("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None),
         ("conv_transpose1d", None), ("conv_transpose2d", None), ("conv_transpose3d", None),
         ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
         ("leaky_relu", 0.2), ("leaky_relu", 0), ("leaky_relu", 1), ("leaky_relu", math.sqrt(5)),
         ("selu", None)]


@pytest.mark.parametrize("nonlinearity,param", GAINS,
                         ids=[f"{n}-{p}" for n, p in GAINS])
def test_calculate_gain_matches_torch(nonlinearity, param):
    expected = torch.nn.init.calculate_gain(nonlinearity, param)
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("nonlinearity,param", [("swish", None), ("leaky_relu", "0.1"),
                                                ("leaky_relu", True)])
def test_calculate_gain_errors(nonlinearity, param):
    with pytest.raises(ValueError):
        torch.nn.init.calculate_gain(nonlinearity, param)
    with pytest.raises(ValueError):
        init.calculate_gain(nonlinearity, param)


FAN_INITS = ["xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"]


@pytest.mark.parametrize("name", FAN_INITS)
@pytest.mark.parametrize("shape", [(5,), ()], ids=["1d", "0d"])
def test_fan_initialisers_refuse_fewer_than_2_dims(name, shape):
    with pytest.raises(ValueError):
        getattr(torch.nn.init, name)(torch.empty(shape))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        getattr(init, name)(dg.empty(*shape))


@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_"])
def test_kaiming_bad_mode(name):
    with pytest.raises(ValueError, match="fan_avg"):
        getattr(init, name)(dg.empty(3, 4), mode="fan_avg")


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)])
def test_eye_needs_2d(shape):
    with pytest.raises(ValueError, match="2-D"):
        init.eye_(dg.empty(*shape))


#: public functions of deepgrad.nn.init with a test here.
COVERED = {r.covers for r in ROWS} | {"zeros_", "ones_", "constant_", "eye_", "calculate_gain"}
