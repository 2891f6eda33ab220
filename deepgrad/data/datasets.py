"""The MNIST family: MNIST, Fashion-MNIST, KMNIST (same IDX layout), and a fast array loader.

Each data set is four IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``), raw or ``.gz``, looked for in
``root``, in ``root/<name>/`` and in torchvision's layout (``root/MNIST/raw`` ...). With
``download=True`` missing files are fetched from the canonical mirrors and their MD5 checked.

References:
    MNIST: LeCun, Cortes, Burges, http://yann.lecun.com/exdb/mnist/
    Fashion-MNIST: Xiao, Rasul, Vollgraf, 2017, arXiv:1708.07747
    KMNIST: Clanuwat et al., "Deep Learning for Classical Japanese Literature", 2018,
    arXiv:1812.01718
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from deepgrad.data.dataset import Dataset
from deepgrad.data.download import DataSource, locate_files
from deepgrad.data.idx import read_idx
from deepgrad.tensor import Tensor, from_numpy

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

MNIST_SOURCE = DataSource(
    name="mnist",
    title="MNIST",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "http://yann.lecun.com/exdb/mnist/"),
    gz_md5={
        TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
        TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
        TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
    },
    raw_md5={
        TRAIN_IMAGES: "6bbc9ace898e44ae57da46a324031adb",
        TRAIN_LABELS: "a25bea736e30d166cdddb491f175f624",
        TEST_IMAGES: "2646ac647ad5339dbf082846283269ea",
        TEST_LABELS: "27ae3e4e09519cfbb04c329615203637",
    },
    subdirs=("MNIST", "MNIST/raw"),
)

# NOTE: the .gz MD5s of Fashion-MNIST and KMNIST are the ones torchvision's mnist.py lists for
# these mirrors; the decompressed MD5s are not recorded here, so verify=True skips them.
FASHION_MNIST_SOURCE = DataSource(
    name="fashion-mnist",
    title="Fashion-MNIST",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    gz_md5={
        TRAIN_IMAGES: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        TRAIN_LABELS: "25c81989df183df01b3e8a0aad5dffbe",
        TEST_IMAGES: "bef4ecab320f06d8554ea6380940ec79",
        TEST_LABELS: "bb300cfdad3c16e7a12a480ee83cd310",
    },
    subdirs=("fashion_mnist", "fashionmnist", "FashionMNIST", "FashionMNIST/raw", "fashion"),
)

KMNIST_SOURCE = DataSource(
    name="kmnist",
    title="KMNIST",
    mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    gz_md5={
        TRAIN_IMAGES: "bdb82020997e1d708af4cf47b453dcf7",
        TRAIN_LABELS: "e144d726b3acfaa3e44228e80efcd344",
        TEST_IMAGES: "5c965bf0a639b31b8f53240b1b52f4d7",
        TEST_LABELS: "7320c461ea6c1c855c0b718fb2a4b134",
    },
    subdirs=("KMNIST", "KMNIST/raw"),
)


def _to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1] (the one conversion both loader paths use)."""
    out = images.astype(np.float32)
    out /= np.float32(255.0)
    return out


