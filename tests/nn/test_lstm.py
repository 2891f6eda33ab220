"""``LSTM`` and ``LSTMCell`` against ``torch.nn`` (DESIGN rule 3).

Each row copies torch's weights into deepgrad (``load_state_dict``, identical keys), feeds the same
input and optional (h0, c0), and compares output, h_n and c_n and the gradients of the input,
the initial states and every parameter under random upstream gradients on all three outputs
(float64 to 1e-10, float32 to 1e-4). Gradcheck covers the modules in float64.

``COVERED`` (module names with a test here) is read by tests/test_coverage.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad.nn.modules.rnn import LSTM, LSTMCell

#: Names with a test here (read by tests/test_coverage.py).
COVERED = {"LSTM", "LSTMCell"}

I, H, T, B = 3, 4, 5, 2
CONFIGS = {
    "default": {},
    "two_layers": dict(num_layers=2),
    "batch_first": dict(batch_first=True),
    "no_bias": dict(bias=False),
    "bidirectional": dict(bidirectional=True),
    "bidir_2layers_batch_first": dict(bidirectional=True, num_layers=2, batch_first=True),
    "dropout_three_layers": dict(num_layers=3, dropout=0.5),  # eval mode: no dropout
}


def _pair(kwargs, dtype=np.float64, cls=(LSTM, torch.nn.LSTM), sizes=(I, H)):
    t = cls[1](*sizes, **kwargs)
    t = t.double() if dtype == np.float64 else t.float()
    d = cls[0](*sizes, dtype=dtype, **kwargs)
    assert list(d.state_dict()) == list(t.state_dict())
    d.load_state_dict({k: v.detach().numpy().copy() for k, v in t.state_dict().items()})
    return d, t


def _compare(d, t, x, hx, rng, rtol, oracle):
    """Run both modules, compare outputs and all gradients."""
    dx = dg.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    d_in, t_in = [dx], [tx]
    d_hx = t_hx = None
    if hx is not None:
        d_hx = tuple(dg.tensor(a, requires_grad=True) for a in hx)
        t_hx = tuple(torch.tensor(a, requires_grad=True) for a in hx)
        d_in += list(d_hx)
        t_in += list(t_hx)
    d_out, t_out = d(dx, d_hx), t(tx, t_hx)
    d_flat = [d_out[0], *d_out[1]] if isinstance(d_out[1], tuple) else list(d_out)
    t_flat = [t_out[0], *t_out[1]] if isinstance(t_out[1], tuple) else list(t_out)
    names = ["output", "h_n", "c_n"] if len(d_flat) == 3 else ["h'", "c'"]
    vs = []
    for name, a, e in zip(names, d_flat, t_flat):
        assert a.dtype == x.dtype, name
        oracle.close(a, e, rtol, f"forward {name}")
        vs.append(rng.standard_normal(tuple(e.shape)).astype(x.dtype))
    d_leaves = d_in + list(d.parameters())
    t_leaves = t_in + list(t.parameters())
    d_grads = dg.autograd.grad(d_flat, d_leaves, [dg.tensor(v) for v in vs])
    t_grads = torch.autograd.grad(t_flat, t_leaves, [torch.tensor(v) for v in vs])
    leaf_names = ["input", "h0", "c0"][:len(d_in)] + [n for n, _ in d.named_parameters()]
    for name, a, e in zip(leaf_names, d_grads, t_grads):
        assert a.dtype == x.dtype, name
        oracle.close(a, e, rtol, f"gradient of {name}")


def _inputs(m, rng, dtype, batched=True, with_state=True):
    dirs = 2 if m.bidirectional else 1
    if not batched:
        x = rng.standard_normal((T, I))
        shape = (m.num_layers * dirs, H)
    else:
        x = rng.standard_normal((B, T, I) if m.batch_first else (T, B, I))
        shape = (m.num_layers * dirs, B, H)
    hx = (rng.standard_normal(shape), rng.standard_normal(shape)) if with_state else None
    x = x.astype(dtype)
    return x, None if hx is None else tuple(a.astype(dtype) for a in hx)


@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_lstm_matches_torch(name, with_state, oracle):
    d, t = _pair(CONFIGS[name])
    d.eval()
    t.eval()
    rng = np.random.default_rng(oracle.seed_of(name))
    x, hx = _inputs(d, rng, np.float64, with_state=with_state)
    _compare(d, t, x, hx, rng, 1e-10, oracle)


@pytest.mark.parametrize("name", ["default", "bidir_2layers_batch_first"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
def test_lstm_unbatched_input(name, with_state, oracle):
    d, t = _pair(CONFIGS[name])
    rng = np.random.default_rng(1)
    x, hx = _inputs(d, rng, np.float64, batched=False, with_state=with_state)
    _compare(d, t, x, hx, rng, 1e-10, oracle)


@pytest.mark.default_dtype("float32")
@pytest.mark.parametrize("name", ["default", "bidir_2layers_batch_first"])
def test_lstm_float32(name, oracle):
    d, t = _pair(CONFIGS[name], np.float32)
    rng = np.random.default_rng(2)
    x, hx = _inputs(d, rng, np.float32)
    _compare(d, t, x, hx, rng, 1e-4, oracle)


def test_lstm_dropout_between_layers_in_training(oracle):
    """p = 1 zeroes layer 0's output in both libraries: a deterministic check that dropout acts
    between layers (and not after the last one) only in training."""
    d, t = _pair(dict(num_layers=2, dropout=1.0))
    rng = np.random.default_rng(3)
    x, hx = _inputs(d, rng, np.float64)
    _compare(d, t, x, hx, rng, 1e-10, oracle)
    d.eval()
    t.eval()
    _compare(d, t, x, hx, rng, 1e-10, oracle)


@pytest.mark.parametrize("kwargs", [{}, dict(bias=False)], ids=["bias", "no_bias"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
def test_lstm_cell_matches_torch(kwargs, with_state, batched, oracle):
    d, t = _pair(kwargs, cls=(LSTMCell, torch.nn.LSTMCell))
    rng = np.random.default_rng(4)
    x = rng.standard_normal((B, I) if batched else (I,))
    hx = None
    if with_state:
        hx = tuple(rng.standard_normal((B, H) if batched else (H,)) for _ in range(2))
    _compare(d, t, x, hx, rng, 1e-10, oracle)


@pytest.mark.default_dtype("float32")
def test_lstm_cell_float32(oracle):
    d, t = _pair({}, np.float32, cls=(LSTMCell, torch.nn.LSTMCell))
    rng = np.random.default_rng(5)
    x = rng.standard_normal((B, I)).astype(np.float32)
    hx = tuple(rng.standard_normal((B, H)).astype(np.float32) for _ in range(2))
    _compare(d, t, x, hx, rng, 1e-4, oracle)


def test_lstm_cell_steps_equal_lstm(oracle):
    """Unrolling LSTMCell with the LSTM's layer-0 weights reproduces the LSTM."""
    lstm = LSTM(I, H)
    cell = LSTMCell(I, H)
    cell.load_state_dict({k[:-3]: v for k, v in lstm.state_dict().items()})
    x = dg.tensor(np.random.default_rng(6).standard_normal((T, B, I)))
    out, (h_n, c_n) = lstm(x)
    h = c = None
    for step in range(T):
        h, c = cell(x[step], None if h is None else (h, c))
        oracle.close(h, out[step], 1e-12, f"step {step}")
    oracle.close(c, c_n[0], 1e-12, "c_n")


