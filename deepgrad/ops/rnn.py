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

and, because the weights are shared over time, one GEMM over many steps at once for
[dW_ih | db | dW_hh] = dZ^T [X | 1 | H_prev] (db = sum dZ), and dX = dZ W_ih (one per chunk
of steps, see below).

How it is computed (each choice measured on the W4 benchmark, 28 steps, batch 128, 28 -> 128):

* A whole layer per graph node: the graph has one node instead of ~10 per step, and the weight
  gradients are one GEMM per chunk of steps (~1 MB of dZ) instead of T small ones.
* One GEMM per step, z_t = [W_ih | b | W_hh] [x_t; 1; h_{t-1}], feature-major: all operands
  u_t = [x_t; 1; h_{t-1}] live in one (I + 1 + H, T + 2, B) array, so that the same array read
  as an (I + 1 + H, T*B) matrix is the right-hand side of the weight-gradient GEMM. This beat a
  separate input-projection GEMM for all steps (whose K = I + 1 = 29 is too thin to run fast
  and whose (T, B, 4H) result costs a pass of its own to add in).
* Feature-major (features, B) per-step blocks: each gate is one contiguous (H, B) array, so
  every elementwise pass is a single contiguous NumPy call; column slices of a (B, 4H) array
  make NumPy iterate row by row, 2-4x slower at this size.
* sigma(z) = 0.5 tanh(z / 2) + 0.5 with the sigmoid rows of the weights pre-scaled by 1/2, so one
  tanh call covers all four gates; the backward factors are formed in forward while the step
  is in cache, in place over the gates.

A training step through this node took 17.0 ms before these layout changes (row-major (B, 4H)
gates, separate input projection) and about 13.5 ms after, against 9.4 ms for PyTorch (two
threads, shared machine; ``python -m bench.profile --workload W4``). What remains is mostly
the per-step GEMMs (~2/3) and memory traffic of the saved factors (6 (H, B) arrays per step).
The kernel is once-differentiable (DESIGN rule 1): differentiating it twice raises an error.

