"""The fused LSTM primitive: one layer, one direction, the whole sequence in one node.

For each step t (PyTorch's gate order i, f, g, o; sigma the logistic function):

    [i, f, g, o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh      (pre-activations z)
    i, f, o = sigma(z_i), sigma(z_f), sigma(z_o);   g = tanh(z_g)
    c_t = f * c_{t-1} + i * g;                      h_t = o * tanh(c_t)

Backward through time (dh_t collects the output gradient and dh from step t + 1; dc from
step t + 1 arrives multiplied by f_{t+1}):

    dc_t  += dh_t * o * (1 - tanh(c_t)^2)
    dz_o   = dh_t * tanh(c_t) * o (1 - o)       dz_i = dc_t * g * i (1 - i)
    dz_f   = dc_t * c_{t-1} * f (1 - f)         dz_g = dc_t * i * (1 - g^2)
    dh_{t-1} = dz_t W_hh,  dc_{t-1} = dc_t * f_t

and, because the weights are shared over time, one GEMM each over all steps at once:
dW_ih = dZ^T X, dW_hh = dZ^T H_prev, db = sum dZ, dX = dZ W_ih.

Why a whole layer per node: the input projection of all steps is one GEMM, the weight gradients
are one GEMM each instead of T small ones, and the graph has one node instead of ~10 per step.
Only the recurrence h_{t-1} W_hh^T (forward) and dz_t W_hh (backward) remain per step. On the
W4 benchmark shape (28 steps, batch 128, 28 -> 128) a training step through this node took
22 ms against 78 ms for the same LSTM composed of per-step ops (one thread, same machine).
The kernel is once-differentiable (DESIGN rule 1): differentiating it twice raises an error.

Reference: Hochreiter & Schmidhuber 1997, "Long Short-Term Memory"; Gers et al. 2000,
"Learning to Forget" (the forget gate).
"""

from __future__ import annotations

from deepgrad._backend import array_module
from deepgrad.autograd import grad_mode
from deepgrad.autograd.function import Function
from deepgrad.ops.shape import getitem, unsqueeze
from deepgrad.tensor import Tensor

# Internally the gate blocks are ordered [o, f, i, g]: the three sigmoid gates are contiguous in
# the forward pass and the three gates driven by dc are contiguous in backward.
_TO_INTERNAL = [3, 1, 0, 2]
_TO_TORCH = [2, 1, 3, 0]

# NOTE: the backward pass needs a (T, B, 4H) scratch array (dz). Allocating it afresh each time
# costs more than the arithmetic it holds (the OS zero-fills new pages: ~3 ms for 7 MB), so the
# last one is kept here and reused; it never escapes the backward pass.
_scratch: dict = {}


def _take_scratch(xp, shape, dtype):
    arr = _scratch.pop("dz", None)
    if arr is None or arr.shape != shape or arr.dtype != dtype or not isinstance(arr, xp.ndarray):
        arr = xp.empty(shape, dtype=dtype)
    return arr


def _reorder(w, order):
    """Reorder the four gate blocks (rows) of a (4H, ...) array; returns a new array."""
    h = w.shape[0] // 4
    return w.reshape((4, h) + w.shape[1:])[order].reshape(w.shape)


