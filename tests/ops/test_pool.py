"""2-D pooling (``max_pool2d``, ``avg_pool2d``, ``adaptive_avg_pool2d``, ``adaptive_max_pool2d``)
against the two oracles (DESIGN rule 3), from one table.

Each row: float64 gradcheck and gradgradcheck (every pooling backward is again a primitive
with a backward) with a random upstream gradient; forward (values and int64 indices) and
input-gradient parity with ``torch.nn.functional`` in float64 (1e-10) and float32 (1e-4).
Rows cover kernel / stride / padding / dilation / ceil_mode (including windows that would
start in the right padding), count_include_pad, divisor_override and non-divisible adaptive
sizes. Then torch's tie-breaking (first maximum), NaN and -inf windows bit for bit, inputs in
other memory orders (conv2d returns HCWN memory), and error messages.

``COVERED`` (the ``deepgrad.ops.__all__`` names with a row) is read by tests/test_coverage.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
from deepgrad.ops import pool


def N(*shape):
    return (lambda rng: rng.standard_normal(shape), True)


@dataclass
class Row:
    name: str
    covers: str
    dg: Callable
    th: Callable
    shape: tuple
    kw: dict = field(default_factory=dict)

    @property
    def inputs(self):
        return [N(*self.shape)]


def _max(name, shape, **kw):
    return Row(name, "max_pool2d", pool.max_pool2d, TF.max_pool2d, shape, kw)


def _avg(name, shape, **kw):
    return Row(name, "avg_pool2d", pool.avg_pool2d, TF.avg_pool2d, shape, kw)


def _aavg(name, shape, size):
    return Row(name, "adaptive_avg_pool2d", pool.adaptive_avg_pool2d, TF.adaptive_avg_pool2d,
               shape, dict(output_size=size))


def _amax(name, shape, size, **kw):
    return Row(name, "adaptive_max_pool2d", pool.adaptive_max_pool2d, TF.adaptive_max_pool2d,
               shape, dict(output_size=size, **kw))


ROWS = [
    _max("max_k2", (2, 3, 6, 8), kernel_size=2),
    _max("max_k2_odd_size_floor", (2, 2, 7, 5), kernel_size=2),
    _max("max_k3_s2_p1", (2, 2, 7, 6), kernel_size=3, stride=2, padding=1),
    _max("max_k3_s1", (1, 2, 5, 6), kernel_size=3, stride=1),
    _max("max_k32_s21_p10", (2, 2, 7, 6), kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)),
    _max("max_dilation2", (2, 2, 8, 7), kernel_size=3, stride=2, padding=1, dilation=2),
    _max("max_ceil", (2, 2, 7, 6), kernel_size=2, stride=2, ceil_mode=True),
    _max("max_ceil_k3_s2_p1", (2, 2, 6, 5), kernel_size=3, stride=2, padding=1,
         ceil_mode=True),
    _max("max_ceil_last_window_dropped", (1, 2, 5, 5), kernel_size=2, stride=2, padding=1,
         ceil_mode=True),
    _max("max_stride_gt_kernel", (2, 2, 8, 9), kernel_size=2, stride=3),
    _max("max_indices", (2, 3, 6, 5), kernel_size=3, stride=2, padding=1, return_indices=True),
    _max("max_indices_ceil_dil", (1, 2, 7, 8), kernel_size=2, stride=2, dilation=2,
         ceil_mode=True, return_indices=True),
    _max("max_unbatched", (3, 6, 5), kernel_size=2, return_indices=True),
    _avg("avg_k2", (2, 3, 6, 8), kernel_size=2),
    _avg("avg_k3_s2_p1", (2, 2, 7, 6), kernel_size=3, stride=2, padding=1),
    _avg("avg_k3_s2_p1_exclude_pad", (2, 2, 7, 6), kernel_size=3, stride=2, padding=1,
         count_include_pad=False),
    _avg("avg_ceil", (2, 2, 7, 5), kernel_size=2, ceil_mode=True),
    _avg("avg_ceil_pad_include", (2, 2, 6, 7), kernel_size=3, stride=2, padding=1,
         ceil_mode=True),
    _avg("avg_ceil_pad_exclude", (2, 2, 6, 7), kernel_size=3, stride=2, padding=1,
         ceil_mode=True, count_include_pad=False),
    _avg("avg_divisor_override", (2, 2, 6, 6), kernel_size=3, stride=2, padding=1,
         divisor_override=4),
    _avg("avg_k32_s12_p11", (1, 2, 6, 7), kernel_size=(3, 2), stride=(1, 2), padding=1),
    _avg("avg_overlap_s1", (2, 2, 5, 5), kernel_size=3, stride=1),
    _avg("avg_global_kernel", (2, 3, 9, 9), kernel_size=9),
    _avg("avg_unbatched", (3, 6, 4), kernel_size=2),
    _aavg("aavg_global", (2, 3, 5, 7), 1),
    _aavg("aavg_divisible", (2, 3, 6, 8), (3, 4)),
    _aavg("aavg_non_divisible", (2, 3, 7, 5), (3, 4)),
    _aavg("aavg_upsample", (2, 2, 3, 4), (5, 6)),
    _aavg("aavg_none", (2, 2, 7, 5), (3, None)),
    _aavg("aavg_unbatched", (3, 7, 6), 4),
    _amax("amax_non_divisible", (2, 3, 7, 5), (3, 4)),
    _amax("amax_divisible_indices", (2, 2, 6, 8), (3, 2), return_indices=True),
    _amax("amax_overlap_indices", (2, 2, 5, 7), (4, 3), return_indices=True),
    _amax("amax_none", (1, 2, 6, 5), (None, 2)),
]
ROW_IDS = [r.name for r in ROWS]

#: deepgrad.ops names with a row here (read by tests/test_coverage.py).
COVERED = {r.covers for r in ROWS}


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_gradcheck(row, oracle):
    oracle.gradcheck(row.dg, row.inputs, oracle.make_arrays(row.inputs, row.name),
                     kwargs=row.kw)


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_gradgradcheck(row, oracle):
    oracle.gradcheck(row.dg, row.inputs, oracle.make_arrays(row.inputs, row.name),
                     second=True, kwargs=row.kw)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_parity_with_torch(row, dtype, rtol, oracle):
    oracle.parity(row.dg, row.th, row.inputs, oracle.make_arrays(row.inputs, row.name), dtype,
                  rtol, kwargs=row.kw)


# ---------------------------------------------------------------------- torch's tie rules
MAX_CONFIGS = [dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=c)
               for k, s, p, d, c in itertools.product((2, 3), (1, 2, 3), (0, 1), (1, 2),
                                                      (False, True))]


@pytest.mark.parametrize("fill", ["ties", "neg_inf", "nan"])
@pytest.mark.parametrize("kw", MAX_CONFIGS, ids=lambda kw: "-".join(map(str, kw.values())))
def test_max_pool_ties_nan_and_neg_inf_match_torch_exactly(kw, fill):
    """Values and indices bit for bit (and the gradients): ties keep the first maximum, the
    last NaN of a window wins, an all -inf window points at its first in-bounds element."""
    rng = np.random.default_rng(sum(map(int, kw.values())))
    x = rng.integers(0, 3, (2, 2, 6, 7)).astype(np.float64)
    if fill == "neg_inf":
        x[rng.random(x.shape) < 0.6] = -np.inf
    if fill == "nan":
        x[rng.random(x.shape) < 0.15] = np.nan
    tx = torch.tensor(x, requires_grad=True)
    ty, ti = TF.max_pool2d(tx, return_indices=True, **kw)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    for layout in ("nchw", "hcwn"):
        dx = dg.tensor(x, requires_grad=True)
        if layout == "hcwn":
            dx.data = _in_layout(x, "hcwn")
        dy, di = pool.max_pool2d(dx, return_indices=True, **kw)
        dy.backward(dg.tensor(g))
        np.testing.assert_array_equal(di.data, ti.numpy(), err_msg=layout)
        np.testing.assert_array_equal(dy.data, ty.detach().numpy(), err_msg=layout)
        # (gradients of overlapping windows are sums, whose order may differ from torch's)
        np.testing.assert_allclose(dx.grad.data, tx.grad.numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg=layout)


def test_adaptive_max_pool_ties_match_torch():
    x = np.random.default_rng(5).integers(0, 2, (2, 2, 7, 5)).astype(np.float64)
    ty, ti = TF.adaptive_max_pool2d(torch.tensor(x), (3, 4), return_indices=True)
    dy, di = pool.adaptive_max_pool2d(dg.tensor(x), (3, 4), return_indices=True)
    np.testing.assert_array_equal(di.data, ti.numpy())
    np.testing.assert_array_equal(dy.data, ty.numpy())


LAYOUTS = {"nhwc": (0, 2, 3, 1), "chwn": (1, 2, 3, 0), "hcwn": (2, 1, 3, 0)}


def _in_layout(x, name):
    """The NCHW array ``x`` as a view of memory in another axis order."""
    perm = LAYOUTS[name]
    return np.ascontiguousarray(x.transpose(perm)).transpose(np.argsort(perm))


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("fn,kw", [
    (pool.max_pool2d, dict(kernel_size=2)), (pool.max_pool2d, dict(kernel_size=3, stride=2,
                                                                   padding=1)),
    (pool.avg_pool2d, dict(kernel_size=2)), (pool.avg_pool2d, dict(kernel_size=3, stride=2,
                                                                   padding=1)),
    (pool.avg_pool2d, dict(kernel_size=6)), (pool.adaptive_avg_pool2d, dict(output_size=4)),
    (pool.adaptive_max_pool2d, dict(output_size=4)),
], ids=["max2", "max3s2p1", "avg2", "avg3s2p1", "avg_global", "adaptive_avg", "adaptive_max"])
def test_memory_order_does_not_change_results(fn, kw, layout):
    """conv2d outputs are NCHW views of HCWN memory; pooling must not care."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 6, 6))
    outs = []
    for arr in (x, _in_layout(x, layout)):
        t = dg.tensor(arr, requires_grad=True)
        t.data = arr  # dg.tensor copies to C order; keep the memory order under test
        y = fn(t, **kw)
        y.backward(dg.tensor(np.arange(y.data.size, dtype=np.float64).reshape(y.shape)))
        outs.append((y.data, t.grad.data))
    np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=1e-13)
    np.testing.assert_allclose(outs[1][1], outs[0][1], rtol=1e-13)


