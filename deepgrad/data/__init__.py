"""Data: datasets, the DataLoader, the MNIST family (local files or download) and npz files.

Mirrors ``torch.utils.data`` (``Dataset``, ``TensorDataset``, ``Subset``, ``random_split``,
``DataLoader``, ``default_collate``) and ``torchvision.datasets`` (``MNIST``,
``FashionMNIST``, ``KMNIST``, ``ImageFolder``); ``deepgrad.data.transforms`` mirrors
``torchvision.transforms`` with batch-vectorised augmentation, and :class:`PrefetchLoader`
prepares batches in a background thread.
"""

from deepgrad.data import transforms
from deepgrad.data.dataloader import DataLoader, default_collate
from deepgrad.data.dataset import Dataset, Subset, TensorDataset, random_split
from deepgrad.data.datasets import (
    DATASETS,
    FASHION_MNIST_SOURCE,
    KMNIST,
    KMNIST_SOURCE,
    MNIST,
    MNIST_SOURCE,
    FashionMNIST,
    load_arrays,
)
from deepgrad.data.download import DataSource, default_data_root, download, locate_files
from deepgrad.data.idx import read_idx, write_idx
from deepgrad.data.image_folder import ImageFolder, load_image_folder
from deepgrad.data.npz import load_npz
from deepgrad.data.prefetch import PrefetchLoader
from deepgrad.data.transforms import TransformDataset

__all__ = [
    "DATASETS",
    "FASHION_MNIST_SOURCE",
    "KMNIST",
    "KMNIST_SOURCE",
    "MNIST",
    "MNIST_SOURCE",
    "DataLoader",
    "DataSource",
    "Dataset",
    "FashionMNIST",
    "ImageFolder",
    "PrefetchLoader",
    "Subset",
    "TensorDataset",
    "TransformDataset",
    "default_collate",
    "default_data_root",
    "download",
    "load_arrays",
    "load_image_folder",
    "load_npz",
    "locate_files",
    "random_split",
    "read_idx",
    "transforms",
    "write_idx",
]