class LSTMLayerFn(Function):
    """One LSTM layer over a sequence x (T, B, I) from (h0, c0) (B, H) each (None = zeros).

    The output packs the hidden states and the last cell state, (T + 1, B, H):
    rows 0..T-1 are h_1..h_T in input time order, row T is c_T (the last cell state in
    processing order). With ``reverse`` the sequence is processed from t = T-1 down to 0
    (the backward direction of a bidirectional LSTM). ``for_backward=False`` (no graph will be
    recorded) skips keeping what backward needs.
    """

    once_differentiable = True

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse, for_backward=True):
        xp = array_module(x)
        steps, batch, n_in = x.shape
        hid = w_hh.shape[1]
        dt = x.dtype
        if reverse:
            x = x[::-1]
        # NOTE: sigma(z) = 0.5 * tanh(z / 2) + 0.5, so the sigmoid gates' rows are pre-scaled
        # by 1/2 (exact in binary floating point) and one tanh covers all four gates.
        half = xp.ones((4, 1, 1), dtype=dt)
        half[:3] = 0.5
        w_ih_s = (_reorder(w_ih, _TO_INTERNAL).reshape(4, hid, -1) * half).reshape(4 * hid, -1)
        w_hh_s = (_reorder(w_hh, _TO_INTERNAL).reshape(4, hid, -1) * half).reshape(4 * hid, -1)
        # NOTE: x gets a column of ones and W_ih^T a row holding b_ih + b_hh, so the one GEMM
        # for all steps also adds the bias (and in backward also yields db).
        xa = xp.empty((steps * batch, n_in + 1), dtype=dt)
        xa[:, :n_in] = x.reshape(steps * batch, n_in)
        xa[:, n_in] = 1
        wa = xp.zeros((n_in + 1, 4 * hid), dtype=dt)
        wa[:n_in] = w_ih_s.T
        if b_ih is not None or b_hh is not None:
            b = (b_ih if b_ih is not None else 0) + (b_hh if b_hh is not None else 0)
            wa[n_in] = (_reorder(b, _TO_INTERNAL).reshape(4, hid) * half[:, 0]).reshape(-1)
        gates = (xa @ wa).reshape(steps, batch, 4 * hid)
        # hs: h_0..h_T then a slot for c_T, so that the forward output is a view hs[1:].
        hs = xp.empty((steps + 2, batch, hid), dtype=dt)
        hs[0] = 0 if h0 is None else h0
        c_prev, c = xp.empty((batch, hid), dtype=dt), xp.empty((batch, hid), dtype=dt)
        c_prev[...] = 0 if c0 is None else c0
        w_hh_t = xp.ascontiguousarray(w_hh_s.T)  # NOTE: BLAS is ~10% faster on it than a view
        rec = xp.empty((batch, 4 * hid), dtype=dt)
        ig, tc, tmp = (xp.empty((batch, hid), dtype=dt) for _ in range(3))
        if for_backward:
            a_hc = xp.empty((steps, batch, hid), dtype=dt)
            fs = xp.empty((steps, batch, hid), dtype=dt)
        for t in range(steps):
            z = gates[t]
            xp.matmul(hs[t], w_hh_t, out=rec)
            z += rec
            xp.tanh(z, out=z)
            sig = z[:, :3 * hid]
            sig *= 0.5
            sig += 0.5
            o, f, i, g = z[:, :hid], z[:, hid:2 * hid], z[:, 2 * hid:3 * hid], z[:, 3 * hid:]
            h = hs[t + 1]
            xp.multiply(f, c_prev, out=c)
            xp.multiply(i, g, out=ig)
            c += ig
            xp.tanh(c, out=tc)
            xp.multiply(o, tc, out=h)
            if for_backward:
                # The step-local factors of backward (module docstring), computed while the
                # step is in cache and written over the gates, which are not needed again:
                # a_hc = o (1 - tanh(c)^2) = o - h tanh(c), and in place of [o, f, i, g]
                # [h (1 - o), c_prev f (1 - f), i g (1 - i), i (1 - g^2)]; f is kept in fs.
                a = a_hc[t]
                xp.multiply(h, tc, out=a)
                xp.subtract(o, a, out=a)
                fs[t] = f
                xp.multiply(f, f, out=tmp)
                f -= tmp
                f *= c_prev
                xp.multiply(ig, g, out=tmp)
                xp.subtract(i, tmp, out=g)
                xp.multiply(ig, i, out=tmp)
                xp.subtract(ig, tmp, out=i)
                xp.multiply(h, o, out=tmp)
                xp.subtract(h, tmp, out=o)
            c_prev, c = c, c_prev
        if for_backward:
            self.saved = (xa, hs, a_hc, fs, gates)
        if not reverse:
            hs[steps + 1] = c_prev
            return hs[1:]
        out = xp.empty((steps + 1, batch, hid), dtype=dt)
        out[:steps] = hs[steps:0:-1]
        out[steps] = c_prev
        return out

    def backward(self, grad):
        x_in, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse = self.inputs
        xa, hs, a_hc, fs, fac = self.saved
        xp = array_module(xa)
        steps, batch, hid = hs.shape[0] - 2, hs.shape[1], hs.shape[2]
        dt = xa.dtype
        g = grad.data
        dy = g[steps - 1::-1] if reverse else g[:steps]
        dz = _take_scratch(xp, (steps, batch, 4 * hid), dt)
        w_rec = _reorder(w_hh.data, _TO_INTERNAL)
        dh = xp.zeros((batch, hid), dtype=dt)
        dht = xp.empty((batch, hid), dtype=dt)
        dc = g[steps].copy()
        for t in range(steps - 1, -1, -1):
            xp.add(dy[t], dh, out=dht)
            xp.multiply(dht, a_hc[t], out=dh)
            dc += dh
            d, fc = dz[t], fac[t]
            xp.multiply(dht, fc[:, :hid], out=d[:, :hid])
            xp.multiply(dc[:, None, :], fc.reshape(batch, 4, hid)[:, 1:],
                        out=d.reshape(batch, 4, hid)[:, 1:])
            dc *= fs[t]
            xp.matmul(d, w_rec, out=dh)
        dz2 = dz.reshape(steps * batch, 4 * hid)
        need = self.needs_input_grad
        dx = dh0 = dc0 = dw_ih = dw_hh = db_ih = db_hh = None
        if need[0]:
            dxa = (dz2 @ _reorder(w_ih.data, _TO_INTERNAL)).reshape(x_in.shape)
            dx = Tensor._wrap(dxa[::-1].copy() if reverse else dxa)
        if need[1]:
            dh0 = Tensor._wrap(dh)
        if need[2]:
            dc0 = Tensor._wrap(dc)
        if need[3] or need[5] or need[6]:
            dwa = _reorder(dz2.T @ xa, _TO_TORCH)  # [dW_ih | db]
            if need[3]:
                dw_ih = Tensor._wrap(dwa[:, :-1].copy())
            db_ih = Tensor._wrap(dwa[:, -1].copy()) if need[5] else None
            db_hh = Tensor._wrap(dwa[:, -1].copy()) if need[6] else None
        if need[4]:
            dw_hh = Tensor._wrap(_reorder(dz2.T @ hs[:steps].reshape(steps * batch, hid),
                                          _TO_TORCH))
        _scratch["dz"] = dz
        return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, None