def _load_split(
    source: DataSource, paths: tuple[Path, Path], num_classes: int, verify: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Read and check an (images, labels) pair of IDX files."""
    img_path, lbl_path = paths
    md5 = source.raw_md5 if verify else {}
    images = read_idx(img_path, md5=md5.get(_base(img_path)))
    labels = read_idx(lbl_path, md5=md5.get(_base(lbl_path)))
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{img_path}: expected uint8 images of shape (N, H, W), got "
                         f"{images.dtype} of shape {images.shape}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"{lbl_path}: expected integer labels of shape (N,), got "
                         f"{labels.dtype} of shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{source.title}: {img_path} has {len(images)} images but {lbl_path} "
                         f"has {len(labels)} labels")
    labels = labels.astype(np.int64)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{lbl_path}: label {labels[i]} at index {i} is outside "
                         f"0..{num_classes - 1}")
    return images, labels


def _base(path: Path) -> str:
    return path.name.removesuffix(".gz")


class MNIST(Dataset):
    """The MNIST handwritten digits, as ``torchvision.datasets.MNIST``.

    Args:
        root: directory holding the IDX files (raw or ``.gz``), directly or in ``root/mnist/``
            (or torchvision's ``root/MNIST/raw/``). The CLI's default is
            :func:`~deepgrad.data.download.default_data_root`.
        train: the 60,000 training images, else the 10,000 test images.
        download: fetch missing files from the mirrors into ``root/<name>/`` (MD5-checked).
        transform: applied to each image tensor; disables the loader's batched fast path.
        target_transform: applied to each label; disables the batched fast path.
        verify: check the decompressed files against the known MD5s (where known).

    Attributes:
        data: uint8 images, shape (N, 28, 28).
        targets: int64 labels, shape (N,).
        classes: class names, index = label.

    Shape:
        Sample: image float32 (1, 28, 28) in [0, 1], label a Python int. PARITY: torchvision
        returns a PIL image; this is what its ``ToTensor()`` would make of it.

    Raises:
        FileNotFoundError: if files are missing and ``download`` is False.
        RuntimeError: if a download fails on every mirror.
        ValueError: if a file is corrupt or inconsistent (message names the file).
    """

    source: ClassVar[DataSource] = MNIST_SOURCE
    classes: ClassVar[list[str]] = [
        "0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
        "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine",
    ]

    def __init__(
        self,
        root: str | os.PathLike,
        train: bool = True,
        download: bool = False,
        transform: Callable[[Tensor], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        verify: bool = False,
    ):
        self.root = Path(root).expanduser()
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        names = (TRAIN_IMAGES, TRAIN_LABELS) if self.train else (TEST_IMAGES, TEST_LABELS)
        paths = locate_files(self.source, self.root, names, download_missing=download)
        self.data, self.targets = _load_split(
            self.source, (paths[0], paths[1]), len(self.classes), verify
        )

    @property
    def supports_batch(self) -> bool:  # type: ignore[override]
        return self.transform is None and self.target_transform is None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image: Any = from_numpy(_to_float(self.data[index])[None])
        target: Any = int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images float32 (B, 1, H, W) in [0, 1] and int64 labels (B,), in one gather."""
        images = _to_float(self.data[indices])
        return images[:, None], self.targets[indices]

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return f"{type(self).__name__}(root={str(self.root)!r}, split={split}, n={len(self)})"


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST (same layout as :class:`MNIST`), as torchvision's.

    Files are looked for in ``root``, ``root/fashion-mnist/`` or torchvision's
    ``root/FashionMNIST/raw/``.
    """

    source: ClassVar[DataSource] = FASHION_MNIST_SOURCE
    classes: ClassVar[list[str]] = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]


class KMNIST(MNIST):
    """Kuzushiji-MNIST, cursive Japanese characters (same layout as :class:`MNIST`).

    Files are looked for in ``root``, ``root/kmnist/`` or torchvision's ``root/KMNIST/raw/``.
    """

    source: ClassVar[DataSource] = KMNIST_SOURCE
    classes: ClassVar[list[str]] = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


DATASETS: dict[str, type[MNIST]] = {
    "mnist": MNIST,
    "fashion-mnist": FashionMNIST,
    "kmnist": KMNIST,
}


def _dataset_class(name: str) -> type[MNIST]:
    key = name.lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "fashion": "fashion-mnist"}.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; expected one of {sorted(DATASETS)}")
    return DATASETS[key]


def load_arrays(
    name: str, root: str | os.PathLike, download: bool = False, verify: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load a whole MNIST-family data set as arrays (the CLI's fast path).

    Args:
        name: ``"mnist"``, ``"fashion-mnist"`` (or ``"fashion_mnist"``) or ``"kmnist"``.
        root: data root, as for :class:`MNIST`.
        download: fetch missing files from the mirrors.
        verify: check the decompressed files against the known MD5s (where known).

    Returns:
        ``(x_train, y_train, x_test, y_test)``: x float32 (N, 1, 28, 28) in [0, 1], y int64.

    Raises:
        ValueError: for an unknown name or a corrupt file; FileNotFoundError / RuntimeError
            as :class:`MNIST`.
    """
    cls = _dataset_class(name)
    # Locate (or download) all four files first so that one error lists everything missing.
    paths = locate_files(cls.source, root, _FILES, download_missing=download)
    n = len(cls.classes)
    x_train, y_train = _load_split(cls.source, (paths[0], paths[1]), n, verify)
    x_test, y_test = _load_split(cls.source, (paths[2], paths[3]), n, verify)
    return _to_float(x_train)[:, None], y_train, _to_float(x_test)[:, None], y_test
