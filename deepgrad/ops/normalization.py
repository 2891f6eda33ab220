"""Normalisation primitives: fused batch norm (batch statistics) and layer norm.

Both normalise x to xhat = (x - mean) / sqrt(var + eps) with the *biased* variance over a set of
elements (per channel over batch and spatial positions for batch norm, per sample over the
trailing dimensions for layer norm) and then apply y = gamma * xhat + beta.

Backward (the closed form of Ioffe & Szegedy 2015), per group of M normalised elements, with
dxhat = dy * gamma:

    dbeta  = sum(dy)                  dgamma = sum(dy * xhat)
    dx     = inv_std / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))

The last line follows from d xhat_j / d x_i = inv_std * (delta_ij - 1/M - xhat_i xhat_j / M).

The fast path computes this on raw arrays. When the backward itself is recorded
(``create_graph=True``) the same formula is built from Tensor ops instead, with mean and
variance recomputed from x, so these primitives are twice differentiable (Newton methods and
Hessian-vector products work through normalisation layers).

Reference: Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift"; Ba, Kiros & Hinton 2016, "Layer Normalization".
"""

from __future__ import annotations

from deepgrad import _parallel
from deepgrad._backend import array_module
from deepgrad.autograd import grad_mode
from deepgrad.autograd.function import Function
from deepgrad.ops._layout import alloc_like, channel_matrix, in_layout_of, is_dense
from deepgrad.ops.elementwise import _relu_backward, add, div, mul, pow, sub
from deepgrad.ops.elementwise import relu as _relu
from deepgrad.ops.reduce import mean as _mean
from deepgrad.ops.reduce import sum as _sum
from deepgrad.ops.shape import reshape
from deepgrad.tensor import Tensor


def _bn_axes(ndim: int) -> tuple:
    return (0,) + tuple(range(2, ndim))


