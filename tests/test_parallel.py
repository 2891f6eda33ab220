"""deepgrad's own threads (deepgrad/_parallel.py) and the kernels that use them.

The test shapes are far below the size at which kernels split their work, so each test here
lowers the thresholds to force the parallel paths and checks that they give the same values as
the serial ones (and as torch, through the op tables that run afterwards with the defaults).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
from deepgrad import _memory, _parallel
from deepgrad.ops import normalization
from deepgrad.ops.conv import conv2d
from deepgrad.ops.normalization import batch_norm_train


@pytest.fixture
def force_parallel(monkeypatch):
    """Two threads, every threshold at its minimum, OpenBLAS treated as held serial."""
    monkeypatch.setattr(_parallel, "MIN_SPLIT_GEMM", 1)
    monkeypatch.setattr(_parallel, "MIN_GEMM_WORK", 1)
    monkeypatch.setattr(_parallel, "MIN_NATIVE_GEMM", 1)
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 1)
    monkeypatch.setattr(_parallel, "get_num_threads", lambda: 2)
    monkeypatch.setattr(_parallel, "_native", _parallel._native or 2)
    monkeypatch.setattr(normalization, "_BLOCK_ELEMENTS", 7)  # several cache blocks per chunk
    yield
    _parallel._blas_native()


def test_parallel_for_covers_the_range_in_order_and_uses_two_threads(force_parallel):
    seen = set()

    def body(lo, hi):
        seen.add(threading.get_ident())
        time.sleep(0.01)  # long enough for the worker to take chunks too
        return lo, hi
    out = _parallel.parallel_for(10, body, 10, 1)
    assert out[0][0] == 0 and out[-1][1] == 10 and len(out) >= 2
    assert all(a[1] == b[0] for a, b in zip(out, out[1:]))  # contiguous, in chunk order
    assert len(seen) == 2


def test_parallel_for_propagates_exceptions_and_runs_nested_calls_serially(force_parallel):
    def body(lo, hi):
        if lo:
            raise ValueError("chunk failed")
        return _parallel.parallel_for(4, lambda a, b: (a, b), 4, 1)

    with pytest.raises(ValueError, match="chunk failed"):
        _parallel.parallel_for(2, body, 2, 1)
    assert _parallel.parallel_for(2, lambda lo, hi: body(0, 0), 2, 1) == [[(0, 4)], [(0, 4)]]


@pytest.mark.parametrize("sa,sb", [((7, 3, 5), (7, 5, 4)), ((3, 5), (6, 5, 4)),
                                   ((6, 2, 3, 5), (2, 5, 4)), ((4, 5), (5, 3)), ((5,), (5, 3))])
def test_matmul_matches_numpy(force_parallel, sa, sb):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    np.testing.assert_allclose(_parallel.matmul(a, b), np.matmul(a, b), rtol=1e-12)
    out = np.empty(np.matmul(a, b).shape)
    assert _parallel.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-12)


@pytest.mark.parametrize("split", [True, False], ids=["split", "serial"])
@pytest.mark.parametrize("block", [1, 3, 4, 100])
def test_matmul_in_column_blocks_matches_numpy(force_parallel, monkeypatch, split, block):
    if not split:
        monkeypatch.setattr(_parallel, "get_num_threads", lambda: 1)
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((6, 5, 10))
    np.testing.assert_allclose(_parallel.matmul(a, b, col_block=block), np.matmul(a, b),
                               rtol=1e-12)
    a3 = rng.standard_normal((6, 3, 5))
    out = np.empty((6, 3, 10))
    assert _parallel.matmul(a3, b, out=out, col_block=block) is out
    np.testing.assert_allclose(out, np.matmul(a3, b), rtol=1e-12)


def test_conv_forward_in_column_blocks_matches_torch(force_parallel, monkeypatch):
    from deepgrad.ops import _im2col

    monkeypatch.setattr(_im2col, "MIN_COLUMN_BLOCK", 8)
    monkeypatch.setattr(_im2col, "COLUMN_BLOCK_BYTES", 8 * 27 * 8)  # 8 of 4 * 9 columns
    assert _im2col.column_block(27, 36, 8) == 8
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((4, 3, 9, 9)), rng.standard_normal((5, 3, 3, 3))
    for kw in (dict(padding=1), dict(padding=1, stride=2), dict(dilation=2)):
        y = conv2d(dg.tensor(x), dg.tensor(w), **kw)
        np.testing.assert_allclose(y.data, TF.conv2d(torch.tensor(x), torch.tensor(w), **kw),
                                   rtol=1e-10, atol=1e-12)


def test_conv_and_batch_norm_parallel_paths_match_torch(force_parallel):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 9, 8))
    w = rng.standard_normal((5, 3, 3, 3))
    for kw in (dict(padding=1, stride=2), dict(padding=1), dict(stride=1)):
        dx, dw = dg.tensor(x, requires_grad=True), dg.tensor(w, requires_grad=True)
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        dy, ty = conv2d(dx, dw, **kw), TF.conv2d(tx, tw, **kw)
        gg = rng.standard_normal(tuple(ty.shape))
        dy.backward(dg.tensor(gg))
        ty.backward(torch.tensor(gg))
        for a, b in ((dy.data, ty), (dx.grad.data, tx.grad), (dw.grad.data, tw.grad)):
            np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-10, atol=1e-12)
    xb = dg.tensor(rng.standard_normal((6, 5, 4, 4)) * 2 + 3, requires_grad=True)
    wb, bb = dg.tensor(rng.standard_normal(5), requires_grad=True), dg.tensor(
        rng.standard_normal(5), requires_grad=True)
    y, mean, var = batch_norm_train(xb, wb, bb, 1e-5)
    gb = rng.standard_normal(y.shape)
    y.backward(dg.tensor(gb))
    txb = torch.tensor(xb.data, requires_grad=True)
    twb = torch.tensor(wb.data, requires_grad=True)
    tbb = torch.tensor(bb.data, requires_grad=True)
    ty = TF.batch_norm(txb, None, None, twb, tbb, training=True, eps=1e-5)
    ty.backward(torch.tensor(gb))
    for a, b in ((y.data, ty), (xb.grad.data, txb.grad), (wb.grad.data, twb.grad),
                 (bb.grad.data, tbb.grad)):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("relu", [False, True], ids=["bn", "bn_relu"])
def test_batch_norm_eval_fast_path_matches_torch(force_parallel, relu):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 5, 4, 4))
    mean, var = rng.standard_normal(5), rng.random(5) + 0.5
    w, b = rng.standard_normal(5), rng.standard_normal(5)
    with dg.no_grad():
        y = normalization.batch_norm_eval(dg.tensor(x), mean, var, dg.tensor(w), dg.tensor(b),
                                          1e-5, relu=relu)
    ty = TF.batch_norm(torch.tensor(x), torch.tensor(mean), torch.tensor(var), torch.tensor(w),
                       torch.tensor(b), training=False, eps=1e-5)
    np.testing.assert_allclose(y.data, (ty.relu() if relu else ty).numpy(), rtol=1e-12,
                               atol=1e-12)


def test_fused_batch_norm_relu_and_add_relu_parallel_paths_match_torch(force_parallel):
    rng = np.random.default_rng(5)
    x = dg.tensor(rng.standard_normal((6, 5, 4, 4)) + 1, requires_grad=True)
    s = dg.tensor(rng.standard_normal((6, 5, 4, 4)), requires_grad=True)
    w, b = (dg.tensor(rng.standard_normal(5), requires_grad=True) for _ in range(2))
    y = dg.ops.add_relu(batch_norm_train(x, w, b, 1e-5, relu=True)[0], s)
    g = rng.standard_normal(y.shape)
    y.backward(dg.tensor(g))
    tx, ts, tw, tb = (torch.tensor(t.data, requires_grad=True) for t in (x, s, w, b))
    ty = torch.relu(torch.relu(TF.batch_norm(tx, None, None, tw, tb, training=True)) + ts)
    ty.backward(torch.tensor(g))
    for a, e in ((y.data, ty), (x.grad.data, tx.grad), (s.grad.data, ts.grad),
                 (w.grad.data, tw.grad), (b.grad.data, tb.grad)):
        np.testing.assert_allclose(a, e.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_elementwise_parallel_paths(force_parallel):
    rng = np.random.default_rng(2)
    a = dg.tensor(rng.standard_normal((3, 4, 5)), requires_grad=True)
    b = dg.tensor(rng.standard_normal((3, 4, 5)), requires_grad=True)
    y = dg.relu(a * b + a - b)
    g = rng.standard_normal(y.shape)
    y.backward(dg.tensor(g))
    ta, tb = (torch.tensor(t.data, requires_grad=True) for t in (a, b))
    ty = torch.relu(ta * tb + ta - tb)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, tb.grad.numpy(), rtol=1e-12)


def test_memory_bound_work_is_split_unless_openblas_threads_may_spin(monkeypatch):
    """With OpenBLAS on its own threads, elementwise work is split across deepgrad's threads
    only when no GEMM was left to OpenBLAS's threads within BLAS_SPIN_S (its workers spin
    that long after one)."""
    dg.set_num_threads(2)
    assert _parallel._blas_ctl().ok  # NumPy's wheels bundle OpenBLAS
    assert _parallel._native is None and _parallel.blas_num_threads() == 2
    monkeypatch.setattr(_parallel, "_last_native_gemm", float("-inf"))
    assert _parallel._threads_for(4, 1e9, 1) == 2
    _parallel.matmul(np.ones((128, 128)), np.ones((128, 128)))  # 2^21 multiply-adds
    assert _parallel._threads_for(4, 1e9, 1) == 1
    monkeypatch.setattr(_parallel, "_last_native_gemm",
                        time.perf_counter() - 2 * _parallel.BLAS_SPIN_S)
    assert _parallel._threads_for(4, 1e9, 1) == 2


def test_set_num_threads_validates_and_sets_the_blas_too():
    before = dg.get_num_threads()
    try:
        dg.set_num_threads(1)
        assert dg.get_num_threads() == 1
        if _parallel._blas_ctl().ok:
            assert _parallel.blas_num_threads() == 1
        for bad in (0, -1, 1.5, True, "2"):
            with pytest.raises(ValueError, match="positive int"):
                dg.set_num_threads(bad)
    finally:
        dg.set_num_threads(before)


def test_keep_freed_memory_respects_the_opt_out(monkeypatch):
    monkeypatch.setenv("DEEPGRAD_KEEP_FREED_MEMORY", "0")
    assert _memory.keep_freed_memory() is False
    monkeypatch.delenv("DEEPGRAD_KEEP_FREED_MEMORY")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000")
    assert _memory.keep_freed_memory() is False
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.setenv("MALLOC_MMAP_MAX_", "65536")
    assert _memory.keep_freed_memory() is False


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork (POSIX)")
def test_a_forked_child_gets_its_own_workers(force_parallel):
    """After fork the parent's worker threads do not exist in the child; a parallel region
    there must start new ones instead of waiting forever."""
    import os

    _parallel.parallel_for(4, lambda lo, hi: None, 4, 1)  # the parent has a worker now
    pid = os.fork()
    if pid == 0:  # child: exit 0 only if the region completes with both chunks
        try:
            out = _parallel.parallel_for(4, lambda lo, hi: (lo, hi), 4, 1)
            os._exit(0 if out[0][0] == 0 and out[-1][1] == 4 else 1)
        except BaseException:
            os._exit(2)
    deadline = time.time() + 20
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    pytest.fail("the forked child's parallel region hung")
