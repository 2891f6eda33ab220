"""Array kernels of 2-D convolution: im2col / col2im with stride tricks and one GEMM per call.

Layout (why it is fast): the input is copied once into a zero-padded buffer ``xc`` in
C, H, W, N order ("CHWN", batch innermost, the layout of cuda-convnet). A strided view of
``xc`` presents every receptive field, and one copy turns it into the column matrix

    cols[(c, kh, kw), (oh, ow, n)] = xc[c, oh*sh + kh*dh, ow*sw + kw*dw, n]

of shape (C*KH*KW, OH*OW*N), C-contiguous. With the batch innermost every copy moves runs of
at least N elements (OW*N for stride 1), however few channels a layer has; channels-last runs
would be C long, i.e. 1 for a grey-scale first layer. The rows (c, kh, kw) are the weight's own
(O, C/G, KH, KW) order, so the forward pass is the single GEMM

    out (O, OH*OW*N) = W (O, C*KH*KW) @ cols         (groups: one batched matmul over G)

and ``out`` *is* the output in C, H, W, N order; it is returned as an NCHW view of that
memory, without a transposing copy.

NOTE: the arrays these kernels return are often such NCHW *views* of CHWN memory. NumPy
semantics do not depend on memory order; elementwise ops keep it, and the next convolution
finds its input already in the order it copies from.

Backward (per group, G_y: the output gradient as an (O, OH*OW*N) matrix):
    dL/dW    = G_y cols^T                                        one GEMM
    dL/dcols = W^T G_y, then col2im: each column entry is added back to the input pixel it
               was copied from (a loop over the KH*KW kernel taps, each a vectorised strided
               add over the whole batch)
    dL/db    = G_y summed over its columns
"""

from __future__ import annotations

from deepgrad._backend import array_module


def out_size(size: int, k: int, s: int, d: int, pad_lo: int, pad_hi: int) -> int:
    """Output length along one axis: floor((L + p_lo + p_hi - d (k - 1) - 1) / s) + 1."""
    return (size + pad_lo + pad_hi - d * (k - 1) - 1) // s + 1


def scratch(xp, workspace, shape, dtype):
    """An uninitialised array of ``shape``: a view of ``workspace`` when it is large enough
    (reusing a dead buffer spares the page faults of a fresh multi-megabyte allocation)."""
    size = 1
    for s in shape:
        size *= s
    if workspace is not None and workspace.dtype == dtype and workspace.size >= size \
            and workspace.flags.c_contiguous:
        return workspace.reshape(-1)[:size].reshape(shape)
    return xp.empty(shape, dtype=dtype)


def to_chwn(x, pads):
    """NCHW array -> C-contiguous (C, H + top + bottom, W + left + right, N), zero-padded.

    No copy when ``x`` already is a view of such memory and there is no padding.
    """
    xp = array_module(x)
    t, b, l, r = pads
    n, c, h, w = x.shape
    xt = x.transpose(1, 2, 3, 0)
    if t == b == l == r == 0:
        return xt if xt.flags.c_contiguous else xp.ascontiguousarray(xt)
    xc = xp.zeros((c, h + t + b, w + l + r, n), dtype=x.dtype)
    xc[:, t:t + h, l:l + w, :] = xt
    return xc


def im2col(xc, kernel, out_hw, stride, dilation, workspace=None):
    """Columns (C*KH*KW, OH*OW*N) of the padded CHWN input ``xc`` (one copy).

    The result may be a view of ``xc`` (1x1 kernels, stride 1) or of ``workspace``."""
    xp = array_module(xc)
    c, _, _, n = xc.shape
    (kh, kw), (oh, ow) = kernel, out_hw
    if kh == kw == 1 and stride == (1, 1):
        # NOTE: a 1x1 stride-1 convolution reads each pixel once: the input is the matrix.
        return xc[:, :oh, :ow, :].reshape(c, oh * ow * n)
    s0, s1, s2, s3 = xc.strides
    view = xp.lib.stride_tricks.as_strided(  # read only (overlapping windows)
        xc, shape=(c, kh, kw, oh, ow, n),
        strides=(s0, s1 * dilation[0], s2 * dilation[1], s1 * stride[0], s2 * stride[1], s3))
    cols = scratch(xp, workspace, view.shape, xc.dtype)
    cols[...] = view
    return cols.reshape(c * kh * kw, oh * ow * n)


