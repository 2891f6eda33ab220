"""The normalisation primitives of ``deepgrad.ops.normalization`` against the two oracles
(DESIGN rule 3).

For each row: float64 gradcheck and gradgradcheck (the backward has a differentiable path for
``create_graph``) with a random upstream gradient, and forward + input-gradient parity with
``torch.nn.functional`` in float64 (1e-10) and float32 (1e-4). Batch norm's training backward is
the closed form, so a random upstream gradient matters: with ``.sum()`` dx is identically zero.

``COVERED`` (the ``deepgrad.ops.__all__`` names with a row) is read by tests/test_coverage.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch.nn.functional as TF

import deepgrad as dg
from deepgrad.ops.normalization import batch_norm_eval, batch_norm_train, layer_norm
from deepgrad.tensor import Tensor


def N(*shape, shift=0.0, scale=1.0):
    return (lambda rng: shift + scale * rng.standard_normal(shape), True)


def P(*shape):
    """Positive (variances), constant."""
    return (lambda rng: rng.uniform(0.5, 2.0, shape), False)


def K(*shape):
    """A constant normal array (running means)."""
    return (lambda rng: rng.standard_normal(shape), False)


@dataclass
class Row:
    name: str
    covers: str
    dg: Callable
    th: Callable
    inputs: list
    check: dict = field(default_factory=dict)


def _bn_train(x, w=None, b=None):
    return batch_norm_train(x, w, b, 1e-5)[0]


def _th_bn_train(x, w=None, b=None):
    return TF.batch_norm(x, None, None, w, b, training=True, eps=1e-5)


def _bn_eval(x, rm, rv, w=None, b=None):
    return batch_norm_eval(x, rm.data, rv.data, w, b, 1e-5)


def _th_bn_eval(x, rm, rv, w=None, b=None):
    return TF.batch_norm(x, rm, rv, w, b, training=False, eps=1e-5)


def _bn_relu_train(x, w=None, b=None):
    return batch_norm_train(x, w, b, 1e-5, relu=True)[0]


def _th_bn_relu_train(x, w=None, b=None):
    return TF.relu(_th_bn_train(x, w, b))


def _bn_relu_eval(x, rm, rv, w=None, b=None):
    return batch_norm_eval(x, rm.data, rv.data, w, b, 1e-5, relu=True)


def _th_bn_relu_eval(x, rm, rv, w=None, b=None):
    return TF.relu(_th_bn_eval(x, rm, rv, w, b))


def _ln(shape):
    return (lambda x, w=None, b=None: layer_norm(x, shape, w, b, 1e-5),
            lambda x, w=None, b=None: TF.layer_norm(x, shape, w, b, 1e-5))


ROWS = [
    Row("bn_train_NC", "batch_norm_train", _bn_train, _th_bn_train,
        [N(6, 3, shift=2.0), N(3), N(3)]),
    Row("bn_train_NCL", "batch_norm_train", _bn_train, _th_bn_train,
        [N(3, 2, 4, scale=3.0), N(2), N(2)]),
    Row("bn_train_NCHW", "batch_norm_train", _bn_train, _th_bn_train,
        [N(2, 3, 2, 3), N(3), N(3)]),
    Row("bn_train_no_affine", "batch_norm_train", _bn_train, _th_bn_train, [N(4, 2, 3)]),
    Row("bn_train_one_channel", "batch_norm_train", _bn_train, _th_bn_train,
        [N(5, 1), N(1), N(1)]),
    Row("bn_eval_NC", "batch_norm_eval", _bn_eval, _th_bn_eval,
        [N(4, 3), K(3), P(3), N(3), N(3)]),
    Row("bn_eval_NCHW_no_affine", "batch_norm_eval", _bn_eval, _th_bn_eval,
        [N(2, 3, 2, 2), K(3), P(3)]),
    # relu=True: the fused ReLU (F.batch_norm_relu), against torch's relu(batch_norm(.))
    Row("bn_relu_train_NC", "batch_norm_train", _bn_relu_train, _th_bn_relu_train,
        [N(6, 3, shift=2.0), N(3), N(3)]),
    Row("bn_relu_train_NCHW", "batch_norm_train", _bn_relu_train, _th_bn_relu_train,
        [N(2, 3, 2, 3), N(3), N(3)]),
    Row("bn_relu_train_no_affine", "batch_norm_train", _bn_relu_train, _th_bn_relu_train,
        [N(4, 2, 3)]),
    Row("bn_relu_eval_NCHW", "batch_norm_eval", _bn_relu_eval, _th_bn_relu_eval,
        [N(2, 3, 2, 2), K(3), P(3), N(3), N(3)]),
    Row("ln_1d", "layer_norm", *_ln((5,)), [N(3, 5, shift=1.0), N(5), N(5)]),
    Row("ln_2d", "layer_norm", *_ln((3, 4)), [N(2, 3, 4), N(3, 4), N(3, 4)]),
    Row("ln_3d", "layer_norm", *_ln((2, 2, 3)), [N(2, 2, 2, 3), N(2, 2, 3), N(2, 2, 3)]),
    Row("ln_whole_tensor", "layer_norm", *_ln((3, 4)), [N(3, 4), N(3, 4), N(3, 4)]),
    Row("ln_no_affine", "layer_norm", *_ln((4,)), [N(3, 4)]),
    Row("ln_weight_only", "layer_norm", *_ln((4,)), [N(2, 3, 4), N(4)]),
]
ROW_IDS = [r.name for r in ROWS]

#: deepgrad.ops names with a row here (read by tests/test_coverage.py).
COVERED = {r.covers for r in ROWS}


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_gradcheck(row, oracle):
    oracle.gradcheck(row.dg, row.inputs, oracle.make_arrays(row.inputs, row.name), **row.check)


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_gradgradcheck(row, oracle):
    oracle.gradcheck(row.dg, row.inputs, oracle.make_arrays(row.inputs, row.name), second=True)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_parity_with_torch(row, dtype, rtol, oracle):
    oracle.parity(row.dg, row.th, row.inputs, oracle.make_arrays(row.inputs, row.name), dtype,
                  rtol)


@pytest.mark.parametrize("shape", [(7, 3), (4, 3, 5), (2, 3, 4, 5)])
def test_batch_norm_train_returns_mean_and_biased_var(shape):
    x = np.random.default_rng(1).standard_normal(shape) * 2 + 1
    _, mean, var = batch_norm_train(dg.tensor(x), None, None, 1e-5)
    axes = (0,) + tuple(range(2, len(shape)))
    np.testing.assert_allclose(mean, x.mean(axes), rtol=1e-12)
    np.testing.assert_allclose(var, x.var(axes), rtol=1e-12)


@pytest.mark.default_dtype("float32")
def test_float32_stays_float32_through_backward():
    rng = np.random.default_rng(2)
    x = dg.tensor(rng.standard_normal((8, 3, 4, 4)).astype(np.float32), requires_grad=True)
    w = dg.tensor(np.ones(3, np.float32), requires_grad=True)
    b = dg.tensor(np.zeros(3, np.float32), requires_grad=True)
    y = batch_norm_train(x, w, b, 1e-5)[0]
    y.backward(dg.tensor(rng.standard_normal(y.shape).astype(np.float32)))
    assert y.dtype == np.float32
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32
    z = layer_norm(x, (4, 4), None, None, 1e-5)
    assert z.dtype == np.float32


def test_gradient_of_sum_is_zero_for_batch_norm_input():
    """Why the oracles use a random upstream gradient: d sum(BN(x)) / dx = 0 exactly."""
    x = dg.tensor(np.random.default_rng(3).standard_normal((5, 2)), requires_grad=True)
    batch_norm_train(x, None, None, 1e-5)[0].sum().backward()
    np.testing.assert_allclose(x.grad.data, 0.0, atol=1e-12)


@pytest.mark.parametrize("offset", [0.0, 30.0, 300.0])
def test_float32_batch_norm_far_from_zero_is_as_accurate_as_torch(offset):
    """Data whose mean is many standard deviations from zero: float32 batch norm (forward and
    input gradient, through the blocked multi-threaded kernels) stays within a small multiple
    of torch's own float32 error, both measured against float64."""
    import torch

    rng = np.random.default_rng(4)
    x64 = rng.standard_normal((32, 16, 12, 12)) + offset
    g64 = rng.standard_normal(x64.shape)
    w64, b64 = rng.uniform(0.5, 1.5, 16), rng.standard_normal(16)

    def run_torch(dtype):
        x = torch.tensor(x64, dtype=dtype, requires_grad=True)
        y = TF.batch_norm(x, None, None, torch.tensor(w64, dtype=dtype),
                          torch.tensor(b64, dtype=dtype), training=True)
        (dx,) = torch.autograd.grad(y, x, torch.tensor(g64, dtype=dtype))
        return y.detach().double().numpy(), dx.double().numpy()

    y_ref, dx_ref = run_torch(torch.float64)
    y_t32, dx_t32 = run_torch(torch.float32)
    x = dg.tensor(x64.astype(np.float32), requires_grad=True)
    y = batch_norm_train(x, dg.tensor(w64.astype(np.float32)), dg.tensor(b64.astype(np.float32)),
                         1e-5)[0]
    y.backward(dg.tensor(g64.astype(np.float32)))
    for name, ours, theirs, ref in [("y", y.data, y_t32, y_ref), ("dx", x.grad.data, dx_t32,
                                                                   dx_ref)]:
        err = np.abs(ours - ref).max() / np.abs(ref).max()
        torch_err = np.abs(theirs - ref).max() / np.abs(ref).max()
        assert err <= 4 * torch_err + 1e-6, (name, err, torch_err)


