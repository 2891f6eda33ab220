"""Tests of deepgrad.data.PrefetchLoader: same batches, clean early exit, errors, state."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from deepgrad._random import get_rng, manual_seed
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.data.prefetch import PrefetchLoader
from deepgrad.data.transforms import RandomCrop, TransformDataset


def _dataset(n=50):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return TensorDataset(x, np.arange(n))


def _prefetch_threads() -> int:
    return sum(t.name == "deepgrad-prefetch" for t in threading.enumerate())


def _wait_for_no_prefetch_thread(timeout=5.0) -> None:
    deadline = time.monotonic() + timeout
    while _prefetch_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _prefetch_threads() == 0


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_same_batches_in_same_order(depth):
    plain = DataLoader(_dataset(), batch_size=7, shuffle=True, seed=3)
    wrapped = PrefetchLoader(DataLoader(_dataset(), batch_size=7, shuffle=True, seed=3), depth)
    assert len(wrapped) == len(plain) == 8
    for _ in range(3):  # several epochs: fresh orders, still identical
        a = [(xb.data, yb.data) for xb, yb in plain]
        b = [(xb.data, yb.data) for xb, yb in wrapped]
        assert len(a) == len(b) == 8
        for (xa, ya), (xb, yb) in zip(a, b):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    _wait_for_no_prefetch_thread()


def test_with_random_transforms_and_global_rng_shuffle():
    x = np.random.default_rng(0).random((40, 1, 6, 6)).astype(np.float32)
    y = np.arange(40)

    def batches(prefetch: bool):
        manual_seed(11)
        ds = TransformDataset(TensorDataset(x, y), RandomCrop(4, padding=1, seed=2))
        loader = DataLoader(ds, batch_size=8, shuffle=True)  # epoch seed from the global RNG
        if prefetch:
            loader = PrefetchLoader(loader)
        out = []
        for xb, yb in loader:
            get_rng().random(3)  # the "training step" draws from the global RNG too
            out.append((xb.data, yb.data))
        return out

    for (xa, ya), (xb, yb) in zip(batches(False), batches(True)):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_early_break_stops_the_thread():
    before = threading.active_count()
    loader = PrefetchLoader(DataLoader(_dataset(200), batch_size=2), depth=3)
    for i, _ in enumerate(loader):
        if i == 2:
            break
    _wait_for_no_prefetch_thread()
    assert threading.active_count() == before
    # the loader is usable again afterwards
    assert sum(1 for _ in loader) == 100
    _wait_for_no_prefetch_thread()


def test_abandoned_and_closed_iterators_stop_the_thread():
    loader = PrefetchLoader(DataLoader(_dataset(200), batch_size=2), depth=2)
    it = iter(loader)
    next(it)
    time.sleep(0.05)  # let the worker fill the queue and block on it
    assert _prefetch_threads() == 1
    it.close()
    assert _prefetch_threads() == 0
    it = iter(loader)
    next(it)
    del it  # garbage collection closes the generator
    _wait_for_no_prefetch_thread()


def test_consumer_exception_stops_the_thread():
    loader = PrefetchLoader(DataLoader(_dataset(200), batch_size=2))
    with pytest.raises(KeyError, match="boom"):
        for i, _ in enumerate(loader):
            if i == 3:
                raise KeyError("boom")
    _wait_for_no_prefetch_thread()


class _Failing(TensorDataset):
    """Fails while gathering the batch that holds sample ``bad``."""

    def __init__(self, bad: int):
        super().__init__(np.zeros((20, 2), np.float32))
        self.bad = bad

    def get_batch(self, indices):
        if self.bad in indices:
            raise RuntimeError(f"cannot load sample {self.bad}")
        return super().get_batch(indices)


@pytest.mark.parametrize("bad", [0, 13])
def test_worker_exception_reaches_the_consumer(bad):
    loader = PrefetchLoader(DataLoader(_Failing(bad), batch_size=4))
    seen = 0
    with pytest.raises(RuntimeError, match=f"cannot load sample {bad}"):
        for _ in loader:
            seen += 1
    assert seen == bad // 4  # every batch before the failing one was delivered
    _wait_for_no_prefetch_thread()


def test_state_dict_is_the_consumers_position():
    ds = _dataset(40)
    loader = PrefetchLoader(DataLoader(ds, batch_size=4, shuffle=True, seed=5), depth=4)
    it = iter(loader)
    taken = [next(it)[1].data for _ in range(3)]
    time.sleep(0.05)  # the worker has run ahead by now
    state = loader.state_dict()
    assert state["batches_done"] == 3
    rest_expected = [yb.data for _, yb in it]
    assert len(rest_expected) == 7

    resumed = PrefetchLoader(DataLoader(ds, batch_size=4, shuffle=True, seed=99))
    resumed.load_state_dict(state)
    rest = [yb.data for _, yb in resumed]
    assert len(rest) == 7
    for a, b in zip(rest, rest_expected):
        np.testing.assert_array_equal(a, b)
    assert len(np.unique(np.concatenate(taken + rest))) == 40
    assert loader.state_dict()["batches_done"] == 0  # after a full epoch: between epochs


def test_misc():
    loader = PrefetchLoader(DataLoader(_dataset(), batch_size=10), depth=2)
    assert loader.batch_size == 10 and len(loader.dataset) == 50
    assert "depth=2" in repr(loader)
    assert list(PrefetchLoader([])) == []
    assert [b for b in PrefetchLoader([1, 2, 3], depth=1)] == [1, 2, 3]
    with pytest.raises(ValueError, match="depth"):
        PrefetchLoader(loader, depth=0)
