"""Every activation and loss of ``deepgrad.nn.functional`` against two oracles, from one table.

Each row gets: float64 gradcheck (random upstream gradient), float64 forward/gradient parity with
``torch.nn.functional`` to 1e-10, float32 parity to 1e-5 and gradgradcheck. Losses run with every
reduction. Then: extreme logits (+-1e4) must give finite losses and gradients equal to torch's,
and bad input must raise ValueError naming what is wrong.

``COVERED`` (the ``F.__all__`` names with a row) is read by tests/test_coverage.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
import deepgrad.nn.functional as F


# ---------------------------------------------------------------------- input generators
def N(*shape, scale=1.0):
    return (lambda rng: scale * rng.standard_normal(shape), True)


def U(*shape, lo=0.05, hi=0.95, grad=True):
    return (lambda rng: rng.uniform(lo, hi, shape), grad)


def A(*shape):
    """|x| in [0.3, 2], random sign (activation kinks at 0)."""
    return (lambda rng: rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape), True)


def G(*shape, offset=0.0, grad=True):
    """Grid of step 0.3 (+- 0.01): input (offset 0) minus target (offset 0.15) gives
    |d| in 0.15 + 0.3k, away from 0 (l1 kink) and from beta/delta in {0.5, 1, 2}."""
    return (lambda rng: rng.integers(-7, 8, shape) * 0.3 + offset
            + rng.uniform(-0.01, 0.01, shape), grad)


def PROBS(*shape, dim=1):
    """Soft class-probability targets (rows summing to 1 along ``dim``)."""
    def gen(rng):
        p = rng.uniform(0.1, 1.0, shape)
        return p / p.sum(axis=dim, keepdims=True)
    return (gen, False)


def C(value):
    arr = np.asarray(value)
    return (lambda rng: arr, False)


@dataclass
class Row:
    name: str
    covers: str
    dg: Callable
    th: Callable
    inputs: list
    kwargs: dict = field(default_factory=dict)
    gradgrad: bool = True


REDUCTIONS = ("mean", "sum", "none")

ACTIVATIONS = [
    Row("relu", "relu", F.relu, TF.relu, [A(3, 4)]),
    Row("leaky_relu", "leaky_relu", F.leaky_relu, TF.leaky_relu, [A(3, 4)]),
    Row("leaky_relu_slope", "leaky_relu", F.leaky_relu, TF.leaky_relu, [A(3, 4)],
        dict(negative_slope=0.3)),
    Row("elu", "elu", F.elu, TF.elu, [A(3, 4)]),
    Row("elu_alpha", "elu", F.elu, TF.elu, [A(3, 4)], dict(alpha=0.5)),
    Row("sigmoid", "sigmoid", F.sigmoid, torch.sigmoid, [N(3, 4, scale=3.0)]),
    Row("logsigmoid", "logsigmoid", F.logsigmoid, TF.logsigmoid, [N(3, 4, scale=3.0)]),
    Row("tanh", "tanh", F.tanh, torch.tanh, [N(3, 4)]),
    Row("softplus", "softplus", F.softplus, TF.softplus, [N(3, 4, scale=3.0)]),
    Row("softplus_beta", "softplus", F.softplus, TF.softplus, [G(3, 4, offset=0.15)],
        dict(beta=2.0, threshold=5.0)),
    Row("softmax", "softmax", F.softmax, TF.softmax, [N(3, 4)], dict(dim=1)),
    Row("softmax_dim0", "softmax", F.softmax, TF.softmax, [N(2, 3, 4)], dict(dim=0)),
    Row("log_softmax", "log_softmax", F.log_softmax, TF.log_softmax, [N(3, 4)], dict(dim=1)),
    Row("log_softmax_last", "log_softmax", F.log_softmax, TF.log_softmax, [N(2, 3, 4)],
        dict(dim=-1)),
    Row("linear", "linear", F.linear, TF.linear, [N(5, 4), N(3, 4), N(3)]),
    Row("linear_no_bias", "linear", F.linear, TF.linear, [N(2, 5, 4), N(3, 4)]),
    Row("pad", "pad", F.pad, TF.pad, [N(2, 3, 4)], dict(pad=(2, 1, 0, 1))),
    Row("dropout_eval", "dropout", F.dropout, TF.dropout, [N(3, 4)],
        dict(p=0.4, training=False)),
    Row("dropout_p0", "dropout", F.dropout, TF.dropout, [N(3, 4)], dict(p=0.0)),
]

# (name, covers, deepgrad fn, torch fn, inputs, kwargs): expanded over the three reductions.
LOSSES = [
    ("mse", "mse_loss", F.mse_loss, TF.mse_loss, [N(4, 3), N(4, 3)], {}),
    ("mse_const_target", "mse_loss", F.mse_loss, TF.mse_loss, [N(2, 3, 2), C(np.ones((2, 3, 2)))],
     {}),
    ("l1", "l1_loss", F.l1_loss, TF.l1_loss, [G(4, 3), G(4, 3, offset=0.15)], {}),
    *[(f"smooth_l1_beta{b}", "smooth_l1_loss", F.smooth_l1_loss, TF.smooth_l1_loss,
       [G(4, 3), G(4, 3, offset=0.15)], dict(beta=b)) for b in (1.0, 0.5, 2.0, 0.0)],
    *[(f"huber_delta{d}", "huber_loss", F.huber_loss, TF.huber_loss,
       [G(4, 3), G(4, 3, offset=0.15)], dict(delta=d)) for d in (1.0, 0.5, 2.0)],
    ("cross_entropy", "cross_entropy", F.cross_entropy, TF.cross_entropy,
     [N(4, 3), C([0, 2, 1, 2])], {}),
    ("cross_entropy_weight", "cross_entropy",
     lambda x, t, w, **kw: F.cross_entropy(x, t, weight=w, **kw),
     lambda x, t, w, **kw: TF.cross_entropy(x, t, weight=w, **kw),
     [N(5, 3), C([0, 2, 1, 2, 0]), C([0.3, 1.0, 2.5])], {}),
    ("cross_entropy_ignore_index", "cross_entropy", F.cross_entropy, TF.cross_entropy,
     [N(5, 3), C([0, -100, 1, 2, -100])], {}),
    ("cross_entropy_ignore_index_custom_weight", "cross_entropy",
     lambda x, t, w, **kw: F.cross_entropy(x, t, weight=w, **kw),
     lambda x, t, w, **kw: TF.cross_entropy(x, t, weight=w, **kw),
     [N(5, 3), C([0, 2, 1, 2, 1]), C([0.3, 1.0, 2.5])], dict(ignore_index=2)),
    ("cross_entropy_label_smoothing", "cross_entropy", F.cross_entropy, TF.cross_entropy,
     [N(5, 3), C([0, 2, -100, 2, 1])], dict(label_smoothing=0.1)),
    ("cross_entropy_3d", "cross_entropy", F.cross_entropy, TF.cross_entropy,
     [N(2, 3, 4), C([[0, 2, 1, 1], [2, 2, 0, 1]])], {}),
    ("cross_entropy_3d_weight_ignore", "cross_entropy",
     lambda x, t, w, **kw: F.cross_entropy(x, t, weight=w, **kw),
     lambda x, t, w, **kw: TF.cross_entropy(x, t, weight=w, **kw),
     [N(2, 3, 4), C([[0, 2, 1, -100], [2, 2, 0, 1]]), C([0.3, 1.0, 2.5])], {}),
    ("cross_entropy_4d_smoothing", "cross_entropy", F.cross_entropy, TF.cross_entropy,
     [N(2, 3, 2, 2), C([[[0, 2], [1, 1]], [[2, 2], [0, 1]]])], dict(label_smoothing=0.2)),
    ("cross_entropy_1d_input", "cross_entropy", F.cross_entropy, TF.cross_entropy,
     [N(4), C(2)], {}),
    ("cross_entropy_probs", "cross_entropy", F.cross_entropy, TF.cross_entropy,
     [N(4, 3), PROBS(4, 3)], {}),
    ("cross_entropy_probs_weight_smoothing", "cross_entropy",
     lambda x, t, w, **kw: F.cross_entropy(x, t, weight=w, **kw),
     lambda x, t, w, **kw: TF.cross_entropy(x, t, weight=w, **kw),
     [N(4, 3), PROBS(4, 3), C([0.3, 1.0, 2.5])], dict(label_smoothing=0.1)),
    ("cross_entropy_probs_3d", "cross_entropy", F.cross_entropy, TF.cross_entropy,
     [N(2, 3, 4), PROBS(2, 3, 4)], {}),
    ("nll", "nll_loss", F.nll_loss, TF.nll_loss, [N(4, 3), C([0, 2, 1, 2])], {}),
    ("nll_weight_ignore", "nll_loss",
     lambda x, t, w, **kw: F.nll_loss(x, t, weight=w, **kw),
     lambda x, t, w, **kw: TF.nll_loss(x, t, weight=w, **kw),
     [N(5, 3), C([0, 2, -100, 2, 1]), C([0.3, 1.0, 2.5])], {}),
    ("nll_3d", "nll_loss", F.nll_loss, TF.nll_loss,
     [N(2, 3, 4), C([[0, 2, 1, 1], [2, 2, 0, 1]])], dict(ignore_index=1)),
    ("bce", "binary_cross_entropy", F.binary_cross_entropy, TF.binary_cross_entropy,
     [U(4, 3), U(4, 3, lo=0.0, hi=1.0, grad=False)], {}),
    ("bce_hard_targets_weight", "binary_cross_entropy",
     lambda x, t, w, **kw: F.binary_cross_entropy(x, t, weight=w, **kw),
     lambda x, t, w, **kw: TF.binary_cross_entropy(x, t, weight=w, **kw),
     [U(4, 3), C([[0.0, 1, 1], [1, 0, 0], [0, 0, 1], [1, 1, 1]]), C([0.5, 1.0, 2.0])], {}),
    ("bce_logits", "binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits,
     TF.binary_cross_entropy_with_logits, [N(4, 3, scale=3.0), U(4, 3, lo=0.0, hi=1.0)], {}),
    ("bce_logits_weight_pos_weight", "binary_cross_entropy_with_logits",
     lambda x, t, w, pw, **kw: F.binary_cross_entropy_with_logits(x, t, weight=w,
                                                                  pos_weight=pw, **kw),
     lambda x, t, w, pw, **kw: TF.binary_cross_entropy_with_logits(x, t, weight=w,
                                                                   pos_weight=pw, **kw),
     [N(4, 3, scale=3.0), U(4, 3, lo=0.0, hi=1.0, grad=False), C([[0.5], [1.0], [2.0], [1.5]]),
      C([0.5, 2.0, 3.0])], {}),
]

ROWS = list(ACTIVATIONS) + [
    Row(f"{name}-{red}", covers, dgf, thf, inputs, {**kw, "reduction": red})
    for name, covers, dgf, thf, inputs, kw in LOSSES for red in REDUCTIONS
]
ROW_IDS = [r.name for r in ROWS]
assert len(set(ROW_IDS)) == len(ROW_IDS), "duplicate row names"

#: F.__all__ names with at least one row.
COVERED = {r.covers for r in ROWS}


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_gradcheck(row, oracle):
    arrays = oracle.make_arrays(row.inputs, row.name)
    oracle.gradcheck(row.dg, row.inputs, arrays, kwargs=row.kwargs)


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


@pytest.mark.parametrize("row", [r for r in ROWS if r.gradgrad],
                         ids=[r.name for r in ROWS if r.gradgrad])
def test_gradgradcheck(row, oracle):
    arrays = oracle.make_arrays(row.inputs, row.name)
    oracle.gradcheck(row.dg, row.inputs, arrays, second=True, kwargs=row.kwargs)


# ---------------------------------------------------------------------- dropout in training
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_training_gradient_is_the_mask(p, oracle):
    """Training dropout is random, so torch cannot be the oracle: with the mask fixed by a
    seed, gradcheck holds and the gradient equals upstream * (y / x) (mask / (1 - p))."""
    x = dg.tensor(np.random.default_rng(1).uniform(0.5, 1.5, (40, 30)), requires_grad=True)

    def fixed_mask_dropout(t):
        dg.manual_seed(11)
        return F.dropout(t, p=p, training=True)

    y = fixed_mask_dropout(x)
    v = np.random.default_rng(2).standard_normal(x.shape)
    g, = dg.autograd.grad(y, x, dg.tensor(v))
    ratio = y.data / x.data
    assert set(np.unique(np.round(ratio, 12))) <= {0.0, round(1 / (1 - p), 12)}
    oracle.close(g, v * ratio, 1e-12, "dropout gradient")
    small = dg.tensor(x.data[:3, :4], requires_grad=True)
    assert dg.autograd.gradcheck(fixed_mask_dropout, (small,))
    assert dg.autograd.gradgradcheck(fixed_mask_dropout, (small,))


# ---------------------------------------------------------------------- extreme logits
BIG = 1e4
X_EXT = [[BIG, -BIG, 0.0], [-BIG, BIG, BIG], [0.0, 0.0, -BIG], [-BIG, -BIG, -BIG]]
T_EXT = [1, 0, 2, 1]  # the first three are maximally wrong (loss ~ 1e4)
B_EXT = [[BIG, -BIG, BIG], [-BIG, BIG, 3.0], [0.0, -BIG, BIG], [-BIG, -BIG, BIG]]
BT_EXT = [[0.0, 1.0, 1.0], [1.0, 0.0, 0.5], [1.0, 1.0, 0.0], [0.3, 0.0, 1.0]]

EXTREME = [
    Row("cross_entropy", "cross_entropy", F.cross_entropy, TF.cross_entropy,
        [C(X_EXT), C(T_EXT)]),
    Row("cross_entropy_weight_none", "cross_entropy",
        lambda x, t, w: F.cross_entropy(x, t, weight=w, reduction="none"),
        lambda x, t, w: TF.cross_entropy(x, t, weight=w, reduction="none"),
        [C(X_EXT), C(T_EXT), C([0.3, 1.0, 2.0])]),
    Row("cross_entropy_smoothing", "cross_entropy", F.cross_entropy, TF.cross_entropy,
        [C(X_EXT), C(T_EXT)], dict(label_smoothing=0.1)),
    Row("cross_entropy_probs", "cross_entropy", F.cross_entropy, TF.cross_entropy,
        [C(X_EXT), C(np.full((4, 3), 1 / 3))]),
    Row("nll_of_log_softmax", "nll_loss", lambda x, t: F.nll_loss(F.log_softmax(x, 1), t),
        lambda x, t: TF.nll_loss(TF.log_softmax(x, 1), t), [C(X_EXT), C(T_EXT)]),
    Row("bce_logits", "binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits,
        TF.binary_cross_entropy_with_logits, [C(B_EXT), C(BT_EXT)]),
    Row("bce_logits_pos_weight_none", "binary_cross_entropy_with_logits",
        lambda x, t, pw: F.binary_cross_entropy_with_logits(x, t, pos_weight=pw,
                                                            reduction="none"),
        lambda x, t, pw: TF.binary_cross_entropy_with_logits(x, t, pos_weight=pw,
                                                             reduction="none"),
        [C(B_EXT), C(BT_EXT), C([0.5, 2.0, 3.0])]),
    Row("log_softmax", "log_softmax", F.log_softmax, TF.log_softmax, [C(X_EXT)], dict(dim=1)),
    Row("softmax", "softmax", F.softmax, TF.softmax, [C(X_EXT)], dict(dim=1)),
    Row("logsigmoid", "logsigmoid", F.logsigmoid, TF.logsigmoid, [C(B_EXT)]),
    Row("sigmoid", "sigmoid", F.sigmoid, torch.sigmoid, [C(B_EXT)]),
    Row("softplus", "softplus", F.softplus, TF.softplus, [C(B_EXT)]),
    Row("tanh", "tanh", F.tanh, torch.tanh, [C(B_EXT)]),
    Row("elu", "elu", F.elu, TF.elu, [C(B_EXT)]),
]


def _first_float_input_requires_grad(inputs):
    (gen, _), *rest = inputs
    return [(gen, True), *rest]


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-5)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("row", EXTREME, ids=[r.name for r in EXTREME])
def test_extreme_logits_finite_and_match_torch(row, dtype, rtol, oracle):
    inputs = _first_float_input_requires_grad(row.inputs)
    arrays = oracle.make_arrays(inputs, row.name)
    outs, grads = oracle.parity(row.dg, row.th, inputs, arrays, dtype, rtol=rtol,
                                kwargs=row.kwargs)
    assert all(np.all(np.isfinite(o.data)) for o in outs)
    assert grads and all(np.all(np.isfinite(g.data)) for g in grads)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
def test_bce_saturated_probabilities_finite_gradient(oracle):
    inputs = [(lambda rng: np.array([0.0, 1.0, 0.0, 1.0, 0.5]), True),
              C([1.0, 0.0, 0.0, 1.0, 1.0])]
    arrays = oracle.make_arrays(inputs, "bce_saturated")
    outs, grads = oracle.parity(F.binary_cross_entropy, TF.binary_cross_entropy, inputs, arrays,
                                np.float64, rtol=1e-10, kwargs=dict(reduction="sum"))
    assert np.all(np.isfinite(grads[0].data))


# ---------------------------------------------------------------------- errors
def _t(a, dtype=None):
    return dg.tensor(np.asarray(a), dtype=dtype)


X43 = np.zeros((4, 3))
LABELS_BAD = np.array([0, 5, 1, 2])
LABELS_NEG = np.array([0, -1, 1, 2])

ERRORS = [
    ("ce_label_too_big", lambda: F.cross_entropy(_t(X43), _t(LABELS_BAD)), "5"),
    ("ce_label_negative", lambda: F.cross_entropy(_t(X43), _t(LABELS_NEG)), "-1"),
    ("ce_3d_label_too_big", lambda: F.cross_entropy(_t(np.zeros((2, 3, 2))),
                                                    _t([[0, 1], [7, 2]])), "7"),
    ("nll_label_too_big", lambda: F.nll_loss(_t(X43), _t(LABELS_BAD)), "5"),
    ("nll_label_negative", lambda: F.nll_loss(_t(X43), _t(LABELS_NEG)), "-1"),
    ("ce_target_shape", lambda: F.cross_entropy(_t(X43), _t([0, 1, 2])),
     [r"\(4, 3\)", r"\(3,\)"]),
    ("ce_3d_target_shape", lambda: F.cross_entropy(_t(np.zeros((2, 3, 5))), _t(np.zeros(
        (2, 4), dtype=np.int64))), [r"\(2, 3, 5\)", r"\(2, 4\)"]),
    ("ce_probs_shape", lambda: F.cross_entropy(_t(X43), _t(np.full((4, 2), 0.5))),
     [r"\(4, 3\)", r"\(4, 2\)"]),
    ("nll_target_shape", lambda: F.nll_loss(_t(X43), _t([0, 1])), [r"\(4, 3\)", r"\(2,\)"]),
    ("mse_shape", lambda: F.mse_loss(_t(X43), _t(np.zeros((3, 4)))), [r"\(4, 3\)", r"\(3, 4\)"]),
    ("mse_shape_broadcastable", lambda: F.mse_loss(_t(X43), _t(np.zeros(3))),
     [r"\(4, 3\)", r"\(3,\)"]),
    ("l1_shape", lambda: F.l1_loss(_t(X43), _t(np.zeros((4, 1)))), [r"\(4, 3\)", r"\(4, 1\)"]),
    ("smooth_l1_shape", lambda: F.smooth_l1_loss(_t(X43), _t(np.zeros(4))),
     [r"\(4, 3\)", r"\(4,\)"]),
    ("huber_shape", lambda: F.huber_loss(_t(X43), _t(np.zeros((1, 3)))),
     [r"\(4, 3\)", r"\(1, 3\)"]),
    ("bce_shape", lambda: F.binary_cross_entropy(_t(X43 + 0.5), _t(np.zeros(3))),
     [r"\(4, 3\)", r"\(3,\)"]),
    ("bce_logits_shape", lambda: F.binary_cross_entropy_with_logits(_t(X43), _t(np.zeros(12))),
     [r"\(4, 3\)", r"\(12,\)"]),
    ("bce_input_above_1", lambda: F.binary_cross_entropy(_t(X43 + 1.5), _t(X43)), r"\[0, 1\]"),
    ("bce_input_below_0", lambda: F.binary_cross_entropy(_t(X43 - 0.1), _t(X43)), r"\[0, 1\]"),
    ("bce_input_nan", lambda: F.binary_cross_entropy(_t(X43 * np.nan), _t(X43)), r"\[0, 1\]"),
    ("ce_nan_logits", lambda: F.cross_entropy(_t(X43 * np.nan), _t([0, 1, 2, 0])), "NaN"),
    ("label_smoothing_range", lambda: F.cross_entropy(_t(X43), _t([0, 1, 2, 0]),
                                                      label_smoothing=1.5), "label_smoothing"),
    ("ce_weight_shape", lambda: F.cross_entropy(_t(X43), _t([0, 1, 2, 0]), weight=_t([1.0, 2])),
     "weight"),
    ("smooth_l1_negative_beta", lambda: F.smooth_l1_loss(_t(X43), _t(X43), beta=-1.0), "beta"),
    ("huber_zero_delta", lambda: F.huber_loss(_t(X43), _t(X43), delta=0.0), "delta"),
    ("dropout_p", lambda: F.dropout(_t(X43), p=1.5), "probability"),
    *[(f"{name}_bad_reduction", (lambda fn=fn, args=args: fn(*args, reduction="avg")), "avg")
      for name, fn, args in [
          ("mse", F.mse_loss, (_t(X43), _t(X43))),
          ("l1", F.l1_loss, (_t(X43), _t(X43))),
          ("smooth_l1", F.smooth_l1_loss, (_t(X43), _t(X43))),
          ("huber", F.huber_loss, (_t(X43), _t(X43))),
          ("cross_entropy", F.cross_entropy, (_t(X43), _t([0, 1, 2, 0]))),
          ("cross_entropy_probs", F.cross_entropy, (_t(X43), _t(X43 + 1 / 3))),
          ("nll", F.nll_loss, (_t(X43), _t([0, 1, 2, 0]))),
          ("bce", F.binary_cross_entropy, (_t(X43 + 0.5), _t(X43))),
          ("bce_logits", F.binary_cross_entropy_with_logits, (_t(X43), _t(X43))),
      ]],
]


@pytest.mark.parametrize("call,patterns", [(c, p) for _, c, p in ERRORS],
                         ids=[n for n, _, _ in ERRORS])
def test_errors(call, patterns):
    with pytest.raises(ValueError) as info:
        call()
    msg = str(info.value)
    for pat in [patterns] if isinstance(patterns, str) else patterns:
        assert re.search(pat, msg), f"{pat!r} not in {msg!r}"


def test_label_smoothing_with_class_weights_is_refused_clearly():
    # PARITY gap (documented in the library): torch supports it, deepgrad says so plainly.
    with pytest.raises(NotImplementedError, match="label_smoothing"):
        F.cross_entropy(_t(X43), _t([0, 1, 2, 0]), weight=_t([1.0, 2.0, 3.0]),
                        label_smoothing=0.1)
