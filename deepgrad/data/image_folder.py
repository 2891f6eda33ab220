"""ImageFolder: a classification data set laid out as one sub-folder of images per class.

::

    root/cat/001.png
    root/cat/nested/002.png
    root/dog/a.npy

Class names are the sub-folder names, sorted, and their position is the label, as
``torchvision.datasets.ImageFolder``. Files are found recursively inside each class folder
(sorted, extensions compared case-insensitively).

Decoding: ``.npy`` files are read with NumPy (2-D arrays are one-channel images, 3-D arrays are
taken as (C, H, W)); every other image format needs Pillow (the optional ``images`` extra,
``pip install pillow``). Grayscale images keep one channel, 16-bit grayscale is scaled by
65535, every other mode is converted to RGB. Integer pixels are scaled to [0, 1] by their
dtype's maximum (uint8: 255).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepgrad.data.dataset import Dataset
from deepgrad.tensor import Tensor, from_numpy

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".npy")

_GRAY_MODES = ("1", "L", "LA")
_WIDE_GRAY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def _import_pil():
    """Import Pillow's Image module, or explain how to get it."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("reading PNG/JPEG/BMP/PGM/PPM images needs Pillow, an optional "
                          "dependency: pip install pillow (or deepgrad[images])") from exc
    return Image


def _to_unit_float(arr: np.ndarray) -> np.ndarray:
    """Pixels -> float32 in [0, 1]: integers divided by their dtype's max, bools 0/1."""
    if arr.dtype.kind in "iu":
        out = arr.astype(np.float32)
        out /= np.float32(np.iinfo(arr.dtype).max)
        return out
    if arr.dtype.kind in "bf":
        return arr.astype(np.float32, copy=False)
    raise ValueError(f"unsupported pixel dtype {arr.dtype}")


def _decode_pil(path: Path) -> np.ndarray:
    image_mod = _import_pil()
    with image_mod.open(path) as img:
        img.load()
        if img.mode in _WIDE_GRAY_MODES:
            arr = np.asarray(img).astype(np.float32) / np.float32(65535.0)
            return arr[None]
        if img.mode == "F":
            return np.asarray(img, dtype=np.float32)[None]
        gray = img.mode in _GRAY_MODES
        arr = np.asarray(img.convert("L" if gray else "RGB"))
    arr = _to_unit_float(arr)
    return arr[None] if gray else np.ascontiguousarray(arr.transpose(2, 0, 1))


def _decode_npy(path: Path) -> np.ndarray:
    arr = np.load(path, allow_pickle=False)
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim != 3:
        raise ValueError(f"expected a 2-D (H, W) or 3-D (C, H, W) array, got shape {arr.shape}")
    return _to_unit_float(arr)


def default_loader(path: str | os.PathLike) -> np.ndarray:
    """Read one image file as float32 (C, H, W) in [0, 1].

    Raises:
        ImportError: for a non-``.npy`` file when Pillow is not installed.
        ValueError: if the file cannot be read or decoded (the message names it).
    """
    path = Path(path)
    if path.suffix.lower() != ".npy":
        _import_pil()  # a missing Pillow is the user's setup, not a bad file
    try:
        return _decode_npy(path) if path.suffix.lower() == ".npy" else _decode_pil(path)
    except Exception as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc


