"""Map-style datasets: the abstract :class:`Dataset`, :class:`TensorDataset`, :class:`Subset`.

A dataset maps an index ``0 <= i < len(ds)`` to one sample. Datasets that hold whole arrays
also offer a batched fetch: they set ``supports_batch`` to True and implement
``get_batch(indices)``, which gathers a whole batch with one fancy-indexing operation per array.
:class:`~deepgrad.data.dataloader.DataLoader` uses it instead of a Python loop over samples.

PARITY: ``torch.utils.data`` has ``__getitems__`` for batched fetching, which still returns a
list of samples to collate; ``get_batch`` returns the already-collated arrays, which is what
makes the fast path fast.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from deepgrad._random import get_rng
from deepgrad.tensor import Tensor, from_numpy


class Dataset:
    """Abstract map-style dataset, as ``torch.utils.data.Dataset``.

    Subclasses implement ``__getitem__`` (one sample for an integer index) and ``__len__``.
    Subclasses holding whole arrays may also set ``supports_batch = True`` and implement
    :meth:`get_batch`.
    """

    #: Whether :meth:`get_batch` is available (the DataLoader's fast path).
    supports_batch: bool = False

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, ...] | np.ndarray:
        """Return the samples at ``indices`` already collated, one array per sample field.

        Args:
            indices: 1-D integer array of sample indices.

        Returns:
            A tuple of arrays whose first dimension is ``len(indices)`` (or one array for
            datasets whose samples are not tuples).
        """
        raise NotImplementedError(f"{type(self).__name__} has no batched fetch")


class TensorDataset(Dataset):
    """A dataset wrapping tensors that share their first dimension, as ``TensorDataset``.

    Sample ``i`` is ``tuple(t[i] for t in tensors)``.

    Args:
        *tensors: Tensors (or ndarrays, wrapped without copying) with the same size of the
            first dimension.

    Raises:
        ValueError: if no tensor is given, a tensor is 0-d, or the first dimensions differ.
        TypeError: if an argument is neither a Tensor nor an ndarray.
    """

    supports_batch = True

    def __init__(self, *tensors: Tensor | np.ndarray):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        wrapped = []
        for i, t in enumerate(tensors):
            # PARITY: torch requires tensors; ndarrays are accepted here for convenience.
            if isinstance(t, np.ndarray):
                t = from_numpy(t)
            elif not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} is a {type(t).__name__}, "
                                "expected a Tensor or an ndarray")
            if t.data.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is 0-d and has no first dimension")
            wrapped.append(t)
        n = wrapped[0].data.shape[0]
        for i, t in enumerate(wrapped[1:], start=1):
            if t.data.shape[0] != n:
                raise ValueError(
                    f"Size mismatch between tensors: tensor 0 has {n} samples (first dimension) "
                    f"but tensor {i} has {t.data.shape[0]}"
                )
        self.tensors: tuple[Tensor, ...] = tuple(wrapped)

    def __getitem__(self, index) -> tuple[Tensor, ...]:
        return tuple(from_numpy(np.asarray(t.data[index])) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].data.shape[0]

    def get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        """Gather a batch by fancy indexing each tensor once (returns copies)."""
        return tuple(t.data[indices] for t in self.tensors)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, as ``torch.utils.data.Subset``.

    Args:
        dataset: the whole dataset.
        indices: indices into ``dataset`` selecting the subset, in order.
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int] | np.ndarray):
        idx = np.asarray(indices)
        if idx.size == 0:
            idx = idx.astype(np.int64)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"Subset indices must be a 1-D sequence of ints, got dtype "
                             f"{idx.dtype} and shape {idx.shape}")
        self.dataset = dataset
        self.indices = idx.astype(np.int64, copy=False)

    @property
    def supports_batch(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.dataset, "supports_batch", False))

    def __getitem__(self, index):
        if isinstance(index, list):
            return [self.dataset[int(self.indices[i])] for i in index]
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)

    def get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, ...] | np.ndarray:
        """Map ``indices`` through the subset and fetch them from the parent dataset."""
        return self.dataset.get_batch(self.indices[indices])


def _split_lengths(n: int, lengths: Sequence[int | float]) -> list[int]:
    """Turn ``lengths`` (ints summing to ``n`` or fractions summing to 1) into ints."""
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths is empty")
    if any(isinstance(x, bool) or not isinstance(x, numbers.Real) for x in lengths):
        raise TypeError(f"random_split: lengths must be ints or floats, got {lengths}")
    if any(not isinstance(x, numbers.Integral) for x in lengths):
        if any(not 0.0 <= x <= 1.0 for x in lengths):
            raise ValueError(f"random_split: fractions must lie in [0, 1], got {lengths}")
        if not math.isclose(sum(lengths), 1.0, abs_tol=1e-6):
            raise ValueError(f"random_split: fractions must sum to 1, got {lengths} "
                             f"(sum {sum(lengths)})")
        counts = [int(math.floor(n * f)) for f in lengths]
        # PARITY: as torch, the remainder goes one by one to the splits in order.
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        return counts
    counts = [int(x) for x in lengths]
    if any(c < 0 for c in counts):
        raise ValueError(f"random_split: lengths must be non-negative, got {counts}")
    if sum(counts) != n:
        raise ValueError(f"Sum of input lengths ({sum(counts)}) does not equal the length of "
                         f"the input dataset ({n})")
    return counts


def random_split(
    dataset: Dataset,
    lengths: Sequence[int | float],
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> list[Subset]:
    """Randomly split ``dataset`` into non-overlapping subsets, as ``random_split``.

    Args:
        dataset: the dataset to split.
        lengths: the size of each split, as ints summing to ``len(dataset)``, or as fractions
            summing to 1 (sizes ``floor(n * f)``, the remainder handed out one by one from the
            first split on).
        seed: seed of a private generator for the permutation.
        generator: a NumPy Generator to draw the permutation from (mutually exclusive with
            ``seed``). With neither, the global generator (:func:`deepgrad.manual_seed`).

    Returns:
        One :class:`Subset` per entry of ``lengths``.

    Raises:
        ValueError: if the lengths do not add up, or both ``seed`` and ``generator`` are given.
    """
    rng = _resolve_rng(seed, generator, "random_split")
    n = len(dataset)
    counts = _split_lengths(n, lengths)
    perm = (rng if rng is not None else get_rng()).permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, perm[bounds[i]:bounds[i + 1]]) for i in range(len(counts))]


def _resolve_rng(
    seed: int | None, generator: np.random.Generator | None, who: str
) -> np.random.Generator | None:
    """Return a private generator for ``seed``/``generator``, or None for the global one."""
    if seed is not None and generator is not None:
        raise ValueError(f"{who}: pass either seed or generator, not both")
    if generator is not None:
        if not isinstance(generator, np.random.Generator):
            raise TypeError(f"{who}: generator must be a numpy.random.Generator, "
                            f"got {type(generator).__name__}")
        return generator
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"{who}: seed must be an int, got {type(seed).__name__}")
        return np.random.default_rng(int(seed))
    return None