@pytest.mark.parametrize("kwargs", [dict(num_layers=2), dict(bidirectional=True)],
                         ids=["two_layers", "bidirectional"])
def test_lstm_gradcheck(kwargs):
    m = LSTM(2, 2, **kwargs)
    rng = np.random.default_rng(7)
    dirs = 2 if m.bidirectional else 1
    x = dg.tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    h0 = dg.tensor(rng.standard_normal((m.num_layers * dirs, 2, 2)), requires_grad=True)
    c0 = dg.tensor(rng.standard_normal((m.num_layers * dirs, 2, 2)), requires_grad=True)

    def f(x, h0, c0, *params):
        out, (h, c) = m(x, (h0, c0))
        return out, h, c

    assert dg.autograd.gradcheck(f, (x, h0, c0, *m.parameters()))


def test_lstm_cell_gradcheck():
    m = LSTMCell(3, 2)
    rng = np.random.default_rng(8)
    x = dg.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    h = dg.tensor(rng.standard_normal((2, 2)), requires_grad=True)
    c = dg.tensor(rng.standard_normal((2, 2)), requires_grad=True)
    assert dg.autograd.gradcheck(lambda x, h, c, *ps: m(x, (h, c)), (x, h, c, *m.parameters()))


def test_parameters_names_shapes_and_init():
    m = LSTM(3, 5, num_layers=2, bidirectional=True)
    t = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in t.named_parameters()]
    big = LSTM(4, 100)
    bound = 1 / math.sqrt(100)
    for name, p in big.named_parameters():
        assert np.abs(p.data).max() <= bound, name
        assert np.abs(p.data).max() > 0.9 * bound, name  # uniform over the whole range
    cell, tcell = LSTMCell(3, 5, bias=False), torch.nn.LSTMCell(3, 5, bias=False)
    assert list(cell.state_dict()) == list(tcell.state_dict())
    assert repr(LSTM(3, 5, num_layers=2, batch_first=True)) == \
        repr(torch.nn.LSTM(3, 5, num_layers=2, batch_first=True))
    assert repr(LSTMCell(3, 5)) == repr(torch.nn.LSTMCell(3, 5))
    assert len(m.all_weights) == 4 and len(m.all_weights[0]) == 4


def test_errors():
    m = LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="Expected 3, got 5"):
        m(dg.tensor(np.ones((2, 1, 5))))
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D"):
        m(dg.tensor(np.ones((2, 1, 1, 3))))
    with pytest.raises(ValueError, match=r"h_0 of shape \(2, 1, 4\), got \(1, 1, 4\)"):
        m(dg.tensor(np.ones((2, 1, 3))), (dg.tensor(np.ones((1, 1, 4))),) * 2)
    with pytest.raises(ValueError, match=r"c_0 of shape \(2, 4\), got \(2, 1, 4\)"):
        m(dg.tensor(np.ones((2, 3))), (dg.tensor(np.ones((2, 4))), dg.tensor(np.ones((2, 1, 4)))))
    with pytest.raises(ValueError, match="sequence length to be larger than 0"):
        m(dg.tensor(np.ones((0, 2, 3))))
    with pytest.raises(NotImplementedError, match="proj_size"):
        LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="hidden_size"):
        LSTM(3, 0)
    with pytest.raises(ValueError, match="dropout"):
        LSTM(3, 4, dropout=1.5)
    cell = LSTMCell(3, 4)
    with pytest.raises(ValueError, match="expected input_size=3"):
        cell(dg.tensor(np.ones((2, 2))))
    with pytest.raises(ValueError, match=r"h of shape \(2, 4\), got \(3, 4\)"):
        cell(dg.tensor(np.ones((2, 3))), (dg.tensor(np.ones((3, 4))), dg.tensor(np.ones((3, 4)))))