def col2im(dcols, padded_shape, kernel, out_hw, stride, dilation):
    """Adjoint of :func:`im2col`: sum the columns back into a zero (C, Hp, Wp, N) buffer."""
    xp = array_module(dcols)
    c, hp, wp, n = padded_shape
    (kh, kw), (oh, ow), (sh, sw), (dh, dw) = kernel, out_hw, stride, dilation
    buf = xp.zeros(padded_shape, dtype=dcols.dtype)
    d6 = dcols.reshape(c, kh, kw, oh, ow, n)
    for i in range(kh):
        for j in range(kw):
            buf[:, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw] \
                += d6[:, i, j]
    return buf


def grad_rows(gy):
    """Output gradient (N, O, OH, OW) -> (O, OH*OW*N), C-contiguous (free when ``gy`` already
    is an NCHW view of CHWN memory, as conv2d outputs and their gradients are)."""
    n, o, oh, ow = gy.shape
    return gy.transpose(1, 2, 3, 0).reshape(o, oh * ow * n)


def _gemm(a, b, out=None):
    """a @ b batched over the leading group axis; a plain 2-D GEMM for one group."""
    xp = array_module(a)
    if a.shape[0] == 1:
        return xp.matmul(a[0], b[0], out=None if out is None else out[0])[None]
    return xp.matmul(a, b, out=out)


def conv_forward(x, w, b, stride, pads, dilation, groups: int, keep_cols: bool = False):
    """y = conv2d(x, w) + b as one GEMM. Returns (y, cols) with cols None unless kept.

    Args:
        x: (N, C, H, W); w: (O, C/groups, KH, KW); b: (O,) or None.
        stride, dilation: (h, w) pairs; pads: (top, bottom, left, right).
    """
    n = x.shape[0]
    o, cg, kh, kw = w.shape
    xc = to_chwn(x, pads)
    oh = out_size(xc.shape[1], kh, stride[0], dilation[0], 0, 0)
    ow = out_size(xc.shape[2], kw, stride[1], dilation[1], 0, 0)
    cols = im2col(xc, (kh, kw), (oh, ow), stride, dilation)
    m = oh * ow * n
    out = _gemm(w.reshape(groups, o // groups, cg * kh * kw),
                cols.reshape(groups, cg * kh * kw, m)).reshape(o, m)
    if b is not None:
        out += b[:, None]
    return out.reshape(o, oh, ow, n).transpose(3, 0, 1, 2), (cols if keep_cols else None)


def conv_weight_grad(x, gy, w_shape, stride, pads, dilation, groups: int, cols=None):
    """dL/dW = G_y cols^T (one GEMM); ``cols`` are recomputed from ``x`` when not given."""
    o, cg, kh, kw = w_shape
    if cols is None:
        cols = im2col(to_chwn(x, pads), (kh, kw), gy.shape[2:], stride, dilation)
    rows = grad_rows(gy)
    m = rows.shape[1]
    # NOTE: formed as (cols G_y^T)^T: OpenBLAS runs this (K, M) x (M, O) product ~15% faster
    # than G_y cols^T for conv-sized K and O (measured, single thread).
    gwt = _gemm(cols.reshape(groups, cg * kh * kw, m),
                rows.reshape(groups, o // groups, m).transpose(0, 2, 1))
    return array_module(gwt).ascontiguousarray(gwt.transpose(0, 2, 1)).reshape(w_shape)


def conv_input_grad(gy, w, in_hw, stride, pads, dilation, groups: int, workspace=None):
    """dL/dx for x of spatial size ``in_hw``: W^T G_y (one GEMM, into ``workspace`` when
    given), then col2im; returned as an NCHW view of the CHWN buffer (padding cropped)."""
    xp = array_module(gy)
    o, cg, kh, kw = w.shape
    h, wd = in_hw
    t, b, l, r = pads
    n, _, oh, ow = gy.shape
    rows = grad_rows(gy)
    m = rows.shape[1]
    dcols = scratch(xp, workspace, (groups, cg * kh * kw, m), gy.dtype)
    _gemm(w.reshape(groups, o // groups, cg * kh * kw).transpose(0, 2, 1),
          rows.reshape(groups, o // groups, m), out=dcols)
    buf = col2im(dcols, (cg * groups, h + t + b, wd + l + r, n), (kh, kw), (oh, ow), stride,
                 dilation)
    return buf[:, t:t + h, l:l + wd, :].transpose(3, 0, 1, 2)
