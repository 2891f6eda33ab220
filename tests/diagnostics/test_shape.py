"""Tests of the conv/pool output-size formula and its explanation (deepgrad.diagnostics.shape)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as TF

from deepgrad.diagnostics.shape import FORMULA, conv_output_size, explain_conv_output
from deepgrad.ops.pool import pool_out_size


def _torch_size(h, k, s, p, d, ceil_mode):
    """torch's actual output length, or None where torch refuses the configuration."""
    x = torch.zeros(1, 1, h, 1)
    try:
        if ceil_mode:  # only pooling has ceil_mode (and needs p <= k / 2)
            y = TF.max_pool2d(x, (k, 1), (s, 1), (p, 0), (d, 1), ceil_mode=True)
        else:
            y = TF.conv2d(x, torch.zeros(1, 1, k, 1), None, (s, 1), (p, 0), (d, 1))
    except RuntimeError:
        return None
    return y.shape[2]


GRID = list(itertools.product((1, 2, 3, 5, 7, 8, 28), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2),
                              (1, 2), (False, True)))


def test_formula_matches_torch_over_a_grid():
    checked = refused = 0
    for h, k, s, p, d, ceil_mode in GRID:
        if ceil_mode and p > k // 2:
            continue  # torch refuses pooling padding > kernel / 2 whatever the size
        expected = _torch_size(h, k, s, p, d, ceil_mode)
        case = dict(size=h, kernel=k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
        if expected is None or expected < 1:
            with pytest.raises(ValueError, match="< 1"):
                conv_output_size(**case)
            refused += 1
        else:
            assert conv_output_size(**case) == expected, case
            checked += 1
    assert checked > 500 and refused > 50


def test_formula_matches_deepgrads_own_pooling_geometry():
    for h, k, s, p, d, ceil_mode in GRID:
        try:
            ours = conv_output_size(h, k, s, p, d, ceil_mode)
        except ValueError:
            continue
        assert ours == pool_out_size(h, k, s, p, d, ceil_mode)


@pytest.mark.parametrize("args,expected", [
    ((28, 5, 1, 2), 28), ((28, 5), 24), ((32, 3, 2, 1), 16), ((7, 3, 2, 1, 2), 3),
    ((5, 2, 2, 0, 1, True), 3), ((5, 2, 2, 0, 1, False), 2), ((1, 2, 2, 0, 1, True), 1),
])
def test_known_sizes(args, expected):
    assert conv_output_size(*args) == expected


def test_too_small_input_names_the_numbers():
    with pytest.raises(ValueError, match=r"3 \+ 2\*0 = 3 .* effective kernel .* = 5"):
        conv_output_size(3, 5)
    with pytest.raises(ValueError, match=r"2\*\(3 - 1\) \+ 1 = 5"):
        conv_output_size(4, 3, dilation=2)


@pytest.mark.parametrize("kwargs", [
    dict(size=0, kernel=3), dict(size=5, kernel=0), dict(size=5, kernel=3, stride=0),
    dict(size=5, kernel=3, padding=-1), dict(size=5, kernel=3, dilation=0),
    dict(size=5.0, kernel=3), dict(size=True, kernel=3), dict(size=5, kernel="3"),
])
def test_invalid_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        conv_output_size(**kwargs)


def test_explanation_of_lenet_conv1():
    text = explain_conv_output((1, 28, 28), 5, stride=1, padding=2, out_channels=6)
    assert FORMULA in text
    assert "d*(k - 1) + 1 = 1*(5 - 1) + 1 = 5" in text  # effective kernel
    assert "in + 2*p = 28 + 2*2 = 32" in text  # padded size
    assert "floor((32 - 5) / 1) + 1 = floor(27/1) + 1 = 28" in text  # positions
    assert "W: the same computation" in text
    assert text.splitlines()[-1] == "output shape: (6, 28, 28)"


def test_explanation_per_dimension_with_tuple_arguments():
    text = explain_conv_output((3, 32, 30), (3, 5), stride=2, padding=(1, 0))
    assert "H: in = 32, kernel = 3, stride = 2, padding = 1" in text
    assert "W: in = 30, kernel = 5, stride = 2, padding = 0" in text
    assert "-> H_out = 16" in text and "-> W_out = 13" in text
    assert "channels kept" in text
    assert text.endswith("output shape: (3, 16, 13)")
    expected_h = TF.conv2d(torch.zeros(1, 3, 32, 30), torch.zeros(4, 3, 3, 5), stride=2,
                           padding=(1, 0)).shape[2:]
    assert tuple(expected_h) == (16, 13)


def test_explanation_of_a_non_square_input_and_hw_shape():
    text = explain_conv_output((28, 20), 2, stride=2)
    assert "H: in = 28" in text and "W: in = 20" in text
    assert text.endswith("output shape: (14, 10)")
    assert explain_conv_output((28, 20), 2, 2, out_channels=4).endswith("(4, 14, 10)")


def test_explanation_of_ceil_mode_and_dilation():
    text = explain_conv_output((1, 5, 5), 2, stride=2, ceil_mode=True)
    assert "ceil((5 - 2) / 2) + 1 = ceil(3/2) + 1 = 3" in text
    assert text.endswith("output shape: (1, 3, 3)")
    dropped = explain_conv_output((5, 5), 2, stride=2, padding=1, ceil_mode=True)
    assert "ceil(5/2) + 1 = 4" in dropped and "dropped" in dropped
    assert dropped.endswith("(3, 3)")
    assert TF.max_pool2d(torch.zeros(1, 1, 5, 5), 2, 2, 1, ceil_mode=True).shape[2:] == (3, 3)
    dil = explain_conv_output((1, 9, 9), 3, dilation=3)
    assert "3*(3 - 1) + 1 = 7" in dil and dil.endswith("(1, 3, 3)")


@pytest.mark.parametrize("args,kwargs,match", [
    (((1, 28),), {"kernel": 5, "padding": -1}, "padding"),
    (((1, 2, 3, 4),), {"kernel": 3}, "input_shape"),
    ((28,), {"kernel": 3}, "input_shape"),
    (((1, 0, 28),), {"kernel": 3}, "input_shape H"),
    (((1, 28, 28),), {"kernel": (3, 3, 3)}, "kernel"),
    (((1, 28, 28),), {"kernel": 3, "out_channels": 0}, "out_channels"),
    (((1, 4, 4),), {"kernel": 5}, "smaller than the effective kernel"),
])
def test_explanation_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        explain_conv_output(*args, **kwargs)
