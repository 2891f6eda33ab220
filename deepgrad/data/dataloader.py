"""The DataLoader: batches of a dataset, in order or shuffled, reproducibly.

For datasets that hold whole arrays (``supports_batch``: :class:`TensorDataset`, the MNIST
family without transforms, subsets of those) a batch is gathered with one fancy-indexing
operation per array; any other dataset falls back to ``dataset[i]`` per sample followed by
:func:`default_collate`. Both paths give the same batches.

Shuffling: each epoch draws a fresh 63-bit *epoch seed* from the loader's generator (its own,
made from ``seed``, or the one passed as ``generator``, or else the global generator) and
permutes the indices with it. :meth:`DataLoader.state_dict` records the generator state, the
epoch count, the epoch seed and the number of batches already handed out, so a checkpoint can
resume in the middle of an epoch with exactly the batches that were still to come.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from deepgrad._random import get_rng
from deepgrad.data.dataset import Dataset, _resolve_rng
from deepgrad.tensor import Tensor, from_numpy


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    """Stack equally shaped arrays; name both shapes when they differ."""
    first = arrays[0].shape
    for a in arrays[1:]:
        if a.shape != first:
            raise ValueError(
                f"default_collate: cannot stack samples of different shapes {first} and "
                f"{a.shape}"
            )
    return np.stack(arrays)


def default_collate(batch: Sequence[Any]) -> Any:
    """Merge a list of samples into a batch, as ``torch.utils.data.default_collate``.

    Tensors and ndarrays are stacked along a new first dimension; Python ints become an int64
    tensor, Python floats a float64 tensor (PARITY: as torch), bools a bool tensor, NumPy
    scalars keep their dtype; strings stay a list; tuples, lists and dicts are collated field
    by field.

    Args:
        batch: a non-empty sequence of samples of the same structure.

    Returns:
        The collated batch: a Tensor, or a tuple / dict of collated fields.

    Raises:
        ValueError: if samples have different shapes or different numbers of fields.
        TypeError: if a sample field has an unsupported type.
    """
    if len(batch) == 0:
        raise ValueError("default_collate: empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return from_numpy(_stack([s.data for s in batch]))
    if isinstance(elem, np.ndarray):
        return from_numpy(_stack([np.asarray(s) for s in batch]))
    if isinstance(elem, np.generic):
        return from_numpy(np.array(batch))
    if isinstance(elem, bool):
        return from_numpy(np.array(batch, dtype=np.bool_))
    if isinstance(elem, numbers.Integral):
        return from_numpy(np.array(batch, dtype=np.int64))
    if isinstance(elem, numbers.Real):
        return from_numpy(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([s[key] for s in batch]) for key in elem}
    if isinstance(elem, (tuple, list)):
        size = len(elem)
        for s in batch:
            if len(s) != size:
                raise ValueError(f"default_collate: samples have different numbers of fields "
                                 f"({size} and {len(s)})")
        fields = [default_collate(list(f)) for f in zip(*batch)]
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
            return type(elem)(*fields)
        # PARITY: torch returns a list for tuple samples; a tuple unpacks the same way.
        return tuple(fields)
    raise TypeError(f"default_collate: cannot collate samples of type {type(elem).__name__}")


def _wrap_batch(arrays: tuple[np.ndarray, ...] | np.ndarray) -> tuple[Tensor, ...] | Tensor:
    if isinstance(arrays, tuple):
        return tuple(from_numpy(a) for a in arrays)
    return from_numpy(arrays)


class DataLoader:
    """Iterate over a dataset in batches, as ``torch.utils.data.DataLoader``.

    Args:
        dataset: a map-style dataset (``__getitem__`` and ``__len__``).
        batch_size: samples per batch, a positive int. For full-batch training pass
            ``len(dataset)``.
        shuffle: draw a new random order every epoch.
        drop_last: drop the last batch when it would be smaller than ``batch_size``.
        seed: seed of the loader's own generator (reproducible order independent of the
            global generator).
        generator: a NumPy Generator to shuffle with (mutually exclusive with ``seed``). With
            neither, each epoch's order is drawn from the global generator (``manual_seed``).
        collate_fn: merges a list of samples into a batch; when given, the per-sample path is
            always used. Defaults to :func:`default_collate`.

    Raises:
        ValueError: if ``batch_size`` is not a positive int, or both ``seed`` and
            ``generator`` are given.

    Example:
        >>> loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, seed=0)
        >>> for xb, yb in loader: ...
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        generator: np.random.Generator | None = None,
        collate_fn: Callable[[list], Any] | None = None,
    ):
        if (isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral)
                or batch_size <= 0):
            raise ValueError(f"batch_size should be a positive integer value, "
                             f"but got batch_size={batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self._generator = _resolve_rng(seed, generator, "DataLoader")
        self._epoch = 0           # index of the epoch in progress, or of the next one
        self._batches_done = 0    # batches of the current epoch already handed out
        self._epoch_seed: int | None = None
        self._resume = False      # set by load_state_dict: continue the saved epoch

    @property
    def generator(self) -> np.random.Generator | None:
        """The loader's own generator, or None when it shuffles with the global one."""
        return self._generator

    @property
    def epoch(self) -> int:
        """Number of epochs completed (or abandoned part-way) so far."""
        return self._epoch

    def __len__(self) -> int:
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def _draw_epoch_seed(self) -> int:
        rng = self._generator if self._generator is not None else get_rng()
        return int(rng.integers(0, 2**63 - 1))

    def _fetch(self, indices: np.ndarray, fast: bool):
        if fast:
            return _wrap_batch(self.dataset.get_batch(indices))
        samples = [self.dataset[int(i)] for i in indices]
        collate = self.collate_fn if self.collate_fn is not None else default_collate
        return collate(samples)

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        if self._resume:
            self._resume = False
            start = self._batches_done
            seed = self._epoch_seed
        else:
            if self._batches_done > 0:  # the previous epoch was left part-way
                self._epoch += 1
            start = self._batches_done = 0
            seed = self._draw_epoch_seed() if self.shuffle else None
            self._epoch_seed = seed
        order = np.random.default_rng(seed).permutation(n) if self.shuffle else None
        fast = self.collate_fn is None and bool(getattr(self.dataset, "supports_batch", False))
        bs = self.batch_size
        for b in range(start, len(self)):
            lo, hi = b * bs, min((b + 1) * bs, n)
            # NOTE: fancy indexing (never a slice view) so batches never alias the dataset.
            idx = order[lo:hi] if order is not None else np.arange(lo, hi)
            batch = self._fetch(idx, fast)
            self._batches_done = b + 1
            yield batch
        self._epoch += 1
        self._batches_done = 0
        self._epoch_seed = None

    def state_dict(self) -> dict:
        """Return the loader's order state (JSON-able), for checkpoints.

        Returns:
            ``{"epoch", "batches_done", "epoch_seed", "generator", "batch_size", "shuffle"}``:
            ``generator`` is the own generator's ``bit_generator.state`` (None when the global
            generator is used; the checkpoint saves that one separately), ``epoch_seed`` the
            seed of the epoch in progress (None between epochs).
        """
        mid = self._batches_done > 0
        return {
            "epoch": self._epoch,
            "batches_done": self._batches_done,
            "epoch_seed": self._epoch_seed if mid else None,
            "generator": (None if self._generator is None
                          else self._generator.bit_generator.state),
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the order state from :meth:`state_dict`.

        The next iteration continues the saved epoch with the batches that were still to come
        (or starts the next epoch if the saved one was complete).

        Raises:
            ValueError: if keys are missing, or the state does not fit this loader (own vs.
                global generator, a different batch size or shuffle mid-epoch).
        """
        missing = [k for k in ("epoch", "batches_done", "epoch_seed", "generator")
                   if k not in state]
        if missing:
            raise ValueError(f"DataLoader.load_state_dict: missing keys {missing}")
        gen_state = state["generator"]
        if (gen_state is None) != (self._generator is None):
            own = "its own generator" if self._generator is not None else "the global generator"
            raise ValueError(f"DataLoader.load_state_dict: this loader shuffles with {own} but "
                             "the state was saved by a loader that does not")
        done = int(state["batches_done"])
        if done > 0:
            for key, mine in (("batch_size", self.batch_size), ("shuffle", self.shuffle)):
                if key in state and state[key] != mine:
                    raise ValueError(f"DataLoader.load_state_dict: cannot resume mid-epoch with "
                                     f"{key}={mine}, the state was saved with {state[key]}")
            if done > len(self):
                raise ValueError(f"DataLoader.load_state_dict: {done} batches done but an "
                                 f"epoch has only {len(self)}")
            if self.shuffle and state["epoch_seed"] is None:
                raise ValueError("DataLoader.load_state_dict: mid-epoch state has no epoch_seed")
        if gen_state is not None:
            self._generator.bit_generator.state = gen_state
        self._epoch = int(state["epoch"])
        self._batches_done = done
        self._epoch_seed = None if state["epoch_seed"] is None else int(state["epoch_seed"])
        self._resume = done > 0
        if done > 0 and done == len(self):  # saved after the last batch: the epoch is over
            self._epoch += 1
            self._batches_done = 0
            self._epoch_seed = None
            self._resume = False
