"""Tests of Dataset, TensorDataset, Subset, random_split, default_collate and DataLoader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepgrad._random import manual_seed
from deepgrad.data import (
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)
from deepgrad.tensor import Tensor, from_numpy


def _xy(n: int = 10, d: int = 3):
    x = np.arange(n * d, dtype=np.float32).reshape(n, d)
    y = np.arange(n, dtype=np.int64) % 4
    return x, y


class Generic(Dataset):
    """A dataset without the batched fast path, over the same arrays."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __getitem__(self, i):
        return from_numpy(self.x[i]), int(self.y[i])

    def __len__(self):
        return len(self.x)


class BatchOnly(TensorDataset):
    """Refuses per-sample access: proves the loader gathers whole batches."""

    def __getitem__(self, index):
        raise AssertionError("per-sample __getitem__ called on the fast path")


# ---------------------------------------------------------------------- Dataset / TensorDataset
def test_abstract_dataset_raises():
    ds = Dataset()
    with pytest.raises(NotImplementedError):
        ds[0]
    with pytest.raises(NotImplementedError):
        len(ds)


def test_tensor_dataset_items_and_len():
    x, y = _xy()
    ds = TensorDataset(from_numpy(x), from_numpy(y))
    assert len(ds) == 10
    xi, yi = ds[3]
    assert isinstance(xi, Tensor) and isinstance(yi, Tensor)
    np.testing.assert_array_equal(xi.data, x[3])
    assert yi.data.shape == () and yi.item() == y[3]
    xb, yb = ds.get_batch(np.array([4, 1]))
    np.testing.assert_array_equal(xb, x[[4, 1]])
    np.testing.assert_array_equal(yb, y[[4, 1]])


def test_tensor_dataset_accepts_ndarrays():
    x, y = _xy()
    ds = TensorDataset(x, y)
    assert all(isinstance(t, Tensor) for t in ds.tensors)


def test_tensor_dataset_size_mismatch_names_both_sizes():
    with pytest.raises(ValueError, match=r"10.*7"):
        TensorDataset(np.zeros((10, 2)), np.zeros(7))


@pytest.mark.parametrize("args, exc", [((), ValueError), ((np.float32(1.0),), TypeError),
                                       ((np.array(1.0),), ValueError), (([1, 2],), TypeError)])
def test_tensor_dataset_bad_arguments(args, exc):
    with pytest.raises(exc):
        TensorDataset(*args)


# ---------------------------------------------------------------------- Subset / random_split
def test_subset_maps_indices():
    x, y = _xy()
    sub = Subset(TensorDataset(x, y), [7, 2, 5])
    assert len(sub) == 3
    np.testing.assert_array_equal(sub[1][0].data, x[2])
    assert sub.supports_batch
    np.testing.assert_array_equal(sub.get_batch(np.array([0, 2]))[0], x[[7, 5]])
    assert [s[1] for s in Subset(Generic(x, y), [1, 2])[[0, 1]]] == [1, 2]
    assert not Subset(Generic(x, y), [1]).supports_batch


def test_subset_rejects_non_integer_indices():
    with pytest.raises(ValueError, match="ints"):
        Subset(TensorDataset(*_xy()), [0.5, 1.5])


def test_random_split_ints_partition_and_reproducible():
    ds = TensorDataset(*_xy(20))
    a, b, c = random_split(ds, [10, 6, 4], seed=3)
    assert [len(a), len(b), len(c)] == [10, 6, 4]
    allidx = np.concatenate([a.indices, b.indices, c.indices])
    assert sorted(allidx.tolist()) == list(range(20))
    a2, _, _ = random_split(ds, [10, 6, 4], seed=3)
    np.testing.assert_array_equal(a.indices, a2.indices)
    a3, _, _ = random_split(ds, [10, 6, 4], generator=np.random.default_rng(3))
    np.testing.assert_array_equal(a.indices, a3.indices)


def test_random_split_fractions_distribute_remainder():
    ds = TensorDataset(*_xy(10))
    parts = random_split(ds, [0.33, 0.33, 0.34], seed=0)
    assert [len(p) for p in parts] == [4, 3, 3]  # floor 3,3,3 then remainder to the first
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == list(range(10))


def test_random_split_global_rng_follows_manual_seed():
    ds = TensorDataset(*_xy(10))
    manual_seed(5)
    a = random_split(ds, [5, 5])[0].indices
    manual_seed(5)
    np.testing.assert_array_equal(a, random_split(ds, [5, 5])[0].indices)


@pytest.mark.parametrize("lengths", [[5, 4], [6, 6], [0.5, 0.4], [1.2, -0.2], [-1, 11]])
def test_random_split_bad_lengths(lengths):
    with pytest.raises(ValueError):
        random_split(TensorDataset(*_xy(10)), lengths, seed=0)


def test_random_split_seed_and_generator_exclusive():
    with pytest.raises(ValueError, match="not both"):
        random_split(TensorDataset(*_xy(10)), [5, 5], seed=1, generator=np.random.default_rng())


