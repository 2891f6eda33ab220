"""The fused LSTM primitive of ``deepgrad.ops.rnn`` against the two oracles (DESIGN rule 3).

Rows: one layer forward and reverse, with and without initial states and biases, and one cell
step. Each passes float64 gradcheck with a random upstream gradient on (output, h_n, c_n) and
matches a step-by-step PyTorch reference of the LSTM equations (float64 1e-10, float32 1e-4).
The primitive is once-differentiable: differentiating it twice raises a clear error.

``COVERED`` (the ``deepgrad.ops.__all__`` names with a row) is read by tests/test_coverage.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad.ops.rnn import lstm_cell, lstm_layer

T, B, I, H = 4, 3, 2, 3


def N(*shape, grad=True):
    return (lambda rng: rng.standard_normal(shape), grad)


def _th_lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False):
    """The LSTM equations step by step (PyTorch ops, gate order i, f, g, o)."""
    h = torch.zeros(x.shape[1], w_hh.shape[1], dtype=x.dtype) if h0 is None else h0
    c = torch.zeros_like(h) if c0 is None else c0
    outs = [None] * x.shape[0]
    order = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    for t in order:
        z = x[t] @ w_ih.T + h @ w_hh.T
        if b_ih is not None:
            z = z + b_ih + b_hh
        i, f, g, o = z.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs[t] = h
    return torch.stack(outs), h, c


@dataclass
class Row:
    name: str
    covers: str
    reverse: bool
    state: bool
    bias: bool

    @property
    def inputs(self):
        steps = 1 if self.covers == "lstm_cell" else T
        ins = [N(steps, B, I) if steps > 1 else N(B, I)]
        ins += [N(B, H), N(B, H)] if self.state else []
        ins += [N(4 * H, I), N(4 * H, H)]
        ins += [N(4 * H), N(4 * H)] if self.bias else []
        return ins

    def _split(self, args):
        x, rest = args[0], list(args[1:])
        h0, c0 = (rest.pop(0), rest.pop(0)) if self.state else (None, None)
        w_ih, w_hh = rest.pop(0), rest.pop(0)
        b_ih, b_hh = (rest.pop(0), rest.pop(0)) if self.bias else (None, None)
        return x, h0, c0, w_ih, w_hh, b_ih, b_hh

    def dg(self, *args):
        x, h0, c0, w_ih, w_hh, b_ih, b_hh = self._split(args)
        if self.covers == "lstm_cell":
            return lstm_cell(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        return lstm_layer(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=self.reverse)

    def th(self, *args):
        x, h0, c0, w_ih, w_hh, b_ih, b_hh = self._split(args)
        if self.covers == "lstm_cell":
            return _th_lstm(x[None], h0, c0, w_ih, w_hh, b_ih, b_hh)[1:]
        return _th_lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, self.reverse)


ROWS = [
    Row("layer", "lstm_layer", False, True, True),
    Row("layer_reverse", "lstm_layer", True, True, True),
    Row("layer_zero_state", "lstm_layer", False, False, True),
    Row("layer_reverse_no_bias_zero_state", "lstm_layer", True, False, False),
    Row("cell", "lstm_cell", False, True, True),
    Row("cell_zero_state_no_bias", "lstm_cell", False, False, False),
]
ROW_IDS = [r.name for r in ROWS]

#: deepgrad.ops names with a row here (read by tests/test_coverage.py).
COVERED = {r.covers for r in ROWS}


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_gradcheck(row, oracle):
    oracle.gradcheck(row.dg, row.inputs, oracle.make_arrays(row.inputs, row.name))


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_parity_with_torch_reference(row, dtype, rtol, oracle):
    oracle.parity(row.dg, row.th, row.inputs, oracle.make_arrays(row.inputs, row.name), dtype,
                  rtol)


@pytest.mark.parametrize("padded", [False, True], ids=["rows", "padded_rows"])
@pytest.mark.parametrize("chunk_bytes", [1, 2 * 4 * H * B * 8], ids=["1step", "2steps"])
@pytest.mark.parametrize("row", ROWS[:4], ids=ROW_IDS[:4])
def test_backward_in_chunks_of_steps(row, chunk_bytes, padded, oracle, monkeypatch):
    """The backward forms the weight and input gradients chunk by chunk of steps (a chunk is
    CHUNK_BYTES of dZ); these shapes fit in one chunk, so force one and two steps a chunk
    (T = 4: also a last chunk shorter than the others is covered below), with and without
    the padding of dZ's rows (which these shapes never reach either)."""
    from deepgrad.ops import _layout, rnn

    monkeypatch.setattr(rnn, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(_layout, "PAD_ROWS_OF_BYTES", 1 if padded else 10**9)
    oracle.parity(row.dg, row.th, row.inputs, oracle.make_arrays(row.inputs, row.name),
                  np.float64, 1e-10)


def test_backward_in_uneven_chunks(oracle, monkeypatch):
    from deepgrad.ops import rnn

    monkeypatch.setattr(rnn, "CHUNK_BYTES", 3 * 4 * H * B * 8)  # chunks of 3 and 1 steps
    assert rnn._chunk_steps(4 * H * B * 8, T) == 3
    for row in ROWS[:2]:
        oracle.parity(row.dg, row.th, row.inputs, oracle.make_arrays(row.inputs, row.name),
                      np.float64, 1e-10)


def test_twice_differentiating_raises_a_clear_error():
    rng = np.random.default_rng(0)
    x = dg.tensor(rng.standard_normal((T, B, I)), requires_grad=True)
    w_ih = dg.tensor(rng.standard_normal((4 * H, I)), requires_grad=True)
    w_hh = dg.tensor(rng.standard_normal((4 * H, H)), requires_grad=True)
    out, _, _ = lstm_layer(x, None, None, w_ih, w_hh, None, None)
    (g,) = dg.autograd.grad((out * out).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once-differentiable"):
        dg.autograd.grad(g.sum(), x)


def test_large_preactivations_stay_finite():
    """Saturated gates (|z| ~ 1e3) give exact 0/1 sigmoids, no overflow or NaN."""
    x = dg.tensor(np.full((2, 1, 1), 1e3), requires_grad=True)
    w_ih = dg.tensor(np.array([[1.0], [-1.0], [1.0], [1.0]]), requires_grad=True)
    w_hh = dg.tensor(np.zeros((4, 1)), requires_grad=True)
    out, h, c = lstm_layer(x, None, None, w_ih, w_hh, None, None)
    np.testing.assert_allclose(out.data.ravel(), [np.tanh(1.0), np.tanh(1.0)])
    (out.sum() + c.sum()).backward()
    assert np.isfinite(x.grad.data).all() and np.isfinite(w_ih.grad.data).all()


def _layer_args(rng, dtype, state=True):
    x = dg.tensor(rng.standard_normal((B, T, I)).astype(dtype), requires_grad=True)
    params = [dg.tensor((0.5 * rng.standard_normal(s)).astype(dtype), requires_grad=True)
              for s in [(B, H), (B, H), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,)]]
    if not state:
        params[0] = params[1] = None
    return x, params


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_float32_in_float32_out_from_a_strided_input(reverse):
    """A (B, T, I) array seen as (T, B, I) (batch_first) goes in; nothing is upcast."""
    rng = np.random.default_rng(1)
    x, params = _layer_args(rng, np.float32)
    out, h, c = lstm_layer(x.transpose(0, 1), *params, reverse=reverse)
    assert out.dtype == h.dtype == c.dtype == np.float32
    (out * dg.tensor(rng.standard_normal(out.shape).astype(np.float32))).sum().backward()
    for p in [x, *params]:
        assert p.grad.dtype == np.float32 and p.grad.shape == p.shape


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("state", [False, True], ids=["zero_state", "state"])
def test_no_grad_forward_equals_recorded_forward(reverse, state):
    """The path that keeps nothing for backward computes the same numbers."""
    rng = np.random.default_rng(2)
    x, params = _layer_args(rng, np.float64, state)
    xs = x.transpose(0, 1)
    recorded = lstm_layer(xs, *params, reverse=reverse)
    with dg.no_grad():
        plain = lstm_layer(xs, *params, reverse=reverse)
    for a, b in zip(recorded, plain):
        np.testing.assert_array_equal(a.data, b.data)


def test_backward_twice_with_retain_graph_gives_the_same_gradients():
    """Backward reads the saved arrays without overwriting them."""
    rng = np.random.default_rng(3)
    x, params = _layer_args(rng, np.float64)
    out, h, c = lstm_layer(x.transpose(0, 1), *params, reverse=False)
    loss = (out * dg.tensor(rng.standard_normal(out.shape))).sum() + (c * c).sum()
    loss.backward(retain_graph=True)
    first = [p.grad.data.copy() for p in [x, *params]]
    loss.backward()
    for p, g in zip([x, *params], first):
        np.testing.assert_allclose(p.grad.data, 2 * g, rtol=1e-12, atol=1e-12)
