"""Intra-op parallelism: deepgrad's own threads for its large array kernels.

NumPy runs elementwise work, copies and reductions on one core; only its BLAS (OpenBLAS) is
multi-threaded. On a small machine that leaves most of a training step on one core. Worse,
OpenBLAS's worker threads *spin* for about 0.1 s after each multi-threaded GEMM, so any other
thread started in that window fights them for the cores (measured: two threads copying right
after a two-thread GEMM were no faster than one).

So deepgrad parallelises its big kernels itself, over ``get_num_threads()`` threads (the
calling thread works too): NumPy releases the GIL inside ufunc loops, copies, einsum and BLAS
calls, so chunks of one array op run truly in parallel. The stacked GEMMs of convolutions
(:func:`matmul`) are split across those threads with OpenBLAS held to one thread, and the
memory-bound kernels (width-column copies, batch norm, ReLU, large elementwise ops) are split
only while OpenBLAS is held so, or when deepgrad has left no GEMM to OpenBLAS's own threads for
``BLAS_SPIN_S`` (its spinning workers would fight them otherwise).

The hold is lazy and sticky: it starts at the first split GEMM and ends when deepgrad runs a
2-D GEMM big enough for OpenBLAS to thread (a dense layer, the LSTM), or at
:func:`set_num_threads`. NumPy code run outside deepgrad after a convolution may therefore
find OpenBLAS at one thread; ``deepgrad.set_num_threads(n)`` gives it ``n`` again.

The thread count defaults to NumPy's BLAS thread count (``OPENBLAS_NUM_THREADS`` /
``OMP_NUM_THREADS``), read when first needed; :func:`set_num_threads` sets both, like
``torch.set_num_threads``. When OpenBLAS cannot be controlled (another BLAS), deepgrad stays
serial and lets the BLAS thread its GEMMs. Work smaller than a threshold runs serially:
handing a chunk to another thread costs tens of microseconds.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import threading
import time

import numpy as np

#: A stacked GEMM of at least this many multiply-adds is split across deepgrad's threads
#: (OpenBLAS held serial); smaller ones are left to OpenBLAS's own threads. NOTE: set high
#: enough that a network alternating small convolutions and dense layers (LeNet-5) never
#: switches OpenBLAS back and forth: each switch wakes its thread pool (measured ~1 ms).
MIN_SPLIT_GEMM = 1 << 27
#: Each thread's share of a split GEMM is at least this many multiply-adds.
MIN_GEMM_WORK = 1 << 22
#: A GEMM below this many multiply-adds runs as it is: OpenBLAS does not thread it anyway.
MIN_NATIVE_GEMM = 1 << 20
#: Chunks per thread of a parallel region, taken dynamically. NOTE: 1 measured best on
#: ResNet-20 (2-4 smaller chunks balanced no better and made each GEMM smaller).
CHUNKS_PER_THREAD = 1
#: Below this many elements per thread an elementwise pass is not split.
MIN_ELEMENTS = 1 << 18


# ---------------------------------------------------------------------- OpenBLAS control
def openblas_library():
    """The OpenBLAS shared library NumPy loaded (Linux: found in /proc/self/maps), or None."""
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh
                     if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return None
    for path in sorted(p for p in paths if p.startswith("/")):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def openblas_symbol(lib, *names):
    """The first of ``names`` that ``lib`` exports (the prefix differs between builds)."""
    for name in names:
        fn = getattr(lib, name, None) if lib is not None else None
        if fn is not None:
            return fn
    return None


_GET_NAMES = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
              "openblas_get_num_threads")
_SET_NAMES = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
              "openblas_set_num_threads")


class _Blas:
    """get/set of OpenBLAS's thread count through ctypes (None where unavailable)."""

    def __init__(self):
        lib = openblas_library()
        self.get = openblas_symbol(lib, *_GET_NAMES)
        self.set = openblas_symbol(lib, *_SET_NAMES)
        if self.get is not None:
            self.get.restype = ctypes.c_int
        if self.set is not None:
            self.set.argtypes = [ctypes.c_int]
        self.ok = self.get is not None and self.set is not None


_blas: _Blas | None = None
_requested: int | None = None
_native: int | None = None  # OpenBLAS's own thread count while deepgrad holds it to one
_local = threading.local()
_lock = threading.Lock()


def _blas_ctl() -> _Blas:
    global _blas
    if _blas is None:
        np.dot(np.ones((2, 2)), np.ones((2, 2)))  # make sure NumPy's BLAS is loaded
        _blas = _Blas()
    return _blas


def blas_num_threads() -> int | None:
    """OpenBLAS's current thread count, or None when it cannot be read."""
    ctl = _blas_ctl()
    return int(ctl.get()) if ctl.get is not None else None