# ---------------------------------------------------------------------- default_collate
def test_default_collate_types():
    batch = [(np.ones(2, np.float32), 1, 0.5, "a"), (np.zeros(2, np.float32), 2, 1.5, "b")]
    x, i, f, s = default_collate(batch)
    assert x.data.shape == (2, 2) and x.dtype == np.float32
    assert i.dtype == np.int64 and i.data.tolist() == [1, 2]
    assert f.dtype == np.float64
    assert s == ["a", "b"]
    d = default_collate([{"a": np.int32(1)}, {"a": np.int32(2)}])
    assert d["a"].dtype == np.int32
    assert default_collate([True, False]).dtype == np.bool_


def test_default_collate_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        default_collate([np.zeros(3), np.zeros(4)])
    with pytest.raises(ValueError, match="numbers of fields"):
        default_collate([(1, 2), (1,)])
    with pytest.raises(TypeError):
        default_collate([object(), object()])


# ---------------------------------------------------------------------- DataLoader
def test_batches_len_and_last_partial_batch():
    x, y = _xy(10)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert isinstance(batches[0], tuple) and all(isinstance(t, Tensor) for t in batches[0])
    np.testing.assert_array_equal(np.concatenate([b[0].data for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1].data for b in batches]), y)


def test_drop_last():
    loader = DataLoader(TensorDataset(*_xy(10)), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [b[0].shape[0] for b in loader] == [4, 4]
    assert len(DataLoader(TensorDataset(*_xy(8)), batch_size=4, drop_last=True)) == 2


def test_batches_are_copies_not_views():
    x, y = _xy(6)
    xb, _ = next(iter(DataLoader(TensorDataset(x, y), batch_size=3)))
    xb.data[...] = -1
    assert x.min() >= 0


@pytest.mark.parametrize("bs", [0, -1, 1.5, True, None, "4"])
def test_batch_size_must_be_positive_int(bs):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(TensorDataset(*_xy()), batch_size=bs)


def test_seed_and_generator_are_exclusive_and_typed():
    with pytest.raises(ValueError, match="not both"):
        DataLoader(TensorDataset(*_xy()), seed=0, generator=np.random.default_rng(0))
    with pytest.raises(TypeError):
        DataLoader(TensorDataset(*_xy()), generator=np.random.RandomState(0))


def _orders(loader, epochs):
    return [np.concatenate([b[1].data for b in loader]) for _ in range(epochs)]


def test_shuffle_reproducible_with_seed_and_new_order_each_epoch():
    x = np.arange(50, dtype=np.float32)[:, None]
    y = np.arange(50)
    a = _orders(DataLoader(TensorDataset(x, y), batch_size=7, shuffle=True, seed=11), 3)
    b = _orders(DataLoader(TensorDataset(x, y), batch_size=7, shuffle=True, seed=11), 3)
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea, eb)
        assert sorted(ea.tolist()) == list(range(50))  # every sample exactly once
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])
    assert not np.array_equal(a[0], np.arange(50))
    c = _orders(DataLoader(TensorDataset(x, y), batch_size=7, shuffle=True, seed=12), 1)
    assert not np.array_equal(a[0], c[0])


def test_shuffle_with_generator_and_with_global_rng():
    ds = TensorDataset(np.zeros((30, 1)), np.arange(30))
    a = _orders(DataLoader(ds, batch_size=4, shuffle=True, generator=np.random.default_rng(2)), 2)
    b = _orders(DataLoader(ds, batch_size=4, shuffle=True, generator=np.random.default_rng(2)), 2)
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
    manual_seed(7)
    g1 = _orders(DataLoader(ds, batch_size=4, shuffle=True), 2)
    manual_seed(7)
    g2 = _orders(DataLoader(ds, batch_size=4, shuffle=True), 2)
    np.testing.assert_array_equal(np.stack(g1), np.stack(g2))
    assert not np.array_equal(g1[0], g1[1])


def test_no_shuffle_does_not_touch_global_rng():
    manual_seed(3)
    list(DataLoader(TensorDataset(*_xy()), batch_size=3))
    from deepgrad._random import get_rng
    assert get_rng().integers(1 << 30) == np.random.default_rng(3).integers(1 << 30)


def test_fast_path_used_for_tensor_dataset_and_subset():
    x, y = _xy(20)
    ds = BatchOnly(x, y)
    assert sum(b[0].shape[0] for b in DataLoader(ds, batch_size=6, shuffle=True, seed=0)) == 20
    sub = Subset(ds, np.arange(5, 15))
    got = np.concatenate([b[1].data for b in DataLoader(sub, batch_size=3)])
    np.testing.assert_array_equal(got, y[5:15])


