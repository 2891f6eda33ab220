"""A user's own data set in an ``.npz`` file with the Keras layout.

The archive holds ``x_train``, ``y_train``, ``x_test``, ``y_test`` (what ``np.savez`` writes
from the arrays ``keras.datasets.*.load_data()`` returns). Inputs become float32 (uint8 images
scaled to [0, 1]) and gain a channel dimension where needed; labels become int64 class indices.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_archive(path: Path) -> dict[str, np.ndarray]:
    """Read the four arrays; every failure becomes a ValueError naming the file."""
    if not path.is_file():
        if path.exists():
            raise ValueError(f"{path}: is not a file")
        raise FileNotFoundError(f"npz file not found: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:  # NOTE: np.load raises many types for garbage input
        msg = f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})"
        raise ValueError(msg) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: is a single .npy array, expected an .npz archive with "
                         f"keys {', '.join(_KEYS)}")
    with archive:
        missing = [k for k in _KEYS if k not in archive.files]
        if missing:
            raise ValueError(f"{path}: missing key(s) {', '.join(missing)}; the archive has "
                             f"{', '.join(archive.files) or 'no arrays'} (expected "
                             f"{', '.join(_KEYS)}, the Keras layout)")
        arrays = {}
        for key in _KEYS:
            try:
                arrays[key] = archive[key]
            except Exception as exc:  # truncated member, CRC error, object array, ...
                raise ValueError(f"{path}: cannot read array {key!r} (truncated or corrupt "
                                 f"file?): {type(exc).__name__}: {exc}") from None
    return arrays


def _inputs(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    """Convert inputs to float32 with a channel dimension for images."""
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{path}: {key} has dtype {x.dtype}, expected numbers")
    if x.ndim < 2 or x.ndim > 4:
        raise ValueError(f"{path}: {key} has shape {x.shape}; expected (N, D) vectors, (N, H, W) "
                         "images or (N, C, H, W) / (N, H, W, C) images")
    if len(x) == 0:
        raise ValueError(f"{path}: {key} is empty")
    if x.dtype == np.uint8:
        out = x.astype(np.float32)
        out /= np.float32(255.0)
    else:
        out = x.astype(np.float32)
        bad = ~np.isfinite(out)
        if bad.any():
            i = np.unravel_index(int(np.argmax(bad)), out.shape)
            raise ValueError(f"{path}: {key} contains {int(bad.sum())} non-finite value(s) "
                             f"(NaN or inf), first {x[i]} at index {tuple(int(j) for j in i)}")
    if out.ndim == 3:
        out = out[:, None]
    elif out.ndim == 4 and out.shape[-1] in (1, 3, 4) and out.shape[1] not in (1, 3, 4):
        # NOTE: Keras stores colour images channels-last (N, H, W, C); deepgrad is NCHW.
        out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    return out


def _labels(path: Path, key: str, y: np.ndarray, n: int) -> np.ndarray:
    """Check labels and convert them to int64 class indices."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # Keras' CIFAR labels are (N, 1)
    if y.ndim != 1:
        raise ValueError(f"{path}: {key} has shape {y.shape}; expected (N,) class indices")
    if len(y) != n:
        raise ValueError(f"{path}: x_{key[2:]} has {n} samples but {key} has {len(y)} labels")
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{path}: {key} has dtype {y.dtype}, expected integer class indices")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{path}: {key} has a non-integer label {y[i]} at index {i}; "
                             "labels must be class indices 0..K-1")
    if y.dtype.kind in "if" and (y < 0).any():
        i = int(np.argmax(y < 0))
        raise ValueError(f"{path}: {key} has a negative label {y[i]} at index {i}; labels must "
                         "be class indices 0..K-1")
    if y.dtype.kind == "u" and y.size and int(y.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{path}: {key} has an out-of-range label {y.max()}")
    return y.astype(np.int64)


def load_npz(
    path: str | os.PathLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Load a data set from an ``.npz`` file in the Keras layout.

    Inputs: uint8 arrays are scaled to float32 in [0, 1]; other numeric inputs are cast to
    float32 unscaled and must be finite. (N, H, W) images get a channel dimension -> (N, 1, H, W);
    (N, D) vectors and (N, C, H, W) images are kept; channels-last (N, H, W, C) images with
    C in {1, 3, 4} are moved to NCHW. Labels: (N,) or (N, 1) class indices 0..K-1 (ints, or
    floats with integral values) -> int64; K is ``max(y_train) + 1``.

    Args:
        path: the ``.npz`` file.

    Returns:
        ``(x_train, y_train, x_test, y_test, num_classes)``.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: one clear message naming the file for: an unreadable, truncated or non-npz
            file; missing keys (named); x/y length mismatch (both numbers); train/test input
            shapes that differ; negative, non-integer or out-of-range labels (the label named);
            NaN or inf inputs.
    """
    path = Path(path).expanduser()
    arrays = _read_archive(path)
    x_train = _inputs(path, "x_train", arrays["x_train"])
    x_test = _inputs(path, "x_test", arrays["x_test"])
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"{path}: x_train samples have shape {x_train.shape[1:]} but x_test "
                         f"samples {x_test.shape[1:]}")
    y_train = _labels(path, "y_train", arrays["y_train"], len(x_train))
    y_test = _labels(path, "y_test", arrays["y_test"], len(x_test))
    num_classes = int(y_train.max()) + 1
    if y_test.size and y_test.max() >= num_classes:
        i = int(np.argmax(y_test >= num_classes))
        raise ValueError(f"{path}: y_test has label {y_test[i]} at index {i}, out of range: "
                         f"y_train has classes 0..{num_classes - 1}")
    return x_train, y_train, x_test, y_test, num_classes

