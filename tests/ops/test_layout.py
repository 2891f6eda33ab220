"""Memory-order helpers (deepgrad/ops/_layout.py) and the ops that must keep memory order.

conv2d returns NCHW views of HCWN memory; batch norm, padding and slicing gradients must give
the same values whatever the memory order of their inputs, and keep that order (an
elementwise op between arrays of different orders is ~15x slower).
"""

from __future__ import annotations

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.ops import _layout
from deepgrad.ops.normalization import batch_norm_train

PERMS = {"nchw": (0, 1, 2, 3), "hcwn": (2, 1, 3, 0), "chwn": (1, 2, 3, 0), "nhwc": (0, 2, 3, 1)}


def _in_order(x, name):
    perm = PERMS[name]
    return np.ascontiguousarray(x.transpose(perm)).transpose(np.argsort(perm))


@pytest.mark.parametrize("name", list(PERMS))
def test_channel_matrix_is_a_view_with_each_channel_in_one_slice(name):
    x = _in_order(np.random.default_rng(0).standard_normal((3, 4, 5, 6)), name)
    m = _layout.channel_matrix(x)
    assert np.shares_memory(m, x)
    for c in range(4):
        np.testing.assert_array_equal(np.sort(m[:, c, :].ravel()), np.sort(x[:, c].ravel()))


def test_channel_matrix_copies_what_is_no_permutation_of_contiguous_memory():
    x = np.random.default_rng(1).standard_normal((3, 4, 6, 6))[:, :, ::2]
    m = _layout.channel_matrix(x)
    np.testing.assert_array_equal(m, x.reshape(3, 4, -1))


@pytest.mark.parametrize("name", list(PERMS))
def test_alloc_like_and_in_layout_of_keep_the_order(name):
    like = _in_order(np.zeros((2, 3, 4, 5)), name)
    a = _layout.alloc_like(like, (2, 3, 7, 8), 1.5)
    assert a.shape == (2, 3, 7, 8) and np.all(a == 1.5)
    assert _layout.memory_order(a) == _layout.memory_order(like)
    b = np.arange(120.0).reshape(2, 3, 4, 5)
    c = _layout.in_layout_of(b, like)
    np.testing.assert_array_equal(c, b)
    assert _layout.memory_order(c) == _layout.memory_order(like)
    assert _layout.in_layout_of(like, like) is like


@pytest.mark.parametrize("x_order", ["nchw", "hcwn", "nhwc"])
@pytest.mark.parametrize("g_order", ["nchw", "hcwn"])
def test_batch_norm_values_do_not_depend_on_memory_order(x_order, g_order):
    rng = np.random.default_rng(2)
    x0 = rng.standard_normal((4, 3, 5, 6)) * 3 + 1
    g0 = rng.standard_normal(x0.shape)
    w0, b0 = rng.standard_normal(3), rng.standard_normal(3)
    results = []
    for xo, go in (("nchw", "nchw"), (x_order, g_order)):
        x = dg.tensor(_in_order(x0, xo), requires_grad=True)
        w = dg.tensor(w0, requires_grad=True)
        b = dg.tensor(b0, requires_grad=True)
        y, mean, var = batch_norm_train(x, w, b, 1e-5)
        y.backward(dg.tensor(_in_order(g0, go)))
        if xo != "nchw":
            assert _layout.memory_order(y.data) == _layout.memory_order(x.data)
        results.append([y.data, mean, var, x.grad.data, w.grad.data, b.grad.data])
    for ref, got in zip(*results):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_pad_and_slice_gradient_keep_the_input_order():
    x = dg.tensor(_in_order(np.random.default_rng(3).standard_normal((2, 4, 6, 6)), "hcwn"),
                  requires_grad=True)
    p = dg.ops.pad(x, (0, 0, 0, 0, 2, 2))
    assert _layout.memory_order(p.data) == _layout.memory_order(x.data)
    np.testing.assert_array_equal(p.data[:, 2:6], x.data)
    assert np.all(p.data[:, :2] == 0) and np.all(p.data[:, 6:] == 0)
    s = x[:, :, ::2, ::2]
    s.backward(dg.tensor(_in_order(np.ones(s.shape), "hcwn")))
    assert _layout.memory_order(x.grad.data) == _layout.memory_order(x.data)
    assert x.grad.data.sum() == s.data.size


@pytest.mark.parametrize("index", [(slice(None), -1), (slice(1, 3),), (0, slice(None), 1)],
                         ids=["int_after_slice", "range", "ints"])
def test_slice_gradient_takes_the_memory_order_of_the_sliced_array(index):
    """Whatever the upstream gradient's order (here C order), the gradient of x[index] is laid
    out like x (HCWN here), and its values are those of the scatter."""
    from deepgrad.tensor import Tensor

    x_np = _in_order(np.random.default_rng(4).standard_normal((3, 4, 5, 6)), "hcwn")
    x = Tensor._wrap(x_np)  # as it is: dg.tensor would copy it into C order
    x.requires_grad = True
    y = x[index]
    g = np.random.default_rng(5).standard_normal(y.shape)
    y.backward(dg.tensor(np.ascontiguousarray(g)))
    assert _layout.memory_order(x.grad.data) == _layout.memory_order(x_np)
    expected = np.zeros(x_np.shape)
    expected[index] = g
    np.testing.assert_array_equal(x.grad.data, expected)