@pytest.mark.parametrize("shuffle, drop_last", [(False, False), (True, False), (True, True)])
def test_fast_path_equals_generic_path(shuffle, drop_last):
    x, y = _xy(23, 4)
    fast = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=shuffle, drop_last=drop_last,
                      seed=9)
    slow = DataLoader(Generic(x, y), batch_size=5, shuffle=shuffle, drop_last=drop_last, seed=9)
    for _ in range(2):
        fb, sb = list(fast), list(slow)
        assert len(fb) == len(sb) == len(fast)
        for (fx, fy), (sx, sy) in zip(fb, sb):
            assert fx.dtype == sx.dtype and fy.dtype == sy.dtype
            np.testing.assert_array_equal(fx.data, sx.data)
            np.testing.assert_array_equal(fy.data, sy.data)


def test_collate_fn_forces_per_sample_path():
    x, y = _xy(6)
    loader = DataLoader(TensorDataset(x, y), batch_size=4, collate_fn=lambda s: len(s))
    assert list(loader) == [4, 2]


def test_single_array_samples_collate_to_a_tensor():
    class Plain(Dataset):
        def __getitem__(self, i):
            return np.full(2, i, np.float32)

        def __len__(self):
            return 5

    batches = list(DataLoader(Plain(), batch_size=2))
    assert isinstance(batches[0], Tensor) and batches[0].shape == (2, 2)


def test_empty_dataset_yields_nothing():
    loader = DataLoader(TensorDataset(np.zeros((0, 2))), batch_size=3, shuffle=True, seed=0)
    assert len(loader) == 0 and list(loader) == []


# ---------------------------------------------------------------------- state_dict / resume
def _labels(batches):
    return [b[1].data.tolist() for b in batches]


@pytest.mark.parametrize("use_seed", [True, False])
def test_state_dict_resumes_mid_epoch(use_seed):
    ds = TensorDataset(np.zeros((23, 1)), np.arange(23))
    kw = {"seed": 4} if use_seed else {}
    manual_seed(1)
    ref = DataLoader(ds, batch_size=5, shuffle=True, **kw)
    first = _labels(ref)                      # epoch 0
    it = iter(ref)
    head = _labels([next(it), next(it)])      # two batches of epoch 1
    state = json.loads(json.dumps(ref.state_dict()))  # must survive JSON
    from deepgrad._random import get_rng_state, set_rng_state
    global_state = get_rng_state()
    tail = _labels(it)                        # rest of epoch 1
    nxt = _labels(ref)                        # epoch 2
    assert state["epoch"] == 1 and state["batches_done"] == 2
    assert sorted(sum(head + tail, [])) == list(range(23))
    assert first != head + tail

    manual_seed(99)
    resumed = DataLoader(ds, batch_size=5, shuffle=True, **kw)
    resumed.load_state_dict(state)
    set_rng_state(global_state)  # a checkpoint restores the global generator itself
    assert _labels(resumed) == tail
    assert _labels(resumed) == nxt
    assert resumed.epoch == ref.epoch == 3


def test_state_between_epochs_and_after_last_batch():
    ds = TensorDataset(np.zeros((10, 1)), np.arange(10))
    ref = DataLoader(ds, batch_size=5, shuffle=True, seed=0)
    list(ref)
    state = ref.state_dict()
    assert state["batches_done"] == 0 and state["epoch_seed"] is None and state["epoch"] == 1
    expected = _labels(ref)
    other = DataLoader(ds, batch_size=5, shuffle=True, seed=0)
    other.load_state_dict(state)
    assert _labels(other) == expected
    # saved inside the loop after the last batch: the resumed loader starts the next epoch
    ref2 = DataLoader(ds, batch_size=5, shuffle=True, seed=0)
    for _ in ref2:
        state = ref2.state_dict()
    assert state["batches_done"] == 2
    nxt = _labels(ref2)
    other = DataLoader(ds, batch_size=5, shuffle=True, seed=0)
    other.load_state_dict(state)
    assert _labels(other) == nxt


def test_abandoned_epoch_counts_and_next_iter_starts_fresh():
    loader = DataLoader(TensorDataset(np.zeros((10, 1)), np.arange(10)), batch_size=2)
    next(iter(loader))
    assert len(list(loader)) == 5
    assert loader.epoch == 2


def test_load_state_dict_rejects_mismatches():
    ds = TensorDataset(np.zeros((10, 1)), np.arange(10))
    seeded = DataLoader(ds, batch_size=2, shuffle=True, seed=0)
    glob = DataLoader(ds, batch_size=2, shuffle=True)
    with pytest.raises(ValueError, match="global generator"):
        glob.load_state_dict(seeded.state_dict())
    with pytest.raises(ValueError, match="missing keys"):
        seeded.load_state_dict({"epoch": 0})
    it = iter(seeded)
    next(it)
    state = seeded.state_dict()
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=3, shuffle=True, seed=0).load_state_dict(state)
    with pytest.raises(ValueError, match="batches done"):
        DataLoader(ds, batch_size=2, shuffle=True, seed=0).load_state_dict(
            dict(state, batches_done=9))
