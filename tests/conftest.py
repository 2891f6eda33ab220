"""Shared test setup: float64 by default, a fixed seed, and the two oracles of DESIGN rule 3.

Every test runs with deepgrad's default dtype float64 (finite differences and 1e-10 parity need
it) unless marked ``@pytest.mark.default_dtype("float32")``; the previous default dtype and
grad mode are restored afterwards. deepgrad, NumPy's legacy RNG and torch are reseeded.

The ``oracle`` fixture holds the table-test harness:

* ``oracle.parity(dg_fn, th_fn, inputs, dtype, rtol)``: forward values and input gradients of
  deepgrad vs PyTorch with the same *random* upstream gradient (never ``.sum()``);
* ``oracle.gradcheck(dg_fn, inputs, second=False, **kw)``: central differences in float64
  (``gradgradcheck`` with ``second=True``);
* ``oracle.close(actual, expected, rtol, what)``: scale-aware comparison.

An input is ``(generator, requires_grad)`` where ``generator(rng) -> ndarray``; float arrays are
cast to the row's dtype, integer and boolean arrays are passed unchanged and never require grad.
"""

from __future__ import annotations

import types
import zlib

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad.autograd import grad_mode


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "default_dtype(name): run the test with this deepgrad default dtype "
        "instead of float64 (e.g. 'float32', the library's own default)"
    )


@pytest.fixture(autouse=True)
def _default_dtype_and_seed(request):
    marker = request.node.get_closest_marker("default_dtype")
    prev_dtype = dg.get_default_dtype()
    prev_grad = grad_mode.is_grad_enabled()
    dg.set_default_dtype(marker.args[0] if marker else "float64")
    dg.manual_seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    try:
        yield
    finally:
        dg.set_default_dtype(prev_dtype)
        grad_mode.set_grad_enabled_flag(prev_grad)


# ---------------------------------------------------------------------- harness
def seed_of(name: str) -> int:
    """A stable per-row seed (Python's hash() is salted per process)."""
    return zlib.crc32(name.encode())