def get_num_threads() -> int:
    """Threads deepgrad's kernels use: :func:`set_num_threads`'s value, else NumPy's BLAS
    thread count; 1 when OpenBLAS cannot be controlled."""
    ctl = _blas_ctl()
    if not ctl.ok:
        return 1
    if _requested is not None:
        return _requested
    return max(1, _native if _native is not None else int(ctl.get()))


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in deepgrad's kernels and in NumPy's BLAS (as torch.set_num_threads)."""
    global _requested
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    _blas_native()
    _requested = n
    ctl = _blas_ctl()
    if ctl.set is not None:
        ctl.set(n)


class _Worker:
    """A daemon thread that runs one chunk at a time, handed over through two locks.

    NOTE: a lock used as a binary semaphore is CPython's cheapest hand-off; a
    ThreadPoolExecutor's future and queue cost ~3x more per call (~100 us a region measured
    with them, over ~200 regions per ResNet-20 step).
    """

    def __init__(self):
        self.go, self.done = threading.Lock(), threading.Lock()
        self.go.acquire()
        self.done.acquire()
        self.task = self.result = self.error = None
        threading.Thread(target=self._loop, name="deepgrad-worker", daemon=True).start()

    def _loop(self):
        while True:
            self.go.acquire()
            body, bounds = self.task
            try:
                self.result, self.error = _run(body, bounds), None
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                self.result, self.error = None, exc
            self.task = None
            self.done.release()

    def start(self, body, bounds):
        self.task = (body, bounds)
        self.go.release()

    def join(self):
        self.done.acquire()
        if self.error is not None:
            err, self.error = self.error, None
            raise err
        return self.result


_workers_list: list[_Worker] = []
_region = threading.Lock()  # one parallel region at a time (others run serially)


def _workers(k: int) -> list[_Worker]:
    with _lock:
        while len(_workers_list) < k:
            _workers_list.append(_Worker())
        return _workers_list[:k]


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's worker threads: start afresh (else the first
    parallel region would wait forever for a thread that does not exist)."""
    global _workers_list, _region, _lock
    _workers_list = []
    _region = threading.Lock()
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


#: OpenBLAS's workers spin this long (seconds) after a threaded GEMM before they sleep
#: (2^28 cycles by default: ~0.1 s here), with a margin.
BLAS_SPIN_S = 0.25
_last_native_gemm = float("-inf")  # perf_counter() of deepgrad's last GEMM on OpenBLAS threads


