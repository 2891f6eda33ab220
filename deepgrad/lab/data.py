"""MNIST subsets for the lab: small, fixed, real."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class LabData:
    """Arrays for one experiment: x float32 (N, 1, 28, 28) in [0, 1], y int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int = 10

    def flat(self) -> LabData:
        """The same data with each image flattened to a 784-vector."""
        return LabData(self.x_train.reshape(len(self.x_train), -1),
                       self.y_train, self.x_test.reshape(len(self.x_test), -1),
                       self.y_test, self.num_classes)


def load_mnist_subset(data_dir: Path | None, n_train: int, n_test: int,
                      cache: dict | None = None) -> LabData:
    """The first ``n_train`` / ``n_test`` images of a fixed permutation of MNIST (seed 1234).

    Args:
        data_dir: folder with the four IDX files; ``None`` means the library's default root.
        n_train, n_test: subset sizes (at most 60000 / 10000).
        cache: optional dict to keep the full arrays in between calls.

    Raises:
        FileNotFoundError: the files are missing; the message names the folder and the fix.
    """
    from deepgrad.data import default_data_root, load_arrays

    root = Path(data_dir) if data_dir is not None else Path(default_data_root())
    full = None if cache is None else cache.get(("mnist-full", str(root)))
    if full is None:
        try:
            full = load_arrays("mnist", root)
        except (FileNotFoundError, RuntimeError) as exc:
            raise FileNotFoundError(
                f"lab: MNIST not found under {root} ({exc}); pass --data-dir pointing at the "
                "four MNIST IDX files or set DEEPGRAD_DATA") from exc
        if cache is not None:
            cache[("mnist-full", str(root))] = full
    x_tr, y_tr, x_te, y_te = full
    if not (0 < n_train <= len(x_tr)) or not (0 < n_test <= len(x_te)):
        raise ValueError(f"lab: subset sizes must be in 1..{len(x_tr)} / 1..{len(x_te)}, "
                         f"got {n_train} / {n_test}")
    rng = np.random.default_rng(1234)
    i_tr = np.sort(rng.permutation(len(x_tr))[:n_train])
    i_te = np.sort(rng.permutation(len(x_te))[:n_test])
    return LabData(np.ascontiguousarray(x_tr[i_tr], dtype=np.float32),
                   y_tr[i_tr].astype(np.int64),
                   np.ascontiguousarray(x_te[i_te], dtype=np.float32),
                   y_te[i_te].astype(np.int64), 10)


def check_mnist(data_dir: Path | None) -> Path:
    """The MNIST root to use, after checking that the four IDX files are there.

    Raises:
        FileNotFoundError: naming the folder and the missing files.
    """
    from deepgrad.data import MNIST_SOURCE, default_data_root, locate_files
    from deepgrad.data.datasets import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS

    root = Path(data_dir) if data_dir is not None else Path(default_data_root())
    locate_files(MNIST_SOURCE, root, (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS))
    return root