@pytest.mark.parametrize("relu", [False, True], ids=["bn", "bn_relu"])
def test_batch_norm_backward_with_a_strided_gradient_in_another_layout(relu):
    """Regression: x in HCWN memory (as conv2d returns it) and an upstream gradient that is a
    strided view (as conv2d's col2im input gradient returns it) with N == H, so that the
    (N, C, H*W) and (H, C, W*N) channel views have the same shape: the backward must still pair
    each gradient element with its own x."""
    import torch

    rng = np.random.default_rng(6)
    n, c, h, w = 3, 4, 3, 3
    x_mem = rng.standard_normal((h, c, w, n))
    x_np = x_mem.transpose(3, 1, 0, 2)  # NCHW view of HCWN memory
    g_buf = rng.standard_normal((h + 2, c, w + 2, n))
    g_np = g_buf[1:1 + h, :, 1:1 + w].transpose(3, 1, 0, 2)  # strided, same axis order
    wt, bt = rng.uniform(0.5, 1.5, c), rng.standard_normal(c)
    x = Tensor._wrap(x_np)  # as it is: dg.tensor would copy it into NCHW order
    x.requires_grad = True
    y = batch_norm_train(x, dg.tensor(wt), dg.tensor(bt), 1e-5, relu=relu)[0]
    y.backward(Tensor._wrap(g_np))
    tx = torch.tensor(np.ascontiguousarray(x_np), requires_grad=True)
    ty = TF.batch_norm(tx, None, None, torch.tensor(wt), torch.tensor(bt), training=True)
    if relu:
        ty = TF.relu(ty)
    ty.backward(torch.tensor(np.ascontiguousarray(g_np)))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