@pytest.mark.default_dtype("float32")
def test_float32_end_to_end():
    x = dg.tensor(np.random.default_rng(2).standard_normal((2, 3, 6, 6)).astype(np.float32),
                  requires_grad=True)
    for fn, kw in ((pool.max_pool2d, dict(kernel_size=3, stride=2, padding=1)),
                   (pool.avg_pool2d, dict(kernel_size=2)),
                   (pool.adaptive_avg_pool2d, dict(output_size=4)),
                   (pool.adaptive_max_pool2d, dict(output_size=4))):
        x.grad = None
        y = fn(x, **kw)
        y.backward(dg.tensor(np.ones(y.shape, np.float32)))
        assert y.dtype == x.grad.dtype == np.float32


# ---------------------------------------------------------------------- errors
ERRORS = [
    (pool.max_pool2d, (1, 2, 5, 5), dict(kernel_size=3, padding=2),
     r"padding should be at most half of the kernel size.*padding=2, kernel_size=3"),
    (pool.max_pool2d, (1, 2, 5, 5), dict(kernel_size=3, padding=2, dilation=2),
     r"padding should be at most half"),
    (pool.avg_pool2d, (1, 2, 5, 5), dict(kernel_size=2, padding=2), r"at most half"),
    (pool.max_pool2d, (1, 2, 5, 5), dict(kernel_size=7),
     r"input of spatial size \(5 x 5\) is too small.*output size would be 0 x 0"),
    (pool.max_pool2d, (5, 5), dict(kernel_size=2), r"3-D \(C, H, W\) or 4-D.*\(5, 5\)"),
    (pool.avg_pool2d, (1, 1, 2, 5, 5), dict(kernel_size=2), r"got shape \(1, 1, 2, 5, 5\)"),
    (pool.max_pool2d, (1, 2, 5, 5), dict(kernel_size=0), r"kernel_size must be >= 1"),
    (pool.max_pool2d, (1, 2, 5, 5), dict(kernel_size=2, stride=0), r"stride must be >= 1"),
    (pool.max_pool2d, (1, 2, 5, 5), dict(kernel_size=(2, 2, 2)), r"int or a pair of ints"),
    (pool.avg_pool2d, (1, 2, 5, 5), dict(kernel_size=2, divisor_override=0),
     r"divisor_override must be a non-zero number"),
    (pool.adaptive_avg_pool2d, (1, 2, 5, 5), dict(output_size=(0, 2)),
     r"output_size must be positive"),
    (pool.adaptive_max_pool2d, (1, 2, 5, 5), dict(output_size=(2, 2, 2)), r"int or a pair"),
    (pool.adaptive_avg_pool2d, (5, 5), dict(output_size=2), r"got shape \(5, 5\)"),
]


@pytest.mark.parametrize("fn,shape,kw,msg", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_errors_name_the_problem(fn, shape, kw, msg):
    with pytest.raises(ValueError, match=msg):
        fn(dg.tensor(np.zeros(shape)), **kw)


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="floating-point input"):
        pool.max_pool2d(dg.tensor(np.zeros((1, 1, 4, 4), np.int64)), 2)