def _normalised_backward(x, g, w, axes, param_axes, group_size, eps, bcast):
    """The normalisation backward built from Tensor ops (differentiable; used under create_graph).

    ``axes`` are the axes the statistics reduce over, ``param_axes`` those that gamma broadcasts
    over, ``bcast`` the shape gamma takes to broadcast against x. Returns (dx, dgamma, dbeta).
    """
    mu = _mean(x, axes, keepdim=True)
    xc = sub(x, mu)
    inv_std = pow(add(_mean(mul(xc, xc), axes, keepdim=True), eps), -0.5)
    xhat = mul(xc, inv_std)
    gx = g if w is None else mul(g, reshape(w, bcast))
    s1 = div(_sum(gx, axes, keepdim=True), float(group_size))
    s2 = div(_sum(mul(gx, xhat), axes, keepdim=True), float(group_size))
    dx = mul(inv_std, sub(sub(gx, s1), mul(xhat, s2)))
    dgamma = _sum(mul(g, xhat), param_axes)
    dbeta = _sum(g, param_axes)
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------- batch norm
class BatchNormFn(Function):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta with the batch's per-channel statistics,
    followed by max(y, 0) when ``relu`` (the two fused: one pass forward and backward).

    x is (N, C, *); the statistics are taken per channel over N and every spatial position
    (M = N * prod(*) values each). ``stats`` is a list that receives (mean, biased var) so the
    caller can update running statistics without a second pass over x.
    """

    def forward(self, x, weight, bias, eps, stats, relu=False):
        out, mean, var, inv_std = _bn_train_forward(x, weight, bias, eps, relu)
        self.saved = (mean, inv_std)
        stats[:] = [mean, var]
        return out

    def backward(self, g):
        x, weight, bias, eps, _, relu = self.inputs
        need_x, need_w, need_b = self.needs_input_grad[:3]
        if grad_mode.is_grad_enabled():
            if relu:
                g = _relu_backward(g, self.out_data)
            bcast = _channel_shape(x)
            m = x.data.size // x.shape[1]
            axes = _bn_axes(x.ndim)
            dx, dw, db = _normalised_backward(x, g, weight, axes, axes, m, eps, bcast)
            return (dx if need_x else None, dw if need_w else None, db if need_b else None,
                    None, None, None)
        mean, inv_std = self.saved
        dx, sum_gxhat, sum_g = _bn_train_backward(x.data, g.data, mean, inv_std,
                                                  None if weight is None else weight.data,
                                                  need_x, self.out_data if relu else None)
        dx = Tensor._wrap(dx) if need_x else None
        dw = Tensor._wrap(sum_gxhat.astype(weight.dtype, copy=False)) if need_w else None
        db = Tensor._wrap(sum_g.astype(bias.dtype, copy=False)) if need_b else None
        return dx, dw, db, None, None, None


# NOTE: the batch-norm kernels below work on (P, C, Q) views of memory (channel_matrix) in
# chunks of P across deepgrad's threads, and within a chunk in blocks of ~256 KB: each block's
# temporaries stay in the core's cache, so a forward reads x twice and writes y once, and a
# backward reads x and g twice and writes dx once, whatever the number of arithmetic steps.
_BLOCK_ELEMENTS = 1 << 16


def _blocks(lo: int, hi: int, row: int):
    step = max(1, _BLOCK_ELEMENTS // max(1, row))
    for s in range(lo, hi, step):
        yield s, min(hi, s + step)


def _centred_blocks(x3, centre, lo: int, hi: int):
    """(s, e, x3[s:e] - centre) for the cache-sized blocks of rows lo:hi of a (P, C, Q) view;
    the difference is written into one reused scratch buffer (the caller may modify it)."""
    xp = array_module(x3)
    tmp = None
    for s, e in _blocks(lo, hi, x3.shape[1] * x3.shape[2]):
        reuse = tmp is not None and tmp.shape[0] == e - s
        tmp = xp.subtract(x3[s:e], centre, out=tmp if reuse else None)
        yield s, e, tmp


def _like_x(x, x3):
    """An uninitialised array shaped and laid out like x, and its (P, C, Q) view matching x3."""
    out = alloc_like(x, x.shape)
    o3 = channel_matrix(out)
    if o3.shape != x3.shape or not array_module(x).shares_memory(o3, out):
        o3 = array_module(x).empty(x3.shape, dtype=x.dtype)  # x3 was a copy: NCHW order
        out = o3.reshape(x.shape)
    return out, o3


def _bn_train_forward(x, weight, bias, eps, relu=False):
    """(y, mean, biased var, inv_std) of batch norm with the batch's statistics; y is
    max(y, 0) when ``relu``."""
    xp = array_module(x)
    x3 = channel_matrix(x)
    p, c, q = x3.shape
    m = p * q
    # NOTE: one pass for both moments: sums of d = x - s and d^2 per block (in cache), with a
    # per-channel shift s, the mean of the first row of the view. Then mean = s + sum(d)/M and
    # var = (sum(d^2) - sum(d)^2/M) / M: exact algebra, and with s within a few standard
    # deviations of the mean there is no catastrophic cancellation (the "shifted data"
    # algorithm; Chan, Golub & LeVeque 1983).
    shift = (xp.einsum("pcq->c", x3[:1]) / q)[:, None]

    def moments(lo, hi):
        s1, s2 = xp.zeros(c, dtype=x.dtype), xp.zeros(c, dtype=x.dtype)
        for _, _, d in _centred_blocks(x3, shift, lo, hi):
            s1 += xp.einsum("pcq->c", d)
            s2 += xp.einsum("pcq,pcq->c", d, d)
        return s1, s2
    parts = _parallel.parallel_for(p, moments, x3.size, _parallel.MIN_ELEMENTS)
    s1 = sum(a for a, _ in parts)
    s2 = sum(b for _, b in parts)
    mean = shift[:, 0] + s1 / m
    var = xp.maximum(s2 - s1 * s1 / m, 0) / m
    inv_std = 1.0 / xp.sqrt(var + eps)
    out = _affine_per_channel(x, inv_std if weight is None else inv_std * weight, bias, mean,
                              relu)
    return out, mean, var, inv_std


def _bn_train_backward(x, g, mean, inv_std, weight, need_x: bool, relu_out=None):
    """(dx or None, sum(g * xhat), sum(g)) per channel; see the module docstring.

    ``relu_out``: the output of a fused ReLU (see BatchNormFn); the gradient reaching the
    normalisation is then g * (relu_out > 0), formed block by block in the first pass and
    kept in dx's memory, where the second pass turns it into dx in place.
    """
    xp = array_module(x)
    # NOTE: g (and relu_out) dense in x's memory order (one copy at most), so that their
    # (P, C, Q) views pair the same elements as x's and all stream through memory alike. A
    # check of the views' shapes alone is not enough: (N, C, H*W) and (H, C, W*N) agree
    # whenever N == H.
    if not is_dense(x):
        x = xp.ascontiguousarray(x)
    x3, g3 = channel_matrix(x), channel_matrix(in_layout_of(g, x))
    y3 = None if relu_out is None else channel_matrix(in_layout_of(relu_out, x))
    p, c, q = x3.shape
    m = p * q
    mc = mean[:, None]
    dx, d3 = _like_x(x, x3) if need_x or y3 is not None else (None, None)

    def sums(lo, hi):
        sg, sgx = xp.zeros(c, dtype=x.dtype), xp.zeros(c, dtype=x.dtype)
        mask = None
        for s, e, d in _centred_blocks(x3, mc, lo, hi):
            gb = g3[s:e]
            if y3 is not None:
                reuse = mask is not None and mask.shape[0] == e - s
                mask = xp.greater(y3[s:e], 0, out=mask if reuse else None)
                gb = xp.multiply(gb, mask, out=d3[s:e])
            sg += xp.einsum("pcq->c", gb)
            sgx += xp.einsum("pcq,pcq->c", gb, d)
        return sg, sgx
    parts = _parallel.parallel_for(p, sums, 2 * x3.size, _parallel.MIN_ELEMENTS)
    sum_g = sum(sg for sg, _ in parts)
    sum_gxhat = sum(sgx for _, sgx in parts) * inv_std
    if not need_x:
        return None, sum_gxhat, sum_g
    k = (inv_std if weight is None else inv_std * weight).astype(x.dtype)
    # dx = k g - k/M sum_g - xhat k/M sum_gxhat with xhat = (x - mean) inv_std, i.e.
    # dx = k g - a x + c with a = k inv_std sum_gxhat / M and c = a mean - k sum_g / M.
    # NOTE: four array operations a block instead of five (centring x first); the rounding
    # this adds is ~eps |mean| / std relative, as in the forward's affine map.
    a = k * inv_std * sum_gxhat / m
    c = (a * mean - k * sum_g / m).astype(x.dtype)[:, None]
    a = a.astype(x.dtype)[:, None]
    kc = k[:, None]
    gsrc = g3 if y3 is None else d3  # the masked gradient, when there is a fused ReLU
    row = x3.shape[1] * x3.shape[2]

    def grad(lo, hi):
        tmp = None
        for s, e in _blocks(lo, hi, row):
            reuse = tmp is not None and tmp.shape[0] == e - s
            tmp = xp.multiply(x3[s:e], a, out=tmp if reuse else None)
            db = d3[s:e]
            xp.multiply(gsrc[s:e], kc, out=db)
            db -= tmp
            db += c
    _parallel.parallel_for(p, grad, 2 * x3.size, _parallel.MIN_ELEMENTS)
    return dx, sum_gxhat, sum_g


def _channel_shape(x) -> tuple:
    """(1, C, 1, ...): the shape of a per-channel vector broadcast against x."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def batch_norm_train(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float,
                     relu: bool = False):
    """Batch norm with the batch's own statistics (training mode).

    Args:
        x: (N, C, *) input.
        weight, bias: (C,) affine parameters or None.
        eps: added to the variance for stability.
        relu: return max(y, 0) instead, in the same passes over memory.

    Returns:
        (y, mean, var): the normalised Tensor and the batch's per-channel mean and *biased*
        variance as arrays (for the caller's running statistics).
    """
    stats = []
    out = BatchNormFn.apply(x, weight, bias, eps, stats, relu)
    return out, stats[0], stats[1]