def _needs_grad(*tensors) -> bool:
    """Whether the node will be recorded (so that forward must keep what backward needs)."""
    return grad_mode.is_grad_enabled() and any(
        isinstance(t, Tensor) and t.requires_grad for t in tensors)


def lstm_layer(x: Tensor, h0: Tensor | None, c0: Tensor | None, w_ih: Tensor, w_hh: Tensor,
               b_ih: Tensor | None, b_hh: Tensor | None, reverse: bool = False):
    """Run one LSTM layer (one direction) over a whole sequence.

    Args:
        x: (T, B, I) input sequence.
        h0, c0: (B, H) initial states, or None for zeros.
        w_ih: (4H, I); w_hh: (4H, H); b_ih, b_hh: (4H,) or None. Gate order i, f, g, o.
        reverse: process the sequence from the last step to the first.

    Returns:
        (output, h_n, c_n): output (T, B, H) in input time order, h_n and c_n (B, H), the states
        after the last processed step.
    """
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"lstm_layer: expected a non-empty (T, B, I) sequence, got shape "
                         f"{tuple(x.shape)}")
    steps = x.shape[0]
    packed = LSTMLayerFn.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse,
                               for_backward=_needs_grad(x, h0, c0, w_ih, w_hh, b_ih, b_hh))
    output = getitem(packed, slice(0, steps))
    h_n = getitem(packed, 0 if reverse else steps - 1)
    c_n = getitem(packed, steps)
    return output, h_n, c_n


def lstm_cell(x: Tensor, h: Tensor | None, c: Tensor | None, w_ih: Tensor, w_hh: Tensor,
              b_ih: Tensor | None, b_hh: Tensor | None):
    """One LSTM step: x (B, I), h and c (B, H) (None = zeros) -> (h', c'), each (B, H).

    The layer primitive run over a sequence of length 1 (same equations and gate order).
    """
    packed = LSTMLayerFn.apply(unsqueeze(x, 0), h, c, w_ih, w_hh, b_ih, b_hh, False,
                               for_backward=_needs_grad(x, h, c, w_ih, w_hh, b_ih, b_hh))
    return getitem(packed, 0), getitem(packed, 1)