def find_classes(root: str | os.PathLike) -> tuple[list[str], dict[str, int]]:
    """Sorted class folder names under ``root`` and their indices, as torchvision's.

    Raises:
        FileNotFoundError: if ``root`` does not exist or has no sub-folder.
        NotADirectoryError: if ``root`` is a file.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"ImageFolder: root {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"ImageFolder: root {root} is not a directory")
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not classes:
        raise FileNotFoundError(f"ImageFolder: no class folder in {root} (expected one "
                                "sub-folder of images per class)")
    return classes, {name: i for i, name in enumerate(classes)}


def _class_files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        found.extend(Path(dirpath) / f for f in sorted(filenames)
                     if f.lower().endswith(extensions))
    return found


class ImageFolder(Dataset):
    """Images in ``root/<class name>/...`` with labels from the sorted class names.

    Args:
        root: the folder holding one sub-folder per class.
        transform: applied to each image (a float32 Tensor (C, H, W) in [0, 1]).
        target_transform: applied to each label (a Python int).
        extensions: file name endings that count as images (case-insensitive).
        loader: reads one file into an array (C, H, W) (integer pixels are then scaled to
            [0, 1] by their dtype's maximum); :func:`default_loader` by default.

    Attributes:
        classes: sorted class names; ``classes[label]`` is the name.
        class_to_idx: class name -> label.
        samples: ``(path, label)`` pairs, class by class, files sorted (alias ``imgs``).
        targets: the labels of ``samples``.

    Shape:
        Sample: image float32 Tensor (C, H, W) in [0, 1] (PARITY: torchvision returns a PIL
        image; this is what its ``ToTensor()`` would make of it), label a Python int.

    Raises:
        FileNotFoundError: if ``root`` is missing, has no class folder, or a class folder has
            no file with one of ``extensions`` (named).
        ImportError: if the folder holds non-``.npy`` images and Pillow is not installed.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable[[Tensor], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        extensions: Sequence[str] = IMG_EXTENSIONS,
        loader: Callable[[str], np.ndarray] | None = None,
    ):
        self.root = Path(root).expanduser()
        self.transform = transform
        self.target_transform = target_transform
        self.extensions = tuple(e.lower() if e.startswith(".") else "." + e.lower()
                                for e in extensions)
        if not self.extensions:
            raise ValueError("ImageFolder: extensions is empty")
        self.loader = loader if loader is not None else default_loader
        self.classes, self.class_to_idx = find_classes(self.root)
        samples: list[tuple[str, int]] = []
        for name in self.classes:
            files = _class_files(self.root / name, self.extensions)
            if not files:
                raise FileNotFoundError(
                    f"ImageFolder: class folder {self.root / name} has no image file; "
                    f"supported extensions: {', '.join(self.extensions)}")
            samples.extend((str(f), self.class_to_idx[name]) for f in files)
        self.samples = samples
        self.targets = [label for _, label in samples]
        if loader is None:
            needs_pil = next((p for p, _ in samples if not p.lower().endswith(".npy")), None)
            if needs_pil is not None:
                try:
                    _import_pil()
                except ImportError as exc:
                    raise ImportError(f"ImageFolder: {needs_pil} is not a .npy file. "
                                      f"{exc}") from exc

    @property
    def imgs(self) -> list[tuple[str, int]]:
        """Alias of :attr:`samples`, as torchvision."""
        return self.samples

    def __len__(self) -> int:
        return len(self.samples)

    def _read(self, path: str) -> np.ndarray:
        arr = np.asarray(self.loader(path))
        if arr.ndim != 3:
            raise ValueError(f"ImageFolder: {path} gave an array of shape {arr.shape}, "
                             "expected (C, H, W)")
        try:
            return _to_unit_float(arr)
        except ValueError as exc:
            raise ValueError(f"ImageFolder: {path}: {exc}") from exc

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, target = self.samples[index]
        image: Any = from_numpy(self._read(path))
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Read every image into one array (no transforms), for in-memory training.

        Returns:
            ``(x, y)``: x float32 (N, C, H, W) in [0, 1], y int64 (N,).

        Raises:
            ValueError: if an image's shape differs from the first one's (naming both files
                and shapes), or a file cannot be read.
        """
        first_path = self.samples[0][0]
        first = self._read(first_path)
        x = np.empty((len(self.samples),) + first.shape, dtype=np.float32)
        x[0] = first
        for i, (path, _) in enumerate(self.samples[1:], start=1):
            arr = self._read(path)
            if arr.shape != first.shape:
                raise ValueError(f"ImageFolder: {path} has shape {arr.shape} but {first_path} "
                                 f"has {first.shape}; all images must have the same size "
                                 "and channel count to be stacked")
            x[i] = arr
        return x, np.asarray(self.targets, dtype=np.int64)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={str(self.root)!r}, n={len(self)}, "
                f"classes={len(self.classes)})")


def load_image_folder(
    root: str | os.PathLike, extensions: Sequence[str] = IMG_EXTENSIONS
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load an image-folder data set into memory in one call.

    Args:
        root: the folder holding one sub-folder per class (see :class:`ImageFolder`).
        extensions: file name endings that count as images.

    Returns:
        ``(x, y, classes)``: x float32 (N, C, H, W) in [0, 1], y int64 (N,), class names.
    """
    ds = ImageFolder(root, extensions=extensions)
    x, y = ds.load_arrays()
    return x, y, ds.classes