def batch_norm_eval(x: Tensor, mean, var, weight: Tensor | None, bias: Tensor | None,
                    eps: float, relu: bool = False) -> Tensor:
    """Batch norm with fixed statistics (running averages): a per-channel affine map.

    y = x * s + (beta - mean * s) with s = gamma / sqrt(var + eps), then max(y, 0) when
    ``relu``. Composed of Tensor ops, so it is differentiable to any order; ``mean`` and
    ``var`` are constants (arrays).
    """
    xp = array_module(x.data)
    bcast = _channel_shape(x)
    inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
    mean = mean.astype(x.dtype, copy=False)
    if weight is None:
        scale = Tensor._wrap(inv_std)
        shift = Tensor._wrap(-mean * inv_std)
    else:
        scale = mul(weight, Tensor._wrap(inv_std))
        shift = mul(scale, Tensor._wrap(-mean))
    if bias is not None:
        shift = add(shift, bias)
    if not (grad_mode.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (x, weight, bias))):
        # NOTE: nothing to record (inference): one fused, blocked pass across deepgrad's
        # threads instead of two broadcasting ops (ResNet-20 inference: 57 -> ~15 ms a batch).
        return Tensor._wrap(_affine_per_channel(x.data, scale.data, shift.data, relu=relu))
    out = add(mul(x, reshape(scale, bcast)), reshape(shift, bcast))
    return _relu(out) if relu else out