def _np(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    if isinstance(t, dg.Tensor):
        return t.data
    return np.asarray(t)


def _is_float(t) -> bool:
    if isinstance(t, torch.Tensor):
        return t.is_floating_point()
    return np.asarray(_np(t)).dtype.kind == "f"


def _as_tuple(out) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def close(actual, expected, rtol: float, what: str = "") -> None:
    """Assert |a - e| <= rtol * (|e| + max|e|) + rtol * 1e-3 elementwise.

    The max|e| term makes the test relative to the tensor's scale, so entries that cancel to
    ~0 (softmax gradients, centred values) do not demand an impossible relative accuracy.
    """
    a = np.asarray(_np(actual), dtype=np.float64)
    e = np.asarray(_np(expected), dtype=np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    assert np.array_equal(np.isfinite(a), np.isfinite(e)), (
        f"{what}: non-finite entries differ\nactual:\n{a}\nexpected:\n{e}")
    fin = np.isfinite(e)
    if not fin.any():
        return
    a, e = a[fin], e[fin]
    scale = float(np.max(np.abs(e)))
    err = np.abs(a - e)
    tol = rtol * (np.abs(e) + scale) + rtol * 1e-3
    bad = err > tol
    assert not bad.any(), (
        f"{what}: max abs error {err.max():.3e} (scale {scale:.3e}, rtol {rtol:g}) in "
        f"{int(bad.sum())} of {e.size} entries\nactual:\n{a}\nexpected:\n{e}"
    )


def make_arrays(inputs, name: str) -> list[np.ndarray]:
    rng = np.random.default_rng(seed_of(name))
    return [np.asarray(gen(rng)) for gen, _ in inputs]


def _torch_dtype_as_np(t: torch.Tensor) -> np.dtype:
    return torch.empty(0, dtype=t.dtype).numpy().dtype


def parity(dg_fn, th_fn, inputs, arrays, dtype, rtol: float, seed: int = 0, kwargs=None):
    """Forward outputs and input gradients of deepgrad vs PyTorch (same upstream gradient).

    Returns (deepgrad outputs, deepgrad input grads).
    """
    kwargs = kwargs or {}
    dg_in, th_in, wanted = [], [], []
    for (_, needs), arr in zip(inputs, arrays):
        is_f = arr.dtype.kind == "f"
        a = arr.astype(dtype) if is_f else arr
        rg = bool(needs and is_f)
        dg_in.append(dg.tensor(a, requires_grad=rg))
        th_in.append(torch.tensor(a, requires_grad=rg))
        wanted.append(rg)
    d_out = _as_tuple(dg_fn(*dg_in, **kwargs))
    t_out = _as_tuple(th_fn(*th_in, **kwargs))
    assert len(d_out) == len(t_out), f"{len(d_out)} outputs vs torch's {len(t_out)}"
    rng = np.random.default_rng(seed)
    d_pairs, t_pairs = [], []
    for k, (d, t) in enumerate(zip(d_out, t_out)):
        assert d.dtype == _torch_dtype_as_np(t), f"output {k}: dtype {d.dtype} vs torch {t.dtype}"
        if not _is_float(t):
            np.testing.assert_array_equal(_np(d), _np(t), err_msg=f"output {k}")
            continue
        close(d, t, rtol, f"forward output {k}")
        v = rng.standard_normal(tuple(t.shape)).astype(d.dtype)
        if d.requires_grad:
            d_pairs.append((d, dg.tensor(v)))
        if t.requires_grad:
            t_pairs.append((t, torch.tensor(v)))
    d_leaves = [x for x, w in zip(dg_in, wanted) if w]
    t_leaves = [x for x, w in zip(th_in, wanted) if w]
    if not d_leaves:
        return d_out, []
    d_grads = [None] * len(d_leaves)
    if d_pairs:
        d_grads = dg.autograd.grad([o for o, _ in d_pairs], d_leaves, [v for _, v in d_pairs],
                                   allow_unused=True)
    t_grads = [None] * len(t_leaves)
    if t_pairs:
        t_grads = torch.autograd.grad([o for o, _ in t_pairs], t_leaves,
                                      [v for _, v in t_pairs], allow_unused=True)
    out = []
    for k, (x, dgr, tgr) in enumerate(zip(d_leaves, d_grads, t_grads)):
        dgr = np.zeros(x.shape) if dgr is None else dgr
        tgr = np.zeros(x.shape) if tgr is None else tgr
        if not isinstance(dgr, np.ndarray):
            assert dgr.dtype == x.dtype, f"grad of input {k}: dtype {dgr.dtype} != {x.dtype}"
        close(dgr, tgr, rtol, f"gradient of input {k}")
        out.append(dgr)
    return d_out, out


def gradcheck(dg_fn, inputs, arrays, second: bool = False, kwargs=None, **check_kw):
    """float64 gradcheck (or gradgradcheck) of the floating outputs of ``dg_fn``."""
    kwargs = kwargs or {}
    tensors = []
    for (_, needs), arr in zip(inputs, arrays):
        is_f = arr.dtype.kind == "f"
        tensors.append(dg.tensor(arr.astype(np.float64) if is_f else arr,
                                 requires_grad=bool(needs and is_f)))

    def fn(*xs):
        return tuple(o for o in _as_tuple(dg_fn(*xs, **kwargs)) if o.dtype.kind == "f")

    check = dg.autograd.gradgradcheck if second else dg.autograd.gradcheck
    assert check(fn, tuple(tensors), **check_kw)


@pytest.fixture
def oracle():
    return types.SimpleNamespace(close=close, make_arrays=make_arrays, parity=parity,
                                 gradcheck=gradcheck, seed_of=seed_of)


@pytest.fixture
def mnist_dir():
    """The real MNIST IDX directory (see tests/mnist_data.py); skips where it is absent
    (.ci/run makes sure it is present in CI)."""
    from tests.mnist_data import MNIST_DIR

    if MNIST_DIR is None:
        pytest.skip("the MNIST IDX files are not on this machine")
    return MNIST_DIR
