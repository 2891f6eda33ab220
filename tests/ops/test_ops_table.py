"""Every primitive of ``deepgrad.ops`` against two oracles (DESIGN rule 3), from ONE table.

For each row: (a) float64 gradcheck with a random upstream gradient, (b) float64 forward and
input-gradient parity with PyTorch (same random upstream gradient) to 1e-10, (c) the same in
float32 to 1e-5, (d) gradgradcheck where the op must be twice differentiable (all of them here
except the integer-valued and piecewise-constant ones). Inputs stay away from kinks (|x| > 0.3
for abs/relu, values at least 0.1 apart for max/min/clamp/maximum) so that finite differences
are valid.

``COVERED`` (the ``deepgrad.ops.__all__`` names with a row) is read by tests/test_coverage.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
from deepgrad import ops


# ---------------------------------------------------------------------- input generators
def N(*shape):
    """Standard normal."""
    return (lambda rng: rng.standard_normal(shape), True)


def P(*shape, lo=0.5, hi=2.0):
    """Positive (log, sqrt, pow domains)."""
    return (lambda rng: rng.uniform(lo, hi, shape), True)


def A(*shape):
    """Away from 0: |x| in [0.3, 2] with a random sign (abs, relu, elu kinks)."""
    return (lambda rng: rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape), True)


def G(*shape, offset=0.0):
    """On a grid of step 0.3 (+- 0.01) shifted by ``offset``: two inputs with offsets 0 and
    0.15 never come closer than 0.13 (maximum, minimum), and 0.15 + 0.3k avoids the clamp
    bounds +-0.6 and the softplus threshold."""
    return (lambda rng: rng.integers(-6, 7, shape) * 0.3 + offset
            + rng.uniform(-0.01, 0.01, shape), True)


def D(*shape, positive=False):
    """All values distinct, at least 0.2 apart (amax/max ties and kinks); ``positive`` makes
    |x| distinct (inf-norm)."""
    def gen(rng):
        n = math.prod(shape)
        if positive:
            vals = (rng.permutation(n) + 1) * 0.25 * rng.choice([-1.0, 1.0], n)
        else:
            vals = (rng.permutation(n) - n / 2) * 0.25
        return (vals + rng.uniform(-0.02, 0.02, n)).reshape(shape)
    return (gen, True)


def C(value):
    """A constant input (integer labels, boolean masks, fixed floats): never requires grad."""
    arr = np.asarray(value)
    return (lambda rng: arr, False)


@dataclass
class Row:
    name: str
    covers: str  # the deepgrad.ops name (or Tensor method) this row tests
    dg: Callable
    th: Callable
    inputs: list
    kwargs: dict = field(default_factory=dict)
    gradgrad: bool = True  # required twice-differentiable
    check: dict = field(default_factory=dict)  # extra gradcheck kwargs (eps/atol/rtol)


MASK = np.array([[True, False, True, True], [False, False, True, False],
                 [True, True, False, True]])
IDX_REP = np.array([0, 2, 0, 0, 1])
COND = MASK


def _cast_other(x):
    return np.float32 if x.dtype == np.float64 else np.float64


def _th_cast_other(x):
    return torch.float32 if x.dtype == torch.float64 else torch.float64


ROWS = [
    # ------------------------------------------------------------------ arithmetic
    Row("add", "add", ops.add, torch.add, [N(3, 4), N(3, 4)]),
    Row("add_bcast", "add", ops.add, torch.add, [N(3, 1, 4), N(2, 4)]),
    Row("add_op_scalar", "add", lambda x: x + 1.5, lambda x: x + 1.5, [N(3, 4)]),
    Row("radd_op_scalar", "add", lambda x: 2.0 + x, lambda x: 2.0 + x, [N(3, 4)]),
    Row("sub", "sub", ops.sub, torch.sub, [N(3, 4), N(3, 4)]),
    Row("sub_bcast", "sub", ops.sub, torch.sub, [N(4), N(3, 4)]),
    Row("rsub_op_scalar", "sub", lambda x: 1.0 - x, lambda x: 1.0 - x, [N(3, 4)]),
    Row("mul", "mul", ops.mul, torch.mul, [N(3, 4), N(3, 4)]),
    Row("mul_bcast", "mul", ops.mul, torch.mul, [N(3, 1), N(1, 4)]),
    Row("mul_bcast_scalar_tensor", "mul", ops.mul, torch.mul, [N(2, 3, 4), N()]),
    Row("mul_self", "mul", lambda x: x * x, lambda x: x * x, [N(3, 4)]),
    Row("div", "div", ops.div, torch.div, [N(3, 4), A(3, 4)]),
    Row("div_bcast", "div", ops.div, torch.div, [N(2, 3, 4), A(3, 1)]),
    Row("rdiv_op_scalar", "div", lambda x: 2.0 / x, lambda x: 2.0 / x, [A(3, 4)]),
    Row("neg", "neg", ops.neg, torch.neg, [N(3, 4)]),
    Row("neg_op", "neg", lambda x: -x, lambda x: -x, [N(3, 4)]),
    Row("pow_tensor_scalar", "pow", lambda x: ops.pow(x, 2.5), lambda x: x**2.5, [P(3, 4)]),
    Row("pow_tensor_int", "pow", lambda x: x**3, lambda x: x**3, [N(3, 4)]),
    Row("pow_tensor_neg", "pow", lambda x: x**-1.5, lambda x: x**-1.5, [P(3, 4)]),
    Row("pow_tensor_zero", "pow", lambda x: ops.pow(x, 0), lambda x: x**0, [N(3, 4)]),
    Row("pow_tensor_tensor", "pow", ops.pow, torch.pow, [P(3, 4), N(3, 4)]),
    Row("pow_tensor_tensor_bcast", "pow", ops.pow, torch.pow, [P(3, 4), N(4)]),
    Row("pow_scalar_tensor", "pow", lambda x: ops.pow(2.0, x), lambda x: torch.pow(2.0, x),
        [N(3, 4)]),
    Row("rpow_op", "pow", lambda x: 0.7**x, lambda x: 0.7**x, [N(3, 4)]),
    Row("cast", "cast", lambda x: ops.cast(x, _cast_other(x)),
        lambda x: x.to(_th_cast_other(x)), [N(3, 4)],
        check=dict(eps=1e-3, atol=1e-4, rtol=1e-3)),
    Row("clone", "clone", ops.clone, torch.clone, [N(3, 4)]),
    # ------------------------------------------------------------------ unary math
    Row("exp", "exp", ops.exp, torch.exp, [N(3, 4)]),
    Row("log", "log", ops.log, torch.log, [P(3, 4)]),
    Row("log1p", "log1p", ops.log1p, torch.log1p, [P(3, 4, lo=-0.5, hi=2.0)]),
    Row("sqrt", "sqrt", ops.sqrt, torch.sqrt, [P(3, 4)]),
    Row("abs", "abs", ops.abs, torch.abs, [A(3, 4)]),
    Row("sign", "sign", ops.sign, torch.sign, [A(3, 4)], gradgrad=False),
    Row("clamp", "clamp", ops.clamp, torch.clamp, [G(3, 4, offset=0.15)],
        kwargs=dict(min=-0.6, max=0.6)),
    Row("clamp_min", "clamp", ops.clamp, torch.clamp, [G(3, 4, offset=0.15)],
        kwargs=dict(min=-0.6)),
    Row("clamp_max", "clamp", ops.clamp, torch.clamp, [G(3, 4, offset=0.15)],
        kwargs=dict(max=0.6)),
    Row("maximum", "maximum", ops.maximum, torch.maximum, [G(3, 4), G(3, 4, offset=0.15)]),
    Row("maximum_bcast", "maximum", ops.maximum, torch.maximum, [G(3, 4), G(4, offset=0.15)]),
    Row("minimum", "minimum", ops.minimum, torch.minimum, [G(3, 4), G(3, 4, offset=0.15)]),
    Row("minimum_bcast", "minimum", ops.minimum, torch.minimum, [G(3, 1), G(4, offset=0.15)]),
    Row("where", "where", lambda c, a, b: ops.where(c, a, b), torch.where,
        [C(COND), N(3, 4), N(3, 4)]),
    Row("where_bcast", "where", lambda c, a, b: ops.where(c, a, b), torch.where,
        [C(COND), N(3, 1), N(4)]),
    Row("where_scalar_other", "where", lambda c, a: ops.where(c, a, 0.0),
        lambda c, a: torch.where(c, a, 0.0), [C(COND), N(3, 4)]),
    # ------------------------------------------------------------------ activations
    Row("relu", "relu", ops.relu, torch.relu, [A(3, 4)]),
    Row("add_relu", "add_relu", ops.add_relu, lambda a, b: torch.relu(a + b),
        [G(3, 4), G(3, 4, offset=0.15)]),
    Row("relu_toplevel", "relu", dg.relu, torch.relu, [A(3, 4)]),
    Row("leaky_relu", "leaky_relu", ops.leaky_relu, TF.leaky_relu, [A(3, 4)],
        kwargs=dict(negative_slope=0.2)),
    Row("elu", "elu", ops.elu, TF.elu, [A(3, 4)], kwargs=dict(alpha=1.3)),
    Row("sigmoid", "sigmoid", ops.sigmoid, torch.sigmoid, [N(3, 4)]),
    Row("logsigmoid", "logsigmoid", ops.logsigmoid, TF.logsigmoid, [N(3, 4)]),
    Row("tanh", "tanh", ops.tanh, torch.tanh, [N(3, 4)]),
    Row("softplus", "softplus", ops.softplus, TF.softplus, [N(3, 4)]),
    Row("softplus_beta_threshold", "softplus", ops.softplus, TF.softplus,
        [G(3, 4, offset=0.15)], kwargs=dict(beta=2.0, threshold=3.0)),
    # ------------------------------------------------------------------ reductions
    Row("sum_all", "sum", ops.sum, torch.sum, [N(3, 4)]),
    Row("sum_dim", "sum", ops.sum, torch.sum, [N(3, 4)], kwargs=dict(dim=1)),
    Row("sum_dims_keepdim", "sum", ops.sum, torch.sum, [N(2, 3, 4)],
        kwargs=dict(dim=(0, 2), keepdim=True)),
    Row("sum_neg_dim", "sum", ops.sum, torch.sum, [N(2, 3, 4)], kwargs=dict(dim=-1)),
    Row("mean_all", "mean", ops.mean, torch.mean, [N(3, 4)]),
    Row("mean_dim_keepdim", "mean", ops.mean, torch.mean, [N(3, 4)],
        kwargs=dict(dim=0, keepdim=True)),
    Row("var_all", "var", ops.var, torch.var, [N(3, 4)]),
    Row("var_dim_biased", "var", ops.var, torch.var, [N(3, 4)],
        kwargs=dict(dim=1, unbiased=False)),
    Row("var_dims_correction_keepdim", "var", ops.var, torch.var, [N(2, 3, 4)],
        kwargs=dict(dim=(0, 2), correction=2, keepdim=True)),
    Row("std_all", "std", ops.std, torch.std, [N(3, 4)]),
    Row("std_dim_keepdim", "std", ops.std, torch.std, [N(3, 4)],
        kwargs=dict(dim=0, keepdim=True)),
    Row("std_biased", "std", ops.std, torch.std, [N(3, 4)], kwargs=dict(dim=1, unbiased=False)),
    Row("amax_all", "amax", ops.amax, torch.amax, [D(3, 4)]),
    Row("amax_dim_keepdim", "amax", ops.amax, torch.amax, [D(3, 4)],
        kwargs=dict(dim=1, keepdim=True)),
    Row("amax_dims", "amax", ops.amax, torch.amax, [D(2, 3, 4)], kwargs=dict(dim=(0, 2))),
    Row("amin_all", "amin", ops.amin, torch.amin, [D(3, 4)]),
    Row("amin_dim", "amin", ops.amin, torch.amin, [D(3, 4)], kwargs=dict(dim=0)),
    Row("max_all", "max", ops.max, torch.max, [D(3, 4)]),
    Row("max_dim", "max", ops.max, torch.max, [D(3, 4)], kwargs=dict(dim=1)),
    Row("max_dim_keepdim", "max", ops.max, torch.max, [D(2, 3, 4)],
        kwargs=dict(dim=0, keepdim=True)),
    Row("min_all", "min", ops.min, torch.min, [D(3, 4)]),
    Row("min_dim", "min", ops.min, torch.min, [D(3, 4)], kwargs=dict(dim=-1)),
    Row("argmax_all", "argmax", ops.argmax, torch.argmax, [D(3, 4)], gradgrad=False),
    Row("argmax_dim", "argmax", ops.argmax, torch.argmax, [D(3, 4)], kwargs=dict(dim=1),
        gradgrad=False),
    Row("argmin_dim_keepdim", "argmin", ops.argmin, torch.argmin, [D(3, 4)],
        kwargs=dict(dim=0, keepdim=True), gradgrad=False),
    Row("logsumexp", "logsumexp", ops.logsumexp, torch.logsumexp, [N(3, 4)],
        kwargs=dict(dim=1)),
    Row("logsumexp_dims_keepdim", "logsumexp", ops.logsumexp, torch.logsumexp, [N(2, 3, 4)],
        kwargs=dict(dim=(0, 2), keepdim=True)),
    Row("softmax_dim1", "softmax", ops.softmax, torch.softmax, [N(3, 4)], kwargs=dict(dim=1)),
    Row("softmax_dim0_3d", "softmax", ops.softmax, torch.softmax, [N(2, 3, 4)],
        kwargs=dict(dim=0)),
    Row("softmax_neg_dim", "softmax", ops.softmax, torch.softmax, [N(2, 3, 4)],
        kwargs=dict(dim=-1)),
    Row("log_softmax_dim1", "log_softmax", ops.log_softmax, torch.log_softmax, [N(3, 4)],
        kwargs=dict(dim=1)),
    Row("log_softmax_dim1_3d", "log_softmax", ops.log_softmax, torch.log_softmax,
        [N(2, 3, 4)], kwargs=dict(dim=1)),
    Row("norm_2_all", "norm", ops.norm, lambda x: torch.linalg.vector_norm(x), [N(3, 4)]),
    Row("norm_2_dim", "norm", lambda x: ops.norm(x, 2, dim=1),
        lambda x: torch.linalg.vector_norm(x, 2, dim=1), [N(3, 4)]),
    Row("norm_1_dim", "norm", lambda x: ops.norm(x, 1, dim=0),
        lambda x: torch.linalg.vector_norm(x, 1, dim=0), [A(3, 4)]),
    Row("norm_3_dim_keepdim", "norm", lambda x: ops.norm(x, 3, dim=1, keepdim=True),
        lambda x: torch.linalg.vector_norm(x, 3, dim=1, keepdim=True), [A(3, 4)]),
    Row("norm_inf", "norm", lambda x: ops.norm(x, float("inf"), dim=1),
        lambda x: torch.linalg.vector_norm(x, float("inf"), dim=1), [D(3, 4, positive=True)]),
    Row("norm_method", "norm", lambda x: x.norm(), lambda x: x.norm(), [N(3, 4)]),
    # ------------------------------------------------------------------ shape
    Row("reshape", "reshape", lambda x: ops.reshape(x, (2, 6)),
        lambda x: torch.reshape(x, (2, 6)), [N(3, 4)]),
    Row("reshape_minus1", "reshape", lambda x: x.reshape(4, -1), lambda x: x.reshape(4, -1),
        [N(3, 4)]),
    Row("view", "view", lambda x: x.view(2, 3, 2), lambda x: x.view(2, 3, 2), [N(3, 4)]),
    Row("flatten_all", "flatten", ops.flatten, torch.flatten, [N(2, 3, 4)]),
    Row("flatten_start", "flatten", ops.flatten, torch.flatten, [N(2, 3, 4)],
        kwargs=dict(start_dim=1)),
    Row("flatten_start_end", "flatten", ops.flatten, torch.flatten, [N(2, 3, 4, 2)],
        kwargs=dict(start_dim=1, end_dim=2)),
    Row("permute", "permute", lambda x: ops.permute(x, (2, 0, 1)),
        lambda x: torch.permute(x, (2, 0, 1)), [N(2, 3, 4)]),
    Row("permute_method_T", "permute", lambda x: x.T, lambda x: x.T, [N(3, 4)]),
    Row("transpose", "transpose", lambda x: ops.transpose(x, 0, 2),
        lambda x: torch.transpose(x, 0, 2), [N(2, 3, 4)]),
    Row("transpose_neg", "transpose", lambda x: x.transpose(-1, -2),
        lambda x: x.transpose(-1, -2), [N(2, 3, 4)]),
    Row("movedim", "movedim", lambda x: ops.movedim(x, 0, -1),
        lambda x: torch.movedim(x, 0, -1), [N(2, 3, 4)]),
    Row("movedim_back", "movedim", lambda x: ops.movedim(x, 2, 0),
        lambda x: torch.movedim(x, 2, 0), [N(2, 3, 4)]),
    Row("squeeze_all", "squeeze", ops.squeeze, torch.squeeze, [N(3, 1, 4, 1)]),
    Row("squeeze_dim", "squeeze", lambda x: ops.squeeze(x, 1), lambda x: torch.squeeze(x, 1),
        [N(3, 1, 4, 1)]),
    Row("squeeze_neg_dim", "squeeze", lambda x: ops.squeeze(x, -1),
        lambda x: torch.squeeze(x, -1), [N(3, 1, 4, 1)]),
    Row("squeeze_non1_noop", "squeeze", lambda x: ops.squeeze(x, 0),
        lambda x: torch.squeeze(x, 0), [N(3, 1, 4)]),
    Row("unsqueeze", "unsqueeze", lambda x: ops.unsqueeze(x, 1),
        lambda x: torch.unsqueeze(x, 1), [N(3, 4)]),
    Row("unsqueeze_neg", "unsqueeze", lambda x: ops.unsqueeze(x, -1),
        lambda x: torch.unsqueeze(x, -1), [N(3, 4)]),
    Row("expand", "expand", lambda x: ops.expand(x, (3, 4)), lambda x: x.expand(3, 4),
        [N(3, 1)]),
    Row("expand_new_dims", "expand", lambda x: x.expand(2, -1, 4), lambda x: x.expand(2, -1, 4),
        [N(3, 1)]),
    Row("broadcast_to", "broadcast_to", lambda x: x.broadcast_to((2, 3, 4)),
        lambda x: torch.broadcast_to(x, (2, 3, 4)), [N(4)]),
    Row("sum_to", "sum_to", lambda x: ops.sum_to(x, (1, 4)), lambda x: x.sum_to_size(1, 4),
        [N(3, 4)]),
    Row("sum_to_fewer_dims", "sum_to", lambda x: ops.sum_to(x, (4,)),
        lambda x: x.sum_to_size(4), [N(3, 1, 4)]),
    Row("getitem_int", "getitem", lambda x: x[1], lambda x: x[1], [N(3, 4)]),
    Row("getitem_neg_int", "getitem", lambda x: ops.getitem(x, (-1, 2)), lambda x: x[-1, 2],
        [N(3, 4)]),
    Row("getitem_slices", "getitem", lambda x: x[1:3, ::2], lambda x: x[1:3, ::2], [N(3, 4)]),
    # one step-1 slice after full ones: backward writes g and zeros only around it
    Row("getitem_range_axis1", "getitem", lambda x: x[:, 1:3], lambda x: x[:, 1:3],
        [N(2, 4, 3)]),
    Row("getitem_range_neg", "getitem", lambda x: x[-2:], lambda x: x[-2:], [N(4, 3)]),
    Row("getitem_range_to_end", "getitem", lambda x: x[:, :, 1:], lambda x: x[:, :, 1:],
        [N(2, 3, 4)]),
    Row("getitem_ellipsis_none", "getitem", lambda x: x[..., -1, None],
        lambda x: x[..., -1, None], [N(2, 3, 4)]),
    Row("getitem_int_array", "getitem", lambda x: x[np.array([2, 0])],
        lambda x: x[torch.tensor([2, 0])], [N(3, 4)]),
    Row("getitem_int_array_repeated", "getitem", lambda x: x[IDX_REP],
        lambda x: x[torch.tensor(IDX_REP)], [N(3, 4)]),
    Row("getitem_int_list_repeated", "getitem", lambda x: x[[0, 2, 2]],
        lambda x: x[[0, 2, 2]], [N(3, 4)]),
    Row("getitem_int_tensor", "getitem", lambda x, i: x[i], lambda x, i: x[i],
        [N(3, 4), C(IDX_REP)]),
    Row("getitem_2d_advanced_repeated", "getitem",
        lambda x: x[np.array([0, 1, 2, 0]), np.array([3, 1, 3, 3])],
        lambda x: x[torch.tensor([0, 1, 2, 0]), torch.tensor([3, 1, 3, 3])], [N(3, 4)]),
    Row("getitem_slice_and_array", "getitem", lambda x: x[:, np.array([1, 1, 3])],
        lambda x: x[:, torch.tensor([1, 1, 3])], [N(3, 4)]),
    Row("getitem_2d_index_array", "getitem", lambda x: x[np.array([[0, 1], [1, 1]])],
        lambda x: x[torch.tensor([[0, 1], [1, 1]])], [N(2, 3, 4)]),
    Row("getitem_bool_mask", "getitem", lambda x: x[MASK], lambda x: x[torch.tensor(MASK)],
        [N(3, 4)]),
    Row("getitem_bool_mask_rows", "getitem", lambda x: x[np.array([True, False, True])],
        lambda x: x[torch.tensor([True, False, True])], [N(3, 4)]),
    Row("getitem_bool_tensor", "getitem", lambda x, m: x[m], lambda x, m: x[m],
        [N(3, 4), C(MASK)]),
    Row("cat_dim0", "cat", lambda a, b: ops.cat([a, b]), lambda a, b: torch.cat([a, b]),
        [N(2, 4), N(3, 4)]),
    Row("cat_dim1_three", "cat", lambda a, b, c: ops.cat([a, b, c], dim=1),
        lambda a, b, c: torch.cat([a, b, c], dim=1), [N(3, 1), N(3, 4), N(3, 2)]),
    Row("cat_neg_dim", "cat", lambda a, b: ops.cat((a, b), dim=-1),
        lambda a, b: torch.cat((a, b), dim=-1), [N(2, 3, 1), N(2, 3, 2)]),
    Row("stack_dim0", "stack", lambda a, b: ops.stack([a, b]), lambda a, b: torch.stack([a, b]),
        [N(3, 4), N(3, 4)]),
    Row("stack_dim1_three", "stack", lambda a, b, c: ops.stack([a, b, c], dim=1),
        lambda a, b, c: torch.stack([a, b, c], dim=1), [N(3, 4), N(3, 4), N(3, 4)]),
    Row("stack_neg_dim", "stack", lambda a, b: ops.stack([a, b], dim=-1),
        lambda a, b: torch.stack([a, b], dim=-1), [N(3, 4), N(3, 4)]),
    Row("split_size", "split", lambda x: ops.split(x, 2, dim=1),
        lambda x: torch.split(x, 2, dim=1), [N(3, 5)]),
    Row("split_sizes", "split", lambda x: ops.split(x, [1, 3, 1], dim=-1),
        lambda x: torch.split(x, [1, 3, 1], dim=-1), [N(3, 5)]),
    Row("unbind_dim0", "unbind", ops.unbind, torch.unbind, [N(3, 4)]),
    Row("unbind_dim1", "unbind", lambda x: ops.unbind(x, 1), lambda x: torch.unbind(x, 1),
        [N(2, 3, 4)]),
    Row("pad_last", "pad", lambda x: ops.pad(x, (1, 2)), lambda x: TF.pad(x, (1, 2)),
        [N(3, 4)]),
    Row("pad_last_two_value", "pad", lambda x: ops.pad(x, (1, 0, 2, 1), value=0.5),
        lambda x: TF.pad(x, (1, 0, 2, 1), value=0.5), [N(2, 3, 4)]),
    # ------------------------------------------------------------------ matmul / linear
    Row("matmul_2d", "matmul", ops.matmul, torch.matmul, [N(3, 4), N(4, 5)]),
    Row("matmul_batched", "matmul", ops.matmul, torch.matmul, [N(2, 3, 4), N(2, 4, 5)]),
    Row("matmul_batched_bcast", "matmul", ops.matmul, torch.matmul,
        [N(2, 1, 3, 4), N(3, 4, 2)]),
    Row("matmul_2d_batched", "matmul", ops.matmul, torch.matmul, [N(3, 4), N(2, 4, 5)]),
    Row("matmul_1d_2d", "matmul", ops.matmul, torch.matmul, [N(4), N(4, 5)]),
    Row("matmul_2d_1d", "matmul", ops.matmul, torch.matmul, [N(3, 4), N(4)]),
    Row("matmul_1d_1d", "matmul", ops.matmul, torch.matmul, [N(4), N(4)]),
    Row("matmul_batched_1d", "matmul", ops.matmul, torch.matmul, [N(2, 3, 4), N(4)]),
    Row("matmul_op", "matmul", lambda a, b: a @ b, lambda a, b: a @ b, [N(3, 4), N(4, 2)]),
    Row("linear_bias", "linear", ops.linear, TF.linear, [N(5, 4), N(3, 4), N(3)]),
    Row("linear_no_bias", "linear", ops.linear, TF.linear, [N(5, 4), N(3, 4)]),
    Row("linear_3d_input", "linear", ops.linear, TF.linear, [N(2, 5, 4), N(3, 4), N(3)]),
    Row("linear_1d_input", "linear", ops.linear, TF.linear, [N(4), N(3, 4), N(3)]),
    # ------------------------------------------------------------------ fused loss
    Row("cross_entropy_logits", "cross_entropy_logits", ops.cross_entropy_logits,
        TF.cross_entropy, [N(4, 3), C([0, 2, 1, 2])]),
    Row("cross_entropy_logits_sum", "cross_entropy_logits", ops.cross_entropy_logits,
        TF.cross_entropy, [N(4, 3), C([0, 2, 1, 2])], kwargs=dict(reduction="sum")),
    Row("cross_entropy_logits_none_ignore", "cross_entropy_logits",
        ops.cross_entropy_logits, TF.cross_entropy, [N(4, 3), C([0, -100, 1, 2])],
        kwargs=dict(reduction="none")),
    Row("cross_entropy_logits_weight_ignore", "cross_entropy_logits",
        lambda x, t, w: ops.cross_entropy_logits(x, t, w, ignore_index=1),
        lambda x, t, w: TF.cross_entropy(x, t, w, ignore_index=1),
        [N(5, 3), C([0, 2, 1, 2, 1]), C([0.2, 1.0, 3.0])]),
    Row("bce_elementwise", "binary_cross_entropy_elementwise",
        ops.binary_cross_entropy_elementwise,
        lambda p, y: TF.binary_cross_entropy(p, y, reduction="none"),
        [P(3, 4, lo=0.05, hi=0.95), P(3, 4, lo=0.0, hi=1.0)]),
]

ROW_IDS = [r.name for r in ROWS]
assert len(set(ROW_IDS)) == len(ROW_IDS), "duplicate row names"
GRADGRAD_ROWS = [r for r in ROWS if r.gradgrad]

#: deepgrad.ops.__all__ names (and Tensor methods) with at least one row.
COVERED = {r.covers for r in ROWS}


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_gradcheck(row, oracle):
    arrays = oracle.make_arrays(row.inputs, row.name)
    oracle.gradcheck(row.dg, row.inputs, arrays, kwargs=row.kwargs, **row.check)


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_parity_float64(row, oracle):
    arrays = oracle.make_arrays(row.inputs, row.name)
    oracle.parity(row.dg, row.th, row.inputs, arrays, np.float64, rtol=1e-10,
                  seed=oracle.seed_of(row.name), kwargs=row.kwargs)


@pytest.mark.default_dtype("float32")
@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_parity_float32(row, oracle):
    arrays = oracle.make_arrays(row.inputs, row.name)
    oracle.parity(row.dg, row.th, row.inputs, arrays, np.float32, rtol=1e-5,
                  seed=oracle.seed_of(row.name), kwargs=row.kwargs)


@pytest.mark.parametrize("row", GRADGRAD_ROWS, ids=[r.name for r in GRADGRAD_ROWS])
def test_gradgradcheck(row, oracle):
    arrays = oracle.make_arrays(row.inputs, row.name)
    oracle.gradcheck(row.dg, row.inputs, arrays, second=True, kwargs=row.kwargs, **row.check)


def test_double_backward_parity_with_torch(oracle):
    """Second-order parity on a composite of many table ops: d/dx (v . J(x)) vs torch."""
    rng = np.random.default_rng(7)
    x0, w0, v0 = rng.standard_normal((3, 4)), rng.standard_normal((4, 4)), rng.standard_normal(
        (3, 4))

    def f(lib, x, w):
        h = lib.tanh(x @ w) * lib.sigmoid(x) + (x**2).sum(1, keepdim=True).sqrt()
        return lib.softmax(h, 1) * lib.exp(-h)

    xs = dg.tensor(x0, requires_grad=True)
    ws = dg.tensor(w0, requires_grad=True)
    g = dg.autograd.grad(f(dg, xs, ws), [xs, ws], dg.tensor(v0), create_graph=True)
    dot = (g[0] * dg.tensor(v0[:, :4])).sum() + (g[1] * dg.tensor(w0)).sum()
    hx, hw = dg.autograd.grad(dot, [xs, ws])
    xt = torch.tensor(x0, requires_grad=True)
    wt = torch.tensor(w0, requires_grad=True)
    gt = torch.autograd.grad(f(torch, xt, wt), [xt, wt], torch.tensor(v0), create_graph=True)
    dott = (gt[0] * torch.tensor(v0[:, :4])).sum() + (gt[1] * torch.tensor(w0)).sum()
    hxt, hwt = torch.autograd.grad(dott, [xt, wt])
    oracle.close(hx, hxt, 1e-10, "d2/dx")
    oracle.close(hw, hwt, 1e-10, "d2/dw")


# ---------------------------------------------------------------------- the oracles have teeth
class _SoftmaxWrongByCentredUpstream(dg.autograd.Function):
    """Softmax whose backward adds (g - mean g): invisible to a ``.sum()`` (g = ones) check."""

    def forward(self, a):
        e = np.exp(a - a.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def backward(self, g):
        y = self.output()
        right = y * (g - (g * y).sum(1, keepdim=True))
        return (right + (g - g.mean(1, keepdim=True)),)


def test_oracles_catch_a_gradient_error_that_sum_would_miss(oracle):
    x = dg.tensor(np.random.default_rng(3).standard_normal((3, 4)), requires_grad=True)
    g_ones, = dg.autograd.grad(_SoftmaxWrongByCentredUpstream.apply(x).sum(), x)
    oracle.close(g_ones, np.zeros((3, 4)), 1e-10, "ones-upstream gradient (vacuous)")
    with pytest.raises(AssertionError, match="gradcheck"):
        dg.autograd.gradcheck(_SoftmaxWrongByCentredUpstream.apply, (x,))
    with pytest.raises(AssertionError, match="gradient of input 0"):
        oracle.parity(_SoftmaxWrongByCentredUpstream.apply, lambda t: torch.softmax(t, 1),
                      [N(3, 4)], [x.data.copy()], np.float64, rtol=1e-10)
    with pytest.raises(AssertionError, match="forward output 0"):
        oracle.parity(ops.exp, lambda t: torch.exp(t) * (1 + 1e-8), [N(3, 4)], [x.data.copy()],
                      np.float64, rtol=1e-10)