Reference: Hochreiter & Schmidhuber 1997, "Long Short-Term Memory"; Gers et al. 2000,
"Learning to Forget" (the forget gate).
"""

from __future__ import annotations

from deepgrad import _parallel
from deepgrad._backend import array_module
from deepgrad.autograd import grad_mode
from deepgrad.autograd.function import Function
from deepgrad.ops._layout import padded_row_length
from deepgrad.ops.shape import getitem, unsqueeze
from deepgrad.tensor import Tensor

# Internally the gate blocks are ordered [o, f, i, g]: the three sigmoid gates are contiguous in
# the forward pass and the three gates driven by dc are contiguous in backward.
_TO_INTERNAL = [3, 1, 0, 2]
_TO_TORCH = [2, 1, 3, 0]

# Slots of the per-step work block (6, H, B) kept for backward: the gates [o, f, i, g] arrive in
# slots 1-4 and are overwritten by the step-local backward factors (see LSTMLayerFn.forward).
_A, _O, _F, _I, _G, _FKEEP = range(6)


def _internal(w, hid):
    """(4H, ...) weights in torch gate order -> (4, H, ...) in internal order (a new array)."""
    return w.reshape((4, hid) + w.shape[1:])[_TO_INTERNAL]


def _to_torch(w):
    """(4H, ...) array in internal gate order -> torch gate order (a new array)."""
    h = w.shape[0] // 4
    return w.reshape((4, h) + w.shape[1:])[_TO_TORCH].reshape(w.shape)


class LSTMLayerFn(Function):
    """One LSTM layer over a sequence x (T, B, I) from (h0, c0) (B, H) each (None = zeros).

    The output packs every state, (T + 2, B, H): the hidden states h_t of the T steps in input
    time order, h0 (zeros if None) and, in the last row, the last cell state (in processing
    order). Forward direction: rows [h0, h_0 .. h_{T-1}, c]; with ``reverse`` (the sequence is
    processed from t = T-1 down to 0, the backward direction of a bidirectional LSTM):
    rows [h_0 .. h_{T-1}, h0, c]. Either way the rows that precede each step's h, in time order,
    are T consecutive rows, which is what the weight-gradient GEMM over a chunk of steps needs.
    ``for_backward=False`` (no graph will be recorded) skips keeping what backward needs.

    Layout (module docstring): every per-step quantity is feature-major, (features, B), and
    the states are the last H rows of u, (I + 1 + H, T + 2, B); the output is a transposed view,
    (T + 2, B, H) with strides, not a contiguous array (NumPy operations accept either).
    """

    once_differentiable = True

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse, for_backward=True):
        xp = array_module(x)
        steps, batch, n_in = x.shape
        hid = w_hh.shape[1]
        k_in = n_in + 1 + hid
        dt = x.dtype
        # NOTE: sigma(z) = 0.5 * tanh(z / 2) + 0.5, so the sigmoid gates' rows are pre-scaled
        # by 1/2 (exact in binary floating point) and one tanh covers all four gates.
        half = xp.ones((4, 1, 1), dtype=dt)
        half[:3] = 0.5
        # w_all = [W_ih | b_ih + b_hh | W_hh] and each step's operand u_t = [x_t; 1; h_{t-1}],
        # so z_t = w_all u_t is one GEMM (input projection, bias and recurrence together).
        w_all = xp.zeros((4, hid, k_in), dtype=dt)
        w_all[:, :, :n_in] = _internal(w_ih, hid)
        if b_ih is not None or b_hh is not None:
            b = (b_ih if b_ih is not None else 0) + (b_hh if b_hh is not None else 0)
            w_all[:, :, n_in] = _internal(b, hid)
        w_all[:, :, n_in + 1:] = _internal(w_hh, hid)
        w_all *= half
        w_all = w_all.reshape(4 * hid, k_in)
        # u: the operands of all steps, feature-major (k_in, T + 2, B). Rows n_in + 1.. hold the
        # states in the packed-output order (class docstring); the input x_t sits in the column
        # of its h_{t-1}: column t (forward) or t + 1 (reverse).
        u = xp.empty((k_in, steps + 2, batch), dtype=dt)
        hs = u[n_in + 1:]
        lo = 1 if reverse else 0
        u[:n_in, lo:lo + steps] = x.transpose(2, 0, 1)
        u[n_in] = 1
        slot0 = steps if reverse else 0
        hs[:, slot0] = 0 if h0 is None else h0.T
        c_prev, c = xp.empty((hid, batch), dtype=dt), xp.empty((hid, batch), dtype=dt)
        c_prev[...] = 0 if c0 is None else c0.T
        # work[t]: the (6, H, B) block of step t (slots _A .. _FKEEP).
        work = xp.empty((steps if for_backward else 1, 6, hid, batch), dtype=dt)
        prod = xp.empty((3, hid, batch), dtype=dt)  # [h, f * c_prev, i * g]
        tc = xp.empty((hid, batch), dtype=dt)
        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            zz = work[t] if for_backward else work[0]
            z = zz[_O:_G + 1].reshape(4 * hid, batch)
            _parallel.matmul(w_all, u[:, t + lo], out=z)
            xp.tanh(z, out=z)
            sig = zz[_O:_I + 1]
            sig *= 0.5
            sig += 0.5
            o, f, i, g = zz[_O], zz[_F], zz[_I], zz[_G]
            h = prod[0]
            xp.multiply(f, c_prev, out=prod[1])
            xp.multiply(i, g, out=prod[2])
            xp.add(prod[1], prod[2], out=c)
            xp.tanh(c, out=tc)
            xp.multiply(o, tc, out=h)
            hs[:, t if reverse else t + 1] = h
            if for_backward:
                # The step-local factors of backward (module docstring), computed while the
                # step is in cache and written over the gates, which are not needed again:
                # _A: o (1 - tanh(c)^2) = o - h tanh(c);  _FKEEP: f;  in place of [o, f, i, g]:
                # [h (1 - o), c_prev f (1 - f), i g (1 - i), i (1 - g^2) = i - (i g) g].
                zz[_FKEEP] = f
                a = zz[_A]
                xp.multiply(h, tc, out=a)
                xp.subtract(o, a, out=a)
                xp.multiply(prod[2], g, out=g)
                xp.subtract(i, g, out=g)
                xp.subtract(1, sig, out=sig)
                sig *= prod
            c_prev, c = c, c_prev
        if for_backward:
            self.saved = (u, work)
        hs[:, steps + 1] = c_prev
        return hs.transpose(1, 2, 0)

    def backward(self, grad):
        x_in, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse = self.inputs
        u, work = self.saved
        xp = array_module(u)
        steps, batch = u.shape[1] - 2, u.shape[2]
        hid = work.shape[2]
        k_in = u.shape[0]
        n_in = k_in - 1 - hid
        dt = u.dtype
        g = grad.data
        lo = 1 if reverse else 0  # column of step t's operand u_t is t + lo
        off = 1 - lo  # row of h_t in the packed output is t + off
        w_rec_t = xp.ascontiguousarray(_internal(w_hh.data, hid).reshape(4 * hid, hid).T)
        dh = xp.zeros((hid, batch), dtype=dt)
        dht, tmp = xp.empty((hid, batch), dtype=dt), xp.empty((hid, batch), dtype=dt)
        dc = g[steps + 1].T.copy()  # a copy: dc is updated in place
        # (T, H, B); no copy when g comes in the packed output's own memory order (as the
        # slicing gradient gives it)
        dy = xp.ascontiguousarray(g[off:off + steps].transpose(0, 2, 1))
        need = self.needs_input_grad
        need_w = any(need[3:7])
        dx = dh0 = dc0 = dw_ih = dw_hh = db_ih = db_hh = dw = None
        if need[0]:
            w_in = _internal(w_ih.data, hid).reshape(4 * hid, n_in)
            dx2 = xp.empty((steps * batch, n_in), dtype=dt)
        # NOTE: the steps are taken in chunks whose dZ (4H, S, B) fits in cache: each step
        # writes its column of the chunk, and after each chunk one GEMM adds its part of
        # [dW_ih | db | dW_hh] = sum_t dZ_t U_t^T (and of dX = dZ^T W_ih). A dZ of all T
        # steps written column by column cost ~1.5 ms of W4's step in scattered writes.
        span = _chunk_steps(4 * hid * batch * u.itemsize, steps)
        # (rows padded: each step writes a piece of every row; see padded_row_length)
        row = padded_row_length(span * batch, u.itemsize)
        dz = xp.empty((4 * hid, row), dtype=dt)[:, :span * batch].reshape(4 * hid, span, batch)
        dz4 = dz.reshape(4, hid, span, batch)
        order = range(steps) if reverse else range(steps - 1, -1, -1)
        for c in range(0, steps, span):
            chunk = order[c:c + span]
            first = min(chunk[0], chunk[-1])  # the chunk covers steps first .. first + n - 1
            n = len(chunk)
            for t in chunk:
                zz, j = work[t], t - first
                xp.add(dy[t], dh, out=dht)
                xp.multiply(dht, zz[_A], out=tmp)
                dc += tmp
                xp.multiply(dht, zz[_O], out=dz4[0, :, j])
                xp.multiply(dc, zz[_F:_G + 1], out=dz4[1:, :, j])
                dc *= zz[_FKEEP]
                _parallel.matmul(w_rec_t, dz[:, j], out=dh)
            dz2 = dz[:, :n].reshape(4 * hid, n * batch)
            if need_w:
                u2 = u[:, lo + first:lo + first + n].reshape(k_in, n * batch)
                part = _parallel.matmul(dz2, u2.T)
                if dw is None:
                    dw = part
                else:
                    dw += part
            if need[0]:
                _parallel.matmul(dz2.T, w_in, out=dx2[first * batch:(first + n) * batch])
        if need[0]:
            dx = Tensor._wrap(dx2.reshape(x_in.shape))
        if need[1]:
            dh0 = Tensor._wrap(xp.ascontiguousarray(dh.T))
        if need[2]:
            dc0 = Tensor._wrap(xp.ascontiguousarray(dc.T))
        if need_w:
            dw = _to_torch(dw)
            if need[3]:
                dw_ih = Tensor._wrap(dw[:, :n_in].copy())
            if need[4]:
                dw_hh = Tensor._wrap(dw[:, n_in + 1:].copy())
            db_ih = Tensor._wrap(dw[:, n_in].copy()) if need[5] else None
            db_hh = Tensor._wrap(dw[:, n_in].copy()) if need[6] else None
        return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, None


#: Bytes of the backward's per-chunk dZ buffer (see LSTMLayerFn.backward).
CHUNK_BYTES = 1 << 20


def _chunk_steps(step_bytes: int, steps: int) -> int:
    """Steps per chunk of the LSTM backward: as many as fit in CHUNK_BYTES (at least 1)."""
    return max(1, min(steps, CHUNK_BYTES // max(1, step_bytes)))


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
    output = getitem(packed, slice(0, steps) if reverse else slice(1, steps + 1))
    h_n = getitem(packed, 0 if reverse else steps)
    c_n = getitem(packed, steps + 1)
    return output, h_n, c_n


def lstm_cell(x: Tensor, h: Tensor | None, c: Tensor | None, w_ih: Tensor, w_hh: Tensor,
              b_ih: Tensor | None, b_hh: Tensor | None):
    """One LSTM step: x (B, I), h and c (B, H) (None = zeros) -> (h', c'), each (B, H).

    The layer primitive run over a sequence of length 1 (same equations and gate order).
    """
    packed = LSTMLayerFn.apply(unsqueeze(x, 0), h, c, w_ih, w_hh, b_ih, b_hh, False,
                               for_backward=_needs_grad(x, h, c, w_ih, w_hh, b_ih, b_hh))
    return getitem(packed, 1), getitem(packed, 2)