def _threads_for(n_items: int, work: float, min_work: float, gemm: bool = False) -> int:
    if getattr(_local, "busy", False):
        return 1  # nested: already inside a parallel region
    if not gemm and _native is None and time.perf_counter() - _last_native_gemm < BLAS_SPIN_S \
            and _blas_ctl().ok and int(_blas_ctl().get()) > 1:
        # NOTE: OpenBLAS has its own threads and may be spinning after a GEMM; deepgrad's
        # threads would fight them (measured: no faster than serial), so memory-bound work
        # is split only while deepgrad holds OpenBLAS serial (after a split GEMM), or when
        # deepgrad has left no GEMM to OpenBLAS's threads for BLAS_SPIN_S (a batch norm or
        # an elementwise op with no GEMM nearby: BatchNorm2d alone on (128, 64, 32, 32),
        # forward + backward, in a fresh process: 50 -> 44 ms).
        return 1
    return max(1, min(get_num_threads(), n_items, int(work // min_work) if min_work else n_items))


def _run(body, bounds):
    _local.busy = True
    try:
        return body(*bounds)
    finally:
        _local.busy = False


def parallel_for(n_items: int, body, work: float = 0.0, min_work: float = 0.0,
                 gemm: bool = False) -> list:
    """Call ``body(lo, hi)`` on contiguous chunks covering range(n_items), in parallel.

    ``work`` (any unit) is the total cost and ``min_work`` the least worth a thread of its
    own. The range is cut into CHUNKS_PER_THREAD chunks per thread, which the calling thread
    and the workers take in turn until none is left. Returns the bodies' results in chunk
    order, whoever ran them (so sums of the results are deterministic). Exceptions propagate.
    Nested calls run serially. ``gemm``: the bodies call the BLAS (which the caller has made
    serial).
    """
    k = _threads_for(n_items, work, min_work, gemm)
    if k <= 1:
        return [body(0, n_items)]
    if not _region.acquire(blocking=False):
        return [body(0, n_items)]  # another thread's region holds the workers
    try:
        m = min(n_items, CHUNKS_PER_THREAD * k)
        edges = [n_items * i // m for i in range(m + 1)]
        results = [None] * m
        order = itertools.count()

        def drain(_lo, _hi):
            while True:
                i = next(order)  # atomic under the GIL
                if i >= m:
                    return
                results[i] = body(edges[i], edges[i + 1])
        workers = _workers(k - 1)
        for w in workers:
            w.start(drain, (0, 0))
        errors = []
        try:
            _run(drain, (0, 0))
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the workers
            errors.append(exc)
            for _ in range(m):  # let the workers stop early
                next(order)
        for w in workers:
            try:
                w.join()
            except BaseException as exc:  # noqa: BLE001 - the first is re-raised below
                errors.append(exc)
        if errors:
            raise errors[0]
        return results
    finally:
        _region.release()


def _blas_serial() -> None:
    """Hold OpenBLAS to one thread (deepgrad is about to split a GEMM across its own threads).

    NOTE: the switch is lazy and sticky: OpenBLAS stays serial until a GEMM that deepgrad does
    not split (:func:`_blas_native`) needs its threads again. Switching back after every call
    measured slower: a restored OpenBLAS pool wakes and spins, fighting deepgrad's threads.
    """
    global _native
    ctl = _blas_ctl()
    if _native is None and ctl.ok:
        _native = int(ctl.get())
        if _native != 1:
            ctl.set(1)


def _blas_native() -> None:
    """Give OpenBLAS back its own thread count (before a GEMM deepgrad does not split)."""
    global _native
    if _native is not None:
        if _native != 1:
            _blas_ctl().set(_native)
        _native = None


# ---------------------------------------------------------------------- kernels
def matmul(a, b, out=None, col_block: int | None = None):
    """``np.matmul(a, b, out=out)`` for deepgrad's kernels (every GEMM of theirs goes here).

    A large *stacked* product (convolutions: one GEMM per output row) is split along its
    leading axis across deepgrad's threads, each part a single-threaded GEMM; a smaller one
    is split too while OpenBLAS is already held serial, else runs as it is. A plain 2-D
    product goes to OpenBLAS with its own threads: it splits one GEMM with less overhead than
    a Python thread hand-off (measured: 0.36 vs 0.55 ms for a 128x784 by 784x512 product on
    two threads).

    ``col_block`` (stacked products only): each part runs as GEMMs on blocks of that many
    columns of ``b`` and ``out``, all of its stack for one block before the next block. For
    a convolution consecutive stack entries read overlapping rows of the input, so a block's
    share of them is still in cache for the next output row (see ``_im2col.column_block``).
    """
    global _last_native_gemm
    if a.ndim == 2 and b.ndim == 2:  # the hot path of dense layers and the LSTM: keep it short
        if a.shape[0] * a.shape[1] * b.shape[1] >= MIN_NATIVE_GEMM:
            if _native is not None:
                _blas_native()
            _last_native_gemm = time.perf_counter()
        return np.matmul(a, b, out=out)
    if a.ndim < 2 or b.ndim < 2 or not _blas_ctl().ok:
        return np.matmul(a, b, out=out)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    shape = batch + (a.shape[-2], b.shape[-1])
    macs = float(np.prod(shape, dtype=np.float64)) * a.shape[-1]
    if macs < MIN_NATIVE_GEMM:
        return np.matmul(a, b, out=out)
    if not batch:
        _blas_native()
        _last_native_gemm = time.perf_counter()
        return np.matmul(a, b, out=out)
    split = not (batch[0] < 2 or (macs < MIN_SPLIT_GEMM and _native is None)
                 or _threads_for(batch[0], macs, MIN_GEMM_WORK, gemm=True) <= 1)
    cols = shape[-1]
    step = cols if not col_block or col_block >= cols else col_block
    if not split and step == cols:
        # NOTE: a stacked GEMM too small to split runs in whichever mode OpenBLAS is in; giving
        # OpenBLAS its threads back here would make it spin into the next split GEMM.
        if _native is None:
            _last_native_gemm = time.perf_counter()
        return np.matmul(a, b, out=out)
    if split:
        _blas_serial()
    if out is None:
        out = np.empty(shape, dtype=np.result_type(a, b))
    a_full = a.ndim == len(shape) and a.shape[0] == shape[0]
    b_full = b.ndim == len(shape) and b.shape[0] == shape[0]

    def part(lo, hi):
        ap = a[lo:hi] if a_full else a
        bp = b[lo:hi] if b_full else b
        for s in range(0, cols, step):
            np.matmul(ap, bp[..., s:s + step], out=out[lo:hi, ..., s:s + step])
    if not split:
        part(0, shape[0])
        return out
    parallel_for(shape[0], part, macs, MIN_GEMM_WORK, gemm=True)
    return out


def flat_views(*arrays):
    """1-D views of arrays that share one shape and one memory order, each a permutation of
    contiguous memory; None when they do not (then work on them serially)."""
    first = arrays[0]
    order = sorted(range(first.ndim), key=lambda ax: -first.strides[ax])
    views = []
    for a in arrays:
        if a.shape != first.shape:
            return None
        v = a.transpose(order)
        if not v.flags.c_contiguous:
            return None
        views.append(v.reshape(-1))
    return views


def elementwise(fn, like, *inputs):
    """A new array shaped and laid out like ``like``, filled by ``fn(out_chunk,
    *input_chunks)`` over 1-D chunks on deepgrad's threads; None, with nothing allocated or
    run, when the work is small, splitting is not worthwhile now, or the inputs are not arrays
    of ``like``'s shape and memory order (then the caller runs it serially)."""
    if like.size < 2 * MIN_ELEMENTS or _threads_for(like.size, like.size, MIN_ELEMENTS) <= 1 \
            or not all(isinstance(a, np.ndarray) for a in inputs):
        return None
    out = np.empty_like(like)  # order 'K': like's memory order
    views = flat_views(out, *inputs)
    if views is None:
        return None
    o, ins = views[0], views[1:]

    def part(lo, hi):
        fn(o[lo:hi], *(v[lo:hi] for v in ins))
    parallel_for(o.size, part, o.size, MIN_ELEMENTS)
    return out