def _affine_per_channel(x, scale, shift, centre=None, relu=False):
    """(x - centre[c]) * scale[c] + shift[c] per channel c (axis 1), laid out like x, in one
    blocked pass across deepgrad's threads; ``centre`` and ``shift`` may be None (0). Then
    max(., 0) in the same pass when ``relu``.

    Computed as x * scale + (shift - centre * scale): two array operations instead of three.
    NOTE: this rounds to ~eps |centre| / std relative where the data sit far from zero
    (PyTorch's CPU kernel folds the mean into the shift the same way).
    """
    xp = array_module(x)
    x3 = channel_matrix(x)
    out, o3 = _like_x(x, x3)
    if centre is not None:
        folded = -centre * scale
        shift = folded if shift is None else shift + folded
    sc = scale.astype(x.dtype, copy=False)[:, None]
    sh = None if shift is None else shift.astype(x.dtype, copy=False)[:, None]

    def apply(lo, hi):
        for s, e in _blocks(lo, hi, x3.shape[1] * x3.shape[2]):
            ob = o3[s:e]
            xp.multiply(x3[s:e], sc, out=ob)
            if sh is not None:
                ob += sh
            if relu:
                xp.maximum(ob, 0, out=ob)
    _parallel.parallel_for(x3.shape[0], apply, x3.size, _parallel.MIN_ELEMENTS)
    return out


# ---------------------------------------------------------------------- layer norm
class LayerNormFn(Function):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta over the last ``ndim`` dimensions.

    The statistics are per leading index (D = prod(normalized_shape) values each); gamma and
    beta have the normalised shape.
    """

    def forward(self, x, weight, bias, ndim, eps):
        xp = array_module(x)
        d = _prod(x.shape[x.ndim - ndim:])
        row = x.shape[:x.ndim - ndim] + (1,) * ndim  # a per-sample value broadcast against x
        mean = x.reshape(-1, d).mean(axis=1)
        out = x - mean.reshape(row)
        o2 = out.reshape(-1, d)
        var = xp.einsum("rd,rd->r", o2, o2) / d
        inv_std = 1.0 / xp.sqrt(var + eps)
        out *= inv_std.reshape(row)
        if weight is not None:
            out *= weight
        if bias is not None:
            out += bias
        self.saved = (mean, inv_std)
        return out

    def backward(self, g):
        x, weight, bias, ndim, eps = self.inputs
        need_x, need_w, need_b = self.needs_input_grad[:3]
        lead = x.ndim - ndim
        if grad_mode.is_grad_enabled():
            axes = tuple(range(lead, x.ndim))
            d = _prod(x.shape[lead:])
            bcast = (1,) * lead + tuple(x.shape[lead:])
            dx, dw, db = _normalised_backward(x, g, weight, axes, tuple(range(lead)), d, eps,
                                              bcast)
            return dx if need_x else None, dw if need_w else None, db if need_b else None, \
                None, None
        xp = array_module(x.data)
        mean, inv_std = self.saved
        d = _prod(x.shape[lead:])
        row = x.shape[:lead] + (1,) * ndim
        g2 = g.data.reshape(-1, d)
        xhat = x.data - mean.reshape(row)
        xhat *= inv_std.reshape(row)
        xhat2 = xhat.reshape(-1, d)
        dw = db = None
        if need_w:
            dw = Tensor._wrap(xp.einsum("rd,rd->d", g2, xhat2).astype(weight.dtype, copy=False)
                              .reshape(weight.shape))
        if need_b:
            db = Tensor._wrap(g2.sum(axis=0).astype(bias.dtype, copy=False).reshape(bias.shape))
        dx = None
        if need_x:
            # NOTE: x-shaped arithmetic (not reshapes) so that dx owns its memory and the engine
            # adopts it instead of copying.
            gx = g.data * weight.data.astype(x.dtype, copy=False) if weight is not None \
                else g.data.astype(x.dtype, copy=True)
            gx2 = gx.reshape(-1, d)
            s1 = gx2.mean(axis=1)
            s2 = xp.einsum("rd,rd->r", gx2, xhat2) / d
            # dx = inv_std * (gx - mean(gx) - xhat * mean(gx * xhat)), in place on gx.
            xhat2 *= s2[:, None]
            gx2 -= xhat2
            gx2 -= s1[:, None]
            gx2 *= inv_std[:, None]
            dx = Tensor._wrap(gx)
        return dx, dw, db, None, None


def _prod(shape) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out


def layer_norm(x: Tensor, normalized_shape: tuple, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer norm over the trailing ``len(normalized_shape)`` dimensions (shapes not checked
    here; see ``F.layer_norm``)."""
    return LayerNormFn.apply(x, weight, bias, len(normalized_shape), eps)
