"""``deepgrad.ops.conv2d`` against the two oracles (DESIGN rule 3), from one table.

Each row: float64 gradcheck of input, weight and bias with a random upstream gradient;
forward + input/weight/bias-gradient parity with ``torch.nn.functional.conv2d`` (same random
upstream gradient) in float64 (1e-10) and float32 (1e-4). The convolution's backward is built
from differentiable primitives, so rows also get gradgradcheck and a Hessian-vector-product
parity test against torch's double backward. Then: the layout contract (outputs are NCHW
views of HCWN memory; chained convolutions), buffer reuse under retain_graph, and error messages.

``COVERED`` (the ``deepgrad.ops.__all__`` names with a row) is read by tests/test_coverage.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
from deepgrad.ops import _im2col
from deepgrad.ops.conv import conv2d


def N(*shape, grad=True):
    return (lambda rng: rng.standard_normal(shape), grad)


@dataclass
class Row:
    name: str
    x: tuple
    w: tuple
    bias: bool = True
    kw: dict = field(default_factory=dict)
    grad_x: bool = True
    grad_w: bool = True

    @property
    def inputs(self):
        ins = [N(*self.x, grad=self.grad_x), N(*self.w, grad=self.grad_w)]
        return ins + ([N(self.w[0])] if self.bias else [])


ROWS = [
    Row("k1", (2, 3, 5, 4), (4, 3, 1, 1)),
    Row("k3", (2, 3, 6, 5), (4, 3, 3, 3)),
    Row("k5_pad2", (1, 2, 7, 8), (3, 2, 5, 5), kw=dict(padding=2)),
    Row("k3_stride2_pad1", (2, 3, 7, 6), (4, 3, 3, 3), kw=dict(stride=2, padding=1)),
    Row("k3_stride3", (2, 2, 9, 8), (3, 2, 3, 3), kw=dict(stride=3)),
    Row("stride_gt_kernel", (2, 2, 8, 7), (3, 2, 2, 2), kw=dict(stride=3, padding=1)),
    Row("floor_drops_last_row", (2, 2, 8, 8), (3, 2, 3, 3), kw=dict(stride=2)),
    Row("stride21_pad12", (2, 3, 6, 5), (4, 3, 3, 3), kw=dict(stride=(2, 1), padding=(1, 2))),
    Row("nonsquare_kernel", (2, 3, 6, 7), (2, 3, 3, 2), kw=dict(padding=(1, 0))),
    Row("same_k3", (2, 3, 5, 6), (4, 3, 3, 3), kw=dict(padding="same")),
    Row("same_even_kernel_dil2", (1, 2, 7, 6), (3, 2, 4, 2),
        kw=dict(padding="same", dilation=2)),
    Row("valid", (2, 3, 6, 6), (2, 3, 3, 3), kw=dict(padding="valid")),
    Row("dilation2", (2, 2, 8, 7), (3, 2, 3, 3), kw=dict(dilation=2, padding=1)),
    Row("dilation21_stride2", (2, 2, 9, 8), (3, 2, 3, 2), kw=dict(dilation=(2, 1), stride=2)),
    Row("pad_exceeds_reach", (2, 2, 5, 5), (3, 2, 2, 2), kw=dict(padding=2)),
    Row("k1_pad1", (2, 3, 4, 4), (2, 3, 1, 1), kw=dict(padding=1)),
    Row("k1_stride2", (2, 4, 5, 6), (3, 4, 1, 1), kw=dict(stride=2)),
    Row("groups2", (2, 4, 6, 5), (6, 2, 3, 3), kw=dict(groups=2, padding=1)),
    Row("groups2_stride2", (2, 4, 7, 7), (4, 2, 3, 3), kw=dict(groups=2, stride=2)),
    Row("depthwise", (2, 4, 6, 5), (4, 1, 3, 3), kw=dict(groups=4, padding=1)),
    Row("depthwise_mult2_stride2", (2, 3, 7, 6), (6, 1, 3, 3), bias=False,
        kw=dict(groups=3, stride=2, padding=1)),
    Row("no_bias", (2, 3, 5, 5), (4, 3, 3, 3), bias=False),
    Row("batch1", (1, 3, 6, 5), (2, 3, 3, 3), kw=dict(padding=1)),
    Row("lenet_valid_k5", (2, 3, 8, 8), (4, 3, 5, 5)),
    Row("unbatched", (3, 6, 5), (4, 3, 3, 3), kw=dict(padding=1)),
    Row("weight_only", (2, 3, 5, 5), (4, 3, 3, 3), grad_x=False),
    Row("input_only", (2, 3, 5, 5), (4, 3, 3, 3), grad_w=False, bias=False,
        kw=dict(stride=2, padding=1)),
]
ROW_IDS = [r.name for r in ROWS]

#: deepgrad.ops names with a row here (read by tests/test_coverage.py).
COVERED = {"conv2d"}


def _dg(row):
    return lambda x, w, b=None: conv2d(x, w, b, **row.kw)


def _th(row):
    return lambda x, w, b=None: TF.conv2d(x, w, b, **row.kw)


@pytest.fixture(params=["flipped", "rows", "col2im"])
def input_grad_path(request, monkeypatch):
    """Run a test with each of the three input-gradient kernels (the choice between them
    depends on the channel count, which these small rows would otherwise never reach):
    the flipped kernel, the row GEMM with width col2im, the full col2im."""
    monkeypatch.setattr(_im2col, "FLIPPED_MIN_CHANNELS", 1 if request.param == "flipped"
                        else 10**9)
    monkeypatch.setattr(_im2col, "ROW_INPUT_GRAD", request.param == "rows")
    return request.param


@pytest.mark.usefixtures("input_grad_path")
@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_gradcheck(row, oracle):
    oracle.gradcheck(_dg(row), row.inputs, oracle.make_arrays(row.inputs, row.name))


@pytest.mark.usefixtures("input_grad_path")
@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_gradgradcheck(row, oracle):
    oracle.gradcheck(_dg(row), row.inputs, oracle.make_arrays(row.inputs, row.name),
                     second=True)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)],
                         ids=["float64", "float32"])
@pytest.mark.usefixtures("input_grad_path")
@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_parity_with_torch(row, dtype, rtol, oracle):
    oracle.parity(_dg(row), _th(row), row.inputs, oracle.make_arrays(row.inputs, row.name),
                  dtype, rtol)


@pytest.mark.usefixtures("input_grad_path")
@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_parity_with_padded_column_rows(row, oracle, monkeypatch):
    """Every row again with each width-column row padded (as rows of a multiple of 512 bytes
    are, which these small shapes never reach)."""
    from deepgrad.ops import _layout

    monkeypatch.setattr(_layout, "PAD_ROWS_OF_BYTES", 1)
    assert _layout.padded_row_length(6, 8) == 14
    oracle.parity(_dg(row), _th(row), row.inputs, oracle.make_arrays(row.inputs, row.name),
                  np.float64, 1e-10)


@pytest.mark.parametrize("row", [r for r in ROWS if r.grad_x and r.grad_w and r.bias][:8],
                         ids=lambda r: r.name)
def test_hessian_vector_product_matches_torch(row, oracle):
    """d/d(x, W) <dL/d(x, W), (u, U)> for L = <v, conv(x, W)^2>: exercises every second-order
    path (input-grad and weight-grad of the input-grad and weight-grad primitives)."""
    rng = np.random.default_rng(oracle.seed_of(row.name))
    x, w, b = (rng.standard_normal(s) for s in (row.x, row.w, (row.w[0],)))
    out = TF.conv2d(torch.tensor(x), torch.tensor(w), None, **row.kw)
    v = rng.standard_normal(tuple(out.shape))
    u, uw = rng.standard_normal(row.x), rng.standard_normal(row.w)

    def hvp(lib, tensor, conv, grad):
        ts = [tensor(a, requires_grad=True) for a in (x, w, b)]
        y = conv(*ts)
        loss = (tensor(v) * y * y).sum()
        gx, gw, gb = grad(loss, ts, create_graph=True)
        inner = (gx * tensor(u)).sum() + (gw * tensor(uw)).sum() + gb.sum()
        return [g.detach().numpy() if lib == "th" else g.data
                for g in grad(inner, ts)]

    expected = hvp("th", lambda a, requires_grad=False: torch.tensor(a,
                   requires_grad=requires_grad), _th(row),
                   lambda o, i, create_graph=False: torch.autograd.grad(
                       o, i, create_graph=create_graph))
    actual = hvp("dg", lambda a, requires_grad=False: dg.tensor(a, requires_grad=requires_grad),
                 _dg(row), lambda o, i, create_graph=False: dg.autograd.grad(
                     o, i, create_graph=create_graph))
    for name, a, e in zip(("x", "W", "b"), actual, expected):
        oracle.close(a, e, 1e-10, f"second derivative wrt {name}")


# ---------------------------------------------------------------------- layout and buffers
def test_output_is_hcwn_view_and_chains(oracle):
    """conv2d returns an NCHW view of HCWN memory; the next conv, elementwise ops, reshape and
    the gradients all see ordinary NCHW semantics."""
    rng = np.random.default_rng(7)
    x, w1, w2 = (rng.standard_normal(s) for s in ((2, 3, 6, 6), (4, 3, 3, 3), (5, 4, 3, 3)))
    v = rng.standard_normal((2, 5 * 2 * 2))

    def net(conv, relu, flat, xs):
        y = conv(relu(conv(xs[0], xs[1], padding=1)), xs[2], stride=2)
        return flat(y)

    dxs = [dg.tensor(a, requires_grad=True) for a in (x, w1, w2)]
    txs = [torch.tensor(a, requires_grad=True) for a in (x, w1, w2)]
    y1 = conv2d(dxs[0], dxs[1], padding=1)
    assert y1.data.transpose(2, 1, 3, 0).flags.c_contiguous
    dy = net(conv2d, dg.relu, lambda t: t.reshape(2, -1), dxs)
    ty = net(TF.conv2d, torch.relu, lambda t: t.reshape(2, -1), txs)
    oracle.close(dy, ty, 1e-10, "forward")
    dy.backward(dg.tensor(v))
    ty.backward(torch.tensor(v))
    for d, t in zip(dxs, txs):
        oracle.close(d.grad, t.grad, 1e-10, "gradient")


def test_retain_graph_second_backward_recomputes_columns():
    rng = np.random.default_rng(3)
    x = dg.tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    w = dg.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    y = conv2d(x, w, padding=1)
    g = dg.tensor(rng.standard_normal(y.shape))
    y.backward(g, retain_graph=True)
    gx, gw = x.grad.data.copy(), w.grad.data.copy()
    y.backward(g)
    np.testing.assert_allclose(x.grad.data, 2 * gx, rtol=1e-12)
    np.testing.assert_allclose(w.grad.data, 2 * gw, rtol=1e-12)


def test_columns_kept_only_when_the_weight_needs_a_gradient():
    x = dg.tensor(np.ones((1, 2, 4, 4)), requires_grad=True)
    w = dg.tensor(np.ones((3, 2, 3, 3)))
    assert conv2d(x, w).grad_fn.saved is None
    w.requires_grad_(True)
    assert conv2d(x, w).grad_fn.saved is not None


@pytest.mark.default_dtype("float32")
def test_float32_end_to_end():
    rng = np.random.default_rng(4)
    x = dg.tensor(rng.standard_normal((2, 3, 5, 5)).astype(np.float32), requires_grad=True)
    w = dg.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    b = dg.tensor(np.zeros(4, np.float32), requires_grad=True)
    for kw in ({}, dict(stride=2, padding=1), dict(groups=1, padding="same")):
        x.grad = w.grad = b.grad = None
        y = conv2d(x, w, b, **kw)
        y.backward(dg.tensor(rng.standard_normal(y.shape).astype(np.float32)))
        assert y.dtype == x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32


# ---------------------------------------------------------------------- errors
ERRORS = [
    ("wrong_channels", (2, 3, 5, 5), (4, 2, 3, 3), {},
     r"expected input with 2 channels .*got 3 channels"),
    ("wrong_channels_groups", (2, 4, 5, 5), (4, 1, 3, 3), dict(groups=2),
     r"expected input with 2 channels .*groups=2.*got 4 channels"),
    ("out_not_divisible", (2, 4, 5, 5), (3, 2, 3, 3), dict(groups=2),
     r"out_channels \(weight.shape\[0\] = 3\) must be divisible by groups = 2"),
    ("kernel_too_big", (1, 2, 4, 5), (3, 2, 5, 3), {},
     r"input of spatial size \(4 x 5\).*smaller than the dilated kernel \(5 x 3\)"),
    ("dilated_kernel_too_big", (1, 2, 5, 5), (3, 2, 3, 3), dict(dilation=3),
     r"\(5 x 5\).*smaller than the dilated kernel \(7 x 7\)"),
    ("input_2d", (5, 5), (3, 2, 3, 3), {}, r"3-D \(C, H, W\) or 4-D .*got shape \(5, 5\)"),
    ("input_5d", (1, 1, 2, 5, 5), (3, 2, 3, 3), {}, r"got shape \(1, 1, 2, 5, 5\)"),
    ("weight_3d", (1, 2, 5, 5), (3, 2, 3), {}, r"weight must be 4-D"),
    ("same_strided", (1, 2, 5, 5), (3, 2, 3, 3), dict(padding="same", stride=2),
     r"padding='same' is not supported for strided convolutions"),
    ("bad_padding_string", (1, 2, 5, 5), (3, 2, 3, 3), dict(padding="full"),
     r"invalid padding string 'full'"),
    ("negative_padding", (1, 2, 5, 5), (3, 2, 3, 3), dict(padding=-1),
     r"padding must be >= 0"),
    ("zero_stride", (1, 2, 5, 5), (3, 2, 3, 3), dict(stride=(1, 0)), r"stride must be >= 1"),
    ("groups_zero", (1, 2, 5, 5), (3, 2, 3, 3), dict(groups=0), r"groups must be a positive"),
]


@pytest.mark.parametrize("name,xs,ws,kw,msg", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_name_the_problem(name, xs, ws, kw, msg):
    with pytest.raises(ValueError, match=msg):
        conv2d(dg.tensor(np.zeros(xs)), dg.tensor(np.zeros(ws)), **kw)


def test_bias_shape_and_dtype_errors():
    x, w = dg.tensor(np.zeros((1, 2, 5, 5))), dg.tensor(np.zeros((3, 2, 3, 3)))
    with pytest.raises(ValueError, match=re.escape("bias must be a Tensor of shape (3,)")):
        conv2d(x, w, dg.tensor(np.zeros(2)))
    with pytest.raises(TypeError, match="float32.*float64.*same dtype"):
        conv2d(dg.tensor(np.zeros((1, 2, 5, 5), np.float32)), w)


def test_dead_column_buffers_are_reused_and_live_ones_never(monkeypatch):
    """Width columns are recycled (_im2col.release / scratch); a buffer that shares memory
    with a live array is never handed out again, and results stay exact."""
    monkeypatch.setattr(_im2col, "_spare", [])
    monkeypatch.setattr(_im2col, "_SPARE_MIN_BYTES", 0)
    big = np.zeros(1000)
    _im2col.release(big[10:20], big)  # shares memory with a live array: not kept
    assert _im2col._spare == []
    _im2col.release(big[10:20])
    assert _im2col._spare[0] is big
    view = _im2col.scratch(np, None, (4, 5), np.float32)
    assert np.shares_memory(view, big) and view.dtype == np.float32 and _im2col._spare == []
    rng = np.random.default_rng(8)
    x = dg.tensor(rng.standard_normal((2, 3, 7, 6)), requires_grad=True)
    w = dg.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    tx, tw = torch.tensor(x.data, requires_grad=True), torch.tensor(w.data, requires_grad=True)
    for _ in range(3):  # later rounds run on recycled buffers
        x.grad = w.grad = tx.grad = tw.grad = None
        y = conv2d(dg.relu(conv2d(x, w, padding=1)), dg.tensor(np.ones((2, 4, 1, 1))))
        ones = torch.ones(2, 4, 1, 1, dtype=torch.float64)
        ty = TF.conv2d(torch.relu(TF.conv2d(tx, tw, padding=1)), ones)
        y.sum().backward()
        ty.sum().backward()
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(w.grad.data, tw.grad.numpy(), rtol=1e-12)
    assert _im2col._spare
